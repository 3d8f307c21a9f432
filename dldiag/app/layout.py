"""Pure layout builders: an :class:`~dldiag.app.state.AppMeta` (and a state) in, components out."""

from __future__ import annotations

from dash import dcc, html

from . import figures as F
from .glossary import ESTIMATOR_HINT, PANEL_HELP, glossary_section, panel_help, term
from .state import SLIDES, TABS, AppMeta, ViewState

__all__ = ["build_layout", "loading_layout", "PANELS", "GRAPH_IDS", "control_options", "alert", "root_class",
           "TAB_LABELS", "tab_styles", "experiments_view", "experiments_panels", "EXPERIMENT_FIGURES"]

#: (panel name, caption) in reading order, a → e after the latent view; each panel holds the
#: graph ``{name}-graph``. The captions are the glossary's panel titles.
PANELS = tuple((name, PANEL_HELP[name].title) for name in ("latent", "topk", "heatmap", "argmax", "summary",
                                                             "confusion"))
GRAPH_IDS = tuple(f"{name}-graph" for name, _ in PANELS)

SAMPLER_LABELS = {
    "random": "Random",
    "stratified-cm": "Stratified (confusion cells)",
    "vas": "VAS (visualization-aware)",
    "eb-tree": "EB tree (boundary tree)",
    "latent-grid": "Latent grid",
    "gmm-full": "GMM, full covariance",
    "gmm-spherical": "GMM, spherical",
    "max-margin": "Max margin (SVM)",
    "gmm-full-weighted": "GMM full, weighted",
    "gmm-spherical-weighted": "GMM spherical, weighted",
    "max-margin-weighted": "Max margin, weighted",
}
COLOR_OPTIONS = (("true", "true label"), ("pred", "predicted label"), ("outcome", "outcome"),
                 ("sample", "sample membership"), ("neuron", "neuron (click a bar in (a))"))
FRACTION_MARKS = {1: "1%", 20: "20%", 40: "40%", 60: "60%", 80: "80%"}
#: Label of each tab (see :data:`~dldiag.app.state.TABS`).
TAB_LABELS = {"explorer": "Explorer", "experiments": "Experiments (report's Figs. 4–7)"}
#: (file stem of :func:`dldiag.experiments.figures.build_figures`, caption, what to read in it),
#: in display order; each figure is shown in the graph ``{stem}-graph``.
EXPERIMENT_FIGURES = (
    ("fig4_fraction", "Fig. 4 — S1, S2, S3 vs sample size",
     "How close each sampler's sample comes to the full data on the three queries, from small to large samples."),
    ("fig5_topk", "Fig. 5 — S1 precision vs k at 5 %",
     "Whether a 5 % sample finds the k most activated units of the full data, for growing k."),
    ("fig6_j", "Fig. 6 — S1, S2, S3 vs j at 5 %",
     "The likelihood-ratio samplers' share j of items from the decision boundary (0 = exemplars only)."),
    ("fig7_time", "Fig. 7 — time to create a 5 % sample",
     "Seconds to build a sample: from scratch (fit + draw, as in the report) and a draw on a cached fit."),
    ("table4", "Table IV — correct (incorrect) items per 5 % sample",
     "How many misclassified items each sampler keeps, beside the report's counts for MNIST and Galaxy Zoo2."),
)


def alert(message: str, *, kind: str = "error") -> html.Div:
    """An inline message (errors of a callback, notes about a damaged link)."""
    return html.Div(message, className=f"alert alert-{kind}", role="alert")


def pending_options(meta: AppMeta, pending: dict | None) -> tuple[list, list]:
    """(projection options, sampler options), those still being built marked as such.

    They stay selectable: a sampler not fitted yet is fitted on demand (seconds); a projection
    not built yet is drawn as PCA until it arrives, and the view then switches to it.
    """
    pending = pending or {}
    projections = [{"label": F.PROJECTION_NAMES.get(p, p) + (" (computing…)" if p in pending.get("projections", ())
                                                             else ""), "value": p} for p in meta.projections]
    samplers = [{"label": SAMPLER_LABELS.get(n, n) + (" (fitting…)" if n in pending.get("samplers", ()) else ""),
                 "value": n} for n in meta.samplers]
    return projections, samplers


