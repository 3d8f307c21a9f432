"""What the app's callbacks ask of a workspace, as plain Python over the disk cache.

:class:`Diagnosis` wraps a read-only :class:`~dldiag.artifacts.Workspace`. It never keeps
results in memory between calls. A sample's activations are written once, by one forward pass
over the sample, to its store (:mod:`dldiag.sample_store`: memory-mapped; float32, float16 for a
large sample);
its aggregates (one entry per layer and unit mode, so a panel reads only the layer it shows)
and score tables are computed from the store and kept in the workspace's disk cache, keyed by
the content hash of the sample's item indices. Several server workers share the cache and the
stores, and nothing else.

With the design-weighted estimator (``ViewState.estimator == "weighted"``) the sample's
answers are the store's rows summed with the design weights of the sampler that drew it
(:func:`dldiag.weighting.design_weights`); their entries are kept beside the plain ones,
keyed also by the estimator and the weights' hash.

A group's estimate from the sample alone (:meth:`Diagnosis.group_estimate`, the bootstrap of
:mod:`dldiag.estimates`) reads the group's rows from the same store and keeps each group's
result in the cache, so that returning to a group costs one small read. A selection drawn in
the latent view is answered from the store at once; its exact answer (a pass over every
selected item) is :meth:`Diagnosis.exact_pass`, which the app runs as a background job.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass

import numpy as np

from ..activations import OUTCOMES, UNIT_MODES, Aggregates, LayerAggregates
from ..cache import content_key
from ..estimates import (DEFAULT_FPC, DEFAULT_LEVEL, DEFAULT_N_BOOT, INTERVALS, GroupEstimate, Interval, NoEstimate,
                         estimate_group, group_rng)
from ..metrics import MISSING_SCORES, cosine_distance, js_distance
from ..sample_store import DTYPES as STORE_DTYPES
from ..queries import GroupAnswer, answer, compare_group, item_mask, summarise_groups
from .._validation import check_option
from ..weighting import ESTIMATORS, WeightedLayerAggregates, design_weights
from .state import K_RANGE, AppMeta, ViewState

__all__ = ["Diagnosis", "GroupResult", "RATIO_SAMPLERS", "build_meta", "SampleParams", "precision_curve",
           "score_table", "summarise_scores", "pack_aggregates", "unpack_aggregates", "pack_estimate",
           "unpack_estimate", "K_MAX", "ESTIMATE_INLINE_VALUES"]

log = logging.getLogger(__name__)

# 2: packed sample aggregates, score tables; 3: written only by passes that hold their model
# alone (entries of version 2 may hold other requests' batches) and kept in the samples tier;
# 5: a sample's entries computed from its store, keys with the store's dtype setting
APP_CACHE_VERSION = 5
#: Above this many bytes of float32 activations a sample's store is kept in float16 ("auto").
AUTO_FLOAT16_BYTES = 512 * 2**20
RATIO_SAMPLERS = ("gmm-full", "gmm-spherical", "max-margin", "gmm-full-weighted",
                  "gmm-spherical-weighted", "max-margin-weighted")
#: The fit whose likelihood ratio the hover shows when the current sampler has none.
FALLBACK_RATIO_SAMPLER = "max-margin"
DEFAULT_SAMPLER = "max-margin"
#: Largest k of the app's top-k control: score tables hold S1 for every k up to it.
K_MAX = K_RANGE[1]
#: Most activation values (a group's sample rows times the layer's units) whose bootstrap runs
#: in the request that draws the panels; above it the panels draw at once and the estimate
#: follows (:meth:`Diagnosis.estimate_later`). Measured: 2.35e7 values (5,000 rows of conv1's
#: 4,704 units, a 5 % sample of 10^5) take 1.7 s; 2.35e6 (the 10k Fashion-MNIST split) 0.2 s.
ESTIMATE_INLINE_VALUES = 5_000_000


@dataclass(frozen=True)
class SampleParams:
    sampler: str
    fraction: float
    j: float
    seed: int

    @classmethod
    def from_state(cls, state: ViewState) -> "SampleParams":
        return cls(state.sampler, float(state.fraction), float(state.j), int(state.seed))

    def to_dict(self) -> dict:
        return {"sampler": self.sampler, "fraction": self.fraction, "j": self.j, "seed": self.seed}


@dataclass(frozen=True)
class GroupResult:
    """The query-set answers of one group on the sample and on the full data, and their scores."""

    sample: GroupAnswer
    full: GroupAnswer | None  # None while a selection's exact answer is being computed
    scores: dict | None  # None when the group is empty on the full data, or its answer is not known yet
    unit_shape: tuple[int, ...]
    label: str
    n_full: int  # items of D in the group (known from the predictions even before the exact answer)


def build_meta(ws, *, samplers=None, projections=None, default_layer=None,
               default_projection="umap") -> AppMeta:
    """The :class:`AppMeta` of a workspace: names and options for the layout and the parser."""
    from ..projections import PROJECTIONS, offered_projections
    from ..sampling import SAMPLER_NAMES, make_sampler

    names = tuple(samplers) if samplers else tuple(SAMPLER_NAMES)
    probes = {name: make_sampler(name) for name in names}
    return AppMeta(
        dataset=ws.dataset.name,
        n_items=int(ws.n_items),
        class_names=tuple(ws.dataset.class_names),
        layers=tuple(ws.layers),
        latent_layer=ws.latent_layer,
        samplers=names,
        uses_j={n: bool(s.uses_j) for n, s in probes.items()},
        randomised={n: bool(s.randomised) for n, s in probes.items()},
        projections=offered_projections(tuple(projections) if projections else tuple(PROJECTIONS), ws.n_items),
        accuracy=float(ws.accuracy),
        default_sampler=DEFAULT_SAMPLER if DEFAULT_SAMPLER in names else names[0],
        default_layer=default_layer if default_layer in ws.layers else ws.latent_layer,
        default_projection=default_projection,
        unit_counts={key: agg.n_units for key, agg in ws.full.by_layer.items()},
    )


def pack_aggregates(agg: LayerAggregates) -> dict:
    """A sample's layer aggregates in a compact form for the cache (exact, see :func:`unpack_aggregates`).

    Plain arrays only (the cache never unpickles): a weighted sample's aggregates
    (:class:`~dldiag.weighting.WeightedLayerAggregates`) add their per-cell ``weight_sums``.

    A sample fills few confusion cells, and each item adds one arg-max count: only the sums of
    non-empty cells and the non-zero arg-max counts are kept (a 5 % sample of Fashion-MNIST:
    ~2 MB instead of ~8 MB over all layers).
    """
    c = agg.counts.shape[0]
    cells = np.flatnonzero(agg.counts.ravel())
    flat_argmax = agg.argmax_counts.ravel()
    nz = np.flatnonzero(flat_argmax)
    packed = {
        "cells": cells,
        "sums": agg.sums.reshape(c * c, -1)[cells],
        "counts": agg.counts,
        "argmax_index": nz,
        "argmax_value": flat_argmax[nz],
        "unit_shape": np.array(agg.unit_shape, dtype=np.int64),
    }
    if isinstance(agg, WeightedLayerAggregates):  # weighted arg-max totals are floats, kept as such
        packed["weight_sums"] = agg.weight_sums
    return packed


def unpack_aggregates(arrays: dict) -> LayerAggregates:
    """The :class:`LayerAggregates` that :func:`pack_aggregates` packed (bit for bit).

    A :class:`~dldiag.weighting.WeightedLayerAggregates` when the entry holds ``weight_sums``.
    """
    counts = np.asarray(arrays["counts"])
    c = counts.shape[0]
    n_units = arrays["sums"].shape[1]
    weighted = "weight_sums" in arrays
    sums = np.zeros((c * c, n_units), dtype=np.float64)
    sums[arrays["cells"]] = arrays["sums"]
    argmax = np.zeros(c * c * n_units, dtype=np.float64 if weighted else np.int64)
    argmax[arrays["argmax_index"]] = arrays["argmax_value"]
    parts = (sums.reshape(c, c, n_units), counts, argmax.reshape(c, c, n_units),
             tuple(int(v) for v in arrays["unit_shape"]))
    if weighted:
        return WeightedLayerAggregates(*parts, weight_sums=np.asarray(arrays["weight_sums"]))
    return LayerAggregates(*parts)


_ESTIMATE_ARRAYS = ("mean", "mean_low", "mean_high", "top", "stay", "argmax_dist", "dist_low", "dist_high")
_SCORES = ("s1", "s2", "s3")


def pack_estimate(est: GroupEstimate | NoEstimate) -> dict:
    """A group's estimate as plain arrays for the cache (exact, see :func:`unpack_estimate`)."""
    if isinstance(est, NoEstimate):
        return {"n": np.array(est.n, dtype=np.int64), "reason": np.array(est.reason)}
    packed = {name: np.asarray(getattr(est, name)) for name in _ESTIMATE_ARRAYS}
    packed["settings"] = np.array([est.n, est.k, est.n_boot, INTERVALS.index(est.interval), int(est.s1_trivial)],
                                  dtype=np.int64)
    packed["level"] = np.array([est.level, est.shrink], dtype=np.float64)
    packed["scores"] = np.array([[getattr(est, m).value, getattr(est, m).low, getattr(est, m).high]
                                 for m in _SCORES], dtype=np.float64)
    packed["replicates"] = np.stack([np.asarray(est.replicates[m], dtype=np.float64) for m in _SCORES])
    return packed


