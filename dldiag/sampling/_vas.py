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
instead (:mod:`._vas_local`): a balanced k-d split of the leading principal components cuts
the data into cells of at most ``cell_items`` items; each level's seats start from an exact VAS
of a uniform pool; sweeps over the cells in turn run the interchange in each cell with the
kernel sums to the other cells' members added (the nearest cells' exactly, the farther ones'
by a draw) and move seats between cells; each cell ranks its rungs by greedy eviction as the
exact fit does.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from .._validation import check_int, check_interval
from ._base import Sampler, allocate, check_max_fit_items, group_starts, sample_size, standardize
from ._vas_local import (MIN_LEVEL_SEATS, NEAR_CELLS, SEAT_POOL, global_epsilon, kd_cells, near_cells, rung_seats,
                         sweep_rung)

__all__ = ["VASSampler", "vas_interchange", "vas_plan", "vas_epsilon", "kernel_objective", "kd_cells"]

# fastmath lets LLVM vectorise the squared-distance sum; it changes only rounding.
_JIT = dict(nogil=True, cache=True, fastmath=True)


@numba.njit(**_JIT)
def _kernel_row(zs, x, gamma, out):
    """out[i] = exp(-gamma |zs[i] - x|^2) for every row of ``zs``; returns their sum."""
    total = 0.0
    for i in range(zs.shape[0]):
        s = x[0] - x[0]  # 0 in the rows' type: float32 rows (a local fit's sweeps) sum in float32
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
def _interchange(z, members, r, candidates, gamma, field, crowding):
    """Interchange over ``candidates`` (visiting order, may repeat for several passes).

    ``r`` holds the responsibilities of ``members``. ``field[t]`` is a fixed kernel sum added
    to row t's responsibility: the members of other cells in a local fit, zeros otherwise
    (adding 0.0 leaves every sum, and so the exact fit, bit for bit as it was). Returns the
    final members (same positions as ``members`` where nothing was swapped) and their
    responsibilities. ``crowding[t]`` receives, for each row t that ends outside, the
    responsibility it had when last compared (what adding it back would cost, for the moves
    of seats between cells). The members' rows are kept in a contiguous copy so that each
    kernel row streams through memory.
    """
    members = members.copy()
    r = r.copy()
    k = members.shape[0]
    zs = np.empty((k, z.shape[1]), dtype=z.dtype)
    inside = np.zeros(z.shape[0], dtype=np.bool_)
    for i in range(k):
        inside[members[i]] = True
        zs[i] = z[members[i]]
    kt = np.empty(k)
    kp = np.empty(k)
    for t in candidates:
        if inside[t]:
            continue
        rt = _kernel_row(zs, z[t], gamma, kt) + field[t]
        crowding[t] = rt
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
            crowding[members[best]] = best_r
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
    members, r = _interchange(z, start, r, visits, gamma, np.zeros(z.shape[0]), np.empty(z.shape[0]))
    return members, r, eps


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


