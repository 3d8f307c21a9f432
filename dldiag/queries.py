"""The query sets S1–S3 of the report (Table III) per group, and their accuracy.

A *group* is (layer, class, outcome); the query sets are answered for every group that is
non-empty on the full data, from :class:`~dldiag.activations.Aggregates` of the full data and
of a sample, and scored with :mod:`dldiag.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_int, check_option
from .activations import OUTCOMES, UNIT_MODES, Aggregates, LayerAggregates
from .metrics import MISSING_SCORES, cosine_distance, js_distance, precision_at_k

__all__ = [
    "GroupAnswer",
    "answer",
    "top_k",
    "QueryAccuracy",
    "evaluate",
    "compare_group",
    "s1_trivial",
    "answer_rows",
    "item_mask",
    "trivial_note",
    "summarise_groups",
]


def top_k(mean: np.ndarray, k: int) -> np.ndarray:
    """S1: the ``k`` units with the highest mean activation, ties broken by lower unit index.

    ``k`` larger than the number of units returns every unit.

    Examples
    --------
    >>> top_k(np.array([0.5, 2.0, 0.5, 1.0]), 3)
    array([1, 3, 0])
    """
    k = min(check_int("k", k, 1), mean.size)
    neg = -np.asarray(mean)
    # Only units at or above the k-th largest mean can be in the top k; sorting just those by
    # (mean desc, unit asc) gives the same prefix as sorting every unit of a 4704-unit layer.
    if k < mean.size:
        cand = np.flatnonzero(neg <= np.partition(neg, k - 1)[k - 1])
    else:
        cand = np.arange(mean.size)
    return cand[np.lexsort((cand, neg[cand]))][:k]


@dataclass(frozen=True)
class GroupAnswer:
    """The three query sets for one group.

    Attributes
    ----------
    count : int
        Items in the group.
    top : ndarray of int
        S1: the top-k units.
    mean : ndarray of float
        S2: mean activation per unit (zeros if the group is empty).
    argmax_dist : ndarray of float
        S3: share of the group's items whose maximally activated unit is each unit.
    """

    count: int
    top: np.ndarray
    mean: np.ndarray
    argmax_dist: np.ndarray


def answer(agg: LayerAggregates, k: int, cls=None, outcome=None, predicted=None) -> GroupAnswer:
    """Answer S1(k), S2 and S3 for the group (``cls``, ``outcome``, ``predicted``) of a layer."""
    count, sums, argmax_counts = agg.group(cls, outcome, predicted)
    if count == 0:
        zeros = np.zeros(agg.n_units)
        return GroupAnswer(0, np.empty(0, dtype=np.int64), zeros, zeros)
    mean = sums / count
    return GroupAnswer(count, top_k(mean, k), mean, argmax_counts / count)


def item_mask(y_true, y_pred, cls=None, outcome=None, predicted=None, selection=None) -> np.ndarray:
    """Boolean mask of the items in the group (``cls``, ``outcome``, ``predicted``), ``None`` meaning any.

    The item-level twin of :meth:`~dldiag.activations.LayerAggregates.cell_mask`; with
    ``selection`` (indices into ``y_true``) only those items can be in it.

    Examples
    --------
    >>> item_mask([0, 0, 1], [0, 1, 1], outcome="incorrect").tolist()
    [False, True, False]
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    mask = np.ones(len(y_true), dtype=bool)
    if selection is not None:
        mask[:] = False
        mask[np.asarray(selection, dtype=np.int64)] = True
    if cls is not None:
        mask &= y_true == int(cls)
    if predicted is not None:
        mask &= y_pred == int(predicted)
    if outcome is not None:
        check_option("outcome", outcome, OUTCOMES)
        mask &= (y_true == y_pred) if outcome == "correct" else (y_true != y_pred)
    return mask


