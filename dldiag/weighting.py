"""Design weights of a sample's items and the design-weighted (Hájek) estimates of S1–S3.

A sampler that leans towards the decision boundary over-represents boundary items *inside*
each group (class, outcome), so the plain mean of a group's sample is biased towards what
boundary items activate. A **design weight** undoes this: each sampled item stands for
``w_i`` items of the full data, and a group's mean becomes ``sum(w a) / sum(w)`` over its
sampled items (the Hájek estimator; the arg-max histogram of S3 is weighted alike, and S1 is
the top-k of the weighted mean).

Where the inclusion probability ``pi_i`` is known, ``w_i = 1 / pi_i``:

========================  ===================================================================
sampler                   weight of a sampled item
========================  ===================================================================
random                    N / n (uniform: the weighted mean is the plain mean)
stratified-cm             N_h / n_h of its confusion cell h (realised counts)
latent-grid               N_c / n_c of its grid cell c (realised counts)
\\*-weighted               1 / pi_i, pi_i from Rosén's approximation of successive sampling
========================  ===================================================================

The deterministic samplers (``gmm-full``, ``gmm-spherical``, ``max-margin`` at a given j,
``vas``, ``eb-tree``) have no inclusion probabilities; their samples are **post-stratified**:
each group's N items are cut into ``n_bins`` equal-count bins of a boundary score known for
every item, and a sampled item of bin b of group g weighs ``N_bg / n_bg``. The score is the
sampler's own log likelihood ratio for the ratio samplers (what chose the items), and the
model's log ratio ``log p_yhat - log sum_{k != yhat} p_k`` for VAS and the EB tree. With the
latent taken at the input of the final linear layer (the default), the logits are an affine
map of the latent, so this is a latent-space stratification by distance to the model's
decision boundary, and it is known for all N from the latent pass.

Functions here are pure (no state between calls); :func:`weighted_pass` leases nothing and
holds the model only through :func:`~dldiag.activations.forward_with_activations` (hooks in
``try``/``finally``, ``torch.no_grad()``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._validation import check_int, check_option
from .activations import UNIT_MODES, Aggregates, LayerAggregates, forward_with_activations, unit_view

__all__ = [
    "ESTIMATORS",
    "DesignWeights",
    "WeightedLayerAggregates",
    "group_codes",
    "successive_inclusion",
    "post_stratified_weights",
    "strata_weights",
    "design_weights",
    "weighted_pass",
    "weighted_aggregates",
]

#: Names of the estimators of a group's answer from a sample.
ESTIMATORS = ("plain", "weighted")

#: Default number of post-stratification bins per group.
DEFAULT_BINS = 5


@dataclass(frozen=True)
class DesignWeights:
    """The design weight of each sampled item and how it was obtained.

    Attributes
    ----------
    weights : ndarray of float64, shape (n,)
        One weight per sampled item, in the order of the indices given; each is the number of
        full-data items the item stands for (``1 / pi``, or ``N_bg / n_bg``).
    method : str
        ``"hajek-uniform"``, ``"hajek-strata"``, ``"hajek-successive"`` or ``"post-stratified"``.
    stratifier : str
        What the strata are: ``"none"``, ``"confusion cell"``, ``"grid cell"``,
        ``"cluster"``, ``"sampler log ratio"`` or ``"model log ratio"``.
    collapsed : int
        Post-stratification bins (over all groups) that held no sampled item and were merged
        into a neighbour; 0 for the other methods.
    """

    weights: np.ndarray
    method: str
    stratifier: str
    collapsed: int = 0

    @property
    def estimator(self) -> str:
        """The estimator these weights feed: always ``"weighted"``."""
        return "weighted"


def group_codes(y_true, y_pred) -> np.ndarray:
    """Code of each item's query group (class, outcome): ``2 * class + (prediction wrong)``."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    return 2 * y_true + (y_true != y_pred)


