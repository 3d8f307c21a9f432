"""The app's callbacks: parse inputs, ask :mod:`~dldiag.app.views`, return figures.

The callback graph::

    url, controls, clicks ──► sync ──► view-state, url
                                ├──► sample-params ──► sample ──► sample-store ─┐
                                ├──► panel-params ──────────────────────────────┼──► panels (a)(b)(c)(e)
                                ├──► eval-params ───────────────────────────────┼──► summary (d)
                                └──► latent-params ─────────────────────────────┴──► latent view (Patch)
    lasso/box ──► sync (the shape, in the URL as ``sel=``) ──► panels resolve it to items
    tabs ──► sync (the URL's ``tab=``) · tabs ──► views shown (client side)
    tabs = experiments, once ──► experiments tab's figures (read from results/, no explorer store)

``sync`` is the reducer: every user event becomes a new :class:`~dldiag.app.state.ViewState`,
split into small stores so that each panel recomputes only when its own inputs change. The
forward pass of a new sample happens once, in ``sample``; the others read its aggregates
from the disk cache. Each callback turns an exception into an inline message in its own
error slot and leaves its other outputs as they were; the server keeps serving.

The bodies are module-level functions of plain values (``*_outputs``), so that tests call
them without a server; :func:`register` wires them to an app.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
from dash import ALL, ClientsideFunction, Input, Output, Patch, State, ctx, html, no_update
from dash.exceptions import PreventUpdate

from ..experiments.figures import RESULTS_ROOT, figures_for_dataset, load_run, results_dir_for
from . import figures as F
from . import views
from .export import report_filename, report_html
from .glossary import GLOSSARY, PANEL_HELP, term
from .glossary import tooltip as term_tooltip
from .layout import alert, color_options, experiments_panels, pending_note, pending_options, root_class
from .prepare import FIRST_PROJECTIONS
from .service import Diagnosis, SampleParams, build_meta
from .._validation import check_int, shown
from .selection import parse_selection, selection_from_event
from .state import SLIDES, AppMeta, apply_event, parse_query, state_from_dict, to_query

__all__ = [
    "AppContext",
    "register",
    "guarded",
    "sync_state",
    "sample_outputs",
    "panel_outputs",
    "confusion_update",
    "summary_outputs",
    "latent_outputs",
    "latent_range_after",
    "parse_relayout",
    "relayout_outputs",
    "tooltip_outputs",
    "selected_items",
    "export_outputs",
    "experiments_outputs",
    "CONTROL_IDS",
]

log = logging.getLogger(__name__)

#: What presentation mode's slide counter calls each panel.
SLIDE_TITLES = {**{k: PANEL_HELP[k].title for k in SLIDES if k in PANEL_HELP}}

CONTROL_IDS = ("sampler", "fraction", "j", "seed", "layer", "cls", "predicted", "outcome", "k", "units",
               "projection", "color", "cmnorm", "estimator")


class AppContext:
    """The workspace's :class:`AppMeta` and :class:`Diagnosis`, made once when it is ready."""

    def __init__(self, provider, *, sample_cache=None, **meta_kwargs):
        self.provider = provider
        self.sample_cache = sample_cache
        self.meta_kwargs = meta_kwargs
        self._lock = threading.Lock()
        self._made = None

    def pending(self) -> dict:
        """What the provider is still building in the background (projections, sampler fits)."""
        return self.provider.pending()

    def get(self) -> tuple[AppMeta, Diagnosis]:
        if not self.provider.ready:
            raise RuntimeError("the workspace is still being prepared; reload the page in a moment")
        with self._lock:
            if self._made is None:
                ws = self.provider.workspace
                self._made = (build_meta(ws, **self.meta_kwargs), Diagnosis(ws, sample_cache=self.sample_cache))
            return self._made


def guarded(label: str, n_outputs: int, error_index: int):
    """Turn an exception of a callback into an inline alert at ``error_index``.

    The other outputs are left unchanged (``no_update``) and the traceback goes to the log.
    """

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except PreventUpdate:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes a message in the page
                log.exception("callback %s failed", label)
                out = [no_update] * n_outputs
                out[error_index] = alert(f"{label} failed: {type(exc).__name__}: {exc}")
                return out[0] if n_outputs == 1 else tuple(out)

        return wrapper

    return decorate


# ---------------------------------------------------------------- pure bodies

def _controls_from_values(values: dict) -> dict:
    """The controls' values in state units (the fraction slider is in per cent)."""
    out = dict(values)
    fraction = out.get("fraction")
    if isinstance(fraction, (int, float)) and not isinstance(fraction, bool):
        out["fraction"] = float(fraction) / 100.0
    return out


def _click_value(click_data, key="customdata"):
    if not click_data or not click_data.get("points"):
        return None
    return click_data["points"][0].get(key)


def _pick_cell(value):
    """(true, predicted) of a picked row of the top-confusions list (its value: "true-predicted")."""
    try:
        true, pred = (int(v) for v in str(value).split("-"))
    except ValueError:
        raise ValueError(f"a confusion pick must be true-predicted class indices; got {shown(value)}") from None
    return [true, pred]


def _confusion_cell(click_data, meta: AppMeta):
    """(true, predicted) of a clicked confusion cell.

    From ``customdata`` when the event carries it; dcc.Graph leaves it out for heatmaps (their
    point numbers are [row, column] pairs), so otherwise from the cell's axis labels, which
    are the class names.
    """
    if not click_data or not click_data.get("points"):
        return None
    point = click_data["points"][0]
    if isinstance(point.get("customdata"), (list, tuple)) and len(point["customdata"]) == 2:
        return [int(v) for v in point["customdata"]]
    names = [str(n) for n in meta.class_names]
    x, y = str(point.get("x")), str(point.get("y"))
    if x in names and y in names:
        return [names.index(y), names.index(x)]
    return None