def answer_rows(x, k: int, winners=None) -> GroupAnswer:
    """S1(k), S2 and S3 of a group from its items' activations ``x`` (n, units), row by row.

    The mean is taken in float64 (so float16 rows lose nothing more in the sum), and each
    item's arg-max unit is ``winners`` when given (taken at full precision elsewhere), else
    ``x.argmax(axis=1)`` (ties to the lowest unit, as the streaming pass).
    """
    x = np.asarray(x)
    n, units = x.shape
    if n == 0:
        zeros = np.zeros(units)
        return GroupAnswer(0, np.empty(0, dtype=np.int64), zeros, zeros)
    mean = x.mean(axis=0, dtype=np.float64)
    winners = x.argmax(axis=1) if winners is None else np.asarray(winners)
    if winners.shape != (n,):
        raise ValueError(f"winners must hold one unit per item, shape ({n},); got {winners.shape}")
    return GroupAnswer(n, top_k(mean, k), mean, np.bincount(winners, minlength=units) / n)


def compare_group(sample: GroupAnswer, full: GroupAnswer) -> dict[str, float]:
    """S1 precision, S2 cosine distance and S3 JS distance of a sample's answer vs the full one."""
    if full.count == 0:
        raise ValueError("the group is empty on the full data; it has no reference answer")
    if sample.count == 0:
        return dict(MISSING_SCORES)
    return {
        "s1": precision_at_k(sample.top, full.top),
        "s2": cosine_distance(sample.mean, full.mean),
        "s3": js_distance(sample.argmax_dist, full.argmax_dist),
    }


def s1_trivial(n_units: int, k: int) -> bool:
    """Whether S1 is 1 by construction: a layer with at most ``k`` units has every unit in both
    top-k sets, whatever the sample.

    Examples
    --------
    >>> s1_trivial(10, 10), s1_trivial(11, 10)
    (True, False)
    """
    return int(n_units) <= int(k)


def trivial_note(n_units: int, k: int) -> str:
    """Why a layer's S1 is left out of the S1 means, for JSON and tables."""
    return f"S1 trivial at k={k}: {n_units} units <= k, every unit is in both top-k sets"


#: Reason given for a None overall S1 (every layer has at most k units).
ALL_TRIVIAL_NOTE = ("S1 trivial at k={k} in every layer (each has <= k units): no layer gives S1 "
                    "information; use a smaller k")


@dataclass(frozen=True)
class QueryAccuracy:
    """Query-set accuracy of a sample: per group, per layer and overall.

    Attributes
    ----------
    groups : list of dict
        One row per group non-empty on the full data: ``layer``, ``cls``, ``outcome``,
        ``n_full``, ``n_sample``, ``s1``, ``s2``, ``s3``, ``s1_trivial``. A group of a layer with
        at most ``k`` units keeps its ``s1`` (1, or 0 if the sample lacks the group) but is
        flagged ``s1_trivial``.
    per_layer : dict
        ``{layer: {"s1", "s2", "s3", "n_units", "s1_trivial"}}``, means over that layer's groups;
        ``s1`` is None for a trivial layer, and ``s1_note`` says why.
    overall : dict
        ``{"s1": ..., "s2": ..., "s3": ...}``, means over all groups; S1's over the groups of
        the non-trivial layers only, None when every layer is trivial (see :attr:`s1_note`).
    k : int
    unit_mode : str
    s1_trivial_layers : tuple of str
        Layers left out of the S1 means (at most ``k`` units in ``unit_mode``).
    """

    groups: list
    per_layer: dict
    overall: dict
    k: int
    unit_mode: str
    s1_trivial_layers: tuple = ()

    @property
    def s1_note(self) -> str | None:
        """Why ``overall["s1"]`` is None; None when it is a number."""
        return ALL_TRIVIAL_NOTE.format(k=self.k) if self.overall["s1"] is None else None

    def to_dict(self) -> dict:
        return {
            "k": self.k,
            "unit_mode": self.unit_mode,
            "overall": self.overall,
            "s1_trivial_layers": list(self.s1_trivial_layers),
            "s1_note": self.s1_note,
            "per_layer": self.per_layer,
            "groups": self.groups,
        }


def _mean(values: np.ndarray) -> float | None:
    # None, not NaN: a layer without groups (or without S1 information) has no mean to show
    return float(np.mean(values)) if values.size else None