def pending_note(pending: dict | None):
    """One line on what is still being built in the background, or None."""
    pending = pending or {}
    parts = [F.PROJECTION_NAMES.get(p, p) for p in pending.get("projections", ())]
    fits = len(pending.get("samplers", ()))
    if fits:
        parts.append(f"{fits} sampler fit{'s' if fits > 1 else ''}")
    if not parts:
        return None
    return html.Div(f"Still computing in the background: {', '.join(parts)}. Everything shown is final; "
                    "the view switches to a projection when it is ready.", className="pending-note")


def control_options(meta: AppMeta, pending: dict | None = None) -> dict:
    """Options of every control, from the workspace's names."""
    projection_options, sampler_options = pending_options(meta, pending)
    return {
        "sampler": sampler_options,
        "layer": [{"label": n + (" (latent)" if n == meta.latent_layer else ""), "value": n} for n in meta.layers],
        "cls": [{"label": "all classes", "value": "all"}]
        + [{"label": f"{i}: {name}", "value": str(i)} for i, name in enumerate(meta.class_names)],
        "predicted": [{"label": "any class", "value": "any"}]
        + [{"label": f"{i}: {name}", "value": str(i)} for i, name in enumerate(meta.class_names)],
        "outcome": [{"label": v, "value": v} for v in ("all", "correct", "incorrect")],
        "units": [{"label": "units", "value": "flat"}, {"label": "channels", "value": "channel"}],
        "estimator": [{"label": label, "value": value} for value, label in F.ESTIMATOR_NAMES.items()],
        "projection": projection_options,
        "color": color_options(neuron_available=False),
    }


def color_options(*, neuron_available: bool) -> list:
    return [{"label": label, "value": value, "disabled": value == "neuron" and not neuron_available}
            for value, label in COLOR_OPTIONS]


def _field(label, control, *, hint: str | None = None, id_: str | None = None):
    children = [html.Label(label, className="field-label"), control]
    if hint:
        children.append(html.Div(hint, className="field-hint"))
    return html.Div(children, className="field", id=id_) if id_ else html.Div(children, className="field")