def sync_state(meta: AppMeta, triggered: str | None, search: str | None, controls: dict,
               topk_click=None, confusion_click=None, previous: dict | None = None, tab: str | None = None,
               selected=None, slide_key=None):
    """The reducer: the new :class:`ViewState` and the notes to show.

    ``triggered`` is the id of the input that fired (``None`` on the first call, which
    reads the URL); ``tab`` is the tabs' value; ``selected`` the latent view's selection
    event; ``slide_key`` the presentation keys' ``{"step": ±1}`` or ``{"slide": name}``.
    """
    notes: list[str] = []
    prev = state_from_dict(previous, meta) if previous else None
    if prev is None or triggered in (None, "url"):
        state, notes = parse_query(search, meta)
        return state, notes
    if triggered == "present-btn":
        return apply_event(prev, "present", None, meta), notes
    if triggered == "tabs":
        return apply_event(prev, "tab", tab, meta), notes
    if triggered == "clear-group":
        return apply_event(prev, "clear-group", None, meta), notes
    if triggered == "topk-graph":
        unit = _click_value(topk_click)
        if unit is None or (isinstance(unit, int) and unit < 0):  # negative: the "other" bar
            raise PreventUpdate
        return apply_event(prev, "neuron", unit, meta), notes
    if triggered == "confusion-graph":
        cell = _confusion_cell(confusion_click, meta)
        if cell is None:
            raise PreventUpdate
        return apply_event(prev, "confusion", cell, meta), notes
    if triggered == "latent-graph":
        if selected and isinstance(selected, dict) and not (selected.get("range") or selected.get("lassoPoints")):
            # plotly echoing a selection drawn from the figure's layout (after a reload, say), not
            # a box or lasso of the user's: the state already holds it
            raise PreventUpdate
        sel = selection_from_event(selected, prev.projection)
        return apply_event(prev, "select", None if sel is None else sel.to_text(), meta), notes
    if triggered == "slide-key":
        if not isinstance(slide_key, dict):
            raise PreventUpdate
        payload = slide_key.get("step") if slide_key.get("step") in (1, -1) else slide_key.get("slide")
        return apply_event(prev, "slide", payload, meta), notes
    return apply_event(prev, "controls", _controls_from_values(controls), meta, notes), notes


def derived_stores(state, screen=None) -> dict:
    """The small stores each downstream callback listens to.

    The estimator goes to the panels' and the summary's stores, not to the sample's: it changes
    their answers, not which items are sampled, so the sample, the latent view and the gallery
    stay as they are when it is toggled.

    ``screen`` ([width, height] of the window) goes to the panels in presentation mode only,
    where each fills the window and builds its figure for that height.
    """
    screen = list(screen) if state.present and screen else None
    return {
        "sample-params": state.sample_params,
        "panel-params": {"layer": state.layer, "cls": state.cls, "outcome": state.outcome,
                         "predicted": state.predicted, "k": state.k, "units": state.units,
                         "present": state.present, "sel": state.sel, "neuron": state.neuron,
                         "cmnorm": state.cmnorm, "estimator": state.estimator, "screen": screen},
        "eval-params": {"k": state.k, "units": state.units, "present": state.present, "estimator": state.estimator,
                        "screen": screen},
        "group-params": {"cls": state.cls, "outcome": state.outcome, "predicted": state.predicted, "sel": state.sel},
        "latent-params": {"projection": state.projection, "color": state.color, "present": state.present,
                          "sel": state.sel, "cls": state.cls, "outcome": state.outcome, "predicted": state.predicted,
                          "neuron": [state.layer, state.units, state.neuron] if state.color == "neuron" else None},
    }


def _state_of(meta: AppMeta, sample_params: dict | None, **parts):
    """A ViewState from the sample's params and the other stores' parts."""
    data = {}
    if sample_params:
        if not isinstance(sample_params, dict):
            raise ValueError(f"sample-params must be an object of fields; got {shown(sample_params)}")
        data.update({k: sample_params[k] for k in ("sampler", "fraction", "j", "seed") if k in sample_params})
    for part in parts.values():
        if part:
            # the latent view's "neuron" is [layer, units, unit]; the panels' is the unit alone
            data.update({k: v for k, v in part.items() if not (k == "neuron" and isinstance(v, list))})
    return state_from_dict(data, meta)


def sample_outputs(meta: AppMeta, svc: Diagnosis, sample_params: dict):
    """The sample-info children: the sample's size, correct and incorrect items, its details.

    No pass here: the panels, the summary and the latent view each take the sample's params
    directly (one round trip after the reducer, not two), and the first of them to need the
    sample's pass runs it while the others wait for it (:meth:`Diagnosis.ensure_pass`).
    """
    state = state_from_dict(sample_params, meta)
    params = SampleParams.from_state(state)
    idx = svc.sample_indices(params)
    counts = svc.counts(idx)
    info = svc.sample_info(params)
    lines = [html.Div([html.B(f"{counts['n']:,}"), f" items · {counts['correct']:,} correct · ",
                       html.Span(f"{counts['incorrect']:,} incorrect", className="bad")],
                      className="sample-counts")]
    details = [f"{k.replace('_', ' ')}: {_short(v)}" for k, v in info.items()]
    if details:
        lines.append(html.Div(" · ".join(details), className="sample-details"))
    return lines


def savings_outputs(meta: AppMeta, svc: Diagnosis, sample_params: dict):
    """What the sample saved (the report's Table I, live): the sample-savings children.

    Reads the sample's store (written by the sample's one forward pass, which the panels need
    anyway): its size on disk and the time its writing took, against every diagnosed layer's
    float32 activations for all N items and the full pass's time (measured when the workspace
    was built, else estimated from the sample's time per item, and said so).
    """
    from ..info import human_size, savings_row

    state = state_from_dict(sample_params, meta)
    idx = svc.sample_indices(SampleParams.from_state(state))
    if not len(idx):
        return None
    store = svc.store(idx)
    row = savings_row(svc.ws, len(idx), store.seconds, stored_bytes=store.nbytes())
    how = "measured" if row["full_seconds_measured"] else "estimated"
    dtype = "float16" if any(v == "float16" for v in store.dtypes.values()) else "float32"
    return [
        html.B("What the sample saved: "),
        f"activations computed for {row['n']:,} of {row['N']:,} items ({100 * row['share']:.3g} %); "
        f"{human_size(row['stored_bytes'])} on disk ({dtype}, both unit modes) against "
        f"{human_size(row['full_bytes'])} for the full float32 activations; the sample's pass took "
        f"{row['sample_seconds']:.2g} s against {row['full_seconds']:.2g} s for the full pass ({how}).",
    ]


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"[{len(value)} values]"
    return str(value)


def selected_items(svc: Diagnosis, sel: str | None, meta: AppMeta):
    """The items inside a selection's shape, in the projection it was drawn in (None: no selection)."""
    shape = parse_selection(sel, meta.projections)
    if shape is None:
        return None
    return np.flatnonzero(shape.contains(svc.projection(shape.projection)))


def selection_info(meta: AppMeta, svc: Diagnosis, sel: str | None):
    """The line under the latent view about its selection (None without one)."""
    shape = parse_selection(sel, meta.projections)
    if shape is None:
        return None
    n = int(shape.contains(svc.projection(shape.projection)).sum())
    what = "box" if shape.kind == "box" else "lasso"
    return [html.B(f"{n:,} items"), f" inside the {what} drawn in {F.PROJECTION_NAMES.get(shape.projection)} are the "
            "group's scope (kept in the link). ", html.Span("Clear group ✕ drops it.", className="muted")]


