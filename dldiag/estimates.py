"""How far to trust a sample's answers, from the sample alone: a bootstrap over its items.

The measured accuracy of a sample (:mod:`dldiag.queries`) needs the full data's answers. A user
who samples because the full pass is too big has none; what they can have is the sampling
variability of the sample's own answer. For every group this module resamples the sample's
items of the group with replacement, ``n_boot`` times, and answers S1–S3 on each resample:

- S2: each unit's mean over the resample, giving per-unit percentile intervals, and the cosine
  distance between the resample's mean vector and the sample's;
- S1: the resample's top-k units, giving each sample top-k unit's probability of staying in
  the top-k and the resample's precision against the sample's top-k;
- S3: the resample's arg-max distribution, giving per-bin intervals and its JS distance to the
  sample's distribution.

The estimated S1/S2/S3 of a group are the means of these distances over the resamples, with
percentile intervals; overall and per-layer estimates are means of the group estimates, with
the interval of that mean taken over the same replicates (replicate ``b`` of every group is one
resample of the whole sample, stratified by group).

What the estimate is, and its known bias
-----------------------------------------
By the plug-in principle the distance between a resample's answer and the sample's stands for
the distance between the sample's answer and the answer of the population the sample was drawn
from, *if* the sample's items of the group were drawn independently and uniformly from it. It
estimates variance, not bias, and it is optimistic in ways that are known:

- A boundary-heavy sampler (max-margin, the GMM samplers, the EB tree) draws a group's items
  from its boundary end, so the sample's mean differs from the group's full mean by a bias that
  no resampling of the sample can see: for these samplers the estimate is the variability of a
  biased answer, and the measured accuracy is lower than the estimated one.
- What the sample never saw, its resamples cannot either: a unit that is zero on every sampled
  item gets a zero-width interval at 0, and an arg-max bin that no sampled item hit gets none,
  however often they occur in the full group. The estimated S2 and S3 distances are biased low
  (too good) for small groups of sparse (ReLU) layers.
- The percentile bootstrap of a mean has variance ``(n - 1) / n`` times the textbook
  ``s² / n`` and uses normal rather than Student quantiles, so intervals are too narrow for
  small groups (n < 10 or so). ``interval="expanded"`` widens the per-unit and per-bin
  intervals by Hesterberg's expanded percentile rule (:func:`expanded_level`); on digits it
  raises the coverage of 20 % random samples' per-unit intervals from 0.75 to 0.79 (0.79 to
  0.82 for groups of at least 10 items).
- Resampling with replacement treats the group as infinite: when the sample holds a large
  share ``n / N_g`` of the group's ``N_g`` items its intervals are too wide, and a sample
  holding all of a group (no error at all) still shows some. With the group sizes given
  (``population`` / ``group_sizes``; known from the latent pass, which predicts every item,
  without any full activation) each resample's deviation from the sample's answer is shrunk
  by ``sqrt(1 - n / N_g)``, the finite-population correction of a mean drawn without
  replacement (the rescaling bootstrap of Rao and Wu, *JASA* 83, 1988, in its simplest form).
- S1 is a ranking statistic: near ties at the k-th unit the bootstrap distribution of the
  top-k set is not a consistent estimate of the sampling distribution.

Comparing it with the measured accuracy: the measured S1 compares the sample's top-k with the
full data's; the estimate compares each resample's top-k with the sample's. They are the same
quantity only under the assumptions above, so the estimate is a guide to *which* groups and
layers to trust (their ranking), and its level is optimistic. On one 5 % sample of
Fashion-MNIST (LeNet-5, k = 10, groups with an estimate, S1 without the 10-unit logits), the
group estimates against the measured figures:

============  ======================  ======================  ======================
sampler       S1 est. / meas. (corr)  S2 est. / meas. (corr)  S3 est. / meas. (corr)
============  ======================  ======================  ======================
random        0.75 / 0.69 (0.76)      0.026 / 0.037 (0.88)    0.31 / 0.54 (0.82)
max-margin    0.72 / 0.65 (0.69)      0.019 / 0.025 (0.60)    0.35 / 0.49 (0.87)
============  ======================  ======================  ======================

The measured S1 lay inside the estimate's 90 % interval for 90 % (random) and 84 %
(max-margin) of the groups. The measured overall figures also count groups the sample lacks (at
S1 = 0, S2 = S3 = 1), which have no estimate: compare over the same groups.

A group with fewer than :data:`MIN_ITEMS` sample items has no estimate: with none there is
nothing to resample, and with one every resample is that item, so the bootstrap would report
no variability at all, which says nothing about the group. A layer with at most k units has
every unit in every top-k, so its S1 is 1 by construction: it is marked ``trivial`` and left
out of S1's per-layer and overall means.

``scipy.stats.bootstrap`` computes one statistic per call from resamples it draws itself and
materialises a (B, n, units) array; here the three query sets, every layer and the overall
mean must share one set of resamples, so the resamples are drawn once per group as a (B, n)
matrix of counts and each query set is one matrix product or one weighted ``bincount``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import rel_entr

from ._validation import check_int, check_interval, check_option
from .activations import OUTCOMES
from .queries import top_k

__all__ = [
    "DEFAULT_N_BOOT",
    "DEFAULT_FPC",
    "DEFAULT_INTERVAL",
    "DEFAULT_LEVEL",
    "INTERVALS",
    "MIN_ITEMS",
    "Interval",
    "GroupEstimate",
    "NoEstimate",
    "SampleEstimate",
    "bootstrap_counts",
    "expanded_level",
    "fpc_shrink",
    "group_rng",
    "group_sizes",
    "estimate_group",
    "estimate_groups",
    "with_estimates",
]

#: Resamples per group. 200 keeps the Monte-Carlo error of a 90 % percentile bound small next
#: to the interval's width (the 5 % quantile is the 10th of 200 values).
DEFAULT_N_BOOT = 200
#: Nominal coverage of the percentile intervals.
DEFAULT_LEVEL = 0.9
#: Fewest sample items of a group for which an estimate is given.
MIN_ITEMS = 2
#: Memory of the resampled means held at once (B × units of a block, float64).
_BLOCK_BYTES = 64 * 2**20
#: How the per-unit and per-bin intervals are read off the resamples: ``"percentile"`` at the
#: nominal level, or ``"expanded"``, the percentile interval at the wider level of
#: :func:`expanded_level`, which corrects the narrowness of percentile intervals of a mean on
#: small groups.
INTERVALS = ("percentile", "expanded")
#: The default: on Fashion-MNIST's 5 % samples (results/CALIBRATION.md) the expanded intervals
#: cover more of the full data's per-unit means than the percentile ones for every sampler and
#: every group size (random: 83.2 % vs 80.8 % of the varying units), and stay closer to nominal.
DEFAULT_INTERVAL = "expanded"
#: Whether :class:`~dldiag.artifacts.Workspace` applies the finite-population correction by
#: default: no. Measured (results/CALIBRATION.md), it narrows the intervals by the textbook
#: factor, which makes the already optimistic bootstrap more so: random 5 % samples of
#: Fashion-MNIST cover the full mean of 85.5 % of varying units on groups of 30+ items without
#: it, 84.7 % with it, below the 85 % target. It is what lets the estimate rank a boundary
#: sampler's groups, whose shares of their groups differ most (max-margin 5 %: S3 Spearman 0.75
#: without, 0.93 with), so it is offered (``fpc=True``, ``query --fpc``) for that use.
DEFAULT_FPC = False

_LN2 = np.log(2.0)


@dataclass(frozen=True)
class Interval:
    """An estimate and its percentile interval ``[low, high]``.

    ``value`` is the mean over the resamples; when they pile up at a bound it can lie outside
    the interval (9 of 200 resamples at precision 0.9 and the rest at 1: 0.9955, [1, 1]).
    """

    value: float
    low: float
    high: float

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class GroupEstimate:
    """The bootstrap of one group's sample items for one layer.

    Attributes
    ----------
    n : int
        Sample items of the group.
    k : int
        The top-k size asked for (the layer may have fewer units).
    n_boot : int
        Resamples.
    level : float
        Nominal coverage of every interval.
    interval : {"percentile", "expanded"}
        How the per-unit and per-bin intervals were read (see :data:`INTERVALS`).
    mean, mean_low, mean_high : ndarray of shape (units,)
        S2: the sample's mean activation per unit and its per-unit interval.
    top : ndarray of int
        S1: the sample's top-k units (ties by lower index, as :func:`~dldiag.queries.top_k`).
    stay : ndarray of float, same length as ``top``
        Share of resamples in whose top-k each of ``top`` stays.
    argmax_dist, dist_low, dist_high : ndarray of shape (units,)
        S3: the sample's arg-max distribution and its per-bin interval.
    s1 : Interval
        Estimated precision@k: mean over resamples of ``|top-k(resample) ∩ top|/k``.
    s2 : Interval
        Estimated cosine distance between the resample's and the sample's mean vectors.
    s3 : Interval
        Estimated JS distance (base 2) between the resample's and the sample's arg-max
        distributions.
    s1_trivial : bool
        The layer has at most k units: S1 is 1 by construction.
    replicates : dict
        ``"s1"``, ``"s2"``, ``"s3"`` → the (n_boot,) replicate values, for means over groups.
    shrink : float
        The finite-population factor applied (:func:`fpc_shrink`; 1 when none was).
    """

    n: int
    k: int
    n_boot: int
    level: float
    interval: str
    mean: np.ndarray
    mean_low: np.ndarray
    mean_high: np.ndarray
    top: np.ndarray
    stay: np.ndarray
    argmax_dist: np.ndarray
    dist_low: np.ndarray
    dist_high: np.ndarray
    s1: Interval
    s2: Interval
    s3: Interval
    s1_trivial: bool
    replicates: dict
    shrink: float = 1.0

    reason = None  # an estimate was made; see NoEstimate

    def to_dict(self) -> dict:
        """The three estimates with their intervals (what ``query --json`` prints per group)."""
        return {"n_sample": self.n, "s1": {**self.s1.to_dict(), "trivial": self.s1_trivial},
                "s2": self.s2.to_dict(), "s3": self.s3.to_dict(), "reason": None}

    def top_bars(self) -> dict:
        """The top-k units with their mean, interval and probability of staying (for bars)."""
        return {"units": self.top, "mean": self.mean[self.top], "low": self.mean_low[self.top],
                "high": self.mean_high[self.top], "stay": self.stay}


@dataclass(frozen=True)
class NoEstimate:
    """A group for which no estimate can be made, and why."""

    n: int
    reason: str

    def to_dict(self) -> dict:
        return {"n_sample": self.n, "s1": None, "s2": None, "s3": None, "reason": self.reason}


def _no_estimate(n: int) -> NoEstimate:
    if n == 0:
        return NoEstimate(0, "the sample holds no item of this group: there is nothing to resample")
    return NoEstimate(n, f"the sample holds {n} item of this group: every resample would be that item, "
                         "so the bootstrap would show no variability, which says nothing about the group")


def _check_seed(seed) -> None:
    if isinstance(seed, np.random.Generator):
        return
    check_int("seed", seed, 0)


def bootstrap_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of ``n`` items is drawn in each of ``n_boot`` resamples with replacement.

    Returns
    -------
    ndarray of shape (n_boot, n), int64
        Row ``b`` holds resample ``b``'s counts; each row sums to ``n``.

    Examples
    --------
    >>> bootstrap_counts(3, 2, np.random.default_rng(0)).sum(axis=1)
    array([3, 3])
    """
    n = check_int("n", n, 1)
    n_boot = check_int("n_boot", n_boot, 1)
    draws = rng.integers(0, n, size=(n_boot, n))
    # One bincount over (resample, item) pairs instead of one per resample.
    flat = draws + (np.arange(n_boot) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=n_boot * n).reshape(n_boot, n)


