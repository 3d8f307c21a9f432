"""From a view state to figures: the glue between :class:`~dldiag.app.service.Diagnosis` and
:mod:`dldiag.app.figures`, shared by the callbacks and the HTML export. No dash here."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import figures as F
from .service import ESTIMATE_INLINE_VALUES, Diagnosis, SampleParams
from .state import AppMeta, ViewState

__all__ = ["panel_figures", "panel_estimates", "summary_view", "latent_view_style", "latent_title", "full_view",
           "unit_pending", "settings_rows", "unit_context", "context_line", "group_baseline", "latent_neuron_name",
           "latent_density_layer", "latent_viewport"]

PROJECTION_NAMES = F.PROJECTION_NAMES
COLOR_NAMES = {"true": "true label", "pred": "predicted label", "outcome": "outcome",
               "sample": "sample membership", "neuron": "neuron activation"}


def unit_context(svc: Diagnosis, layer: str, units: str) -> dict:
    """How the units of ``layer`` in unit mode ``units`` are named: the keyword arguments
    ``channel`` and ``class_names`` of :func:`~dldiag.app.figures.unit_name`."""
    is_logits = layer == svc.ws.layers[-1]
    channel = units == "channel" and len(svc.ws.full[layer, "flat"].unit_shape) == 3
    return {"channel": channel, "class_names": svc.ws.dataset.class_names if is_logits else None}


def context_line(svc: Diagnosis, state: ViewState, n_sample: int, group: str | None = None) -> str:
    """A title's second line: data set, sampler, fraction (and the group), so that an exported
    figure says what it shows."""
    parts = [str(svc.ws.dataset.name), f"{state.sampler} sample of {n_sample:,} items ({F.pct(state.fraction)})"]
    if group is not None:
        parts.append(f"group: {group}")
    return " · ".join(parts)


def group_baseline(svc: Diagnosis, state: ViewState, selection=None) -> dict | None:
    """The random baseline of the state's group: its scores with a random sample of the same
    fraction and seed (the sample (d) compares with), or None for the random sampler itself
    or a group empty on the full data. The random sample's pass is the one (d) runs anyway.
    Its answers are plain whatever the state's estimator: random sampling's design weights are
    uniform, so the weighted means are the plain ones (and the state's weights are its sampler's)."""
    if state.sampler == "random":
        return None
    ridx = svc.random_indices(state.fraction, state.seed)
    res = svc.group(ridx, replace(state, estimator="plain"), selection)
    if res.scores is None:
        return None
    return {**res.scores, "count": int(res.sample.count), "name": "random"}


def panel_estimates(est, estimator: str = "plain") -> dict:
    """The ``estimate`` argument of each panel's builder from a group's estimate.

    Parameters
    ----------
    est : GroupEstimate or NoEstimate
        The bootstrap of the group's sample items (:meth:`Diagnosis.group_estimate`).
    estimator : {"plain", "weighted"}
        The state's estimator. The bootstrap is of the plain mean: with design-weighted bars
        the intervals would sit around other values, so the panels then get the estimate lines
        (marked "plain mean") and no error bars.

    Returns
    -------
    dict with keys ``topk``, ``heatmap``, ``argmax``.
    """
    plain = estimator != "plain"
    if est.reason is not None:
        line = {"score": None, "n": est.n}
        return {"topk": line, "heatmap": line, "argmax": line}
    score = {m: {"score": (iv.value, iv.low, iv.high), "n": est.n, "plain": plain}
             for m, iv in (("s1", est.s1), ("s2", est.s2), ("s3", est.s3))}
    topk, argmax = dict(score["s1"]), dict(score["s3"])
    if not plain:
        topk.update(low=est.mean_low, high=est.mean_high, stay=est.stay)
        argmax.update(low=est.dist_low, high=est.dist_high)
    return {"topk": topk, "heatmap": score["s2"], "argmax": argmax}


def panel_figures(svc: Diagnosis, state: ViewState, selection=None, *, for_screen: bool = True,
                  heights: dict | None = None, estimate_inline: bool = False) -> dict:
    """Figures (a), (b), (c), (e) and the group's description for a state.

    ``for_screen=False`` builds them for export (no room for a toolbar, export heights).
    ``heights`` ({"topk", "argmax", "confusion": px}) gives the heights the figures will be
    drawn at when they are not the app's panel heights (a full-screen slide), so that the
    rows and cell labels fit them.

    Returns
    -------
    dict with keys ``topk``, ``heatmap``, ``argmax``, ``confusion`` (figures), ``group``
    (text), ``counts`` ({"full", "sample"} items in the group), ``scores`` and
    ``baseline`` (the random baseline's scores of the group, or None).

    Panels (a)–(c) also show the group's estimate from the sample alone
    (:meth:`Diagnosis.group_estimate`, see :func:`panel_estimates`); a group the sample holds
    none of shows the absent-group panel instead, with no bootstrap run. A bootstrap over more
    than :data:`~dldiag.app.service.ESTIMATE_INLINE_VALUES` values is not run here unless
    ``estimate_inline`` (an export waits for it): the panels say it is computing, and
    ``estimate_pending`` is True (the caller starts it: :meth:`Diagnosis.estimate_later`).
    """
    params = SampleParams.from_state(state)
    idx = svc.sample_indices(params)
    res = svc.group(idx, state, selection)
    naming = unit_context(svc, state.layer, state.units)
    labels = F.unit_names(state.layer, res.unit_shape, **naming)
    scores = res.scores or {}
    full = res.full  # None while a selection's exact answer is computed in the background
    baseline = group_baseline(svc, state, selection) if full is not None and full.count else None
    n_units = len(labels)
    chosen = state.neuron if state.neuron is not None and 0 <= state.neuron < n_units else None
    common = dict(n_sample=res.sample.count, n_full=res.n_full, layer=state.layer, present=state.present,
                  chosen=chosen, baseline=baseline, group=res.label, for_screen=for_screen,
                  context=context_line(svc, state, len(idx), res.label), sampler=state.sampler,
                  estimator=state.estimator)
    heights = heights or {}
    est, estimate_pending = {}, False
    if res.sample.count:
        inline = estimate_inline or svc.estimate_values(idx, state, selection) <= ESTIMATE_INLINE_VALUES
        found = svc.group_estimate(idx, state, selection, compute=inline)
        estimate_pending = found is None
        est = (panel_estimates(found, state.estimator) if found is not None
               else dict.fromkeys(("topk", "heatmap", "argmax"), {"pending": True, "n": res.sample.count}))
    topk = F.topk_figure(res.sample.mean, None if full is None else full.mean, res.sample.top,
                         None if full is None else full.top, labels=labels, s1=scores.get("s1"), k=state.k,
                         height=heights.get("topk"), estimate=est.get("topk"), **common)
    heat = F.heatmap_figure(res.sample.mean, None if full is None else full.mean, res.unit_shape,
                            s2=scores.get("s2"), **naming, estimate=est.get("heatmap"), **common)
    argmax = F.argmax_figure(res.sample.argmax_dist, None if full is None else full.argmax_dist, labels=labels,
                             s3=scores.get("s3"), height=heights.get("argmax"), estimate=est.get("argmax"),
                             **common)
    full_cm = svc.confusion()
    sample_cm = svc.confusion(idx)
    c = full_cm.shape[0]
    mask = svc.ws.full[state.layer, state.units].cell_mask(
        state.cls, None if state.outcome == "all" else state.outcome, state.predicted)
    highlight = mask if mask.sum() < c * c else None
    sample_acc = float(np.trace(sample_cm) / max(sample_cm.sum(), 1))
    confusion = F.confusion_figure(full_cm, sample_cm, svc.ws.dataset.class_names, highlight=highlight,
                                   accuracy=svc.ws.accuracy, sample_accuracy=sample_acc, present=state.present,
                                   context=context_line(svc, state, len(idx)), for_screen=for_screen,
                                   height=heights.get("confusion"),
                                   normalise="rows" if state.cmnorm == "rows" else None)
    return {"topk": topk, "heatmap": heat, "argmax": argmax, "confusion": confusion,
            "group": res.label, "counts": {"full": res.n_full, "sample": res.sample.count},
            "scores": res.scores, "baseline": baseline, "exact_pending": full is None,
            "estimate_pending": estimate_pending}


def summary_view(svc: Diagnosis, state: ViewState, *, for_screen: bool = True) -> tuple:
    """Figure (d) and the summary dict (with the Table IV counts)."""
    params = SampleParams.from_state(state)
    summary = svc.summary(params, state.k, state.units, estimator=state.estimator)
    context = context_line(svc, state, summary["counts"]["sample"]["n"])
    fig = F.summary_figure(summary, sampler=state.sampler, fraction=state.fraction, present=state.present,
                           context=context, for_screen=for_screen)
    return fig, summary


def latent_title(state: ViewState, n_items: int, n_sample: int, layer: str, waiting_for: str | None = None,
                 neuron_name: str | None = None, neuron_everywhere: bool = False) -> str:
    """The latent view's title; ``neuron_name`` (:func:`~dldiag.app.figures.neuron_label`) names
    the unit that colours it, else its index does; ``neuron_everywhere``: every item is coloured
    by it, not only the sample's."""
    proj = PROJECTION_NAMES.get(state.projection, state.projection)
    if waiting_for:
        proj += f" ({PROJECTION_NAMES.get(waiting_for, waiting_for)} is still being computed)"
    colour = COLOR_NAMES[state.color]
    if state.color == "neuron":
        colour = "unit " + (neuron_name or f"{state.neuron} of {state.layer} ({state.units})")
        colour += f" on all {n_items:,} items" if neuron_everywhere else " on the sample's items"
    return (f"Latent space of {layer} — {proj} of {n_items:,} items"
            f"<br><span style='font-size:0.78em;color:#52606d'>{state.sampler} sample of {n_sample:,} "
            f"({F.pct(state.fraction)}) · colour: {colour}</span>")


def latent_view_style(svc: Diagnosis, state: ViewState, idx: np.ndarray, selection=None) -> F.LatentStyle:
    """Colours and sizes of the latent view for a state and its sample ``idx``; the group (class,
    predicted class, outcome, ``selection``) highlighted when one is set."""
    ws = svc.ws
    members = np.zeros(ws.n_items, dtype=bool)
    members[idx] = True
    neuron_values = None
    everywhere = False
    label = ""
    if state.color == "neuron" and state.neuron is not None:
        # Every item's value once a background pass has cached it; until then the sample's,
        # read from its store.
        neuron_values = svc.unit_values_all(state.layer, state.units, state.neuron)
        everywhere = neuron_values is not None
        if not everywhere:
            neuron_values = np.zeros(ws.n_items, dtype=np.float32)
            neuron_values[idx] = svc.neuron_values(idx, state.layer, state.units, state.neuron)
        shape = ws.full[state.layer, state.units].unit_shape
        label = F.neuron_label(state.layer, state.neuron, shape, **unit_context(svc, state.layer, state.units))
    return F.latent_style(ws.y_true, ws.y_pred, members, color_by=state.color,
                          class_names=ws.dataset.class_names, sampler=state.sampler,
                          neuron_values=neuron_values, neuron_label=label, present=state.present,
                          group=_group_mask(svc, state, selection), neuron_everywhere=everywhere)


def unit_pending(svc: Diagnosis, state: ViewState) -> bool:
    """Whether the latent view colours by a unit whose values over every item are not cached yet."""
    return (state.color == "neuron" and state.neuron is not None
            and not svc.has_unit_values(state.layer, state.units, state.neuron))


def _group_mask(svc: Diagnosis, state: ViewState, selection=None) -> np.ndarray | None:
    """The items of the state's group as a mask over D, or None when no group is set."""
    if state.cls is None and state.predicted is None and state.outcome == "all" and selection is None:
        return None
    group = np.zeros(svc.ws.n_items, dtype=bool)
    group[svc.group_members(state, selection)] = True
    return group


def latent_viewport(xy: np.ndarray, state: ViewState, view_range: dict | None, projection: str):
    """The viewport of the latent view's density image: the axes the view was zoomed to
    (``view_range``, checked: ``{"projection", "x", "y"}`` as :func:`~dldiag.app.callbacks.relayout_outputs`
    keeps it) when they are of ``projection``, else every item's extent."""
    x_range = y_range = None
    if isinstance(view_range, dict) and view_range.get("projection") == projection:
        x_range, y_range = view_range.get("x"), view_range.get("y")
    return F.density_viewport(xy, state.present, x_range, y_range)


def latent_density_layer(svc: Diagnosis, state: ViewState, viewport, selection=None) -> dict:
    """The density image of the state's latent view for ``viewport`` (a ``layout.images``
    entry): every item of D in the colours of the state's colour mode, its group highlighted."""
    ws = svc.ws
    if state.color == "neuron" and state.neuron is not None and not unit_pending(svc, state):
        members = np.zeros(0, dtype=np.int64)  # the image is of every item: the sample plays no part
        style = latent_view_style(svc, state, members, selection)
        return F.latent_image(svc.projection(state.projection), style, viewport)
    codes, colors = F.latent_background(ws.y_true, ws.y_pred, color_by=state.color,
                                        n_classes=len(ws.dataset.class_names),
                                        group=_group_mask(svc, state, selection))
    return F.density_layer(svc.projection(state.projection), codes, colors, viewport)


def latent_neuron_name(svc: Diagnosis, state: ViewState) -> str | None:
    """:func:`~dldiag.app.figures.neuron_label` of the unit colouring the latent view, if any."""
    if state.color != "neuron" or state.neuron is None:
        return None
    shape = svc.ws.full[state.layer, state.units].unit_shape
    return F.neuron_label(state.layer, state.neuron, shape, **unit_context(svc, state.layer, state.units))


def full_view(svc: Diagnosis, state: ViewState, selection=None, *, for_screen: bool = True) -> dict:
    """Every figure of the page for a state (for the HTML export), in display order."""
    from .selection import parse_selection

    idx = svc.sample_indices(SampleParams.from_state(state))
    style = latent_view_style(svc, state, idx, selection)
    title = latent_title(state, svc.ws.n_items, len(idx), svc.ws.latent_layer,
                         neuron_name=latent_neuron_name(svc, state), neuron_everywhere=style.bg_values is not None)
    latent = F.latent_figure(svc.projection(state.projection), style, title=title, present=state.present,
                             projection=state.projection, height=640, for_screen=for_screen)
    shape = parse_selection(state.sel, PROJECTION_NAMES)  # the box or lasso, drawn as on screen
    if shape is not None and shape.projection == state.projection:
        latent["layout"]["selections"] = [shape.shape()]
    panels = panel_figures(svc, state, selection, for_screen=for_screen, estimate_inline=True)  # a report waits
    summary_fig, summary = summary_view(svc, state, for_screen=for_screen)
    return {"latent": latent, "summary": summary_fig, "topk": panels["topk"], "heatmap": panels["heatmap"],
            "argmax": panels["argmax"], "confusion": panels["confusion"], "group": panels["group"],
            "summary_data": summary}


def settings_rows(meta: AppMeta, state: ViewState, view: dict, selection=None) -> list[tuple[str, str]]:
    """The settings table of an export."""
    counts = view["summary_data"]["counts"]
    rows = [
        ("data set", f"{meta.dataset} ({meta.n_items:,} items, model accuracy {meta.accuracy:.1%} on all items)"),
        ("sampler", state.sampler),
        ("fraction", f"{state.fraction:.1%}"),
        ("j", f"{state.j:g}" + ("" if meta.uses_j.get(state.sampler, False) else " (ignored by this sampler)")),
        ("seed", str(state.seed) + ("" if meta.randomised.get(state.sampler, True) else " (ignored by this sampler)")),
        ("sample (Table IV row)", f"{counts['sample']['n']} items: {counts['sample']['correct']} correct, "
                                  f"{counts['sample']['incorrect']} incorrect"),
        ("random at the same fraction", f"{counts['random']['n']} items: {counts['random']['correct']} correct, "
                                        f"{counts['random']['incorrect']} incorrect"),
        ("layer", state.layer),
        ("unit mode", state.units),
        ("k (top-k)", str(state.k)),
        ("estimate", F.ESTIMATOR_NAMES[state.estimator]),
        ("group", view["group"]),
        ("projection", PROJECTION_NAMES.get(state.projection, state.projection)),
        ("colour", COLOR_NAMES[state.color] + (f" (unit {state.neuron})" if state.color == "neuron" else "")),
    ]
    if selection is not None and len(selection):
        rows.append(("selection", f"{len(selection):,} items drawn in the latent view"))
    return rows