def _controls(meta: AppMeta, state: ViewState, pending: dict | None = None) -> html.Aside:
    opts = control_options(meta, pending)
    return html.Aside(id="controls", className="controls", children=[
        html.H2(term("sample", "Sample"), className="controls-title"),
        _field(term("sampler", "Sampler"), dcc.Dropdown(id="sampler", options=opts["sampler"], value=state.sampler,
                                                        clearable=False, searchable=False)),
        html.Div(id="sampler-about", className="field-hint sampler-about"),
        _field([term("fraction", "Fraction"), " ", html.Span(f"{state.fraction * 100:g} %", id="fraction-value",
                                                             className="value")],
               dcc.Slider(id="fraction", min=1, max=80, step=0.5, value=state.fraction * 100,
                          marks=FRACTION_MARKS, updatemode="mouseup")),
        _field([term("j", "j"), " ", html.Span(f"{state.j:g}", id="j-value", className="value"),
                html.Span(" — share of the sample taken from the decision boundary", className="muted")],
               dcc.Slider(id="j", min=0, max=1, step=0.05, value=state.j, marks={0: "0", 0.7: "0.7", 1: "1"},
                          updatemode="mouseup", tooltip={"placement": "bottom", "always_visible": False}),
               hint="used by the likelihood-ratio samplers", id_="j-field"),
        _field(term("seed", "Seed"), dcc.Input(id="seed", type="number", min=0, step=1, value=state.seed, debounce=True,
                                 className="num-input"),
               hint="used by randomised samplers (the others are fixed by their fit)", id_="seed-field"),
        _field(term("estimator", "Estimate"), dcc.RadioItems(id="estimator", options=opts["estimator"],
                                                             value=state.estimator, className="segmented",
                                                             inline=True),
               hint=ESTIMATOR_HINT, id_="estimator-field"),
        html.Div(id="sample-info", className="sample-info"),
        html.Div(id="sample-error"),
        html.Div(id="sample-savings", className="sample-savings"),
        html.Div(id="savings-error"),
        html.H2([term("group", "Group"), " & ", term("layer", "layer")], className="controls-title"),
        _field(term("class", "Class (true label)"), dcc.Dropdown(
            id="cls", options=opts["cls"], value="all" if state.cls is None else str(state.cls), clearable=False)),
        _field(term("predicted-as", "Predicted as"), dcc.Dropdown(
            id="predicted", options=opts["predicted"], value="any" if state.predicted is None else str(state.predicted),
            clearable=False)),
        _field(term("outcome", "Outcome"), dcc.RadioItems(id="outcome", options=opts["outcome"], value=state.outcome,
                                                          className="segmented", inline=True)),
        _field(term("layer", "Layer"), dcc.Dropdown(id="layer", options=opts["layer"], value=state.layer,
                                                    clearable=False, searchable=False)),
        html.Div(className="field-row", children=[
            _field(term("top-k", "k (top-k)"), dcc.Input(id="k", type="number", min=1, max=50, step=1, value=state.k,
                                                         debounce=True, className="num-input")),
            _field(term("unit-mode", "Unit mode"), dcc.RadioItems(id="units", options=opts["units"], value=state.units,
                                                                  className="segmented", inline=True)),
        ]),
        html.H2(term("latent-space", "Latent view"), className="controls-title"),
        _field(term("projection", "Projection"), dcc.RadioItems(id="projection", options=opts["projection"],
                                                                value=state.projection, className="segmented",
                                                                inline=True)),
        _field("Colour by", dcc.Dropdown(id="color", options=opts["color"], value=state.color,
                                         clearable=False, searchable=False)),
        html.P("Draw a box or lasso in the latent view to make the items inside the group; click a bar "
               "in (a) to colour the sample by that unit; click a confusion cell, or a row of the top "
               "confusions, for \"class a predicted as b\".", className="help"),
    ])


def _panel_tools(graph_id: str) -> html.Div:
    """The PNG/SVG buttons of a panel's bar (the client-side ``saveImage`` answers them)."""
    return html.Div(className="panel-tools", children=[
        html.Button("PNG", id={"type": "save", "graph": graph_id, "fmt": "png"},
                    className="tool", title="Save as PNG (2× scale)", n_clicks=0),
        html.Button("SVG", id={"type": "save", "graph": graph_id, "fmt": "svg"},
                    className="tool", title="Save as SVG", n_clicks=0),
    ])


def _panel(name: str, caption: str, *, extra=(), below=()) -> html.Section:
    """A panel: its caption, tools and "how to read this", its graph, and ``below`` it."""
    graph = dcc.Graph(id=f"{name}-graph", config=F.graph_config(f"dldiag-{name}", name),
                      figure=F.message_figure("Loading…"),
                      className="graph")
    return html.Section(className=f"panel panel-{name}", id=f"{name}-panel", children=[
        html.Div(className="panel-bar", children=[
            html.Span(caption, className="panel-caption"),
            *extra,
            _panel_tools(f"{name}-graph"),
        ]),
        panel_help(name),
        html.Div(id=f"{name}-error"),
        dcc.Loading(graph, type="dot", delay_show=400, color="#2f6fde", parent_className="loading-wrap"),
        *below,
    ])


def _gallery_panel() -> html.Section:
    """The group as data: its items as a grid of cards, the sample's members first."""
    return html.Section(className="panel panel-gallery", id="gallery-panel", children=[
        html.Div(className="panel-bar", children=[html.Span(PANEL_HELP["gallery"].title, className="panel-caption")]),
        panel_help("gallery"),
        html.Div(id="gallery-info", className="gallery-info"),
        html.Div(id="gallery-error"),
        dcc.Loading(html.Div(id="gallery", className="gallery"), type="dot", delay_show=400, color="#2f6fde",
                    parent_className="loading-wrap"),
        html.Button("Show more of the group", id="gallery-more", className="btn btn-small", n_clicks=0),
    ])