def group_rng(seed: int, cls=None, outcome=None, predicted=None) -> np.random.Generator:
    """The generator of one group's resamples, derived from ``seed`` and the group alone.

    A group gets the same resamples in every layer and whichever other groups are estimated
    with it, so that the app's one-group answer equals the ``query --json`` row.
    """
    check_int("seed", seed, 0)
    if outcome is not None:
        check_option("outcome", outcome, OUTCOMES)
    code = 0 if outcome is None else 1 + OUTCOMES.index(outcome)
    return np.random.default_rng([int(seed), 0 if cls is None else int(cls) + 1, code,
                                  0 if predicted is None else int(predicted) + 1])


def expanded_level(n: int, level: float = DEFAULT_LEVEL) -> float:
    """The level at which to read a percentile interval of a mean of ``n`` items.

    Hesterberg's expanded percentile interval (T. Hesterberg, "What teachers should know about
    the bootstrap", *The American Statistician* 69(4), 2015): the tail ``α/2`` becomes
    ``Φ(−√(n/(n−1)) · t_{1−α/2, n−1})``, which makes up for the bootstrap's variance bias
    ``(n − 1)/n`` and for using normal instead of Student quantiles.

    Examples
    --------
    >>> round(expanded_level(9, 0.9), 3)
    0.951
    >>> round(expanded_level(10_000, 0.9), 3)
    0.9
    """
    from scipy import stats  # a second to import: only when asked for

    n = check_int("n", n, MIN_ITEMS)
    level = check_interval("level", level, 0.0, 1.0, closed="neither")
    tail = stats.norm.cdf(-np.sqrt(n / (n - 1)) * stats.t.ppf(1 - (1 - level) / 2, n - 1))
    return float(1 - 2 * tail)


