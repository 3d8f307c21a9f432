"""The baselines of the report's Section IV-A: random, stratified by confusion matrix, latent grid."""

from __future__ import annotations

import numpy as np

from .._validation import check_int, check_option
from ._base import Sampler, allocate, group_starts, take_first_per_group

__all__ = ["RandomSampler", "StratifiedCMSampler", "LatentGridSampler"]


class RandomSampler(Sampler):
    """Uniform sample without replacement.

    Examples
    --------
    >>> import numpy as np
    >>> s = RandomSampler().fit(np.zeros((10, 2)), np.zeros(10, int), np.zeros(10, int))
    >>> s.sample(0.3, seed=1).shape
    (3,)
    """

    name = "random"
    randomised = True
    seeded_fit = False

    def __init__(self):
        pass

    def _fit(self, x, y_true, y_pred, seed):
        pass  # nothing to learn: N is all a uniform draw needs

    def _sample(self, n, j, rng):
        return rng.choice(int(self.n_items_), size=n, replace=False)


class _StrataSampler(Sampler):
    """Items drawn uniformly inside strata, with seats allocated over the strata.

    Subclasses set ``strata_`` (N,) int64 stratum codes 0..S-1 and ``strata_sizes_`` (S,) in
    ``_fit`` and say how seats are allocated in ``_allocation``.
    """

    randomised = True
    # Strata are set from labels or a PCA grid, neither of which draws anything at random.
    seeded_fit = False
    _state_names = ("strata_", "strata_sizes_")

    def _set_strata(self, codes: np.ndarray) -> None:
        _, strata = np.unique(codes, return_inverse=True)
        self.strata_ = strata.astype(np.int64).ravel()
        self.strata_sizes_ = np.bincount(self.strata_).astype(np.int64)

    def _allocation(self, n, rng) -> np.ndarray:
        raise NotImplementedError

    def _sample(self, n, j, rng):
        take = self._allocation(n, rng)
        # A fresh uniform key per item, sorted inside each stratum: the first `take` of each
        # stratum are a uniform draw without replacement from it.
        key = rng.random(len(self.strata_))
        order = np.lexsort((key, self.strata_))
        return take_first_per_group(order, self.strata_[order], group_starts(self.strata_sizes_), take)


class StratifiedCMSampler(_StrataSampler):
    """Strata are the confusion-matrix cells (true label, predicted label).

    Seats are allocated in proportion to the cell sizes with largest-remainder rounding (ties
    by a seeded random key), so every cell gets ``floor`` or ``ceil`` of its exact share; the
    items inside a cell are uniform.
    """

    name = "stratified-cm"

    def __init__(self):
        pass

    def _fit(self, x, y_true, y_pred, seed):
        self._set_strata(y_true * (int(y_pred.max()) + 1) + y_pred)

    def _allocation(self, n, rng):
        return allocate(self.strata_sizes_, n, self.strata_sizes_, rng)


class LatentGridSampler(_StrataSampler):
    """The report's "simple latent space" sample: a grid over the leading PCA dimensions.

    The latent space is projected on its first ``n_components`` principal components (PCA of
    the centred, unscaled latent, as the report's "reduce dimensionality ... using PCA"), each
    component is cut into ``n_bins`` bins at its quantiles (2 bins: at the median, items equal
    to the median going to the lower bin), giving up to ``n_bins ** n_components`` cells (32 by
    default). Every non-empty cell is allotted the same number of seats (largest remainder,
    ties by a seeded key); items inside a cell are uniform.

    Parameters
    ----------
    n_components : int, default 5
        PCA dimensions of the grid (capped at the latent's rank-limiting ``min(N, d)``).
    n_bins : int, default 2
        Bins per PCA dimension, cut at the 1/n_bins quantiles.
    spill : {"uniform", "equal", "none"}, default "uniform"
        What happens to the seats of a cell smaller than its equal share. The report samples
        equally and does not spill over between cells; that leaves the sample short (its 80 %
        point collapses). ``"uniform"`` keeps the report's rule for the cells — no cell gets
        more than its equal share — and draws the missing seats uniformly from the items left,
        so the size contract holds (``sample_info`` reports them as ``filled``). ``"equal"``
        re-shares them equally over the cells that still have items (water-filling).
        ``"none"`` is the report's literal rule: the sample is smaller than asked and
        ``sample_info`` reports the ``shortfall``.
    """

    name = "latent-grid"
    _fit_params = ("n_components", "n_bins")
    _state_names = _StrataSampler._state_names + ("cell_",)

    def __init__(self, *, n_components: int = 5, n_bins: int = 2, spill: str = "uniform"):
        self.n_components = n_components
        self.n_bins = n_bins
        self.spill = spill

    def _validate_params(self):
        check_int("n_components", self.n_components, 1)
        check_int("n_bins", self.n_bins, 2)
        check_option("spill", self.spill, ("uniform", "equal", "none"))

    def _fit(self, x, y_true, y_pred, seed):
        centred = x - x.mean(axis=0)
        k = min(self.n_components, *centred.shape)
        # Principal axes from the d x d scatter matrix (d is small): exact and deterministic,
        # so the grid needs no seed, and far cheaper than an SVD of the N x d matrix. The sign
        # of an axis only swaps bin labels, which does not change the cells.
        _, vecs = np.linalg.eigh(centred.T @ centred)
        proj = centred @ vecs[:, ::-1][:, :k]
        qs = np.quantile(proj, np.arange(1, self.n_bins) / self.n_bins, axis=0)  # (bins-1, k)
        bins = (proj[None, :, :] > qs[:, None, :]).sum(axis=0)  # (N, k) in 0..n_bins-1
        codes = (bins * (self.n_bins ** np.arange(k))).sum(axis=1)
        self.cell_ = codes.astype(np.int64)  # the grid cell id (bin digits), for display
        self._set_strata(codes)

    def _allocation(self, n, rng):
        sizes = self.strata_sizes_
        if self.spill == "equal":
            return allocate(sizes, n, np.ones(len(sizes)), rng)
        return allocate(sizes, n, np.ones(len(sizes)), rng, spill=False)

    def _sample(self, n, j, rng):
        picked = super()._sample(n, j, rng)
        missing = n - len(picked)
        if missing > 0 and self.spill == "uniform":
            rest = np.setdiff1d(np.arange(int(self.n_items_)), picked, assume_unique=True)
            picked = np.concatenate([picked, rng.choice(rest, size=missing, replace=False)])
        return picked

    def _info(self, n, j, rng):
        short = n - int(self._allocation(n, rng).sum())
        info = {"cells": int(len(self.strata_sizes_))}
        if self.spill == "uniform":
            info["filled"] = short
        elif self.spill == "none":
            info["shortfall"] = short
        return info