def slide_heights(screen) -> dict | None:
    """Heights (px) of the full-screen figures of presentation mode, from the window's size.

    They follow assets/style.css (a slide's graph is the window less 170 px of bars, the
    summary's less 290 px with its table), so that the builders fit rows and labels to what
    is drawn. ``screen`` comes from the browser: checked like every value it sends.
    """
    if not screen:
        return None
    if not isinstance(screen, list) or len(screen) != 2:
        raise ValueError(f"screen must be [width, height]; got {shown(screen)}")
    _, height = (check_int("screen size", v, 200, 10000) for v in screen)
    full = max(height - 170, 240)
    return {"topk": full, "argmax": full, "heatmap": full, "confusion": full, "summary": max(height - 290, 200)}


def panel_outputs(meta: AppMeta, svc: Diagnosis, sample_params: dict, panel_params: dict):
    """(top-k, heatmap, argmax, confusion figures, group label, exact answer pending, estimate
    pending) for the current group.

    An estimate too large to compute in the request is started beside it
    (:meth:`Diagnosis.estimate_later`); the panels poll for it as for an exact answer.
    """
    state = _state_of(meta, sample_params, panel=panel_params)
    heights = slide_heights(panel_params.get("screen"))
    selection = selected_items(svc, state.sel, meta)
    view = views.panel_figures(svc, state, selection, heights=heights)
    if view["estimate_pending"]:
        svc.estimate_later(svc.sample_indices(SampleParams.from_state(state)), state, selection)
    counts = view["counts"]
    label = f"{view['group']} — {counts['full']:,} items in the data, {counts['sample']:,} in the sample"
    return (view["topk"], view["heatmap"], view["argmax"], view["confusion"], label, view["exact_pending"],
            view["estimate_pending"])


def panels_ready(meta: AppMeta, svc: Diagnosis, sample_params: dict, panel_params: dict) -> bool:
    """Whether what the panels wait for is in the cache: the selection's exact answer (if a
    selection is set) and the group's estimate (if it has sample items)."""
    state = _state_of(meta, sample_params, panel=panel_params)
    selection = selected_items(svc, state.sel, meta)
    if selection is not None and len(selection) and not exact_cached(meta, svc, state.sel):
        return False
    idx = svc.sample_indices(SampleParams.from_state(state))
    sel = selection if selection is not None and len(selection) else None
    return (not svc.estimate_values(idx, state, sel)
            or svc.group_estimate(idx, state, selection, compute=False) is not None)


#: Least seconds between two progress reports of a background job (each is a write to its cache).
PROGRESS_EVERY_S = 0.5


def _throttled(set_progress, total: int):
    """``on_progress(done, total)`` for a pass that reports to a job's ``set_progress`` as
    ``(done, total, text)``, at most every :data:`PROGRESS_EVERY_S` and always at the end."""
    import time

    last = [0.0]

    def report(done, _total):
        now = time.monotonic()
        if done == total or now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            set_progress((str(done), str(total), f"{done:,} of {total:,} items"))

    return report


def _job_options(prefix: str) -> dict:
    """A background callback's progress, Cancel and running row, on :func:`~dldiag.app.layout.job_row`'s ids."""
    return dict(background=True,
                running=[(Output(f"{prefix}-row", "style"), {"display": "flex"}, {"display": "none"})],
                progress=[Output(f"{prefix}-progress", "value"), Output(f"{prefix}-progress", "max"),
                          Output(f"{prefix}-label", "children")],
                cancel=[Input(f"{prefix}-cancel", "n_clicks")],
                prevent_initial_call=True)


def exact_cached(meta: AppMeta, svc: Diagnosis, sel: str | None) -> bool:
    """Whether the exact answer of the selection ``sel`` is in the cache (False without one)."""
    items = selected_items(svc, sel, meta)
    return items is not None and len(items) > 0 and svc.exact_aggregates(items, svc.ws.layers[0], "flat") is not None


def exact_job(meta: AppMeta, svc: Diagnosis, sel: str | None, set_progress) -> str:
    """The body of the exact-answer job: the selection's exact pass, unless cached; returns ``sel``.

    Runs in a process forked from the server's: it passes the items with a model pool of its
    own (a lock held by a request thread at the fork would never be released in the child).
    ``set_progress`` gets ``(done, total, text)``, at most every :data:`PROGRESS_EVERY_S`.
    Nothing to do (no selection): ``PreventUpdate`` (the job's cache stores JSON, and Dash
    turns this exception into "no update" there; ``no_update`` itself is no JSON).
    """
    from ..replicas import ModelPool

    items = selected_items(svc, sel, meta)
    if items is None or not len(items):
        raise PreventUpdate
    total = len(items)
    report = _throttled(set_progress, total)
    if svc.exact_aggregates(items, svc.ws.layers[0], "flat") is None:
        set_progress(("0", str(total), f"0 of {total:,} items"))
        svc.exact_pass(items, on_progress=report, pool=ModelPool(svc.ws.pool.model, size=1))
    return str(sel)


def unit_target(meta: AppMeta, latent_params: dict | None) -> list | None:
    """``[layer, units, unit]`` of the unit colouring the latent view, checked, or None.

    The latent-params store came back from the browser: its ``neuron`` is parsed as a view
    state's (layer, unit mode and the unit's range checked; ``ValueError`` naming the value).
    """
    neuron = (latent_params or {}).get("neuron")
    if not neuron:
        return None
    if not isinstance(neuron, list) or len(neuron) != 3:
        raise ValueError(f"latent-params neuron must be [layer, units, unit]; got {shown(neuron)}")
    state = state_from_dict({**meta.default_state().to_dict(), "color": "neuron",
                             **dict(zip(("layer", "units", "neuron"), neuron))}, meta)
    return [state.layer, state.units, int(state.neuron)]


def unit_cached(meta: AppMeta, svc: Diagnosis, target) -> bool:
    """Whether the values over every item of the unit ``target`` (:func:`unit_target`) are cached."""
    return target is not None and svc.has_unit_values(*target)


def unit_job(meta: AppMeta, svc: Diagnosis, target, set_progress) -> list:
    """The body of the job colouring every item by a unit: its pass over all items, unless cached.

    ``target`` is what the unit-target store holds (checked again here: the job's arguments
    came through the browser); returns it. ``set_progress`` as for :func:`exact_job`.
    Nothing to do (no unit): ``PreventUpdate``.
    """
    from ..replicas import ModelPool

    target = unit_target(meta, {"neuron": target}) if target else None
    if target is None:
        raise PreventUpdate
    total = svc.ws.n_items
    report = _throttled(set_progress, total)
    if not unit_cached(meta, svc, target):
        set_progress(("0", str(total), f"0 of {total:,} items"))
        svc.unit_pass(*target, on_progress=report, pool=ModelPool(svc.ws.pool.model, size=1))
    return target


GALLERY_PAGE = 24