def _percentiles(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The two percentile bounds of each column of ``values`` (replicates × columns)."""
    alpha = 1.0 - level
    # np.quantile's "linear" rule on one full sort along contiguous rows: for a (200, 4704)
    # matrix that is 5x faster than np.quantile, whose partition is not vectorised.
    ordered = np.sort(np.ascontiguousarray(values.T), axis=-1)
    bounds = []
    for q in (alpha / 2, 1 - alpha / 2):
        pos = q * (ordered.shape[-1] - 1)
        below = int(np.floor(pos))
        above = min(below + 1, ordered.shape[-1] - 1)
        lo, hi = ordered[..., below], ordered[..., above]
        bounds.append(lo + (hi - lo) * (pos - below))
    return bounds[0], bounds[1]


def _interval(replicates: np.ndarray, level: float) -> Interval:
    low, high = _percentiles(replicates, level)
    return Interval(float(np.mean(replicates)), float(low), float(high))


def _top_k_members(means: np.ndarray, k: int) -> np.ndarray:
    """Boolean (B, units): whether each unit is in each row's top-k, ties by lower unit index.

    The same sets as :func:`~dldiag.queries.top_k` row by row, without sorting: every unit
    above the k-th largest value is in, and the lowest-indexed units equal to it fill the rest.
    """
    units = means.shape[1]
    if units <= k:
        return np.ones(means.shape, dtype=bool)
    kth = np.partition(means, units - k, axis=1)[:, units - k : units - k + 1]
    above = means > kth
    need = k - above.sum(axis=1, keepdims=True)
    tied = means == kth
    return above | (tied & (np.cumsum(tied, axis=1) <= need))


def _cosine_rows(dots: np.ndarray, sumsq: np.ndarray, ref_norm: float, same: np.ndarray) -> np.ndarray:
    """:func:`~dldiag.metrics.cosine_distance` of each row against a reference, same conventions.

    From each row's dot product with the reference, its squared norm and whether it equals the
    reference (accumulated block by block over the units).
    """
    norms = np.sqrt(sumsq)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.clip(1.0 - dots / (norms * ref_norm), 0.0, 2.0)
    out[(norms == 0.0) | (ref_norm == 0.0)] = 1.0
    out[same] = 0.0  # identical vectors, also two zero vectors
    return out


def _js_rows(rows: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """:func:`~dldiag.metrics.js_distance` (base 2) of each row against ``ref``; rows sum to 1."""
    mid = 0.5 * (rows + ref)
    divergence = 0.5 * (rel_entr(rows, mid).sum(axis=1) + rel_entr(ref, mid).sum(axis=1)) / _LN2
    return np.sqrt(np.clip(divergence, 0.0, 1.0))


def fpc_shrink(n: int, population: int | None) -> float:
    """The factor ``sqrt(1 - n / N)`` on a resample's deviation; 1 without a population size.

    Examples
    --------
    >>> fpc_shrink(25, 100), fpc_shrink(100, 100), fpc_shrink(5, None)
    (0.8660254037844386, 0.0, 1.0)
    """
    if population is None:
        return 1.0
    population = check_int("population", population, 1)
    if n > population:
        raise ValueError(f"population must be at least the group's {n} sample items; got {population}")
    return float(np.sqrt(1.0 - n / population))


def _shrunk(resampled: np.ndarray, centre: np.ndarray, shrink: float) -> np.ndarray:
    """Resampled answers pulled towards the sample's by ``shrink`` (unchanged when it is 1).

    Written as a convex combination, so a mean stays within its items' range and a resampled
    distribution stays a distribution; a unit equal to ``centre`` in every resample stays
    exactly equal (zero width, ties kept).
    """
    if shrink == 1.0:
        return resampled
    return centre + shrink * (resampled - centre)


def _estimate(x: np.ndarray, counts: np.ndarray, k: int, level: float, interval: str,
              shrink: float = 1.0) -> GroupEstimate:
    """The bootstrap of one group's items ``x`` (n, units) under the resample ``counts`` (B, n).

    ``shrink`` is :func:`fpc_shrink` of the group: every resampled mean vector and arg-max
    distribution is pulled towards the sample's by it before any answer is read off.
    """
    n, units = x.shape
    # Only the intervals of means (units, bins) are expanded: the rule is derived for a mean.
    mean_level = expanded_level(n, level) if interval == "expanded" else level
    n_boot = counts.shape[0]
    weights = counts.astype(np.float64)
    mean = np.asarray(x).mean(axis=0, dtype=np.float64)
    top = top_k(mean, k)
    trivial = units <= k
    if not trivial:
        # In every resample the k-th largest mean is at least the k-th largest among the
        # sample's top-3k units; a unit whose mean stays below the lowest such bound in every
        # resample is never in a top-k nor tied at its edge, so the exact top-k needs only the
        # others, kept in unit order for the tie rule (conv1 of a 500-item Fashion-MNIST
        # sample: 100-1,000 of 4,704 units).
        reference = top_k(mean, 3 * k)
        ref_means = _shrunk(weights @ np.asarray(x[:, reference], dtype=np.float64) / n, mean[reference], shrink)
        lowest_kth = np.partition(ref_means, len(reference) - k, axis=1)[:, len(reference) - k].min()
        kept_units, kept_means = [], []

    mean_low, mean_high = mean.copy(), mean.copy()
    dots, sumsq, same = np.zeros(n_boot), np.zeros(n_boot), np.ones(n_boot, dtype=bool)
    # Units in blocks, so that the (B, units) resampled means of a wide layer (galaxy-cnn's
    # conv1 has 152,352 units) never exist at once.
    block = max(1, _BLOCK_BYTES // (8 * n_boot))
    for start in range(0, units, block):
        values = np.asarray(x[:, start : start + block], dtype=np.float64)
        # Integer counts times float32 activations summed in float64 are exact in practice, so
        # two units whose resampled sums are equal get equal means and the tie is broken by
        # unit index as in top_k, and a unit constant over the group has its sample mean in
        # every resample (zero-width intervals). Centering, or float32, would round ties apart.
        means = _shrunk((weights @ values) / n, mean[start : start + block], shrink)
        # Only units that vary over the group's items need their quantiles (dead ReLUs do not).
        varying = np.flatnonzero(np.any(values != values[:1], axis=0))
        if len(varying):
            mean_low[start + varying], mean_high[start + varying] = _percentiles(means[:, varying], mean_level)
        ref = mean[start : start + block]
        dots += means @ ref
        sumsq += np.einsum("ij,ij->i", means, means)
        same &= np.all(means == ref, axis=1)
        if not trivial:
            keep = np.flatnonzero(means.max(axis=0) >= lowest_kth)
            kept_units.append(start + keep)
            kept_means.append(means[:, keep])
    s2_rep = _cosine_rows(dots, sumsq, float(np.linalg.norm(mean)), same)

    if trivial:
        s1_rep = np.ones(n_boot)
        stay = np.ones(len(top))
    else:
        candidates = np.concatenate(kept_units)
        members = _top_k_members(np.concatenate(kept_means, axis=1), k)
        inside = np.zeros((n_boot, len(top)), dtype=bool)
        found = np.isin(top, candidates)
        inside[:, found] = members[:, np.searchsorted(candidates, top[found])]
        s1_rep = inside.sum(axis=1) / k
        stay = inside.mean(axis=0)

    # Each item's arg-max unit as the streaming pass takes it (numpy, ties to the lowest unit).
    winner = np.asarray(x).argmax(axis=1)
    dist = np.bincount(winner, minlength=units) / n
    # A resample's items are the sample's, so its arg-max bins are among the sample's: the
    # distributions are computed over those bins only (at most n of a layer's units), and
    # every other bin is 0 in every resample.
    bins, slot = np.unique(winner, return_inverse=True)
    cells = (np.arange(n_boot) * len(bins))[:, None] + slot[None, :]
    dists = np.bincount(cells.ravel(), weights=counts.ravel(),
                        minlength=n_boot * len(bins)).reshape(n_boot, len(bins)) / n
    dists = _shrunk(dists, dist[bins], shrink)
    dist_low, dist_high = np.zeros(units), np.zeros(units)
    dist_low[bins], dist_high[bins] = _percentiles(dists, mean_level)
    s3_rep = _js_rows(dists, dist[bins])

    return GroupEstimate(
        n=n, k=k, n_boot=n_boot, level=level, interval=interval, mean=mean, mean_low=mean_low, mean_high=mean_high,
        top=top, stay=stay, argmax_dist=dist, dist_low=dist_low, dist_high=dist_high,
        s1=_interval(s1_rep, level), s2=_interval(s2_rep, level), s3=_interval(s3_rep, level),
        s1_trivial=bool(trivial), replicates={"s1": s1_rep, "s2": s2_rep, "s3": s3_rep}, shrink=shrink,
    )


def _check_common(k, n_boot, level, interval) -> tuple[int, int, float, str]:
    k = check_int("k", k, 1)
    n_boot = check_int("n_boot", n_boot, 1)
    level = check_interval("level", level, 0.0, 1.0, closed="neither")
    return k, n_boot, level, check_option("interval", interval, INTERVALS)


def estimate_group(x, *, k: int = 10, n_boot: int = DEFAULT_N_BOOT, level: float = DEFAULT_LEVEL,
                   seed: int | np.random.Generator = 0, interval: str = DEFAULT_INTERVAL,
                   population: int | None = None) -> GroupEstimate | NoEstimate:
    """Bootstrap one group's sample items of one layer: intervals and estimated S1/S2/S3.

    See the module's notes for what the estimate means and how it is biased.

    Parameters
    ----------
    x : array-like of shape (n, units)
        The group's sample items' activations of one layer, in one unit mode.
    k : int
        Size of S1's top-k set.
    n_boot : int
        Resamples (default :data:`DEFAULT_N_BOOT`).
    level : float
        Nominal coverage of the percentile intervals, in (0, 1).
    seed : int or numpy Generator
        Seed of the resamples (or the generator itself); :func:`group_rng` gives the one that
        :func:`estimate_groups` uses for a group.
    interval : {"percentile", "expanded"}
        How per-unit and per-bin intervals are read off the resamples (:data:`INTERVALS`); the
        intervals of the estimated S1/S2/S3 are always plain percentile intervals.
    population : int, optional
        The group's size ``N_g`` in the whole data set, for the finite-population correction
        (:func:`fpc_shrink`); default: none (the group is treated as infinite).

    Returns
    -------
    GroupEstimate or NoEstimate
        ``NoEstimate`` (with its reason) when ``n`` < :data:`MIN_ITEMS`.

    Examples
    --------
    >>> est = estimate_group(np.array([[1.0, 0.0], [0.0, 1.0]]), k=1, n_boot=2000, seed=0)
    >>> est.top, round(est.s1.value, 1)  # unit 0 stays first unless both draws are item 1
    (array([0]), 0.8)
    >>> estimate_group(np.ones((1, 3))).reason[:31]
    'the sample holds 1 item of this'
    """
    k, n_boot, level, interval = _check_common(k, n_boot, level, interval)
    _check_seed(seed)
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-d array (items, units); got shape {x.shape}")
    if x.shape[1] == 0:
        raise ValueError("x must have at least one unit; got shape (n, 0)")
    n = x.shape[0]
    shrink = fpc_shrink(n, population)
    if n < MIN_ITEMS:
        return _no_estimate(n)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return _estimate(x, bootstrap_counts(n, n_boot, rng), k, level, interval, shrink)


@dataclass(frozen=True)
class SampleEstimate:
    """Estimates of every group of a sample, per layer and overall.

    Attributes
    ----------
    rows : list of dict
        One per (layer, class, outcome) group: ``layer``, ``cls``, ``outcome``, ``n_sample`` and
        ``estimate`` (a :class:`GroupEstimate` or :class:`NoEstimate`).
    per_layer : dict
        ``{layer: summary}``; see ``overall``.
    overall : dict
        ``{"s1": ..., "s2": ..., "s3": ...}``, each ``{"value", "low", "high", "n_groups"}`` or
        None when no group has an estimate: the mean of the group estimates and the percentile
        interval of that mean over the shared replicates. Groups without an estimate are left
        out, and so are trivial S1 groups (layers with at most k units) from S1.
    k, n_boot, level, seed, unit_mode, interval
        The settings.
    fpc : bool
        Whether the finite-population correction was applied (group sizes were given).
    """

    rows: list
    per_layer: dict
    overall: dict
    k: int
    n_boot: int
    level: float
    seed: int
    unit_mode: str | None = None
    interval: str = DEFAULT_INTERVAL
    fpc: bool = False

    def lookup(self, layer: str, cls: int, outcome: str) -> GroupEstimate | NoEstimate:
        """The estimate of one group."""
        for row in self.rows:
            if row["layer"] == layer and row["cls"] == cls and row["outcome"] == outcome:
                return row["estimate"]
        raise KeyError(f"no group (layer={layer!r}, cls={cls!r}, outcome={outcome!r}) in this estimate")

    def settings(self) -> dict:
        return {"method": "bootstrap over the sample's items of each group", "interval": self.interval,
                "n_boot": self.n_boot, "level": self.level, "seed": self.seed, "k": self.k,
                "unit_mode": self.unit_mode, "finite_population_correction": self.fpc}


def _summarise(estimates: Sequence, level: float) -> dict:
    out = {}
    for metric in ("s1", "s2", "s3"):
        reps = [e.replicates[metric] for e in estimates
                if isinstance(e, GroupEstimate) and not (metric == "s1" and e.s1_trivial)]
        if not reps:
            out[metric] = None
            continue
        # Replicate b of every group is one stratified resample of the sample: the mean over
        # groups of replicate b is that resample's overall figure.
        overall = np.mean(np.stack(reps), axis=0)
        out[metric] = {**_interval(overall, level).to_dict(), "n_groups": len(reps)}
    return out


def estimate_groups(acts: Mapping[str, np.ndarray], y_true, y_pred, *, n_classes: int, k: int = 10,
                    n_boot: int = DEFAULT_N_BOOT, level: float = DEFAULT_LEVEL, seed: int = 0,
                    unit_mode: str | None = None, interval: str = DEFAULT_INTERVAL,
                    group_sizes=None) -> SampleEstimate:
    """Bootstrap every (layer, class, outcome) group of a sample.

    Parameters
    ----------
    acts : mapping of str to ndarray of shape (n, units)
        Each layer's activations of the sample's n items, in one unit mode.
    y_true, y_pred : array-like of shape (n,)
        The items' true and predicted classes (they define the groups).
    n_classes : int
    k, n_boot, level, interval : see :func:`estimate_group`
    seed : int
        Seed of the resamples; each group draws from :func:`group_rng` (``seed``, group), the
        same resamples in every layer.
    unit_mode : str, optional
        Recorded in the result.
    group_sizes : ndarray of shape (n_classes, 2), optional
        Items of each (class, outcome) group in the whole data set, outcomes in the order of
        ``OUTCOMES`` (correct, incorrect): :func:`group_sizes` of the full data's labels and
        predictions. Given, every group's resamples get the finite-population correction
        (:func:`fpc_shrink`).

    Returns
    -------
    SampleEstimate
        Rows for every class and outcome, including groups the sample lacks
        (:class:`NoEstimate`).
    """
    k, n_boot, level, interval = _check_common(k, n_boot, level, interval)
    seed = check_int("seed", seed, 0)
    n_classes = check_int("n_classes", n_classes, 1)
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-d of the same length; got shapes {y_true.shape} "
                         f"and {y_pred.shape}")
    acts = {layer: np.asarray(a) for layer, a in acts.items()}
    for layer, a in acts.items():
        if a.ndim != 2 or a.shape[0] != len(y_true):
            raise ValueError(f"acts[{layer!r}] must have shape ({len(y_true)}, units), one row per item; "
                             f"got {a.shape}")
    if group_sizes is not None:
        group_sizes = np.asarray(group_sizes)
        if group_sizes.shape != (n_classes, len(OUTCOMES)) or not np.issubdtype(group_sizes.dtype, np.integer):
            raise ValueError(f"group_sizes must be an integer array of shape ({n_classes}, {len(OUTCOMES)}), one count "
                             f"per (class, outcome); got {group_sizes.dtype} of shape {group_sizes.shape}")
    rows = []
    right = y_pred == y_true
    for cls in range(n_classes):
        for o, outcome in enumerate(OUTCOMES):
            members = np.flatnonzero((y_true == cls) & (right if outcome == "correct" else ~right))
            n = len(members)
            shrink = 1.0 if group_sizes is None or n == 0 else fpc_shrink(n, int(group_sizes[cls, o]))
            counts = (bootstrap_counts(n, n_boot, group_rng(seed, cls, outcome))
                      if n >= MIN_ITEMS else None)
            for layer, a in acts.items():
                est = (_no_estimate(n) if counts is None
                       else _estimate(a[members], counts, k, level, interval, shrink))
                rows.append({"layer": layer, "cls": cls, "outcome": outcome, "n_sample": n, "estimate": est})
    per_layer = {layer: _summarise([r["estimate"] for r in rows if r["layer"] == layer], level) for layer in acts}
    overall = _summarise([r["estimate"] for r in rows], level)
    return SampleEstimate(rows, per_layer, overall, k, n_boot, level, seed, unit_mode, interval,
                          fpc=group_sizes is not None)


def group_sizes(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Items per (class, outcome) group, the ``group_sizes`` of :func:`estimate_groups`.

    Examples
    --------
    >>> group_sizes([0, 0, 1], [0, 1, 1], 2).tolist()
    [[1, 1], [1, 0]]
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    wrong = (y_true != y_pred).astype(np.int64)
    return np.bincount(np.asarray(y_true, dtype=np.int64) * len(OUTCOMES) + wrong,
                       minlength=n_classes * len(OUTCOMES)).reshape(n_classes, len(OUTCOMES))


def with_estimates(accuracy: dict, estimate: SampleEstimate) -> dict:
    """A measured accuracy (``QueryAccuracy.to_dict()``) with an ``estimate`` beside each figure.

    Every group row, every ``per_layer`` entry and ``overall`` gain an ``estimate`` key
    (:meth:`GroupEstimate.to_dict`, :meth:`NoEstimate.to_dict`, or the summaries of
    :class:`SampleEstimate`); the existing keys are left as they are, and the settings go
    under ``estimate_settings``. The input is not changed.

    Raises
    ------
    ValueError
        If the two were made with another k or unit mode.
    """
    if accuracy.get("k") != estimate.k or accuracy.get("unit_mode", estimate.unit_mode) != estimate.unit_mode:
        raise ValueError(f"the estimate (k={estimate.k}, unit_mode={estimate.unit_mode!r}) is not of this accuracy "
                         f"(k={accuracy.get('k')!r}, unit_mode={accuracy.get('unit_mode')!r})")
    groups = []
    for row in accuracy["groups"]:
        est = estimate.lookup(row["layer"], row["cls"], row["outcome"])
        groups.append({**row, "estimate": est.to_dict()})
    per_layer = {layer: {**m, "estimate": estimate.per_layer.get(layer)} for layer, m in accuracy["per_layer"].items()}
    return {**accuracy, "overall": {**accuracy["overall"], "estimate": estimate.overall},
            "per_layer": per_layer, "groups": groups, "estimate_settings": estimate.settings()}