def unpack_estimate(arrays: dict) -> GroupEstimate | NoEstimate:
    """The :class:`~dldiag.estimates.GroupEstimate` (or :class:`~dldiag.estimates.NoEstimate`)
    that :func:`pack_estimate` packed."""
    if "settings" not in arrays:
        return NoEstimate(int(arrays["n"]), str(arrays["reason"]))
    n, k, n_boot, interval, trivial = (int(v) for v in arrays["settings"])
    scores = {m: Interval(*(float(v) for v in row)) for m, row in zip(_SCORES, arrays["scores"])}
    replicates = {m: np.asarray(row) for m, row in zip(_SCORES, arrays["replicates"])}
    level, shrink = (float(v) for v in arrays["level"])
    return GroupEstimate(n=n, k=k, n_boot=n_boot, level=level, interval=INTERVALS[interval],
                         **{name: np.asarray(arrays[name]) for name in _ESTIMATE_ARRAYS}, **scores,
                         s1_trivial=bool(trivial), replicates=replicates, shrink=shrink)


def _answer_groups(full: Aggregates, layers, n_classes: int, unit_mode: str) -> list:
    """``[(layer index, class, outcome, GroupAnswer with top K_MAX)]`` of every group non-empty on ``full``.

    In the order of :func:`dldiag.queries.evaluate`: layers, then classes, then outcomes.
    """
    rows = []
    for li, layer in enumerate(layers):
        agg = full[layer, unit_mode]
        for cls in range(n_classes):
            for outcome in OUTCOMES:
                f = answer(agg, K_MAX, cls, outcome)
                if f.count:
                    rows.append((li, cls, outcome, f))
    return rows