def _slide_nav() -> html.Nav:
    """Presentation mode's way between panels: buttons, and the arrow keys (assets/app.js)."""
    return html.Nav(className="slide-nav", children=[
        html.Button("◀", id="slide-prev", className="btn", n_clicks=0, title="previous panel (←)"),
        html.Span(id="slide-label", className="slide-label"),
        html.Button("▶", id="slide-next", className="btn", n_clicks=0, title="next panel (→)"),
    ])


def build_layout(meta: AppMeta, state: ViewState | None = None, *, title: str | None = None,
                 pending: dict | None = None) -> html.Div:
    """The whole page for a workspace. Controls start at ``state`` (the URL then overrides it).

    ``pending``: what is still being built in the background (see :func:`pending_options`).
    """
    busy = bool(pending and (pending.get("projections") or pending.get("samplers")))
    state = state or meta.default_state()
    title = title or "dldiag"
    subtitle = (f"{meta.dataset} · {meta.n_items:,} evaluation items · {meta.n_classes} classes · "
                f"model accuracy {meta.accuracy:.1%}")
    stores = [
        dcc.Location(id="url", refresh=False),
        dcc.Store(id="view-state"),
        dcc.Store(id="sample-params"),
        dcc.Store(id="panel-params"),
        dcc.Store(id="eval-params"),
        dcc.Store(id="latent-params"),
        dcc.Store(id="group-params"),
        dcc.Store(id="slide-key"),  # presentation mode's arrow keys (assets/app.js sets it)
        dcc.Store(id="viewport"),  # the window's size (assets/app.js): full-screen slides fit it
        dcc.Store(id="pending-store", data=pending),
        dcc.Interval(id="pending-poll", interval=2000, disabled=not busy),
        dcc.Store(id="latent-shown"),
        dcc.Store(id="latent-range"),  # the axes a density view was zoomed to (callbacks.parse_relayout)
        dcc.Store(id="confusion-shown"),
        dcc.Store(id="gallery-shown"),
        dcc.Store(id="save-sink"),
        dcc.Store(id="exact-done"),  # the selection whose exact answer a background job has cached
        dcc.Store(id="exact-ready"),  # set by the poll below when that answer is in the cache
        dcc.Interval(id="exact-poll", interval=1000, disabled=True),  # on while the panels wait (or an estimate)
        dcc.Store(id="unit-target"),  # [layer, units, unit] colouring the latent view, or None
        dcc.Store(id="unit-done"),  # what a background job has cached of that unit over every item
        dcc.Store(id="unit-ready"),  # set by the poll below when those values are in the cache
        dcc.Interval(id="unit-poll", interval=1000, disabled=True),  # on while the view waits for them
        dcc.Download(id="download"),
    ]
    header = html.Header(className="topbar", children=[
        html.Div(className="brand", children=[
            html.Span(title, className="brand-title"),
            html.Span(subtitle, className="brand-sub"),
        ]),
        html.Div(className="topbar-tools", children=[
            html.Button("Export HTML report", id="export-btn", className="btn btn-primary", n_clicks=0),
            html.Button("Presentation mode", id="present-btn", className="btn", n_clicks=0),
        ]),
    ])
    group_bar = html.Div(className="group-bar", children=[
        html.Span(term("group", "Group"), className="group-tag"),
        html.Span(id="group-label", className="group-label", children="all items"),
        html.Button("Clear group ✕", id="clear-group", className="btn btn-small", n_clicks=0),
        html.Div(id="panels-error", className="group-error"),
    ])
    captions = dict(PANELS)
    selection_info = html.Div(id="selection-info", className="selection-info")
    main = html.Main(className="grid", children=[
        _panel("latent", captions["latent"], below=[selection_info, exact_row(), unit_row()]),
        html.Div(className="group-stack", children=[group_bar, _gallery_panel()]),
        _panel("topk", captions["topk"]),
        _panel("heatmap", captions["heatmap"]),
        _panel("argmax", captions["argmax"]),
        _panel("summary", captions["summary"], below=[html.Div(id="table-iv", className="table-iv")]),
        _panel("confusion", captions["confusion"],
               extra=[dcc.RadioItems(id="cmnorm", value=state.cmnorm, inline=True, className="segmented mini",
                                     options=[{"label": "counts", "value": "counts"},
                                              {"label": "row %", "value": "rows"}])],
               below=[html.Div(className="top-confusions-box", children=[
                   html.Div("Most frequent mistakes — pick one to make it the group", className="top-confusions-title"),
                   dcc.RadioItems(id="top-confusions", options=[], value=None, className="top-confusions")])]),
    ])
    explorer_style, experiments_style = tab_styles(state.tab)
    return html.Div(id="root", className=root_class(state), children=[
        *stores,
        header,
        _tabs(state.tab),
        html.Div(id="notes"),
        html.Div(id="export-error"),
        html.Div(id="explorer-view", style=explorer_style, children=[
            html.Div(id="pending-note", children=pending_note(pending)),
            _slide_nav(),
            html.Div(className="body", children=[_controls(meta, state, pending), main]),
        ]),
        html.Div(id="experiments-view", style=experiments_style, children=experiments_view(meta)),
        glossary_section(),
        dcc.Tooltip(id="latent-tooltip", direction="right", className="tooltip", loading_text="…"),
    ])