def _card(svc: Diagnosis, meta: AppMeta, item: int, in_sample: bool, confidence: float) -> html.Figure:
    """One item of the gallery: its image (or most unusual features), true label, prediction, confidence."""
    y, p = int(svc.ws.y_true[item]), int(svc.ws.y_pred[item])
    kind, preview = svc.item_preview(item)
    if kind == "image":
        shown = html.Img(src=preview, className="card-img", alt=f"item {item}")
    else:
        shown = html.Div(className="card-features", children=[
            html.Div(f"{name} {z:+.1f} σ") for name, _, z in preview[:3]])
    names = meta.class_names
    return html.Figure(className="card" + (" in-sample" if in_sample else ""), children=[
        shown,
        html.Figcaption([
            html.Div(["true ", html.B(names[y])]),
            html.Div(["predicted ", html.B(names[p], className="ok" if y == p else "bad"),
                      f" ({confidence:.0%})"]),
            html.Div(f"item {item}" + (" · in the sample" if in_sample else ""), className="card-id"),
        ]),
    ])


def gallery_outputs(meta: AppMeta, svc: Diagnosis, sample_params: dict, group_params: dict, limit: int):
    """(cards, info line, whether more remain) of the group's gallery."""
    state = _state_of(meta, sample_params, group=group_params)
    idx = svc.sample_indices(SampleParams.from_state(state))
    g = svc.gallery(state, idx, selected_items(svc, state.sel, meta), limit=limit)
    cards = [_card(svc, meta, int(i), bool(s), float(c)) for i, s, c in zip(g["items"], g["in_sample"], g["confidence"])]
    if not g["n_group"]:
        info = f"{svc.group_label(state, selected_items(svc, state.sel, meta))}: no item of the data is in this group."
    else:
        info = (f"{g['n_group']:,} items in the group, {g['n_sample']:,} of them in the sample (shown first, "
                f"framed); the model's most confident first. Showing {len(cards):,}.")
    return cards, info, len(cards) < g["n_group"]


def top_confusion_options(meta: AppMeta, svc: Diagnosis, sample_params: dict) -> list:
    """The options of the top-confusions list: "true → predicted: count (share of the class) · sample"."""
    state = _state_of(meta, sample_params)
    idx = svc.sample_indices(SampleParams.from_state(state))
    rows = F.top_confusions(svc.confusion(), svc.confusion(idx), meta.class_names)
    return [{"label": f"{r['true_name']} → {r['predicted_name']}: {r['count']:,} ({r['rate']:.1%} of "
                      f"{r['true_name']}) · {r['sample_count']} in the sample",
             "value": f"{r['true']}-{r['predicted']}"} for r in rows]


def confusion_update(figure: dict, meta: AppMeta, sample_params: dict, panel_params: dict, shown: str | None):
    """(figure or patch spec, key): the confusion matrix changes with the group only by its outline.

    The key names what the drawn matrix depends on besides the outline (the sample and the
    presentation mode): while it is the same, only ``layout.shapes`` is sent, so that the
    browser redraws the outline and not the C×C cells with their labels.
    """
    state = _state_of(meta, sample_params, panel=panel_params)
    key = f"{state.sampler}|{state.fraction}|{state.j}|{state.seed}|{int(state.present)}"
    if shown == key:
        return {("layout", "shapes"): figure["layout"].get("shapes", [])}, key
    return figure, key


def summary_outputs(meta: AppMeta, svc: Diagnosis, sample_params: dict, eval_params: dict):
    """(summary figure, Table IV children)."""
    state = _state_of(meta, sample_params, eval=eval_params)
    fig, summary = views.summary_view(svc, state)
    c = summary["counts"]
    head = html.Tr([html.Th(""), html.Th("items"), html.Th("correct"), html.Th("incorrect"),
                    html.Th(term("s1", "S1 ↑")), html.Th(term("s2", "S2 ↓")), html.Th(term("s3", "S3 ↓"))])

    def row(name, key):
        s = summary[key]["overall"]
        return html.Tr([html.Td(name), html.Td(f"{c[key]['n']:,}"), html.Td(f"{c[key]['correct']:,}"),
                        html.Td(f"{c[key]['incorrect']:,}"), html.Td(F.s1_text(s['s1'], 3)),
                        html.Td(f"{s['s2']:.4f}"), html.Td(f"{s['s3']:.4f}")])

    table = html.Table(className="t4", children=[
        html.Caption([term("table-iv-row", "Table IV row"),
                      f" at {F.pct(state.fraction)} (k={state.k}, {state.units} units"
                      + (", the sample's scores design-weighted" if state.estimator == "weighted" else "")
                      + "): the sample's items, "
                      "how many the model got right, and the scores over all groups"]),
        html.Thead(head), html.Tbody([row(state.sampler, "sample"), row("random", "random")]),
    ])
    return fig, table


def _latent_state(meta, sample_params, latent_params):
    state = _state_of(meta, sample_params, latent=latent_params)
    neuron = (latent_params or {}).get("neuron")
    if neuron:
        if not isinstance(neuron, list) or len(neuron) != 3:
            raise ValueError(f"latent-params neuron must be [layer, units, unit]; got {shown(neuron)}")
        state = state_from_dict({**state.to_dict(), **dict(zip(("layer", "units", "neuron"), neuron))}, meta)
    return state


def shown_projection(meta: AppMeta, asked: str, pending) -> str:
    """The projection to draw: ``asked``, or while it is still being built PCA (the warm-up
    builds it first), else the first offered one that is not pending."""
    if asked not in pending:
        return asked
    candidates = [p for p in FIRST_PROJECTIONS if p in meta.projections] + list(meta.projections)
    return next((p for p in candidates if p not in pending), asked)


def latent_outputs(meta: AppMeta, svc: Diagnosis, latent_params: dict, sample_params: dict,
                   shown: str | None, triggered: set, pending_projections=(), view_range: dict | None = None):
    """(kind, value, shown key): the whole figure only for a new projection.

    ``kind`` is ``"figure"`` (a figure dict) when the projection or presentation mode
    changed, else ``"patch"`` with a ``{path: value}`` spec of in-place updates (see
    :func:`figures.latent_patch_spec`). A projection in ``pending_projections`` (being built
    in the background) is drawn as the first ready one until it arrives; the title says so,
    and the key of what is shown changes when it arrives, so the view switches in place.
    Above :data:`figures.DENSITY_THRESHOLD` items the density image is rendered for
    ``view_range`` (the latent-range store, see :func:`relayout_outputs`) when it is of the
    projection drawn.
    """
    state = _latent_state(meta, sample_params, latent_params)
    idx = svc.sample_indices(SampleParams.from_state(state))
    style = views.latent_view_style(svc, state, idx, selected_items(svc, state.sel, meta))
    drawn = shown_projection(meta, state.projection, pending_projections)
    title = views.latent_title(replace(state, projection=drawn), meta.n_items, len(idx), meta.latent_layer,
                               waiting_for=state.projection if drawn != state.projection else None,
                               neuron_name=views.latent_neuron_name(svc, state),
                               neuron_everywhere=style.bg_values is not None)
    key = f"{drawn}|{int(state.present)}"
    xy = svc.projection(drawn)
    viewport = views.latent_viewport(xy, state, view_range, drawn) if F.uses_density(len(xy)) else None
    # The selection, redrawn from its shape (after a reload, a link, or a clear); only in the
    # projection it was drawn in.
    shape = parse_selection(state.sel, meta.projections)
    shapes = [shape.shape()] if shape is not None and shape.projection == drawn else []
    if shown != key:
        fig = F.latent_figure(xy, style, title=title, present=state.present, projection=drawn, viewport=viewport)
        fig["layout"]["selections"] = shapes
        return "figure", fig, key
    parts = set()
    if "sample-params" in triggered:
        parts.add("sample")
    if "latent-params" in triggered or not parts:
        parts.add("color")
    spec = F.latent_patch_spec(style, xy, title=title, present=state.present, parts=tuple(parts), viewport=viewport)
    spec[("layout", "selections")] = shapes
    if not shapes:  # a cleared selection: no point stays dimmed as unselected
        spec[("data", 0, "selectedpoints")] = None
        spec[("data", 1, "selectedpoints")] = None
    return "patch", spec, key