def precision_curve(sample_top: np.ndarray, full_top: np.ndarray, k_max: int) -> np.ndarray:
    """S1 precision for every k in 1..k_max from two top-``k_max`` lists (ranked, best first).

    A top-k set is a prefix of the ranked list (:func:`dldiag.queries.top_k` sorts once), so
    a unit is in both top-k sets exactly when k exceeds both of its ranks. Equal to
    ``precision_at_k(sample_top[:k], full_top[:k])`` for each k (with k capped at the list size).
    """
    m = len(full_top)
    if len(sample_top) != m or m == 0:
        raise ValueError(f"ranked lists must have the same, non-zero length; got {len(sample_top)} and {m}")
    sample_top = np.asarray(sample_top, dtype=np.int64)
    full_top = np.asarray(full_top, dtype=np.int64)
    size = int(max(sample_top.max(), full_top.max())) + 1
    rank_s = np.full(size, m, dtype=np.int64)  # m: not in the sample's list
    rank_s[sample_top] = np.arange(m)
    r = rank_s[full_top]
    inside = r < m
    last = np.maximum(np.arange(m)[inside], r[inside])  # a unit is in both top-k sets for k > last
    both = np.cumsum(np.bincount(last, minlength=m))  # both[k-1] = |S_k ∩ F_k|
    ks = np.minimum(np.arange(1, k_max + 1), m)
    return both[ks - 1] / ks


def score_table(sample: Aggregates, full_answers: list, layers, unit_mode: str) -> dict:
    """Scores of a sample in every group: S1 for k = 1..K_MAX, S2, S3, and the group's layer.

    Returns
    -------
    dict of arrays: ``s1`` (G, K_MAX), ``s2`` (G,), ``s3`` (G,), ``layer`` (G,) layer index,
    ``n_sample`` (G,) items of the group in the sample.
    """
    g = len(full_answers)
    s1 = np.zeros((g, K_MAX))
    s2 = np.ones(g)
    s3 = np.ones(g)
    layer_idx = np.zeros(g, dtype=np.int64)
    n_sample = np.zeros(g, dtype=np.int64)
    for row, (li, cls, outcome, f) in enumerate(full_answers):
        layer_idx[row] = li
        s = answer(sample[layers[li], unit_mode], K_MAX, cls, outcome)
        n_sample[row] = s.count
        if s.count:
            # compare_group's S2 and S3 (its S1 is the k = K_MAX point of the curve)
            s1[row] = precision_curve(s.top, f.top, K_MAX)
            s2[row] = cosine_distance(s.mean, f.mean)
            s3[row] = js_distance(s.argmax_dist, f.argmax_dist)
        else:
            s1[row], s2[row], s3[row] = (MISSING_SCORES[m] for m in ("s1", "s2", "s3"))
    return {"s1": s1, "s2": s2, "s3": s3, "layer": layer_idx, "n_sample": n_sample}


def summarise_scores(table: dict, layers, k: int, n_units) -> dict:
    """Means over groups (per layer and overall) of a score table at top-k ``k``.

    ``n_units`` holds each layer's number of units: S1 means leave out the layers with at most
    ``k`` units, as :func:`dldiag.queries.evaluate` does (both call
    :func:`~dldiag.queries.summarise_groups`, so that the numbers agree to the bit).
    """
    cols = {"s1": np.asarray(table["s1"])[:, k - 1], "s2": np.asarray(table["s2"]), "s3": np.asarray(table["s3"])}
    per_layer, overall = summarise_groups(cols, table["layer"], layers, n_units, k)
    return {"overall": overall, "per_layer": per_layer,
            "s1_trivial_layers": [layer for layer in layers if per_layer[layer]["s1_trivial"]]}