def job_row(prefix: str, title: str, start: str, start_title: str) -> html.Div:
    """Progress of a background job, with its Cancel button; ids ``PREFIX-row``, ``-progress``,
    ``-label``, ``-cancel`` and ``-start``.

    Hidden until a job runs (the callback's ``running`` shows it); the button to start it again
    (``start``, explained by ``start_title``) shows where the callbacks say so, e.g. after a cancel.
    """
    return html.Div(className="exact-box", children=[
        html.Div(id=f"{prefix}-row", className="exact-row", style={"display": "none"}, children=[
            html.Span(title, className="exact-title"),
            html.Progress(id=f"{prefix}-progress", value="0", max="1", className="exact-progress"),
            html.Span(id=f"{prefix}-label", className="exact-label"),
            html.Button("Cancel", id=f"{prefix}-cancel", className="btn btn-small", n_clicks=0),
        ]),
        html.Button(start, id=f"{prefix}-start", className="btn btn-small exact-start", n_clicks=0,
                    title=start_title),
    ])


def exact_row() -> html.Div:
    """Progress of a selection's exact answer (a background job): :func:`job_row` ``exact``."""
    return job_row("exact", "Exact answer over the selection:", "Compute the exact answer",
                   "pass every selected item forward, in the background; the panels update when it ends")


def unit_row() -> html.Div:
    """Progress of a unit's values over every item (a background job): :func:`job_row` ``unit``."""
    return job_row("unit", "The unit on every item:", "Colour every item by the unit",
                   "pass every item forward, in the background; the view colours all of them when it ends")


def root_class(state: ViewState) -> str:
    """The page's class: presentation mode shows one panel, ``slide-<name>``, at a time (CSS)."""
    return f"app present slide-{state.slide}" if state.present else "app"


def tab_styles(tab: str) -> tuple[dict, dict]:
    """Styles of the explorer's and the experiments' views: only ``tab``'s is shown.

    The explorer stays mounted while hidden, so that its figures are as they were on return.
    """
    shown, hidden = {"display": "block"}, {"display": "none"}
    return (shown, hidden) if tab != "experiments" else (hidden, shown)


def _tabs(tab: str) -> html.Nav:
    return html.Nav(className="tabs-bar", children=[
        dcc.Tabs(id="tabs", value=tab if tab in TABS else TABS[0], className="view-tabs",
                 parent_className="view-tabs-parent", content_className="view-tabs-content",
                 children=[dcc.Tab(label=TAB_LABELS[t], value=t, id=f"tab-{t}", className="view-tab",
                                   selected_className="view-tab--selected") for t in TABS]),
    ])