def latent_range_after(kind: str, view_range: dict | None, shown_key: str):
    """The latent-range store after the latent view was redrawn (``kind`` as
    :func:`latent_outputs` returns it): kept through patches, and through a whole new figure
    of the same projection (plotly keeps the zoom: the figure's ``uirevision`` is the
    projection); dropped with a new projection, whose axes start on every item's extent."""
    if kind == "patch":
        return view_range
    drawn = shown_key.split("|", 1)[0]
    return view_range if isinstance(view_range, dict) and view_range.get("projection") == drawn else None


#: Most keys of a relayout event read (plotly sends a handful).
RELAYOUT_MAX_KEYS = 64


def _relayout_number(key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ValueError(f"relayoutData's {key} must be a finite number; got {shown(value)}")
    return float(value)


def parse_relayout(relayout_data, current=(None, None)):
    """The axes' ranges after a zoom, pan or reset of the latent view, from plotly's relayout event.

    Parameters
    ----------
    relayout_data : dict
        As dcc.Graph reports it: ``{"xaxis.range[0]": x0, "xaxis.range[1]": x1, …}`` for a zoom
        or pan, ``{"xaxis.range": [x0, x1]}``, ``{"xaxis.autorange": true, …}`` for a reset, or
        keys about anything else (``autosize``, ``dragmode``, ``selections``). It comes from the
        browser: every value is checked.
    current : (x_range, y_range)
        The ranges before the event (None: every item's extent); an axis the event leaves out
        keeps its own, an end of a range it leaves out keeps its own too.

    Returns
    -------
    (x_range, y_range) or None
        Each ``[low, high]``, or None for every item's extent (a reset); None as a whole when
        the event changes neither axis.

    Raises
    ------
    ValueError
        If the event is not a dict of at most :data:`RELAYOUT_MAX_KEYS` keys, or a range is
        not two finite increasing numbers; the message names the key and the value given.
    """
    if not isinstance(relayout_data, dict) or len(relayout_data) > RELAYOUT_MAX_KEYS:
        raise ValueError(f"relayoutData must be a plotly relayout event (an object of at most {RELAYOUT_MAX_KEYS} "
                         f"keys); got {shown(relayout_data)}")
    out, changed = [], False
    for axis, before in zip(("xaxis", "yaxis"), current):
        data = relayout_data
        ends = [data.get(f"{axis}.range[0]"), data.get(f"{axis}.range[1]")]
        if data.get(f"{axis}.autorange") is True:
            out.append(None)
            changed = True
            continue
        if f"{axis}.range" in data:
            pair = data[f"{axis}.range"]
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError(f"relayoutData's {axis}.range must be [low, high]; got {shown(pair)}")
            ends = list(pair)
        if ends == [None, None]:
            out.append(before)
            continue
        if None in ends and before is None:
            # one end moved from every item's extent: the other end is not known here
            raise ValueError(f"relayoutData must give both {axis}.range[0] and {axis}.range[1]; "
                             f"got {shown({k: v for k, v in data.items() if k.startswith(axis)})}")
        lo, hi = (_relayout_number(f"{axis}.range[{i}]", v if v is not None else before[i])
                  for i, v in enumerate(ends))
        if not lo < hi:
            raise ValueError(f"relayoutData's {axis}.range must be increasing (low < high); got [{lo!r}, {hi!r}]")
        out.append([lo, hi])
        changed = True
    return tuple(out) if changed else None


def relayout_outputs(meta: AppMeta, svc: Diagnosis, relayout_data, latent_params: dict, sample_params: dict,
                     view_range: dict | None, pending_projections=()):
    """(patch spec, latent-range store) of a zoom, pan or reset of the latent view, or None.

    Above :data:`figures.DENSITY_THRESHOLD` items the density image is rendered anew for the
    axes' new ranges (:func:`parse_relayout`; a reset: every item's extent) and only
    ``layout.images`` is patched, so that the sample's points and the selection stay as they
    are. None when there is nothing to redraw: a view below the threshold, an event about
    something else, or ranges already drawn.
    """
    if not F.uses_density(meta.n_items):
        return None
    state = _latent_state(meta, sample_params, latent_params)
    drawn = shown_projection(meta, state.projection, pending_projections)
    current = (None, None)
    if isinstance(view_range, dict) and view_range.get("projection") == drawn:
        current = (view_range.get("x"), view_range.get("y"))
        for axis, value in zip("xy", current):  # the store came back from the browser
            if value is not None and not (isinstance(value, list) and len(value) == 2):
                raise ValueError(f"latent-range's {axis} must be [low, high] or null; got {shown(value)}")
    ranges = parse_relayout(relayout_data, current)
    if ranges is None or tuple(ranges) == tuple(current):
        return None
    state = replace(state, projection=drawn)
    new_range = {"projection": drawn, "x": ranges[0], "y": ranges[1]}
    viewport = views.latent_viewport(svc.projection(drawn), state, new_range, drawn)
    layer = views.latent_density_layer(svc, state, viewport, selected_items(svc, state.sel, meta))
    return {("layout", "images"): [layer]}, new_range


def spec_to_patch(spec: dict) -> Patch:
    """A dash ``Patch`` that applies a ``{path tuple: value}`` spec."""
    patch = Patch()
    for path, value in spec.items():
        target = patch
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return patch


def tooltip_outputs(meta: AppMeta, svc: Diagnosis, hover_data: dict | None, sampler: str):
    """(show, bbox, children) of the latent view's tooltip: thumbnail, labels, likelihood ratio."""
    if not hover_data or not hover_data.get("points"):
        return False, no_update, no_update
    point = hover_data["points"][0]
    item = point.get("customdata")
    if item is None:
        return False, no_update, no_update
    item = check_int("hovered item", item[0] if isinstance(item, list) and item else item, 0, meta.n_items - 1)
    names = meta.class_names
    y, p = int(svc.ws.y_true[item]), int(svc.ws.y_pred[item])
    ratio, source = svc.log_ratio(sampler)
    # The log likelihood ratio says how far the item sits from the decision boundary; said in words too.
    ratio_text = ("log likelihood ratio: n/a" if ratio is None
                  else f"log likelihood ratio {float(ratio[item]):+.2f} ({source}): "
                       f"{'near the decision boundary' if abs(float(ratio[item])) < 1.0 else 'inside its cluster'}")
    kind, preview = svc.item_preview(item)
    if kind == "image":
        shown = html.Img(src=preview, className="tip-img", alt=f"item {item}")
    else:  # a feature vector: its most unusual features, in standard deviations from the mean
        shown = html.Table(className="tip-features", children=[
            html.Caption("most unusual features"),
            html.Tbody([html.Tr([html.Td(name), html.Td(f"{value:.4g}"), html.Td(f"{z:+.1f} σ")])
                        for name, value, z in preview]),
        ])
    children = html.Div(className="tip", children=[
        shown,
        html.Div(className="tip-text", children=[
            html.Div(f"item {item}", className="tip-title"),
            html.Div(["true: ", html.B(names[y])]),
            html.Div(["predicted: ", html.B(names[p], className="ok" if y == p else "bad")]),
            html.Div(ratio_text, className="tip-ratio"),
        ]),
    ])
    return True, point.get("bbox", no_update), children


def export_outputs(meta: AppMeta, svc: Diagnosis, view_state: dict, href: str | None = None,
                   title: str = "dldiag"):
    """(download dict): a self-contained HTML report of the view."""
    state = state_from_dict(view_state, meta)
    selection = selected_items(svc, state.sel, meta)
    view = views.full_view(svc, state, selection)
    figures = {"Latent space": view["latent"], "(d) Query-set accuracy": view["summary"],
               "(a) Top-k neurons": view["topk"], "(b) Mean activation": view["heatmap"],
               "(c) Max-neuron distribution": view["argmax"], "(e) Confusion matrix": view["confusion"]}
    settings = views.settings_rows(meta, state, view, selection)
    link = None
    if href:  # the report is the explorer's view: its link opens the explorer
        link = href.split("?")[0] + to_query(replace(state, tab="explorer"))
    text = report_html(figures, settings, title=f"{title} — {meta.dataset}: {state.sampler} at {F.pct(state.fraction)}",
                       link=link)
    return {"content": text, "filename": report_filename(meta.dataset, state.sampler, state.fraction),
            "type": "text/html"}


def _short_path(path) -> Path:
    """``path`` relative to the working folder when it lies under it, else as given."""
    path = Path(path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def experiments_outputs(dataset: str, weights_hash: str | None, root=RESULTS_ROOT) -> list:
    """The experiments tab's children: the report's Figs. 4–7 and Table IV of ``dataset``.

    Read from ``root/<dataset>`` (see :func:`~dldiag.experiments.figures.figures_for_dataset`);
    a note says when there are none, or when they were computed for other weights.
    """
    root = _short_path(root)  # the note's command reads `--out results/NAME` when run from the repository
    figures, note = figures_for_dataset(dataset, weights_hash, root)
    figures = {stem: F.below_toolbar(fig) for stem, fig in figures.items()}
    run = None
    if figures:
        try:
            run = load_run(results_dir_for(dataset, root))
        except (OSError, ValueError):
            run = None
    return experiments_panels(figures, note, run)


# ---------------------------------------------------------------- wiring

def _changed(new, old):
    return no_update if new == old else new


def register(app, context: AppContext, *, title: str = "dldiag") -> None:
    """Register every callback of the app on ``app``."""

    control_inputs = [Input(c, "value") for c in CONTROL_IDS]
    control_outputs = [Output(c, "value") for c in CONTROL_IDS]
    n_sync = 7 + len(CONTROL_IDS) + 12

    @app.callback(
        Output("view-state", "data"), Output("sample-params", "data"), Output("panel-params", "data"),
        Output("eval-params", "data"), Output("latent-params", "data"), Output("group-params", "data"),
        Output("url", "search"), *control_outputs,
        Output("j", "disabled"), Output("seed", "disabled"), Output("color", "options"),
        Output("root", "className"), Output("present-btn", "children"), Output("slide-label", "children"),
        Output("sampler-about", "children"), Output("notes", "children"),
        Output("fraction-value", "children"), Output("j-value", "children"), Output("tabs", "value"),
        Output("top-confusions", "value"),
        Input("url", "search"), *control_inputs,
        Input("present-btn", "n_clicks"), Input("clear-group", "n_clicks"),
        Input("topk-graph", "clickData"), Input("confusion-graph", "clickData"), Input("tabs", "value"),
        Input("latent-graph", "selectedData"), Input("slide-key", "data"),
        Input("slide-prev", "n_clicks"), Input("slide-next", "n_clicks"),
        Input("top-confusions", "value"), Input("viewport", "data"),
        State("view-state", "data"), State("sample-params", "data"), State("panel-params", "data"),
        State("eval-params", "data"), State("latent-params", "data"), State("group-params", "data"),
    )
    @guarded("Reading the controls", n_sync, n_sync - 5)
    def sync(search, *args):
        values = dict(zip(CONTROL_IDS, args[:len(CONTROL_IDS)]))
        (_present, _clear, topk_click, confusion_click, tab, selected, slide_key, _prev_slide, _next_slide,
         picks, viewport, prev, *prev_stores) = args[len(CONTROL_IDS):]
        meta, _ = context.get()
        trigger = ctx.triggered_id
        triggered = trigger if isinstance(trigger, str) else None
        if triggered in ("slide-prev", "slide-next"):  # the buttons step like the arrow keys
            triggered, slide_key = "slide-key", {"step": -1 if triggered == "slide-prev" else 1}
        if triggered == "top-confusions":
            if not picks:  # the list was redrawn, not clicked
                raise PreventUpdate
            triggered, confusion_click = "confusion-graph", {"points": [{"customdata": _pick_cell(picks)}]}
        state, notes = sync_state(meta, triggered, search, values, topk_click, confusion_click, prev, tab,
                                  selected, slide_key)
        if triggered not in (None, "url", "viewport") and prev and not notes and state.to_dict() == prev:
            # An event that changes nothing (plotly reports an empty selection when a figure is
            # redrawn, say): nothing to update, and the notes of a link stay where they are.
            raise PreventUpdate
        screen = [viewport.get("w"), viewport.get("h")] if isinstance(viewport, dict) else None
        stores = derived_stores(state, screen)
        store_out = [_changed(stores[name], old) for name, old in
                     zip(("sample-params", "panel-params", "eval-params", "latent-params", "group-params"),
                         prev_stores)]
        query = to_query(state)
        controls = [state.sampler, round(state.fraction * 100, 2), state.j, state.seed, state.layer,
                    "all" if state.cls is None else str(state.cls),
                    "any" if state.predicted is None else str(state.predicted), state.outcome, state.k, state.units,
                    state.projection, state.color, state.cmnorm, state.estimator]
        note_el = [alert("Link: " + n, kind="note") for n in notes] if notes else None
        slide = SLIDES.index(state.slide)
        return (
            _changed(state.to_dict(), prev), *store_out, _changed(query, search), *controls,
            not meta.uses_j.get(state.sampler, False), not meta.randomised.get(state.sampler, True),
            color_options(neuron_available=state.neuron is not None),
            root_class(state),
            "Exit presentation" if state.present else "Presentation mode",
            f"{slide + 1} / {len(SLIDES)} · {SLIDE_TITLES[state.slide]}",
            term_tooltip(state.sampler) if state.sampler in GLOSSARY else None,
            note_el, f"{state.fraction * 100:g} %", f"{state.j:g}", _changed(state.tab, tab),
            None if picks else no_update,  # a picked mistake is now the group: the list is ready for the next
        )

    # The experiments tab: its own callback, fired by the tab (never by the explorer's stores),
    # which loads the figures once, the first time the tab is shown.
    @app.callback(
        Output("experiments-content", "children"), Output("experiments-loaded", "data"),
        Output("experiments-error", "children"),
        Input("tabs", "value"), State("experiments-loaded", "data"),
        prevent_initial_call=True,
    )
    @guarded("Loading the experiment results", 3, 2)
    def experiments(tab, loaded):
        if tab != "experiments" or loaded:
            raise PreventUpdate
        _, svc = context.get()
        ws = svc.ws
        return experiments_outputs(ws.dataset.name, ws.model_info.get("weights_hash")), True, None

    app.clientside_callback(
        ClientsideFunction(namespace="dldiag", function_name="showTab"),
        Output("explorer-view", "style"), Output("experiments-view", "style"),
        Input("tabs", "value"),
    )

    # The sample's params feed the panels, the summary and the latent view directly: a sample
    # change is one round trip after the reducer, the four requests run side by side, and the
    # first that needs the sample's pass runs it while the others wait for it.
    @app.callback(
        Output("sample-info", "children"), Output("sample-error", "children"),
        Input("sample-params", "data"),
    )
    @guarded("Drawing the sample", 2, 1)
    def sample(sample_params):
        if not sample_params:
            raise PreventUpdate
        meta, svc = context.get()
        return sample_outputs(meta, svc, sample_params), None

    @app.callback(
        Output("sample-savings", "children"), Output("savings-error", "children"),
        Input("sample-params", "data"),
    )
    @guarded("Measuring what the sample saved", 2, 1)
    def savings(sample_params):
        if not sample_params:
            raise PreventUpdate
        meta, svc = context.get()
        return savings_outputs(meta, svc, sample_params), None

    @app.callback(
        Output("topk-graph", "figure"), Output("heatmap-graph", "figure"), Output("argmax-graph", "figure"),
        Output("confusion-graph", "figure"), Output("group-label", "children"), Output("confusion-shown", "data"),
        Output("selection-info", "children"), Output("exact-start", "style"), Output("exact-poll", "disabled"),
        Output("panels-error", "children"),
        Input("sample-params", "data"), Input("panel-params", "data"), Input("exact-ready", "data"),
        State("confusion-shown", "data"),
    )
    @guarded("Updating the panels", 10, 9)
    def panels(sample_params, panel_params, _exact_done, shown):
        if not sample_params or not panel_params:
            raise PreventUpdate
        meta, svc = context.get()
        topk, heat, argmax, confusion, label, pending, estimating = panel_outputs(meta, svc, sample_params,
                                                                                  panel_params)
        confusion, key = confusion_update(confusion, meta, sample_params, panel_params, shown)
        if key == shown:
            confusion = spec_to_patch(confusion)
        start = {"display": "inline-block"} if pending else {"display": "none"}
        return (topk, heat, argmax, confusion, label, key, selection_info(meta, svc, panel_params.get("sel")), start,
                not (pending or estimating), None)

    # A selection's exact answer: every selected item passed forward in a background job (a
    # process of Dash's DiskcacheManager), with progress and Cancel under the latent view. A
    # new selection cancels the job of the previous one; the panels redraw when it ends.
    @app.callback(
        Output("exact-done", "data"),
        Input("group-params", "data"), Input("exact-start", "n_clicks"),
        **_job_options("exact"),
    )
    def exact(set_progress, group_params, _start):
        import torch

        # This runs in the job's own process, forked from the server's: torch's OpenMP pool does
        # not survive a fork (a forward pass with more than one thread hangs there, measured),
        # so the job's torch runs on one thread, as a DataLoader worker's does.
        torch.set_num_threads(1)
        meta, svc = context.get()
        return exact_job(meta, svc, (group_params or {}).get("sel"), set_progress)

    # The panels learn that the job has ended by polling the cache while they show a selection's
    # sample answer alone: a callback fed, even through others, by the output of a running
    # background callback waits until that job ends (dash-renderer), and the panels must show
    # the sample's answer at once. The same poll waits for an estimate computed beside the
    # request (Diagnosis.estimate_later).
    @app.callback(
        Output("exact-ready", "data"),
        Input("exact-poll", "n_intervals"), State("sample-params", "data"), State("panel-params", "data"),
        prevent_initial_call=True,
    )
    def exact_poll(n, sample_params, panel_params):
        meta, svc = context.get()
        if not sample_params or not panel_params or not panels_ready(meta, svc, sample_params, panel_params):
            raise PreventUpdate
        return {"sel": panel_params.get("sel"), "n": n}

    # A unit's values over every item: a forward pass over all of them in a background job, as
    # for a selection's exact answer; the latent view colours the sample at once and every item
    # when the job has cached the values (it polls, for the same reason as the panels). The job
    # listens to the unit alone, so that a new projection or sample does not restart it.
    @app.callback(
        Output("unit-target", "data"),
        Input("latent-params", "data"), State("unit-target", "data"),
    )
    def unit_target_store(latent_params, current):
        meta, _ = context.get()
        try:
            target = unit_target(meta, latent_params)
        except ValueError:
            target = None  # the latent view says what was wrong with it
        if target == current:
            raise PreventUpdate
        return target

    @app.callback(
        Output("unit-done", "data"),
        Input("unit-target", "data"), Input("unit-start", "n_clicks"),
        **_job_options("unit"),
    )
    def unit_values_job(set_progress, target, _start):
        import torch

        torch.set_num_threads(1)  # as in the exact-answer job: a forked process
        meta, svc = context.get()
        return unit_job(meta, svc, target, set_progress)

    @app.callback(
        Output("unit-ready", "data"),
        Input("unit-poll", "n_intervals"), State("latent-params", "data"),
        prevent_initial_call=True,
    )
    def unit_poll(n, latent_params):
        meta, svc = context.get()
        try:
            target = unit_target(meta, latent_params)
        except ValueError:
            raise PreventUpdate from None  # the latent view says what was wrong with it
        if not unit_cached(meta, svc, target):
            raise PreventUpdate
        return {"unit": target, "n": n}

    @app.callback(
        Output("gallery", "children"), Output("gallery-info", "children"), Output("gallery-more", "style"),
        Output("gallery-shown", "data"), Output("gallery-error", "children"),
        Input("sample-params", "data"), Input("group-params", "data"), Input("gallery-more", "n_clicks"),
        State("gallery-shown", "data"),
    )
    @guarded("Showing the group's items", 5, 4)
    def gallery(sample_params, group_params, _more, shown):
        if not sample_params or not group_params:
            raise PreventUpdate
        meta, svc = context.get()
        more = ctx.triggered_id == "gallery-more"
        limit = (check_int("gallery-shown", shown or 0, 0, meta.n_items) if more else 0) + GALLERY_PAGE
        cards, info, remain = gallery_outputs(meta, svc, sample_params, group_params, limit)
        return cards, info, None if remain else {"display": "none"}, len(cards), None

    @app.callback(
        Output("top-confusions", "options"),
        Input("sample-params", "data"),
    )
    def top_confusions(sample_params):
        if not sample_params:
            raise PreventUpdate
        meta, svc = context.get()
        return top_confusion_options(meta, svc, sample_params)

    @app.callback(
        Output("summary-graph", "figure"), Output("table-iv", "children"), Output("summary-error", "children"),
        Input("sample-params", "data"), Input("eval-params", "data"),
    )
    @guarded("Scoring the sample", 3, 2)
    def summary(sample_params, eval_params):
        if not sample_params or not eval_params:
            raise PreventUpdate
        meta, svc = context.get()
        return (*summary_outputs(meta, svc, sample_params, eval_params), None)

    @app.callback(
        Output("latent-graph", "figure"), Output("latent-shown", "data"), Output("latent-range", "data"),
        Output("latent-error", "children"), Output("unit-poll", "disabled"), Output("unit-start", "style"),
        Input("latent-params", "data"), Input("sample-params", "data"), Input("pending-store", "data"),
        Input("unit-ready", "data"),
        State("latent-shown", "data"), State("latent-range", "data"),
    )
    @guarded("Drawing the latent view", 6, 3)
    def latent(latent_params, sample_params, pending, _unit_ready, shown, view_range):
        if not sample_params or not latent_params:
            raise PreventUpdate
        meta, svc = context.get()
        triggered = {t["prop_id"].split(".")[0] for t in ctx.triggered} if ctx.triggered else set()
        pending_projections = context.pending()["projections"]
        kind, out, key = latent_outputs(meta, svc, latent_params, sample_params, shown, triggered,
                                        pending_projections, view_range)
        if kind == "patch" and triggered == {"pending-store"}:
            raise PreventUpdate  # something else arrived; the projection drawn is unchanged
        new_range = latent_range_after(kind, view_range, key)
        target = unit_target(meta, latent_params)
        waiting = target is not None and not unit_cached(meta, svc, target)
        start = {"display": "inline-block"} if waiting else {"display": "none"}
        return ((spec_to_patch(out) if kind == "patch" else out), key, _changed(new_range, view_range), None,
                not waiting, start)

    # Zoom and pan of a density view: the image is rendered anew for the axes shown and patched
    # alone (the sample's points and the selection stay). Below the threshold nothing happens.
    @app.callback(
        Output("latent-graph", "figure", allow_duplicate=True), Output("latent-range", "data", allow_duplicate=True),
        Output("latent-error", "children", allow_duplicate=True),
        Input("latent-graph", "relayoutData"),
        State("latent-params", "data"), State("sample-params", "data"), State("latent-range", "data"),
        prevent_initial_call=True,
    )
    @guarded("Drawing the latent view's density", 3, 2)
    def latent_zoom(relayout_data, latent_params, sample_params, view_range):
        if not relayout_data or not sample_params or not latent_params:
            raise PreventUpdate
        meta, svc = context.get()
        out = relayout_outputs(meta, svc, relayout_data, latent_params, sample_params, view_range,
                               context.pending()["projections"])
        if out is None:
            raise PreventUpdate
        spec, new_range = out
        return spec_to_patch(spec), new_range, None

    @app.callback(
        Output("pending-store", "data"), Output("pending-poll", "disabled"), Output("projection", "options"),
        Output("sampler", "options"), Output("pending-note", "children"),
        Input("pending-poll", "n_intervals"), State("pending-store", "data"),
    )
    def poll_pending(_n, previous):
        meta, _ = context.get()
        pending = context.pending()
        if pending == previous:
            raise PreventUpdate
        done = not pending["projections"] and not pending["samplers"]
        return (pending, done, *pending_options(meta, pending), pending_note(pending))

    @app.callback(
        Output("latent-tooltip", "show"), Output("latent-tooltip", "bbox"), Output("latent-tooltip", "children"),
        Input("latent-graph", "hoverData"), State("sample-params", "data"),
    )
    def tooltip(hover_data, sample_params):
        try:
            meta, svc = context.get()
            sampler = (sample_params or {}).get("sampler", meta.default_sampler)
            return tooltip_outputs(meta, svc, hover_data, sampler)
        except Exception as exc:  # noqa: BLE001
            log.exception("tooltip failed")
            return True, no_update, alert(f"Tooltip failed: {type(exc).__name__}: {exc}")

    @app.callback(
        Output("download", "data"), Output("export-error", "children"),
        Input("export-btn", "n_clicks"), State("view-state", "data"),
        State("url", "href"),
        prevent_initial_call=True,
    )
    @guarded("Exporting the report", 2, 1)
    def export(_n, view_state, href):
        meta, svc = context.get()
        return export_outputs(meta, svc, view_state, href, title=title), None

    app.clientside_callback(
        ClientsideFunction(namespace="dldiag", function_name="saveImage"),
        Output("save-sink", "data"),
        Input({"type": "save", "graph": ALL, "fmt": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )


def register_boot(app, provider) -> None:
    """Callbacks of the loading page: poll the preparation, reload when it is ready."""
    @app.callback(
        Output("boot-status", "children"), Output("boot-bar", "style"), Output("boot-ready", "data"),
        Input("boot-interval", "n_intervals"),
    )
    def boot(_n):
        status = provider.status()
        total = max(status.get("total", 1), 1)
        text = status.get("message", "")
        if status.get("error"):
            text = f"Preparation failed: {status['error']} — see the terminal."
        width = {"width": f"{100 * status.get('step', 0) / total:.0f}%"}
        return text, width, bool(status.get("ready"))

    app.clientside_callback(
        ClientsideFunction(namespace="dldiag", function_name="reloadWhenReady"),
        Output("boot-interval", "disabled"),
        Input("boot-ready", "data"),
    )