def _digest(indices: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()


def _exact_id(items: np.ndarray) -> tuple[str, ...]:
    """What names the exact pass over ``items`` in the cache (apart from the samples' entries)."""
    return ("exact", _digest(items))


def _pass_id(indices: np.ndarray, weights: np.ndarray | None) -> tuple[str, ...]:
    """What names a sample's pass in the cache keys: the indices' hash, and for a weighted pass
    the estimator and the weights' hash (the same items with other weights are another pass)."""
    if weights is None:
        return (_digest(indices),)
    w = np.ascontiguousarray(weights, dtype=np.float64)
    return (_digest(indices), "weighted", hashlib.sha256(w.tobytes()).hexdigest())


class Diagnosis:
    """The app's questions to a workspace; stateless between calls except for the disk cache.

    Parameters
    ----------
    ws : Workspace
    sampler_seed : int
        Seed of the sampler fits (the cached fits are made with it).
    sample_cache : ArrayCache, optional
        Where the sample passes' aggregates and score tables go (default: the workspace's
        samples tier, capped and least-recently-used, so that no stream of requests evicts the
        fits and projections of the core tier). A benchmark gives a fresh, temporary one here
        so that every sample it asks for is new.
    store_dtype : {"auto", "float16", "float32"}
        How a sample's activations are kept on disk (:mod:`dldiag.sample_store`): every panel,
        group, selection, estimate and neuron value of a sample is read from its store, written
        by one forward pass over the sample. "auto" keeps float32 (the forward pass's values)
        unless the sample's float32 activations would exceed :data:`AUTO_FLOAT16_BYTES`, then
        halves them to float16: storage is cheap for small samples and a rounding-level change
        of a near-tie in a top-k list is then not worth it; at scale it is.

    Notes
    -----
    The exact answer of a selection (every selected item passed forward) is not computed by
    :meth:`group`, which answers from the sample at once: :meth:`exact_pass` computes it (the
    app runs it in a background job) and :meth:`group` reads it once it is cached.
    """

    def __init__(self, ws, *, sampler_seed: int = 0, sample_cache=None, store_dtype: str = "auto"):
        self.ws = ws
        self.sampler_seed = int(sampler_seed)
        self.store_dtype = check_option("store_dtype", store_dtype, ("auto",) + STORE_DTYPES)
        self.cache = sample_cache if sample_cache is not None else ws.sample_cache
        self._stats = None  # per-feature mean and spread of D, for previews of feature vectors
        # The full data's answers (top K_MAX) of every non-empty group, per unit mode: read-only
        # reference of every score table, computed once here like the workspace's own arrays.
        self.full_answers = {mode: _answer_groups(ws.full, ws.layers, ws.dataset.n_classes, mode)
                             for mode in UNIT_MODES}

    def _get(self, key: str):
        return self.cache.get(key)

    # ---------------------------------------------------------------- samples
    def fitted(self, name: str):
        """A fitted sampler from the cache (fitted and cached on a miss)."""
        return self.ws.fitted_sampler(name, seed=self.sampler_seed)

    def sample_indices(self, params: SampleParams) -> np.ndarray:
        sampler = self.fitted(params.sampler)
        return sampler.sample(params.fraction, j=params.j, seed=params.seed)

    def sample_info(self, params: SampleParams) -> dict:
        return self.fitted(params.sampler).sample_info(params.fraction, j=params.j, seed=params.seed)

    def random_indices(self, fraction: float, seed: int) -> np.ndarray:
        return self.fitted("random").sample(fraction, seed=seed)

    # ---------------------------------------------------------------- cached passes
    def _agg_key(self, pass_id: tuple[str, ...], layer: str, unit_mode: str) -> str:
        return content_key("app-agg", APP_CACHE_VERSION, self.ws.key, self.store_dtype, *pass_id, layer, unit_mode)

    def _done_key(self, pass_id: tuple[str, ...]) -> str:
        return content_key("app-pass", APP_CACHE_VERSION, self.ws.key, self.store_dtype, *pass_id)

    def _scores_key(self, pass_id: tuple[str, ...], unit_mode: str) -> str:
        return content_key("app-scores", APP_CACHE_VERSION, self.ws.key, self.store_dtype, *pass_id, unit_mode, K_MAX)

    def dtype_for(self, n_items: int) -> str:
        """The dtype a store of ``n_items`` items is kept in (see ``store_dtype``)."""
        if self.store_dtype != "auto":
            return self.store_dtype
        per_item = sum(self.ws.full[layer, mode].n_units for layer in self.ws.layers for mode in UNIT_MODES) * 4
        return "float32" if int(n_items) * per_item <= AUTO_FLOAT16_BYTES else "float16"

    def store(self, indices: np.ndarray):
        """The sample's activation store (:mod:`dldiag.sample_store`), written by one pass on first use."""
        indices = np.asarray(indices, dtype=np.int64)
        return self.ws.sample_store(indices, dtype=self.dtype_for(len(indices)))

    def _sample_aggregates(self, indices: np.ndarray, weights: np.ndarray | None) -> Aggregates:
        """The sample's aggregates read from its store: plain, or with ``weights`` the weighted ones."""
        if len(indices) == 0:  # nothing to store: the pass's empty answer, with each layer's width
            return self.ws.sample_pass(indices).aggregates
        store = self.store(indices)
        by_layer = {(layer, mode): store.aggregates(layer, mode, weights=weights)
                    for layer in self.ws.layers for mode in UNIT_MODES}
        return Aggregates(tuple(self.ws.layers), int(self.ws.dataset.n_classes), by_layer)

    @staticmethod
    def _check_weights(indices: np.ndarray, weights) -> np.ndarray | None:
        """``weights`` as float64, one per index; None (a plain pass) for an empty sample,
        which a weighted pass cannot take and whose answers are empty either way."""
        if weights is None or len(indices) == 0:
            return None
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != indices.shape:
            raise ValueError(f"weights must hold one weight per index ({len(indices)}); got shape {w.shape}")
        return w

    def ensure_pass(self, indices: np.ndarray, weights: np.ndarray | None = None) -> tuple[str, ...]:
        """Run the forward pass over ``indices`` unless cached; return what names it in the cache.

        Stores the aggregates of every layer and unit mode (for the panels) and the sample's
        score table in both unit modes (for the summary, any k up to :data:`K_MAX`). With
        ``weights`` (one design weight per index) the pass is the weighted one and its entries
        are the design-weighted estimates.
        """
        indices = np.asarray(indices, dtype=np.int64)
        weights = self._check_weights(indices, weights)
        pass_id = _pass_id(indices, weights)
        done = self._done_key(pass_id)
        if self._get(done) is not None:
            return pass_id
        with self.cache.single_flight("|".join(pass_id)):  # callbacks asking for one new sample: one pass
            if self._get(done) is not None:
                return pass_id
            aggregates = self._sample_aggregates(indices, weights)
            for mode in UNIT_MODES:
                table = score_table(aggregates, self.full_answers[mode], self.ws.layers, mode)
                self.cache.put(self._scores_key(pass_id, mode), table)
            for (layer, mode), agg in aggregates.by_layer.items():
                self.cache.put(self._agg_key(pass_id, layer, mode), pack_aggregates(agg))
            self.cache.put(done, {"n": np.array(len(indices))})
        return pass_id

    def _read_or_pass(self, indices: np.ndarray, key_of, weights: np.ndarray | None = None) -> dict | None:
        """The entry ``key_of(pass_id)`` of a sample's pass: from the cache, else after the pass.

        The samples tier evicts entry by entry, so a sample can have lost one entry and kept its
        "done" mark: then the mark is dropped and the pass stored again. None if the cache
        still cannot give the entry back (a full disk): the caller computes it directly.
        """
        indices = np.asarray(indices, dtype=np.int64)
        pass_id = _pass_id(indices, self._check_weights(indices, weights))
        for _ in range(2):
            arrays = self._get(key_of(pass_id))
            if arrays is not None:
                return arrays
            if self.ensure_pass(indices, weights) and self._get(key_of(pass_id)) is None:
                self.cache.delete(self._done_key(pass_id))
        return self._get(key_of(pass_id))

    def layer_aggregates(self, indices: np.ndarray, layer: str, unit_mode: str,
                         weights: np.ndarray | None = None) -> LayerAggregates:
        """Aggregates of the items ``indices`` for one layer, from the cache (pass on a miss).

        With ``weights`` (one design weight per index), the weighted aggregates
        (:class:`~dldiag.weighting.WeightedLayerAggregates`).
        """
        indices = np.asarray(indices, dtype=np.int64)
        weights = self._check_weights(indices, weights)
        arrays = self._read_or_pass(indices, lambda p: self._agg_key(p, layer, unit_mode), weights)
        if arrays is None:
            return self._sample_aggregates(indices, weights)[layer, unit_mode]
        return unpack_aggregates(arrays)

    def aggregates(self, indices: np.ndarray, unit_mode: str, weights: np.ndarray | None = None) -> Aggregates:
        """Aggregates of every layer in one unit mode (what :func:`evaluate` reads)."""
        by_layer = {(layer, unit_mode): self.layer_aggregates(indices, layer, unit_mode, weights)
                    for layer in self.ws.layers}
        return Aggregates(tuple(self.ws.layers), int(self.ws.dataset.n_classes), by_layer)

    # ---------------------------------------------------------------- exact answers of selections
    def exact_aggregates(self, items: np.ndarray, layer: str, unit_mode: str) -> LayerAggregates | None:
        """The exact aggregates of ``items`` (all of a selection) if :meth:`exact_pass` has cached them, else None.

        Never runs a pass: a panel asks this and shows the sample's answer while it is None.
        """
        items = np.unique(np.asarray(items, dtype=np.int64))
        arrays = self._get(self._agg_key(_exact_id(items), layer, unit_mode))
        return None if arrays is None else unpack_aggregates(arrays)

    def exact_pass(self, items: np.ndarray, *, on_progress=None, pool=None) -> tuple[str, ...]:
        """Pass every item of ``items`` forward and cache its aggregates in every layer and unit mode.

        What the panels compare a selection's sample answer with. A cached pass is not run
        again; two calls at once for one selection run it once.

        Parameters
        ----------
        items : array of int
            The selected items of D (sorted and made unique here).
        on_progress : callable, optional
            ``on_progress(done, total)`` after each batch.
        pool : ModelPool, optional
            Where to lease the model from (default: the workspace's). A job in a forked
            process gives a pool of its own, so that it waits on no lock of the parent's.

        Returns
        -------
        tuple of str
            What names the pass in the cache.
        """
        items = np.unique(np.asarray(items, dtype=np.int64))
        pass_id = _exact_id(items)
        done = self._done_key(pass_id)
        if self._get(done) is not None:
            return pass_id
        with self.cache.single_flight("|".join(pass_id)):
            if self._get(done) is not None:
                return pass_id
            result = self.ws.sample_pass(items, on_progress=on_progress, pool=pool)
            for (layer, mode), agg in result.aggregates.by_layer.items():
                self.cache.put(self._agg_key(pass_id, layer, mode), pack_aggregates(agg))
            self.cache.put(done, {"n": np.array(len(items))})
        return pass_id

    def sample_weights(self, sampler: str, indices: np.ndarray) -> np.ndarray | None:
        """Design weights of a sample of ``sampler`` (see :func:`dldiag.weighting.design_weights`).

        None when the weights are all equal (random sampling, say): the design-weighted mean is
        then the plain mean, and the plain pass's entries serve.

        Parameters
        ----------
        sampler : str
            The sampler that drew ``indices`` (its fit with this service's ``sampler_seed``).
        indices : array of int
            The sample, as that sampler drew it.
        """
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) == 0:
            return None
        weights = design_weights(self.ws, self.fitted(sampler), indices).weights
        if np.all(weights == weights[0]):
            return None
        return weights

    def _state_weights(self, state: ViewState, indices: np.ndarray) -> np.ndarray | None:
        return self.sample_weights(state.sampler, indices) if state.estimator == "weighted" else None

    # ---------------------------------------------------------------- panels
    def group(self, indices: np.ndarray, state: ViewState, selection=None) -> GroupResult:
        """Answers of the state's group (class, outcome, predicted; within a selection if any).

        Without a selection the reference is the full pass; with one, it is the exact pass over
        all selected items if :meth:`exact_pass` has cached it (else ``full`` is None: the
        sample's answer is shown alone until it is), and the sample is the selected sample
        members, read from the sample's store.

        With ``state.estimator == "weighted"`` the sample's answers are design-weighted:
        ``indices`` must then be the sample that ``state.sampler`` drew (its design weights
        are read from it); pass a state with the plain estimator for any other items (the
        random baseline). Within a selection, each selected sample member keeps the weight it
        has in the whole sample, which is the Hájek estimate of the selection's (domain's)
        mean: the weights say how many items of the data each member stands for, whatever
        the group or region asked about.
        """
        layer, mode = state.layer, state.units
        outcome = None if state.outcome == "all" else state.outcome
        indices = np.asarray(indices, dtype=np.int64)
        weights = self._state_weights(state, indices)
        if selection is not None and len(selection):
            sel = np.unique(np.asarray(selection, dtype=np.int64))
            full_agg = self.exact_aggregates(sel, layer, mode)
            if len(indices):
                store = self.store(indices)
                rows = store.rows_of(sel)
                sample_agg = store.aggregates(layer, mode, rows=rows, weights=None if weights is None else weights[rows])
            else:
                sample_agg = self.layer_aggregates(indices, layer, mode)
        else:
            full_agg = self.ws.full[layer, mode]
            sample_agg = self.layer_aggregates(indices, layer, mode, weights)
        s = answer(sample_agg, state.k, state.cls, outcome, state.predicted)
        if full_agg is None:  # the selection's exact answer is still being computed
            return GroupResult(s, None, None, sample_agg.unit_shape, self.group_label(state, selection),
                               len(self.group_members(state, sel)))
        f = answer(full_agg, state.k, state.cls, outcome, state.predicted)
        scores = compare_group(s, f) if f.count else None  # MISSING_SCORES if the sample lacks it
        return GroupResult(s, f, scores, full_agg.unit_shape, self.group_label(state, selection), f.count)

    def estimate_values(self, indices: np.ndarray, state: ViewState, selection=None) -> int:
        """How many activation values the state's group's bootstrap resamples: its rows of the
        sample's store times the layer's units (what its time grows with)."""
        indices = np.asarray(indices, dtype=np.int64)
        if not len(indices):
            return 0
        outcome = None if state.outcome == "all" else state.outcome
        sel = selection if selection is not None and len(selection) else None
        rows = self.store(indices).members(state.cls, outcome, state.predicted, sel)
        return int(len(rows)) * int(self.ws.full[state.layer, state.units].n_units)

    def estimate_later(self, indices: np.ndarray, state: ViewState, selection=None) -> threading.Thread:
        """Run :meth:`group_estimate` in a thread of its own and return the thread.

        For a bootstrap too large to run in the request that asks for it (see
        :data:`ESTIMATE_INLINE_VALUES`): the panels draw the sample's answer at once and poll
        the cache for the estimate. Two calls for one group compute it once (the second waits
        for the first's result in the cache). A failure is logged; the panels then keep
        saying that the estimate is computing, and the next redraw tries again.
        """
        indices = np.array(indices, dtype=np.int64)
        selection = None if selection is None else np.array(selection, dtype=np.int64)

        def run():
            try:
                self.group_estimate(indices, state, selection)
            except Exception:  # noqa: BLE001 - a thread's failure would otherwise vanish
                log.exception("the estimate of %s failed", self.group_label(state, selection))

        thread = threading.Thread(target=run, name="dldiag-estimate", daemon=True)
        thread.start()
        return thread

    def group_estimate(self, indices: np.ndarray, state: ViewState, selection=None, *,
                       n_boot: int = DEFAULT_N_BOOT, level: float = DEFAULT_LEVEL,
                       seed: int = 0, fpc: bool = DEFAULT_FPC, compute: bool = True) -> GroupEstimate | NoEstimate:
        """How far to trust the sample's answers for the state's group, from the sample alone.

        :meth:`~dldiag.artifacts.Workspace.group_estimate` of the state's group, layer, unit
        mode and k over the sample ``indices`` (within a selection: over the selected sample
        members, with the group's items within the selection as its population for the
        finite-population correction), with the group's rows read from the sample's store. Each result is
        cached, keyed by the sample and the group, so that a group seen before costs one read.

        The bootstrap is of the *plain* mean whatever ``state.estimator`` says. A weighted
        bootstrap would have to resample the weights with the items and recompute every query
        set weighted (Hájek means, weighted top-k and arg-max shares); the library has no such
        bootstrap, and a half-weighted one in the app would be wrong in a way nobody checked.
        The panels say so (:func:`~dldiag.app.figures.estimate_line`) and draw no error bars
        around design-weighted bars.

        Parameters
        ----------
        indices : ndarray of int
            The sample.
        state : ViewState
            Its layer, units, k and group (class, outcome, predicted) are used.
        selection : array of int, optional
            Items of D drawn in the latent view: the group is taken within them.
        n_boot, level, seed
            As for :func:`~dldiag.estimates.estimate_group`.
        compute : bool
            False: only read the cache (None when the estimate is not there).

        Returns
        -------
        GroupEstimate or NoEstimate (or None, see ``compute``)
        """
        sample = indices = np.asarray(indices, dtype=np.int64)
        if selection is not None and len(selection):
            indices = np.intersect1d(indices, np.asarray(selection, dtype=np.int64))
        else:
            selection = None  # as in group(): an empty selection stands for the whole data set
        outcome = None if state.outcome == "all" else state.outcome
        key = content_key("app-estimate", APP_CACHE_VERSION, self.ws.key, _digest(indices), state.layer,
                          state.units, int(state.k), state.cls, outcome, state.predicted, int(n_boot),
                          float(level), int(seed), bool(fpc), None if selection is None else _digest(selection))
        cached = self._get(key)
        if cached is not None:
            return unpack_estimate(cached)
        if not compute:
            return None
        with self.cache.single_flight(key):
            cached = self._get(key)
            if cached is not None:
                return unpack_estimate(cached)
            return self._group_estimate(key, sample, indices, state, selection, outcome, n_boot=n_boot,
                                        level=level, seed=seed, fpc=fpc)

    def _group_estimate(self, key, sample, indices, state, selection, outcome, *, n_boot, level, seed, fpc):
        if len(indices) == 0:  # a selection the sample misses: the library's answer for no item
            est = estimate_group(np.zeros((0, self.ws.full[state.layer, state.units].n_units), dtype=np.float32),
                                 k=state.k, n_boot=n_boot, level=level)
        else:
            population = len(self.group_members(state, selection)) if fpc and selection is not None else None
            if fpc and population is None:
                population = len(self.group_members(state))
            # The group's rows of the sample's store (float16 by default: see dldiag.sample_store).
            store = self.store(sample)
            rows = store.members(state.cls, outcome, state.predicted, selection)
            x = store.rows(state.layer, state.units)
            est = estimate_group(np.asarray(x[rows] if len(rows) else x[:0], dtype=np.float32), k=state.k,
                                 n_boot=n_boot, level=level, seed=group_rng(seed, state.cls, outcome, state.predicted),
                                 population=population if fpc else None)
        self.cache.put(key, pack_estimate(est))
        return est

    def group_members(self, state: ViewState, selection=None) -> np.ndarray:
        """Items of D in the state's group (class, predicted class, outcome; within a selection)."""
        outcome = None if state.outcome == "all" else state.outcome
        return np.flatnonzero(item_mask(self.ws.y_true, self.ws.y_pred, state.cls, outcome, state.predicted,
                                        selection))

    def gallery(self, state: ViewState, sample: np.ndarray, selection=None, limit: int = 24) -> dict:
        """The first ``limit`` items of the group to show: the sample's members first, then the rest.

        Within each part the model's most confident items come first (a confident mistake is
        the most telling). Returns ``items``, ``in_sample`` (bool per item), ``confidence``,
        ``n_group`` and ``n_sample`` (the group's items, and those of them in the sample).
        """
        members = self.group_members(state, selection)
        in_sample = np.isin(members, sample)
        confidence = self.ws.probs[members].max(axis=1)
        order = np.lexsort((members, -confidence, ~in_sample))[:limit]
        return {"items": members[order], "in_sample": in_sample[order], "confidence": confidence[order],
                "n_group": int(len(members)), "n_sample": int(in_sample.sum())}

    def group_label(self, state: ViewState, selection=None) -> str:
        names = self.ws.dataset.class_names
        parts = []
        if selection is not None and len(selection):
            parts.append(f"{len(np.unique(selection)):,} selected items")
        if state.cls is not None:
            parts.append(f"class {names[state.cls]}")
        if state.predicted is not None:
            parts.append(f"predicted as {names[state.predicted]}")
        if state.outcome != "all":
            parts.append(state.outcome)
        return ", ".join(parts) if parts else "all items"

    def confusion(self, indices: np.ndarray | None = None) -> np.ndarray:
        """Confusion matrix (true × predicted) of ``indices`` (all items if None)."""
        c = int(self.ws.dataset.n_classes)
        yt, yp = self.ws.y_true, self.ws.y_pred
        if indices is not None:
            yt, yp = yt[indices], yp[indices]
        return np.bincount(yt * c + yp, minlength=c * c).reshape(c, c)

    def counts(self, indices: np.ndarray) -> dict:
        """The report's Table IV row of a sample: size, correct, incorrect."""
        wrong = int(np.sum(self.ws.y_true[indices] != self.ws.y_pred[indices]))
        return {"n": int(len(indices)), "correct": int(len(indices) - wrong), "incorrect": wrong}

    # ---------------------------------------------------------------- summary
    def scores(self, indices: np.ndarray, unit_mode: str, weights: np.ndarray | None = None) -> dict:
        """The score table of the items ``indices`` (see :func:`score_table`), from the cache.

        With ``weights`` (one design weight per index), the design-weighted estimates' table.
        """
        indices = np.asarray(indices, dtype=np.int64)
        weights = self._check_weights(indices, weights)
        table = self._read_or_pass(indices, lambda p: self._scores_key(p, unit_mode), weights)
        if table is None:  # the cache refused the entry: compute it from a pass
            table = score_table(self._sample_aggregates(indices, weights), self.full_answers[unit_mode],
                                self.ws.layers, unit_mode)
        return table

    def summary(self, params: SampleParams, k: int, unit_mode: str, *, estimator: str = "plain") -> dict:
        """S1/S2/S3 over all groups, overall and per layer, for the sample and for ``random``.

        The random sample has the same fraction and seed. Equal to
        :func:`dldiag.queries.evaluate` of both samples (the score tables hold S1 for every
        k up to :data:`K_MAX`, so a new k costs nothing). With ``estimator="weighted"`` the
        sample's scores are those of its design-weighted estimates (``out["estimator"]``);
        the random baseline's stay plain (its weights are uniform: the same means).
        """
        k = int(k)
        if not 1 <= k <= K_MAX:
            raise ValueError(f"k must be in [1, {K_MAX}]; got {k}")
        check_option("estimator", estimator, ESTIMATORS)
        idx = self.sample_indices(params)
        ridx = self.random_indices(params.fraction, params.seed)
        weights = self.sample_weights(params.sampler, idx) if estimator == "weighted" else None
        layers = list(self.ws.layers)
        n_units = [self.ws.full[layer, unit_mode].n_units for layer in layers]
        out = {"layers": layers, "k": k, "unit_mode": unit_mode, "n_units": n_units, "estimator": estimator}
        for name, ind, w in (("sample", idx, weights), ("random", ridx, None)):
            table = self.scores(ind, unit_mode, w)
            out[name] = summarise_scores(table, layers, k, n_units)
            out["n_groups"] = int(len(table["s2"]))
        out["counts"] = {"sample": self.counts(idx), "random": self.counts(ridx)}
        return out

    # ---------------------------------------------------------------- latent view
    def projection(self, method: str) -> np.ndarray:
        return self.ws.projection(method)

    def neuron_values(self, indices: np.ndarray, layer: str, unit_mode: str, unit: int) -> np.ndarray:
        """Activation of one unit on the sample ``indices``, read from its store (cached per sample and unit)."""
        indices = np.asarray(indices, dtype=np.int64)
        key = content_key("app-neuron", APP_CACHE_VERSION, self.ws.key, _digest(indices), layer, unit_mode,
                          int(unit))
        cached = self._get(key)
        if cached is not None:
            return cached["values"]
        check_option("layer", layer, self.ws.layers)
        check_option("unit_mode", unit_mode, UNIT_MODES)
        if len(indices) == 0:
            return np.zeros(0, dtype=np.float32)
        values = self.store(indices).values(layer, unit_mode, unit)
        self.cache.put(key, {"values": values})
        return values

    def _unit_key(self, layer: str, unit_mode: str, unit: int) -> str:
        return content_key("app-unit-all", APP_CACHE_VERSION, self.ws.key, layer, unit_mode, int(unit))

    def unit_values_all(self, layer: str, unit_mode: str, unit: int) -> np.ndarray | None:
        """One unit's activation on every item of D if :meth:`unit_pass` has cached it, else None.

        Never runs a pass: the latent view colours the sample by the unit (from its store) at
        once, and every item once this is there.
        """
        cached = self._get(self._unit_key(layer, unit_mode, unit))
        return None if cached is None else cached["values"]

    def has_unit_values(self, layer: str, unit_mode: str, unit: int) -> bool:
        """Whether :meth:`unit_pass` has cached the unit's values, without reading them (4 bytes
        an item: the view's poll asks every second)."""
        return self.cache.has(self._unit_key(layer, unit_mode, unit))

    def unit_pass(self, layer: str, unit_mode: str, unit: int, *, on_progress=None, pool=None) -> np.ndarray:
        """One unit's activation on every item of D: a forward pass over all of them, cached.

        What the latent view colours every item by (a background job runs it). A cached pass is
        not run again; two calls at once for one unit run it once. Arguments as for
        :meth:`~dldiag.artifacts.Workspace.unit_values`.
        """
        arrays, _ = self.cache.get_or_build(self._unit_key(layer, unit_mode, unit), lambda: {
            "values": self.ws.unit_values(layer, unit_mode, unit, on_progress=on_progress, pool=pool)})
        return arrays["values"]

    def log_ratio(self, sampler: str) -> tuple[np.ndarray | None, str | None]:
        """Log likelihood ratio per item: the current ratio sampler's, else the cached max-margin fit's.

        Returns ``(None, None)`` when no ratio sampler is available.
        """
        for name in (sampler, FALLBACK_RATIO_SAMPLER):
            if name in RATIO_SAMPLERS:
                try:
                    fitted = self.fitted(name)
                except ValueError:
                    continue
                ratio = getattr(fitted, "log_ratio_", None)
                if ratio is not None:
                    return np.asarray(ratio), name
        return None, None

    def item_image(self, item: int) -> np.ndarray:
        """The item's values as stored: pixels (C, H, W) or (H, W), or a feature vector."""
        return np.asarray(self.ws.dataset.x_test[int(item)])

    def item_preview(self, item: int) -> tuple[str, object]:
        """``("image", data URI)`` for an image item, else ``("features", rows)`` of its most
        unusual features (see :func:`~dldiag.app.thumbnails.unusual_features`)."""
        from .thumbnails import is_image, thumbnail_uri, unusual_features

        values = self.item_image(item)
        if is_image(values.shape):
            return "image", thumbnail_uri(values)
        mean, std = self._feature_stats()
        names = getattr(self.ws.dataset, "feature_names", None)
        return "features", unusual_features(values, mean, std, names=names)

    def _feature_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of every feature over D, computed once, batch by batch."""
        if self._stats is None:
            x = self.ws.dataset.x_test
            total = np.zeros(x.shape[1:], dtype=np.float64)
            squares = np.zeros(x.shape[1:], dtype=np.float64)
            for start in range(0, len(x), 4096):
                batch = np.asarray(x[start:start + 4096], dtype=np.float64)
                total += batch.sum(axis=0)
                squares += (batch * batch).sum(axis=0)
            mean = total / max(len(x), 1)
            self._stats = (mean, np.sqrt(np.maximum(squares / max(len(x), 1) - mean * mean, 0.0)))
        return self._stats