def experiments_view(meta: AppMeta) -> list:
    """The experiments tab before its figures are loaded (they are, when the tab is first opened)."""
    return [
        html.Div(className="exp-intro", children=[
            html.H2(f"The report's experiments on {meta.dataset}", className="exp-title"),
            html.P(["Figs. 4–7 and Table IV of the report, as computed by ",
                    html.Code("python -m dldiag.experiments"),
                    " for this data set (read from its results folder, not recomputed here). The explorer "
                    "shows one sample at a time; these figures compare every sampler over sample sizes, k, "
                    "j and time."], className="exp-lead"),
        ]),
        html.Div(id="experiments-error"),
        dcc.Loading(type="dot", delay_show=300, color="#2f6fde", parent_className="loading-wrap", children=[
            html.Div(id="experiments-content", className="exp-content",
                     children=html.P("Loading the experiment results…", className="exp-loading")),
        ]),
        dcc.Store(id="experiments-loaded"),
    ]


def experiments_panels(figures: dict, note: str | None = None, run: dict | None = None) -> list:
    """The experiments tab's content: a note (results missing or for other weights), then a
    panel per figure of :func:`dldiag.experiments.figures.figures_for_dataset`.

    Parameters
    ----------
    figures : dict
        ``{file stem: plotly figure}``; a figure's height is kept, its width is the container's.
    note : str, optional
        Shown above the figures (or alone, when there are none).
    run : dict, optional
        The results' ``run.json``: when and where they were computed, shown as a line.
    """
    children = []
    if note:
        children.append(alert(_with_code(note), kind="note"))
    if run:
        when = run.get("finished") or run.get("started") or "?"
        parts = [f"computed {when}", run.get("machine", "")]
        if run.get("wall_seconds") is not None:
            parts.append(f"{run['wall_seconds']:.0f} s")
        children.append(html.P(" · ".join(p for p in parts if p), className="exp-run"))
    known = [stem for stem, _, _ in EXPERIMENT_FIGURES]
    captions = {stem: (caption, hint) for stem, caption, hint in EXPERIMENT_FIGURES}
    for stem in known + [s for s in figures if s not in known]:
        if stem not in figures:
            continue
        fig = figures[stem]
        caption, hint = captions.get(stem, (stem, ""))
        height = _figure_height(fig)
        graph = dcc.Graph(id=f"{stem}-graph", figure=fig, config=F.graph_config(f"dldiag-{stem}"),
                          className="graph", style={"height": f"{height}px"} if height else None)
        bar = html.Div(className="panel-bar", children=[
            html.Span(caption, className="panel-caption"),
            _panel_tools(f"{stem}-graph"),
        ])
        body = [bar, html.P(hint, className="exp-hint"), graph] if hint else [bar, graph]
        children.append(html.Section(className=f"panel exp-panel exp-{stem}", id=f"{stem}-panel", children=body))
    return children


def _with_code(text: str) -> list:
    """``text`` with its `backquoted` parts as code."""
    parts = text.split("`")
    return [html.Code(p) if i % 2 else p for i, p in enumerate(parts) if p]


def _figure_height(fig) -> int | None:
    layout = fig.get("layout", {}) if isinstance(fig, dict) else fig.layout
    height = layout.get("height") if isinstance(layout, dict) else layout.height
    return int(height) if height else None


def loading_layout(status: dict) -> html.Div:
    """The page while the artifacts are built: what is happening, never a blank page."""
    step, total = status.get("step", 0), max(status.get("total", 1), 1)
    error = status.get("error")
    body = [
        html.H1("dldiag is preparing the workspace"),
        html.P(status.get("message", "starting…"), id="boot-status", className="boot-status"),
        html.Div(className="progress", children=[
            html.Div(id="boot-bar", className="progress-bar", style={"width": f"{100 * step / total:.0f}%"}),
        ]),
        html.P("The terminal shows details. This page opens the app when everything is ready; "
               "later starts read it all from the cache.", className="boot-help"),
        dcc.Interval(id="boot-interval", interval=800),
        dcc.Store(id="boot-ready", data=False),
    ]
    if error:
        body.insert(2, alert(f"Preparation failed: {error}"))
    return html.Div(className="boot", children=body)