def _check_indices(indices, n_items: int) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise ValueError(f"indices must be a 1-d array of item indices; got shape {idx.shape}, dtype {idx.dtype}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_items):
        raise ValueError(f"indices must lie in [0, {n_items}); got values from {idx.min()} to {idx.max()}")
    if len(np.unique(idx)) != len(idx):
        raise ValueError("indices must be unique (a sample without replacement); got repeated indices")
    return idx


# ----------------------------------------------------------------------------- probabilities
def successive_inclusion(weights, n: int) -> np.ndarray:
    """Approximate inclusion probabilities of n draws without replacement with probability ∝ w.

    Drawing one item at a time with probability proportional to ``w`` among those left
    (*successive sampling*, which the Efraimidis–Spirakis keys of the weighted samplers
    implement in one sort) is order sampling with exponential distributions: item i gets the
    key ``E_i / w_i`` (``E_i`` standard exponential) and the n smallest keys win. Its exact
    inclusion probabilities have no closed form, and ``n * w_i / sum(w)`` is wrong (it can
    exceed 1). Rosén's approximation replaces the n-th smallest key by a constant ``xi``:

        pi_i = 1 - exp(-w_i xi),  with xi solving  sum_i (1 - exp(-w_i xi)) = n,

    so the probabilities sum to n exactly, lie in (0, 1], and are ``n / N`` when the weights
    are equal. It is asymptotically exact as N grows with ``n / N`` fixed (Rosén 1997).

    Parameters
    ----------
    weights : array of float, shape (N,)
        Positive, finite draw weights.
    n : int
        Items drawn, ``0 <= n <= N``.

    Returns
    -------
    ndarray of float64, shape (N,)

    Examples
    --------
    >>> successive_inclusion([1.0, 1.0, 1.0, 1.0], 2).tolist()
    [0.5, 0.5, 0.5, 0.5]
    """
    from scipy.optimize import brentq

    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or not np.all(np.isfinite(w)) or (w.size and w.min() <= 0):
        raise ValueError("weights must be a 1-d array of positive finite numbers; "
                         f"got shape {w.shape}" + (f", min {w.min()!r}" if w.size else ""))
    n = check_int("n", n, 0)
    if n > len(w):
        raise ValueError(f"n must be at most the number of items, {len(w)}; got {n}")
    if n == 0:
        return np.zeros(len(w))
    if n == len(w):
        return np.ones(len(w))
    w = w / w.max()  # scale-free: only ratios of weights matter

    def excess(log_xi):
        return -np.expm1(-w * np.exp(log_xi)).sum() - n

    # 1 - exp(-x) <= x puts the root above n / sum(w); at 40 / min(w) every term is ~1 > n / N.
    lo = np.log(n / w.sum())
    hi = np.log(40.0 / w.min()) + 1.0
    log_xi = brentq(excess, lo, hi, xtol=1e-12, rtol=1e-12)
    pi = -np.expm1(-w * np.exp(log_xi))
    # A weight so small that pi underflows to 0 would get an infinite design weight.
    return np.maximum(pi, np.finfo(np.float64).tiny)


def strata_weights(indices, strata) -> np.ndarray:
    """``N_h / n_h`` for each sampled item, h its stratum, from the realised counts.

    Inside a stratum the items of a stratified (or grid) sample are exchangeable, so given
    the realised count ``n_h`` each item's inclusion probability is ``n_h / N_h`` exactly,
    however the seats were allocated (rounding, spill-over, a uniform fill).

    Parameters
    ----------
    indices : array of int, shape (n,)
        The sampled items.
    strata : array of int, shape (N,)
        Stratum code of every item.

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    strata = np.asarray(strata, dtype=np.int64)
    idx = _check_indices(indices, len(strata))
    _, codes = np.unique(strata, return_inverse=True)
    codes = codes.ravel()
    n_full = np.bincount(codes)
    n_sample = np.bincount(codes[idx], minlength=len(n_full))
    h = codes[idx]
    return n_full[h] / n_sample[h]


# ----------------------------------------------------------------------------- post-strata
def _bins_within_groups(groups: np.ndarray, score: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-count bin (0..n_bins-1) of each item by its score's rank inside its group.

    Ranks rather than quantile edges: ties (a saturated ratio) cannot empty a bin, and the
    bins of a group hold ``floor`` or ``ceil`` of ``N_g / n_bins`` items.
    """
    # Stable sort by (group, score, index): the rank of an item inside its group's block.
    order = np.lexsort((np.arange(len(score)), score, groups))
    g_sorted = groups[order]
    sizes = np.bincount(groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.arange(len(order)) - starts[g_sorted]
    bins = np.empty(len(order), dtype=np.int64)
    bins[order] = (rank * n_bins) // sizes[g_sorted]
    return bins


def _collapse(full_counts: np.ndarray, sample_counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Full-data counts of a group's bins after merging the bins that hold no sampled item.

    Each empty bin's count goes to the nearest bin (by bin index, i.e. by score) that holds a
    sampled item; when two are equally near, it is split evenly between them. The total is
    kept, so the weights of the group still sum to its N_g.
    """
    kept = np.flatnonzero(sample_counts > 0)
    out = np.where(sample_counts > 0, full_counts, 0).astype(np.float64)
    empty = np.flatnonzero((sample_counts == 0) & (full_counts > 0))
    for b in empty:
        dist = np.abs(kept - b)
        nearest = kept[dist == dist.min()]
        out[nearest] += full_counts[b] / len(nearest)
    return out, len(empty)


def post_stratified_weights(indices, groups, score, *, n_bins: int = DEFAULT_BINS) -> tuple[np.ndarray, int]:
    """Post-stratification weights ``N_bg / n_bg``: bins of ``score`` inside each group.

    Each group's N_g items are cut into ``n_bins`` equal-count bins by the rank of their score
    (ties by item index). A sampled item of bin b weighs ``N_bg / n_bg``, so the weighted
    shares of the bins in the sample are their shares in the full data, exactly. A bin with
    no sampled item is merged into the nearest bin that has one (by bin index; an equal tie
    splits its count evenly), which keeps the group's total: the weights of a group's sampled
    items sum to N_g.

    Parameters
    ----------
    indices : array of int, shape (n,)
        The sampled items (unique).
    groups : array of int, shape (N,)
        Group code of every item (:func:`group_codes`).
    score : array of float, shape (N,)
        The stratifying score of every item (±inf allowed, NaN not).
    n_bins : int, default 5
        Bins per group.

    Returns
    -------
    weights : ndarray of float64, shape (n,)
    collapsed : int
        Bins merged into a neighbour, over all groups that have a sampled item.
    """
    groups = np.asarray(groups, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    if score.shape != groups.shape or groups.ndim != 1:
        raise ValueError(f"score and groups must be 1-d arrays of the same length; got shapes "
                         f"{score.shape} and {groups.shape}")
    if np.isnan(score).any():
        raise ValueError(f"score must not hold NaN; got {int(np.isnan(score).sum())} NaN values")
    n_bins = check_int("n_bins", n_bins, 1)
    idx = _check_indices(indices, len(groups))
    _, groups = np.unique(groups, return_inverse=True)
    groups = groups.ravel()
    bins = _bins_within_groups(groups, score, n_bins)
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    full = np.bincount(groups * n_bins + bins, minlength=n_groups * n_bins).reshape(n_groups, n_bins)
    samp = np.bincount(groups[idx] * n_bins + bins[idx], minlength=n_groups * n_bins).reshape(n_groups, n_bins)
    merged = np.zeros_like(full, dtype=np.float64)
    collapsed = 0
    for g in np.unique(groups[idx]):
        merged[g], c = _collapse(full[g], samp[g])
        collapsed += c
    g, b = groups[idx], bins[idx]
    return merged[g, b] / samp[g, b], collapsed


# ----------------------------------------------------------------------------- per sampler
def _model_log_ratio(probs: np.ndarray) -> np.ndarray:
    from .sampling._ratio import log_ratio

    with np.errstate(divide="ignore"):
        logp = np.log(np.asarray(probs, dtype=np.float64))
    _, ratio = log_ratio(logp)
    # Both -inf and +inf only order the items; NaN (inf - inf) cannot arise: the top is finite.
    return ratio


def design_weights(ws, sampler, indices, *, fit_seed: int = 0, n_bins: int = DEFAULT_BINS,
                   **params) -> DesignWeights:
    """The design weight of each item of a sample, for the sampler that drew it.

    This is the one call the app needs: given the workspace, the sampler (name and
    parameters) and the sample's indices, the weights of the sampled items, in the order of
    ``indices``, and how they were obtained (``method``, ``stratifier``).

    Parameters
    ----------
    ws : Workspace or LatentSpace
        Supplies ``y_true``, ``y_pred`` and the sampler fit (``fitted_sampler``); VAS and the
        EB tree also need the model's ``probs`` (a :class:`~dldiag.artifacts.Workspace`).
    sampler : str or Sampler
        A registry name (fitted through ``ws.fitted_sampler(name, seed=fit_seed, **params)``,
        from the cache when it is there), or an already fitted sampler.
    indices : array of int, shape (n,)
        The sample (unique item indices), e.g. ``sampler.sample(fraction, j, seed)``.
    fit_seed : int
        Seed of the sampler's fit (a name only).
    n_bins : int, default 5
        Post-stratification bins per group (deterministic samplers only).
    **params
        The sampler's parameters (a name only).

    Returns
    -------
    DesignWeights

    Notes
    -----
    The weights do not depend on the fraction, j or seed of the draw: they are read from the
    realised sample (its counts per stratum, cluster or bin), which is what makes them exact
    for the strata samplers (see :func:`strata_weights`).
    """
    from .sampling import SAMPLER_NAMES, Sampler

    if isinstance(sampler, str):
        check_option("sampler", sampler, SAMPLER_NAMES)
        fitted = ws.fitted_sampler(sampler, seed=fit_seed, **params)
    elif isinstance(sampler, Sampler):
        if params:
            raise TypeError(f"parameters {sorted(params)} go with a sampler name, not a fitted sampler")
        fitted = sampler
    else:
        raise TypeError(f"sampler must be a registry name or a fitted Sampler; got {type(sampler).__name__}")
    n_items = len(ws.y_true)
    idx = _check_indices(indices, n_items)
    name = fitted.name
    if name == "random":
        return DesignWeights(np.full(len(idx), n_items / max(len(idx), 1)), "hajek-uniform", "none")
    if name in ("stratified-cm", "latent-grid"):
        stratifier = "confusion cell" if name == "stratified-cm" else "grid cell"
        return DesignWeights(strata_weights(idx, fitted.strata_), "hajek-strata", stratifier)
    if name.endswith("-weighted"):
        clipped = np.clip(fitted.log_ratio_, -fitted.log_ratio_clip, fitted.log_ratio_clip)
        draw_w = np.exp(-clipped)
        cluster = np.asarray(fitted.cluster_, dtype=np.int64)
        pi = np.empty(n_items)
        taken = np.bincount(cluster[idx], minlength=int(cluster.max()) + 1)
        for c in np.unique(cluster):
            members = cluster == c
            pi[members] = successive_inclusion(draw_w[members], int(taken[c]))
        return DesignWeights(1.0 / pi[idx], "hajek-successive", "cluster")
    groups = group_codes(ws.y_true, ws.y_pred)
    if hasattr(fitted, "log_ratio_"):
        score, stratifier = np.asarray(fitted.log_ratio_, dtype=np.float64), "sampler log ratio"
    else:
        if not hasattr(ws, "probs"):
            raise ValueError(f"post-stratifying a {name!r} sample needs the model's probabilities "
                             "(a Workspace, not a LatentSpace)")
        score, stratifier = _model_log_ratio(ws.probs), "model log ratio"
    w, collapsed = post_stratified_weights(idx, groups, score, n_bins=n_bins)
    return DesignWeights(w, "post-stratified", stratifier, collapsed)


# ----------------------------------------------------------------------------- aggregates
class WeightedLayerAggregates(LayerAggregates):
    """Per-cell aggregates of a weighted sample, read by the query sets like plain ones.

    ``sums`` and ``argmax_counts`` hold weighted totals (``sum w a`` and ``sum w`` per arg-max
    unit), ``weight_sums`` the total weight per cell and ``counts`` the plain item counts. A
    group's :meth:`group` returns its item count n and its weighted totals rescaled to n
    items, so that :func:`dldiag.queries.answer`'s ``sums / count`` is the Hájek mean
    ``sum(w a) / sum(w)`` and ``argmax_counts / count`` the weighted arg-max histogram, while
    ``n_sample`` stays the number of sampled items.
    """

    def __init__(self, sums, counts, argmax_counts, unit_shape=(), *, weight_sums):
        super().__init__(sums, counts, argmax_counts, unit_shape)
        self.weight_sums = np.asarray(weight_sums, dtype=np.float64)

    def group(self, cls=None, outcome=None, predicted=None):
        mask = self.cell_mask(cls, outcome, predicted)
        count = int(self.counts[mask].sum())
        total = float(self.weight_sums[mask].sum())
        if count == 0 or total <= 0:
            return count, np.zeros(self.n_units), np.zeros(self.n_units)
        scale = count / total
        return count, self.sums[mask].sum(axis=0) * scale, self.argmax_counts[mask].sum(axis=0) * scale

    def __add__(self, other):
        if not isinstance(other, WeightedLayerAggregates):
            raise TypeError("weighted aggregates add only to weighted aggregates (same weights' scale)")
        return WeightedLayerAggregates(self.sums + other.sums, self.counts + other.counts,
                                       self.argmax_counts + other.argmax_counts, self.unit_shape,
                                       weight_sums=self.weight_sums + other.weight_sums)


def weighted_pass(model, x, y, layers, *, n_classes: int, indices, weights, batch_size: int = 256,
                  output=None, transform=None) -> tuple[Aggregates, Aggregates]:
    """One forward pass over a sample giving its plain and its weighted aggregates.

    Parameters
    ----------
    model : nn.Module
        The classifier (a replica leased for this call: it is held alone while it runs).
    x, y : ndarray
        All items and their true labels.
    layers : sequence of str
        Diagnosed layers.
    n_classes : int
    indices : array of int, shape (n,)
        The sampled items.
    weights : array of float, shape (n,)
        Positive design weight of each sampled item (:func:`design_weights`).
    batch_size : int
    output, transform
        As in :func:`~dldiag.activations.run_pass`.

    Returns
    -------
    plain, weighted : Aggregates
        The plain aggregates (as :func:`~dldiag.activations.run_pass` gives, up to float
        rounding) and the weighted ones (:class:`WeightedLayerAggregates`), both scored
        unchanged by :func:`dldiag.queries.evaluate`.
    """
    batch_size = check_int("batch_size", batch_size, 1)
    idx = _check_indices(indices, len(x))
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != idx.shape or not np.all(np.isfinite(w)) or (w.size and w.min() <= 0):
        raise ValueError(f"weights must be {len(idx)} positive finite numbers, one per index; got shape "
                         f"{w.shape}" + (f", min {w.min()!r}" if w.size else ""))
    layers = tuple(layers)
    c2 = n_classes * n_classes
    acc: dict[tuple[str, str], dict] = {}
    cells_all = np.empty(len(idx), dtype=np.int64)
    for start in range(0, len(idx), batch_size):
        bi = idx[start:start + batch_size]
        bw = w[start:start + batch_size]
        xb = torch.from_numpy(np.ascontiguousarray(x[bi], dtype=np.float32))
        logits, acts = forward_with_activations(model, layers, xb if transform is None else transform(xb), output)
        cells = np.asarray(y[bi], dtype=np.int64) * n_classes + logits.argmax(dim=1).numpy()
        cells_all[start:start + len(bi)] = cells
        # Per-cell totals as one matrix product with the (cells x items) indicator, plain and
        # weighted stacked: torch's index_add_ in float64 on ~100 target rows is ~30x slower.
        onehot = np.zeros((c2, len(bi)))
        onehot[cells, np.arange(len(bi))] = 1.0
        both = np.vstack([onehot, onehot * bw])
        for layer in layers:
            for mode in UNIT_MODES:
                raw = unit_view(acts[layer], mode).numpy()
                u = raw.shape[1]
                a = acc.get((layer, mode))
                if a is None:
                    shape = tuple(acts[layer].shape[1:]) if mode == "flat" else (u,)
                    a = acc[(layer, mode)] = {"shape": shape, "sums": np.zeros((2 * c2, u)),
                                              "arg": np.zeros(c2 * u), "warg": np.zeros(c2 * u)}
                a["sums"] += both @ raw.astype(np.float64)
                # numpy's arg-max on float32, as the plain pass: the same tie rule and values.
                winner = raw.argmax(axis=1)
                a["arg"] += np.bincount(cells * u + winner, minlength=c2 * u)
                a["warg"] += np.bincount(cells * u + winner, weights=bw, minlength=c2 * u)
        logits = acts = None
    if not acc:
        raise ValueError("the sample is empty; a weighted pass needs at least one item")
    counts = np.bincount(cells_all, minlength=c2).reshape(n_classes, n_classes)
    wcounts = np.bincount(cells_all, weights=w, minlength=c2).reshape(n_classes, n_classes)
    plain, weighted = {}, {}
    for key, a in acc.items():
        u = a["sums"].shape[1]
        plain[key] = LayerAggregates(a["sums"][:c2].reshape(n_classes, n_classes, u), counts,
                                     a["arg"].reshape(n_classes, n_classes, u).astype(np.int64), a["shape"])
        weighted[key] = WeightedLayerAggregates(a["sums"][c2:].reshape(n_classes, n_classes, u), counts,
                                                a["warg"].reshape(n_classes, n_classes, u), a["shape"],
                                                weight_sums=wcounts)
    return Aggregates(layers, n_classes, plain), Aggregates(layers, n_classes, weighted)


def weighted_aggregates(ws, indices, weights) -> tuple[Aggregates, Aggregates]:
    """:func:`weighted_pass` over a workspace's sample, on a model replica leased for the call.

    Returns
    -------
    plain, weighted : Aggregates
    """
    with ws.pool.lease() as model:
        return weighted_pass(model, ws.dataset.x_test, ws.dataset.y_test, ws.layers,
                             n_classes=ws.dataset.n_classes, indices=indices, weights=weights,
                             batch_size=ws.batch_size, output=ws.output, transform=ws.transform)
