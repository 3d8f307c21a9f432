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


@dataclass(frozen=True)
class QueryAccuracy:
    """Query-set accuracy of a sample: per group, per layer and overall.

    Attributes
    ----------
    groups : list of dict
        One row per group non-empty on the full data: ``layer``, ``cls``, ``outcome``,
        ``n_full``, ``n_sample``, ``s1``, ``s2``, ``s3``.
    per_layer : dict
        ``{layer: {"s1": ..., "s2": ..., "s3": ...}}``, means over that layer's groups.
    overall : dict
        ``{"s1": ..., "s2": ..., "s3": ...}``, means over all groups.
    k : int
    unit_mode : str
    """

    groups: list
    per_layer: dict
    overall: dict
    k: int
    unit_mode: str

    def to_dict(self) -> dict:
        return {
            "k": self.k,
            "unit_mode": self.unit_mode,
            "overall": self.overall,
            "per_layer": self.per_layer,
            "groups": self.groups,
        }


def _mean_scores(rows) -> dict[str, float]:
    return {m: float(np.mean([r[m] for r in rows])) for m in ("s1", "s2", "s3")}


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
    """
    k = check_int("k", k, 1)
    check_option("unit_mode", unit_mode, UNIT_MODES)
    if sample.layers != full.layers or sample.n_classes != full.n_classes:
        raise ValueError(
            f"sample and full aggregates differ: layers {sample.layers} vs {full.layers}, "
            f"classes {sample.n_classes} vs {full.n_classes}"
        )
    layers = tuple(layers) if layers is not None else full.layers
    rows = []
    for layer in layers:
        full_agg, sample_agg = full[layer, unit_mode], sample[layer, unit_mode]
        for cls in range(full.n_classes):
            for outcome in OUTCOMES:
                f = answer(full_agg, k, cls, outcome)
                if f.count == 0:
                    continue
                s = answer(sample_agg, k, cls, outcome)
                rows.append({"layer": layer, "cls": cls, "outcome": outcome,
                             "n_full": f.count, "n_sample": s.count, **compare_group(s, f)})
    if not rows:
        raise ValueError("the full data has no non-empty group; nothing to evaluate")
    per_layer = {layer: _mean_scores([r for r in rows if r["layer"] == layer]) for layer in layers}
    return QueryAccuracy(rows, per_layer, _mean_scores(rows), k, unit_mode)