def summarise_groups(scores: dict, layer_index, layers, n_units, k: int) -> tuple[dict, dict]:
    """Per-layer and overall means of group scores, S1 without the layers where it is trivial.

    Parameters
    ----------
    scores : dict
        ``{"s1": ..., "s2": ..., "s3": ...}``, one value per group.
    layer_index : sequence of int
        Index into ``layers`` of each group's layer.
    layers : sequence of str
    n_units : sequence of int
        Units of each layer (in the unit mode of the scores).
    k : int
        Top-k of the S1 scores.

    Returns
    -------
    per_layer, overall : dict
        As :attr:`QueryAccuracy.per_layer` and :attr:`QueryAccuracy.overall`.

    Notes
    -----
    A layer with at most ``k`` units has S1 = 1 in every group the sample holds, whatever the
    sample: it would only pull the S1 means towards 1. Its S2 and S3 still count.
    """
    layer_index = np.asarray(layer_index)
    cols = {m: np.asarray(scores[m], dtype=np.float64) for m in ("s1", "s2", "s3")}
    trivial = np.array([s1_trivial(n, k) for n in n_units], dtype=bool)
    per_layer = {}
    for li, layer in enumerate(layers):
        rows = layer_index == li
        entry = {m: _mean(v[rows]) for m, v in cols.items()}
        entry.update(n_units=int(n_units[li]), s1_trivial=bool(trivial[li]))
        if trivial[li]:
            entry["s1"] = None
            entry["s1_note"] = trivial_note(n_units[li], k)
        per_layer[layer] = entry
    counted = ~trivial[layer_index] if len(layer_index) else np.zeros(0, dtype=bool)
    overall = {"s1": _mean(cols["s1"][counted]), "s2": _mean(cols["s2"]), "s3": _mean(cols["s3"])}
    return per_layer, overall


def evaluate(sample: Aggregates, full: Aggregates, *, k: int = 10, unit_mode: str = "flat",
             layers=None) -> QueryAccuracy:
    """Score a sample's query-set answers against the full data's, group by group.

    Parameters
    ----------
    sample, full : Aggregates
        Aggregates of the sample pass and of the full pass (same layers and classes).
    k : int
        Size of the top-k set of S1.
    unit_mode : {"flat", "channel"}
        Units as flattened elements or as conv channels.
    layers : sequence of str, optional
        Restrict to these layers (default: all of ``full``).

    Returns
    -------
    QueryAccuracy
        S1 means leave out the layers with at most ``k`` units (:func:`summarise_groups`); if
        every layer has so few, ``overall["s1"]`` is None and ``s1_note`` says why (rather
        than an error, so that S2 and S3 are still answered at any k).
    """
    k = check_int("k", k, 1)
    check_option("unit_mode", unit_mode, UNIT_MODES)
    if sample.layers != full.layers or sample.n_classes != full.n_classes:
        raise ValueError(
            f"sample and full aggregates differ: layers {sample.layers} vs {full.layers}, "
            f"classes {sample.n_classes} vs {full.n_classes}"
        )
    layers = tuple(layers) if layers is not None else full.layers
    n_units = [full[layer, unit_mode].n_units for layer in layers]
    rows, layer_index = [], []
    for li, layer in enumerate(layers):
        full_agg, sample_agg = full[layer, unit_mode], sample[layer, unit_mode]
        trivial = s1_trivial(n_units[li], k)
        for cls in range(full.n_classes):
            for outcome in OUTCOMES:
                f = answer(full_agg, k, cls, outcome)
                if f.count == 0:
                    continue
                s = answer(sample_agg, k, cls, outcome)
                rows.append({"layer": layer, "cls": cls, "outcome": outcome,
                             "n_full": f.count, "n_sample": s.count, **compare_group(s, f),
                             "s1_trivial": trivial})
                layer_index.append(li)
    if not rows:
        raise ValueError("the full data has no non-empty group; nothing to evaluate")
    scores = {m: [r[m] for r in rows] for m in ("s1", "s2", "s3")}
    per_layer, overall = summarise_groups(scores, layer_index, layers, n_units, k)
    trivial_layers = tuple(layer for layer in layers if per_layer[layer]["s1_trivial"])
    return QueryAccuracy(rows, per_layer, overall, k, unit_mode, trivial_layers)
