"""Visualization-aware sampling (Park, Cafarella, Mozafari, ICDE 2016) by interchange.

VAS minimises the sum of pairwise kernel proximities of the sample,
``sum_{i<j} exp(-|s_i - s_j|^2 / (2 eps^2))``, so that the sample spreads over the data like a
good scatter plot. The *responsibility* of a sample point is the sum of its kernel to the
other sample points. The interchange algorithm starts from a random sample of K points and,
for each other point t in a seeded order, adds t and drops the point of highest
responsibility (nothing changes when that is t).

Kept up to date incrementally, one step costs two kernel rows, O(K d): the new point's
kernel to the sample, and, when a point p is dropped, p's kernel to the sample. A pass is
O(N K d), compiled with numba. Recomputing all pairs at each step, as the reference
:func:`dldiag.bench._reference.reference_vas` does, is O(N K^2 d).

Because a VAS sample depends on its size, the fit runs the interchange for a ladder of sizes
(``levels``) and, for each rung, records the order in which greedy eviction of the highest
responsibility (the interchange's own rule, without insertions) would empty it down to the
rung below. ``sample(fraction)`` then takes the smallest rung at least as large and drops its
first evictions: no kernel is evaluated after the fit.

The top rung (all items) and the rungs' sizes make an exact fit grow as N^2: about 2 s at
N = 10^4, minutes at 10^5, hours at 10^6. Above ``max_fit_items`` items the fit is local
instead: a balanced k-d split of the leading principal components cuts the data into cells
of at most ``cell_items`` items, the ladder runs inside each cell, and a sample allots its
seats to the cells in proportion to their sizes (:func:`kd_cells`). The kernel is local
(its width is a nearest-neighbour distance), so pairs in different cells add little to the
objective, and each cell's kernel width is taken at the same density as a global one.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from .._validation import check_int, check_interval
from ._base import Sampler, allocate, check_max_fit_items, group_starts, sample_size, standardize

__all__ = ["VASSampler", "vas_interchange", "vas_plan", "vas_epsilon", "kernel_objective", "kd_cells"]

# fastmath lets LLVM vectorise the squared-distance sum; it changes only rounding.
_JIT = dict(nogil=True, cache=True, fastmath=True)


@numba.njit(**_JIT)
def _kernel_row(zs, x, gamma, out):
    """out[i] = exp(-gamma |zs[i] - x|^2) for every row of ``zs``; returns their sum."""
    total = 0.0
    for i in range(zs.shape[0]):
        s = 0.0
        for k in range(zs.shape[1]):
            d = zs[i, k] - x[k]
            s += d * d
        v = math.exp(-s * gamma)
        out[i] = v
        total += v
    return total


def _kernel_block(zs, sq, rows, gamma):
    """exp(-gamma |zs[rows] - zs[j]|^2) for all j, (len(rows), K), by one BLAS product."""
    d2 = sq[rows, None] + sq[None, :] - 2.0 * (zs[rows] @ zs.T)
    np.maximum(d2, 0.0, out=d2)
    return np.exp(-gamma * d2)


def _responsibilities(zs, gamma, block=1024):
    """Responsibilities of the rows of ``zs`` among themselves, by blocks of BLAS products.

    The all-pairs sum is the one O(K^2 d) step (K = N for the top rung); matrix products use
    the cache far better than one kernel at a time, and the kernel being symmetric, only the
    blocks on and above the diagonal are computed.
    """
    sq = np.einsum("ij,ij->i", zs, zs)
    r = np.zeros(len(zs))
    starts = range(0, len(zs), block)
    for lo in starts:
        rows = np.arange(lo, min(lo + block, len(zs)))
        d2 = sq[rows, None] + sq[None, lo:] - 2.0 * (zs[rows] @ zs[lo:].T)
        np.maximum(d2, 0.0, out=d2)
        kern = np.exp(-gamma * d2)
        r[rows] += kern.sum(axis=1) - 1.0  # exp(0) = 1: each row's own entry
        r[rows[-1] + 1:] += kern[:, len(rows):].sum(axis=0)
    return r


@numba.njit(**_JIT)
def _interchange(z, members, r, candidates, gamma):
    """Interchange over ``candidates`` (visiting order, may repeat for several passes).

    ``r`` holds the responsibilities of ``members``. Returns the final members (same positions
    as ``members`` where nothing was swapped) and their responsibilities. The members' rows
    are kept in a contiguous copy so that each kernel row streams through memory.
    """
    members = members.copy()
    r = r.copy()
    k = members.shape[0]
    zs = np.empty((k, z.shape[1]))
    inside = np.zeros(z.shape[0], dtype=np.bool_)
    for i in range(k):
        inside[members[i]] = True
        zs[i] = z[members[i]]
    kt = np.empty(k)
    kp = np.empty(k)
    for t in candidates:
        if inside[t]:
            continue
        rt = _kernel_row(zs, z[t], gamma, kt)
        best = -1
        best_r = -1.0
        for i in range(k):
            if r[i] + kt[i] > best_r:
                best_r = r[i] + kt[i]
                best = i
        if best_r > rt:  # a member is more crowded than t: swap it for t
            _kernel_row(zs, zs[best], gamma, kp)
            for i in range(k):
                r[i] += kt[i] - kp[i]
            r[best] = rt - kt[best]
            inside[members[best]] = False
            inside[t] = True
            members[best] = t
            zs[best] = z[t]
    return members, r


@numba.njit(**_JIT)
def _evict_with(r, alive, rows, slot, order, done):
    """Greedy eviction while the most crowded member has a precomputed kernel row."""
    k = r.shape[0]
    while done < order.shape[0]:
        best = -1
        best_r = -np.inf
        for i in range(k):
            if alive[i] and r[i] > best_r:
                best_r = r[i]
                best = i
        if slot[best] < 0:
            break
        alive[best] = False
        order[done] = best
        done += 1
        row = rows[slot[best]]
        for i in range(k):
            if alive[i]:
                r[i] -= row[i]
    return done


def _eviction_order(zs, r, gamma, n_evict, batch=256):
    """Positions of the rows of ``zs`` in the order greedy eviction of the most crowded removes them.

    Responsibilities only decrease as members leave, so the next few evictions are almost
    always among the currently most crowded: their kernel rows are computed together by one
    BLAS product, and evictions proceed while the most crowded member (found exactly, by a
    scan) has its row at hand; otherwise the next batch is computed.
    """
    r = r.copy()
    alive = np.ones(len(zs), dtype=bool)
    order = np.empty(n_evict, dtype=np.int64)
    sq = np.einsum("ij,ij->i", zs, zs)
    done = 0
    while done < n_evict:
        live = np.flatnonzero(alive)
        if len(live) > batch:
            live = live[np.argpartition(-r[live], batch - 1)[:batch]]
        slot = np.full(len(zs), -1, dtype=np.int64)
        slot[live] = np.arange(len(live))
        done = _evict_with(r, alive, _kernel_block(zs, sq, live, gamma), slot, order, done)
    return order


def kernel_objective(z: np.ndarray, idx, epsilon: float) -> float:
    """The VAS loss of the sample ``idx``: ``sum_{i<j} exp(-|z_i - z_j|^2 / (2 epsilon^2))``."""
    zs = np.ascontiguousarray(z[np.asarray(idx)], dtype=np.float64)
    return float(_responsibilities(zs, 0.5 / epsilon**2).sum() / 2)


def vas_plan(n_items: int, k: int, seed: int, n_passes: int = 1):
    """The random start (K items) and the visiting order of one interchange run.

    Seeded by ``(seed, k)`` so that each rung of the ladder has its own stream and the
    reference implementation can replay the exact same run.
    """
    rng = np.random.default_rng((seed, k))
    start = rng.choice(n_items, size=k, replace=False).astype(np.int64)
    visits = np.concatenate([rng.permutation(n_items) for _ in range(n_passes)]).astype(np.int64)
    return start, visits


def vas_epsilon(z: np.ndarray, k: int, seed: int) -> float:
    """Kernel width: median nearest-neighbour distance inside a random K-subset of ``z``.

    Zero distances (duplicated rows) are left out of the median; if nothing is left, 1.0.
    """
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng((seed, k, 1))
    k = max(int(k), 2)
    sub = z[rng.choice(z.shape[0], size=min(k, z.shape[0]), replace=False)]
    if len(sub) < 2:
        return 1.0
    dist, _ = NearestNeighbors(n_neighbors=2).fit(sub).kneighbors(sub)
    nn = dist[:, 1]
    nn = nn[nn > 0]
    return float(np.median(nn)) if len(nn) else 1.0


def vas_interchange(z: np.ndarray, k: int, seed: int, *, n_passes: int = 1, epsilon=None):
    """One VAS interchange run on the (standardised) rows of ``z``.

    Parameters
    ----------
    z : ndarray (N, d)
    k : int
        Sample size, ``0 <= k <= N``.
    seed : int
        Seeds the random start, the visiting order and the subset behind ``epsilon``.
    n_passes : int
        Passes over the data.
    epsilon : float, optional
        Kernel width; :func:`vas_epsilon` if omitted.

    Returns
    -------
    members : ndarray of int64 (K,)
        The sample (not sorted: positions follow the random start, swapped in place).
    responsibilities : ndarray (K,)
    epsilon : float
    """
    z = np.ascontiguousarray(z, dtype=np.float64)
    eps = vas_epsilon(z, k, seed) if epsilon is None else float(epsilon)
    start, visits = vas_plan(z.shape[0], k, seed, n_passes)
    gamma = 0.5 / eps**2
    r = _responsibilities(z[start], gamma)
    if k == 0 or k == z.shape[0]:
        return start, r, eps
    members, r = _interchange(z, start, r, visits, gamma)
    return members, r, eps


def kd_cells(z: np.ndarray, max_items: int) -> np.ndarray:
    """Cell of each row: a balanced k-d split of the leading principal components of ``z``.

    With L = ceil(log2(N / max_items)) levels, level l cuts every cell at the median of its
    rows' l-th principal component (of all of ``z``; components are reused in turn past d),
    into halves of sizes floor and ceil. The 2^L cells hold at most ``max_items`` rows each
    and are compact in the leading directions. Deterministic: ties go by row index.

    Returns
    -------
    ndarray of int64 (N,)
        Cell ids 0 .. 2^L - 1 (0 everywhere when N <= max_items).
    """
    n, d = z.shape
    levels = max(0, math.ceil(math.log2(n / max_items))) if n > max_items else 0
    cell = np.zeros(n, dtype=np.int64)
    if levels == 0:
        return cell
    centred = z - z.mean(axis=0)
    _, vecs = np.linalg.eigh(centred.T @ centred)
    axes = vecs[:, ::-1][:, : min(levels, d)]
    proj = centred @ axes
    for level in range(levels):
        order = np.lexsort((proj[:, level % proj.shape[1]], cell))
        sizes = np.bincount(cell, minlength=2**level)
        starts = group_starts(sizes)
        groups = cell[order]
        rank = np.arange(n, dtype=np.int64) - starts[groups]
        cell[order] = 2 * groups + (rank >= sizes[groups] // 2)
    return cell


def _ladder(z, levels, seed, n_passes, epsilon, pool_map):
    """The rungs of one ladder on the rows of ``z``: sizes, ranked items per rung, widths."""
    n = z.shape[0]
    sizes = sorted({sample_size(f, n) for f in levels} - {0, n}) + [n]

    def rung(i):
        k = sizes[i]
        below = sizes[i - 1] if i else 0
        members, r, eps = vas_interchange(z, k, seed, n_passes=n_passes, epsilon=epsilon)
        evict = _eviction_order(z[members], r, 0.5 / eps**2, k - below)
        kept = np.setdiff1d(np.arange(k), evict, assume_unique=True)
        # Ranked so that the first m items are the sample of size m, for below < m <= k.
        return np.concatenate([members[kept], members[evict[::-1]]]), eps

    # Largest rungs first: they dominate the time, so two threads finish together.
    results = dict(zip(reversed(range(len(sizes))), pool_map(rung, reversed(range(len(sizes))))))
    return (sizes, np.concatenate([results[i][0] for i in range(len(sizes))]),
            [results[i][1] for i in range(len(sizes))])


class VASSampler(Sampler):
    """Visualization-aware sample: the interchange algorithm on the standardised latent space.

    Parameters
    ----------
    levels : tuple of float, default (0.01, 0.02, 0.05, 0.1, 0.2)
        Fractions at which the interchange runs during ``fit`` (the ladder). The full data is
        always the top rung. A sample between two rungs is the upper rung's interchange sample
        reduced by greedy eviction; a fraction equal to a rung is that run's sample exactly.
        Above the highest level the sample is the greedy eviction from the full data: on the
        Fashion-MNIST latent its kernel objective at 30 % and 40 % is within 0.3 % of an
        interchange run's at that size, and a 40 % rung would add ~1.5 s of CPU to the fit.
    n_passes : int, default 1
        Interchange passes over the data per rung.
    epsilon : float or None, default None
        Kernel width in standardised units; None: per rung, the median nearest-neighbour
        distance inside a random subset of the rung's size.
    max_fit_items : int >= 100 or None, default 20_000
        Above this many items the fit is local (see the module's notes): the standardised
        latent is cut into 2^L balanced k-d cells of at most ``min(cell_items,
        max_fit_items)`` items (:func:`kd_cells`), the ladder runs in each cell (seeded per
        cell), and a sample of n items allots n to the cells in proportion to their sizes
        (largest remainder, ties by the fit's seed) and takes each cell's sample of its size.
        At or below it (digits, 10k Fashion-MNIST, the galaxies) the fit is the exact one.
        None: always exact. An exact fit takes about 2 s at 10^4 items and grows as N^2.
    cell_items : int >= 100, default 2_000
        The most items in a cell of a local fit. A cell costs O(cell_items^2 d), so a local fit
        costs O(N cell_items d): about 100 s of CPU at N = 10^6 with 2,000 (512 cells of 1,953).

    Notes
    -----
    ``randomised`` is False: the random start and visiting order come from the fit's seed, so
    all the interchange work happens once. The rungs (of a local fit: the cells) run on two
    threads.
    """

    name = "vas"
    randomised = False
    _fit_params = ("levels", "n_passes", "epsilon", "max_fit_items", "cell_items")
    _state_names = ("rung_sizes_", "rung_items_", "rung_epsilon_", "cell_sizes_", "cell_rungs_")

    def __init__(self, *, levels=(0.01, 0.02, 0.05, 0.1, 0.2), n_passes: int = 1,
                 epsilon: float | None = None, max_fit_items: int | None = 20_000, cell_items: int = 2_000):
        self.levels = tuple(levels)
        self.n_passes = n_passes
        self.epsilon = epsilon
        self.max_fit_items = max_fit_items
        self.cell_items = cell_items

    def _validate_params(self):
        for f in self.levels:
            check_interval("levels", f, 0.0, 1.0, closed="right")
        check_int("n_passes", self.n_passes, 1)
        if self.epsilon is not None:
            check_interval("epsilon", self.epsilon, 0.0, None, closed="neither")
        check_max_fit_items(self.max_fit_items)
        check_int("cell_items", self.cell_items, 100)

    def _fit(self, x, y_true, y_pred, seed):
        z = standardize(x)
        n = z.shape[0]
        args = (self.levels, seed, self.n_passes, self.epsilon)
        # Two rungs (or cells) at a time, each with one BLAS thread: the compiled loops release
        # the GIL, and more BLAS threads than cores would spin against each other.
        with threadpool_limits(1), ThreadPoolExecutor(max_workers=2) as pool:
            if self.max_fit_items is None or n <= self.max_fit_items:
                ladders = [_ladder(z, *args, pool.map)]
                members = [None]
            else:
                cell = kd_cells(z, min(int(self.cell_items), int(self.max_fit_items)))
                members = np.split(np.argsort(cell, kind="stable"), np.cumsum(np.bincount(cell))[:-1])
                # Each cell's ladder on one thread, with its own seed stream.
                seeds = np.random.SeedSequence(seed).generate_state(len(members))

                def one(c):
                    return _ladder(z[members[c]], self.levels, int(seeds[c]), self.n_passes, self.epsilon, map)

                # Largest cells first (sizes differ by one at most; ties keep the cell order).
                order = np.argsort(-np.asarray([len(m) for m in members]), kind="stable")
                done = dict(zip(order, pool.map(one, order)))
                ladders = [done[c] for c in range(len(members))]
        self.rung_sizes_ = np.concatenate([np.asarray(sizes, dtype=np.int64) for sizes, _, _ in ladders])
        self.rung_items_ = np.concatenate([items if rows is None else rows[items]
                                           for (_, items, _), rows in zip(ladders, members)]).astype(np.int64)
        self.rung_epsilon_ = np.concatenate([np.asarray(eps, dtype=np.float64) for _, _, eps in ladders])
        self.cell_sizes_ = np.asarray([sizes[-1] for sizes, _, _ in ladders], dtype=np.int64)
        self.cell_rungs_ = np.asarray([len(sizes) for sizes, _, _ in ladders], dtype=np.int64)

    @property
    def fit_items_(self) -> int:
        """The most items one ladder saw: N for the exact fit, the largest cell's size otherwise."""
        self._check_fitted()
        return int(np.max(self.cell_sizes_))

    def _picks(self, n, rng):
        """(cell, rung index within all rungs, items taken) for each cell with a seat."""
        cell_sizes = np.atleast_1d(self.cell_sizes_)
        take = (np.array([n]) if len(cell_sizes) == 1
                else allocate(cell_sizes, n, cell_sizes, rng))
        first_rung = group_starts(np.atleast_1d(self.cell_rungs_))
        offsets = group_starts(np.atleast_1d(self.rung_sizes_))
        picks = []
        for c in np.flatnonzero(take):
            lo, hi = first_rung[c], first_rung[c + 1]
            i = lo + int(np.searchsorted(self.rung_sizes_[lo:hi], take[c]))
            picks.append((int(i), int(offsets[i]), int(take[c])))
        return picks

    def _sample(self, n, j, rng):
        return np.concatenate([self.rung_items_[offset:offset + m] for _, offset, m in self._picks(n, rng)])

    def _info(self, n, j, rng):
        picks = self._picks(n, rng)
        size = sum(int(self.rung_sizes_[i]) for i, _, _ in picks)
        eps = np.median([self.rung_epsilon_[i] for i, _, _ in picks])
        info = {"rung_size": size, "evicted": size - n, "epsilon": float(eps)}
        if len(np.atleast_1d(self.cell_sizes_)) > 1:
            info["cells"] = int(len(self.cell_sizes_))
        return info