def _local_ladders(z, levels, seed, n_passes, epsilon, cell_items, group_items, pool_items, rounds, pool_map):
    """The local fit (:mod:`._vas_local`): each cell's ladder, the levels' sizes and seats.

    Returns
    -------
    ladders : list of (sizes, items, widths), one per cell, as :func:`_ladder`'s (items are
        row indices of ``z``); a cell's rungs are the levels' seats in it and the whole cell.
    level_sizes : ndarray of int64 (R,)
        The sizes of the levels below the whole data.
    level_seats : ndarray of int64 (R, C)
    level_shifts : ndarray of int64 (R,)
        Each level ran in groups of 2^shift consecutive cells.
    """
    n = len(z)
    cell = kd_cells(z, cell_items)
    order = np.argsort(cell, kind="stable")
    bounds = group_starts(np.bincount(cell))
    n_cells = len(bounds) - 1
    sizes = sorted({sample_size(f, n) for f in levels} - {0, n})
    z = z[order]  # cells contiguous: each cell's rows are a view
    cell = cell[order]
    seats = rung_seats(z, cell, sizes, seed, pool_items,
                       lambda zp, k: vas_interchange(zp, k, seed, n_passes=n_passes, epsilon=epsilon)[0], pool_map)
    widths = (list(pool_map(lambda k: global_epsilon(z, k, seed), sizes)) if epsilon is None
              else [float(epsilon)] * len(sizes))
    cells = [z[bounds[c]:bounds[c + 1]] for c in range(n_cells)]
    seeds = np.random.SeedSequence(seed).generate_state(n_cells)
    # A level with few seats per cell runs in the k-d tree's coarser cells (2^shift cells
    # each, contiguous in z): with a handful of seats a cell's interchange has little to
    # choose from and the field from the others is nearly everything.
    cell_sizes = np.diff(bounds)
    shifts = []
    for k in sizes:
        shift = 0
        # ... never larger than max_fit_items, the most items one interchange may see.
        while ((n_cells >> shift) > 1 and k / (n_cells >> shift) < MIN_LEVEL_SEATS
               and cell_sizes.reshape(-1, 2 << shift).sum(axis=1).max() <= group_items):
            shift += 1
        shifts.append(shift)
    z32 = z.astype(np.float32)
    groups = {}
    for shift in sorted(set(shifts)):
        edges = bounds[np.arange((n_cells >> shift) + 1) << shift]
        rows = [(z[edges[a]:edges[a + 1]], z32[edges[a]:edges[a + 1]]) for a in range(len(edges) - 1)]
        groups[shift] = (edges, rows, near_cells(np.stack([r.mean(axis=0) for r, _ in rows]), NEAR_CELLS),
                         seeds if shift == 0 else np.random.SeedSequence((seed, shift)).generate_state(len(rows)))

    def level(i):
        shift = shifts[i]
        edges, rows, near, group_seeds = groups[shift]
        alone = rounds == 0 or len(rows) == 1  # one group: the exact interchange of the level

        def first_run(rows, k, cell_seed):
            if alone:
                members, r, _ = vas_interchange(rows, k, cell_seed, n_passes=n_passes, epsilon=widths[i])
                return members, r
            # The sweeps start, as the exact interchange does, from a random sample: an
            # interchange of each cell alone first would cost a sweep and steer the start
            # towards the cells' borders.
            start = np.random.default_rng((cell_seed, k)).choice(len(rows), size=k, replace=False)
            return start.astype(np.int64), np.zeros(k)

        members, resp = sweep_rung(rows, seats[i].reshape(len(rows), -1).sum(axis=1), 0.5 / widths[i] ** 2,
                                   group_seeds, near, 0 if alone else rounds, n_passes, first_run, _interchange,
                                   _responsibilities)
        # Back to the cells: a group's members split by the cell they lie in.
        cell_members, cell_resp = [], []
        for a in range(len(rows)):
            inner = bounds[a << shift:((a + 1) << shift) + 1] - edges[a]
            where = np.searchsorted(inner, members[a], side="right") - 1
            for f in range(1 << shift):
                mine = where == f
                cell_members.append(members[a][mine] - inner[f])
                cell_resp.append(resp[a][mine])
        return cell_members, cell_resp

    # Largest levels first: they dominate the time, so two threads finish together.
    runs = dict(zip(reversed(range(len(sizes))), pool_map(level, reversed(range(len(sizes))))))
    # The sweeps move seats between cells: a level's seats are where its members ended.
    seats = np.asarray([[len(m) for m in runs[i][0]] for i in range(len(sizes))], dtype=np.int64).reshape(
        len(sizes), n_cells)

    def ladder(c):
        rows, rows32 = cells[c], z32[bounds[c]:bounds[c + 1]]
        # Each rung of the cell: its members, their responsibilities (field included), width.
        rungs = {}
        for i in range(len(sizes)):
            k = int(seats[i, c])
            if 0 < k < len(rows) and k not in rungs:
                rungs[k] = (runs[i][0][c], runs[i][1][c], widths[i])
        # The whole cell, with the cell's own width: above the highest level, greedy eviction.
        # Its all-pairs sums and the evictions' kernel rows are the fit's largest products:
        # float32, as the fields.
        eps = float(epsilon) if epsilon is not None else vas_epsilon(rows, len(rows), int(seeds[c]))
        members = vas_plan(len(rows), len(rows), int(seeds[c]))[0]
        rungs[len(rows)] = (members, _responsibilities(rows32[members], 0.5 / eps**2), eps)
        ranked, below = [], 0
        for k in sorted(rungs):
            members, r, eps = rungs[k]
            evict = _eviction_order(rows32[members], r, 0.5 / eps**2, k - below)
            kept = np.setdiff1d(np.arange(k), evict, assume_unique=True)
            ranked.append(np.concatenate([members[kept], members[evict[::-1]]]))
            below = k
        return (sorted(rungs), order[bounds[c] + np.concatenate(ranked)],
                [rungs[k][2] for k in sorted(rungs)])

    return (list(pool_map(ladder, range(n_cells))), np.asarray(sizes, dtype=np.int64), seats,
            np.asarray(shifts, dtype=np.int64))


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
        Above this many items the fit is local (:mod:`._vas_local`): the standardised latent
        is cut into 2^L balanced k-d cells of at most ``min(cell_items, max_fit_items)`` items
        (:func:`kd_cells`); each level's seats start as an exact VAS of a uniform pool of
        ``min(10_000, max_fit_items)`` items places them, each cell from a random sample of
        its seats; ``rounds`` sweeps then run each cell's interchange against the other cells'
        members (the level's kernel width estimated on all items) and move seats between
        cells; a level with fewer than 50 seats per cell runs in groups of neighbouring cells
        (never more than ``max_fit_items`` items). Each cell's rungs are its levels' seats and
        the whole cell. A sample of n items allots n to the cells in proportion to the seats of
        the smallest level holding n (by size above the highest level; largest remainder, ties
        by the fit's seed) and takes each cell's sample of its size. At or below it (digits,
        10k Fashion-MNIST, the galaxies) the fit is the exact one. None: always exact. An exact
        fit takes about 2 s at 10^4 items and grows as N^2; the local fit about 14 s at 10^5
        and 110 s at 10^6 (two cores).
    cell_items : int >= 100, default 2_000
        The most items in a cell of a local fit. A cell costs O(cell_items^2 d), so a local fit
        costs O(N cell_items d).
    rounds : int >= 0, default 4
        Sweeps over the cells of a local fit, each cell's interchange counting the kernel sums
        to the other cells' latest members, seats moving between cells after each but the
        last. 0: each cell's interchange alone, with the pool's seats (at N = 10^5 its samples
        leave the exact fit's S1/S2/S3 by up to 0.08/0.05/0.04 at 1-20 %).

    Notes
    -----
    ``randomised`` is False: the random start and visiting order come from the fit's seed, so
    all the interchange work happens once. The rungs (of a local fit: the levels, then the
    cells' ladders) run on two threads.
    """

    name = "vas"
    randomised = False
    _fit_params = ("levels", "n_passes", "epsilon", "max_fit_items", "cell_items", "rounds")
    _state_names = ("rung_sizes_", "rung_items_", "rung_epsilon_", "cell_sizes_", "cell_rungs_",
                    "level_sizes_", "level_seats_", "level_shifts_")

    def __init__(self, *, levels=(0.01, 0.02, 0.05, 0.1, 0.2), n_passes: int = 1,
                 epsilon: float | None = None, max_fit_items: int | None = 20_000, cell_items: int = 2_000,
                 rounds: int = 4):
        self.levels = tuple(levels)
        self.n_passes = n_passes
        self.epsilon = epsilon
        self.max_fit_items = max_fit_items
        self.cell_items = cell_items
        self.rounds = rounds

    def _validate_params(self):
        for f in self.levels:
            check_interval("levels", f, 0.0, 1.0, closed="right")
        check_int("n_passes", self.n_passes, 1)
        if self.epsilon is not None:
            check_interval("epsilon", self.epsilon, 0.0, None, closed="neither")
        check_max_fit_items(self.max_fit_items)
        check_int("cell_items", self.cell_items, 100)
        check_int("rounds", self.rounds, 0)

    def _fit(self, x, y_true, y_pred, seed):
        z = standardize(x)
        n = z.shape[0]
        args = (self.levels, seed, self.n_passes, self.epsilon)
        # Two rungs (or cells) at a time, each with one BLAS thread: the compiled loops release
        # the GIL, and more BLAS threads than cores would spin against each other.
        with threadpool_limits(1), ThreadPoolExecutor(max_workers=2) as pool:
            if self.max_fit_items is None or n <= self.max_fit_items:
                ladders = [_ladder(z, *args, pool.map)]
                self.level_sizes_ = np.zeros(0, dtype=np.int64)
                self.level_seats_ = np.zeros((0, 1), dtype=np.int64)
                self.level_shifts_ = np.zeros(0, dtype=np.int64)
            else:
                cells = min(int(self.cell_items), int(self.max_fit_items))
                pool_items = min(SEAT_POOL, int(self.max_fit_items))
                ladders, self.level_sizes_, self.level_seats_, self.level_shifts_ = _local_ladders(
                    z, *args, cells, int(self.max_fit_items), pool_items, self.rounds, pool.map)
        self.rung_sizes_ = np.concatenate([np.asarray(sizes, dtype=np.int64) for sizes, _, _ in ladders])
        self.rung_items_ = np.concatenate([items for _, items, _ in ladders]).astype(np.int64)
        self.rung_epsilon_ = np.concatenate([np.asarray(eps, dtype=np.float64) for _, _, eps in ladders])
        self.cell_sizes_ = np.asarray([sizes[-1] for sizes, _, _ in ladders], dtype=np.int64)
        self.cell_rungs_ = np.asarray([len(sizes) for sizes, _, _ in ladders], dtype=np.int64)

    @property
    def fit_items_(self) -> int:
        """The most items one interchange saw: N for the exact fit; otherwise the largest cell,
        or group of cells where a level with few seats per cell ran in coarser ones."""
        self._check_fitted()
        sizes = np.atleast_1d(self.cell_sizes_)
        largest = int(np.max(sizes))
        for shift in set(np.atleast_1d(self.level_shifts_).tolist()):
            largest = max(largest, int(sizes.reshape(-1, 1 << shift).sum(axis=1).max()))
        return largest

    def _picks(self, n, rng):
        """(rung index within all rungs, its offset, items taken) for each cell with a seat.

        A local fit's n seats go to the cells in proportion to the seats of the smallest
        level with at least n (never more than it gives a cell: at a level's size, its seats
        exactly), or to the cells' sizes above the highest level; each cell then takes the
        first items of its smallest rung that holds them.
        """
        cell_sizes = np.atleast_1d(self.cell_sizes_)
        if len(cell_sizes) == 1:
            take = np.array([n])
        else:
            level = int(np.searchsorted(self.level_sizes_, n))
            caps = self.level_seats_[level] if level < len(self.level_sizes_) else cell_sizes
            take = allocate(caps, n, caps, rng)
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
