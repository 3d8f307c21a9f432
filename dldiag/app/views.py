"""From a view state to figures: the glue between :class:`~dldiag.app.service.Diagnosis` and
:mod:`dldiag.app.figures`, shared by the callbacks and the HTML export. No dash here."""

from __future__ import annotations

import numpy as np

from . import figures as F
from .service import Diagnosis, SampleParams
from .state import AppMeta, ViewState

__all__ = ["panel_figures", "summary_view", "latent_view_style", "latent_title", "full_view",
           "settings_rows"]

PROJECTION_NAMES = F.PROJECTION_NAMES
COLOR_NAMES = {"true": "true label", "pred": "predicted label", "outcome": "outcome",
               "sample": "sample membership", "neuron": "neuron activation"}


def _labels(svc: Diagnosis, state: ViewState, unit_shape) -> list[str]:
    is_logits = state.layer == svc.ws.layers[-1]
    names = svc.ws.dataset.class_names if is_logits else None
    channel = state.units == "channel" and len(svc.ws.full[state.layer, "flat"].unit_shape) == 3
    return F.unit_labels(unit_shape, class_names=names, channel=channel)


def panel_figures(svc: Diagnosis, state: ViewState, selection=None) -> dict:
    """Figures (a), (b), (c), (e) and the group's description for a state.

    Returns
    -------
    dict with keys ``topk``, ``heatmap``, ``argmax``, ``confusion`` (figures), ``group``
    (text) and ``counts`` ({"full", "sample"} items in the group).
    """
    params = SampleParams.from_state(state)
    idx = svc.sample_indices(params)
    res = svc.group(idx, state, selection)
    labels = _labels(svc, state, res.unit_shape)
    scores = res.scores or {}
    common = dict(n_sample=res.sample.count, n_full=res.full.count, layer=state.layer, present=state.present)
    topk = F.topk_figure(res.sample.mean, res.full.mean, res.sample.top, res.full.top, labels=labels,
                         sampler=state.sampler, s1=scores.get("s1"), k=state.k, **common)
    heat = F.heatmap_figure(res.sample.mean, res.full.mean, res.unit_shape, s2=scores.get("s2"), **common)
    argmax = F.argmax_figure(res.sample.argmax_dist, res.full.argmax_dist, labels=labels,
                             sampler=state.sampler, s3=scores.get("s3"), **common)
    full_cm = svc.confusion()
    sample_cm = svc.confusion(idx)
    c = full_cm.shape[0]
    mask = svc.ws.full[state.layer, state.units].cell_mask(
        state.cls, None if state.outcome == "all" else state.outcome, state.predicted)
    highlight = mask if mask.sum() < c * c else None
    sample_acc = float(np.trace(sample_cm) / max(sample_cm.sum(), 1))
    confusion = F.confusion_figure(full_cm, sample_cm, svc.ws.dataset.class_names, highlight=highlight,
                                   accuracy=svc.ws.accuracy, sample_accuracy=sample_acc, present=state.present)
    return {"topk": topk, "heatmap": heat, "argmax": argmax, "confusion": confusion,
            "group": res.label, "counts": {"full": res.full.count, "sample": res.sample.count},
            "scores": res.scores}


def summary_view(svc: Diagnosis, state: ViewState) -> tuple:
    """Figure (d) and the summary dict (with the Table IV counts)."""
    params = SampleParams.from_state(state)
    summary = svc.summary(params, state.k, state.units)
    fig = F.summary_figure(summary, sampler=state.sampler, fraction=state.fraction, present=state.present)
    return fig, summary


def latent_title(state: ViewState, n_items: int, n_sample: int, layer: str, waiting_for: str | None = None) -> str:
    proj = PROJECTION_NAMES.get(state.projection, state.projection)
    if waiting_for:
        proj += f" ({PROJECTION_NAMES.get(waiting_for, waiting_for)} is still being computed)"
    colour = COLOR_NAMES[state.color]
    if state.color == "neuron":
        colour = f"unit {state.neuron} of {state.layer} ({state.units})"
    return (f"Latent space of {layer} — {proj} of {n_items:,} items"
            f"<br><span style='font-size:0.78em;color:#52606d'>{state.sampler} sample of {n_sample:,} "
            f"({F.pct(state.fraction)}) · colour: {colour}</span>")


def latent_view_style(svc: Diagnosis, state: ViewState, idx: np.ndarray) -> F.LatentStyle:
    """Colours and sizes of the latent view for a state and its sample ``idx``."""
    ws = svc.ws
    members = np.zeros(ws.n_items, dtype=bool)
    members[idx] = True
    neuron_values = None
    label = ""
    if state.color == "neuron" and state.neuron is not None:
        vals = svc.neuron_values(idx, state.layer, state.units, state.neuron)
        neuron_values = np.zeros(ws.n_items, dtype=np.float32)
        neuron_values[idx] = vals
        label = f"{state.layer} unit {state.neuron}"
    return F.latent_style(ws.y_true, ws.y_pred, members, color_by=state.color,
                          class_names=ws.dataset.class_names, sampler=state.sampler,
                          neuron_values=neuron_values, neuron_label=label, present=state.present)


def full_view(svc: Diagnosis, state: ViewState, selection=None) -> dict:
    """Every figure of the page for a state (for the HTML export), in display order."""
    idx = svc.sample_indices(SampleParams.from_state(state))
    style = latent_view_style(svc, state, idx)
    latent = F.latent_figure(svc.projection(state.projection), style,
                             title=latent_title(state, svc.ws.n_items, len(idx), svc.ws.latent_layer),
                             present=state.present, projection=state.projection, height=640)
    panels = panel_figures(svc, state, selection)
    summary_fig, summary = summary_view(svc, state)
    return {"latent": latent, "summary": summary_fig, "topk": panels["topk"], "heatmap": panels["heatmap"],
            "argmax": panels["argmax"], "confusion": panels["confusion"], "group": panels["group"],
            "summary_data": summary}


def settings_rows(meta: AppMeta, state: ViewState, view: dict, selection=None) -> list[tuple[str, str]]:
    """The settings table of an export."""
    counts = view["summary_data"]["counts"]
    rows = [
        ("data set", f"{meta.dataset} ({meta.n_items:,} items, model accuracy {meta.accuracy:.1%})"),
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
        ("group", view["group"]),
        ("projection", PROJECTION_NAMES.get(state.projection, state.projection)),
        ("colour", COLOR_NAMES[state.color] + (f" (unit {state.neuron})" if state.color == "neuron" else "")),
    ]
    if selection is not None and len(selection):
        rows.append(("selection", f"{len(selection):,} items drawn in the latent view"))
    return rows
