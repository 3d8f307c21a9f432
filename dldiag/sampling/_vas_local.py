"""VAS above ``max_fit_items``: the interchange in k-d cells that see each other.

An exact VAS fit grows as N^2 (:mod:`._vas`). Above ``max_fit_items`` the fit cuts the
standardised latent into balanced k-d cells (:func:`kd_cells`) and runs the interchange in
each cell. On the Fashion-MNIST latent (d = 84) the kernel is wide, about a third of the
median distance, so a point's responsibility comes mostly from outside its cell (94 % at
N = 10^5 with 64 cells), and the exact sample is sharply defined: two exact fits with
different seeds share 99 % of their items at 1-10 %. Cells that run alone miss it twice:

- **seats**: the exact sample gives some cells 3x their share and others a seventh (decision
  boundaries against class cores), where cells alone would get seats by size;
- **borders**: a cell's interchange that sees nothing across its border leaves both sides
  of every border under-crowded.

So each level (a rung of the ladder below the whole data) runs as follows (:func:`sweep_rung`):

1. Seats start from an exact VAS of a uniform pool of items (:func:`rung_seats`): the pool's
   inclusion rate, smoothed over each pool item's nearest pool neighbours, times the cell's
   size. A level with fewer than ``MIN_LEVEL_SEATS`` seats per cell runs in the k-d tree's
   coarser cells.
2. Each cell starts from a random sample of its seats, as the exact interchange does.
3. ``rounds`` sweeps visit the cells in turn (Gauss-Seidel: each against the latest members of
   the others) and run the interchange with a fixed *field* added to every responsibility: the
   kernel sums to the members of the ``NEAR_CELLS`` nearest cells (by centroid), exactly and
   kept up to date by their changes, plus those to ``FAR_DRAWS`` members drawn from all the
   farther cells, weighted by how many they stand for. Sweeps updating all cells at once
   against the previous round oscillate; in turn they settle.
4. Between sweeps, seats move between cells (:func:`_move_seats`): the most crowded members
   anywhere give their seats to the least crowded outsiders anywhere, a quarter of a cell's
   seats at most per step, as the exact interchange would swap them across the border.

Each cell then ranks its rungs by greedy eviction, as the exact fit does. Above the highest
level, a sample is each whole cell's greedy eviction (cells alone, seats by size).
Measured at N = 10^5 against the exact fit in BENCHMARKS.md (section ``fits``).
"""

from __future__ import annotations

import math

import numpy as np

from ._base import allocate, group_starts

__all__ = ["kd_cells", "MIN_LEVEL_SEATS", "NEAR_CELLS", "NearFields", "FAR_DRAWS", "SEAT_POOL", "global_epsilon",
           "kernel_sums", "rung_seats", "near_cells", "sweep_rung"]

#: Cells (nearest by centroid) whose members enter a cell's field one by one.
NEAR_CELLS = 6
#: Members drawn from all farther cells for a cell's field (the far field is smooth and small
#: per member, so a draw stands for them; at N = 10^5 with 8 near cells, leaving it out moved
#: S3 by 0.015).
FAR_DRAWS = 512
#: Sweeps after which the far field is drawn again only every other sweep (the members move
#: little by then; drawing it less often from the second sweep on cost 0.03 of overlap with the
#: exact sample at N = 10^5).
FAR_EVERY_SWEEP = 3
#: Seats a level's cell holds at least on average: below, the level runs in coarser cells.
MIN_LEVEL_SEATS = 50
#: Share of a cell's seats that may move in or out of it at once.
TRANSFER_SHARE = 0.25
#: Items in the uniform pool whose exact VAS allots the seats (capped by ``max_fit_items``).
SEAT_POOL = 10_000
#: Expected pool members in the neighbourhood over which the pool's inclusion is smoothed.
SMOOTH_MEMBERS = 8
#: Pool neighbours computed for the smoothing (the neighbourhood's cap).
SMOOTH_MAX = 400
#: Queries behind a kernel width of all the data (:func:`global_epsilon`).
WIDTH_QUERIES = 2_000


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


def _squared_distances(a, sq_a, b, sq_b):
    d2 = sq_a[:, None] + sq_b[None, :] - 2.0 * (a @ b.T)
    np.maximum(d2, 0.0, out=d2)
    return d2


def _row_norms(a):
    return np.einsum("ij,ij->i", a, a)


def kernel_sums(a: np.ndarray, b: np.ndarray, gamma: float, block: int = 4096) -> np.ndarray:
    """``sum_j exp(-gamma |a_i - b_j|^2)`` for each row of ``a``, by BLAS products over blocks of ``b``."""
    out = np.zeros(len(a))
    sq_a = _row_norms(a)
    for lo in range(0, len(b), block):
        part = b[lo:lo + block]
        out += np.exp(-gamma * _squared_distances(a, sq_a, part, _row_norms(part))).sum(axis=1)
    return out


def global_epsilon(z: np.ndarray, k: int, seed: int, queries: int = WIDTH_QUERIES) -> float:
    """:func:`~._vas.vas_epsilon` of all of ``z``, from ``queries`` rows of the random K-subset.

    The median distance from each query to its nearest distinct row of the subset (zero
    distances, duplicated rows, are left out; 1.0 if nothing is left). An exact median over a
    subset of 200,000 rows would take minutes; 2,000 queries estimate it within 0.1 % at
    N = 10^5.
    """
    rng = np.random.default_rng((seed, k, 1))
    subset = z[rng.choice(len(z), size=min(max(int(k), 2), len(z)), replace=False)]
    q = subset[: min(queries, len(subset))]  # the subset is in random order
    sq_q = _row_norms(q)
    nearest = np.full(len(q), np.inf)
    own = np.arange(len(q))
    for lo in range(0, len(subset), 8192):
        part = subset[lo:lo + 8192]
        d2 = _squared_distances(q, sq_q, part, _row_norms(part))
        mine = (own >= lo) & (own < lo + len(part))
        d2[own[mine], own[mine] - lo] = np.inf
        # A duplicated row's distance comes out of the expansion as rounding noise, not 0.
        d2[d2 <= 1e-9 * (sq_q[:, None] + 1.0)] = np.inf
        np.minimum(nearest, d2.min(axis=1), out=nearest)
    found = np.sqrt(nearest[np.isfinite(nearest)])
    return float(np.median(found)) if len(found) else 1.0


def _pool_neighbours(zp: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    """Indices of each pool row's ``k`` nearest pool rows (itself included), nearest first."""
    sq = _row_norms(zp)
    out = np.empty((len(zp), k), dtype=np.int64)
    for lo in range(0, len(zp), block):
        d2 = _squared_distances(zp[lo:lo + block], sq[lo:lo + block], zp, sq)
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        out[lo:lo + block] = np.take_along_axis(part, np.argsort(np.take_along_axis(d2, part, 1), 1), 1)
    return out


def rung_seats(z, cell, sizes, seed, pool_items, interchange, pool_map=map) -> np.ndarray:
    """Each level's seats in each cell, from an exact VAS of a uniform pool of ``pool_items`` rows.

    For each level's size K, the pool's VAS of size K * pool / N marks its members; each pool
    item's inclusion rate is the mean over its nearest pool neighbours (so many that about
    ``SMOOTH_MEMBERS`` members fall among them: a cell holds too few pool items for their
    count alone at N = 10^6), a cell's weight is its pool items' mean rate times its size,
    and the K seats are allotted by those weights (:func:`~._base.allocate`, never more than
    a cell holds).

    Parameters
    ----------
    seed : int
        Seeds the pool and the allocation's tie-breaking.
    interchange : callable (z, k) -> members
        The exact VAS of the pool (``vas_interchange`` with the fit's seed).
    pool_map : callable
        ``map`` or a thread pool's: the pool's VAS of each level.

    Returns
    -------
    ndarray of int64 (len(sizes), n_cells)
    """
    n = len(z)
    cell_sizes = np.bincount(cell)
    rng = np.random.default_rng((seed, 3))
    pool = np.sort(rng.choice(n, size=pool_items, replace=False))
    zp = np.ascontiguousarray(z[pool])
    in_cell = cell[pool]
    pool_per_cell = np.bincount(in_cell, minlength=len(cell_sizes))
    neighbours = _pool_neighbours(zp, min(SMOOTH_MAX, pool_items))
    seats = np.zeros((len(sizes), len(cell_sizes)), dtype=np.int64)
    ks = [min(max(1, round(size * pool_items / n)), pool_items - 1) for size in sizes]
    runs = list(pool_map(lambda k: interchange(zp, k), ks))
    for i, (size, k) in enumerate(zip(sizes, ks)):
        chosen = np.zeros(pool_items)
        chosen[runs[i]] = 1.0
        width = min(neighbours.shape[1], max(1, math.ceil(SMOOTH_MEMBERS * pool_items / k)))
        rate = chosen[neighbours[:, :width]].mean(axis=1)
        mean_rate = np.bincount(in_cell, weights=rate, minlength=len(cell_sizes))
        # A cell without pool items (tiny cells only) takes the pool's mean rate.
        mean_rate = np.where(pool_per_cell > 0, mean_rate / np.maximum(pool_per_cell, 1), rate.mean())
        seats[i] = allocate(cell_sizes, size, np.maximum(mean_rate, 1e-12) * cell_sizes, rng)
    return seats


def near_cells(centroids: np.ndarray, count: int) -> np.ndarray:
    """For each cell, the ``count`` other cells with the nearest centroids, nearest first."""
    sq = _row_norms(centroids)
    d2 = _squared_distances(centroids, sq, centroids, sq)
    np.fill_diagonal(d2, np.inf)
    count = min(count, len(centroids) - 1)
    return np.argsort(d2, axis=1, kind="stable")[:, :count]


class NearFields:
    """Each cell's field from its near cells' members, kept up to date by their changes.

    A cell's near field is summed once over the near cells' members; afterwards the changes
    of those cells since the cell's last look (a log of rows in and out per cell) are added
    and subtracted, unless they outnumber the members (the first sweeps), when it is summed
    again. After the first sweeps most members stay, and a sweep's fields cost its changes.

    Parameters
    ----------
    rows : list of ndarray (n_c, d) float32
        Each cell's rows.
    near : ndarray of int (C, P)
        Each cell's near cells.
    gamma : float
    """

    def __init__(self, rows, near, gamma):
        self.rows = rows
        self.near = near
        self.gamma = gamma
        self.log = [[] for _ in rows]  # per cell: (step, rows in, rows out)
        self.fields = [None] * len(rows)
        self.synced = np.zeros(len(rows), dtype=np.int64)
        self.step = 0

    def record(self, c, before, after):
        """Cell ``c``'s members went from ``before`` to ``after`` (row positions in the cell)."""
        self.step += 1
        came = np.setdiff1d(after, before, assume_unique=True)
        left = np.setdiff1d(before, after, assume_unique=True)
        if len(came) or len(left):
            self.log[c].append((self.step, self.rows[c][came], self.rows[c][left]))

    def summed(self, c, members):
        """Kernel sums of cell ``c``'s rows to the current members of its near cells."""
        close = self.near[c]
        news = [e for o in close for e in self.log[o] if e[0] > self.synced[c]]
        changed = sum(len(e[1]) + len(e[2]) for e in news)
        if self.fields[c] is None or changed >= sum(len(members[o]) for o in close):
            self.fields[c] = kernel_sums(self.rows[c], np.concatenate([self.rows[o][members[o]] for o in close]),
                                         self.gamma)
        elif news:
            came = [e[1] for e in news if len(e[1])]
            left = [e[2] for e in news if len(e[2])]
            if came:
                self.fields[c] += kernel_sums(self.rows[c], np.concatenate(came), self.gamma)
            if left:
                self.fields[c] -= kernel_sums(self.rows[c], np.concatenate(left), self.gamma)
        self.synced[c] = self.step
        return self.fields[c]

    def drawn(self, c, members, rng, draws):
        """A draw's estimate of :meth:`summed` (``draws`` members, each weighted by how many it
        stands for); the next :meth:`summed` of ``c`` sums in full."""
        near_rows = np.concatenate([self.rows[o][members[o]] for o in self.near[c]])
        if len(near_rows) > draws:
            picked = near_rows[rng.choice(len(near_rows), size=draws, replace=False)]
        else:
            picked = near_rows
        self.fields[c] = None
        self.synced[c] = self.step
        return kernel_sums(self.rows[c], picked, self.gamma) * (len(near_rows) / max(len(picked), 1))

    def forget_seen(self):
        """Drop the changes every cell has looked at since."""
        oldest = self.synced.min()
        self.log = [[e for e in entries if e[0] > oldest] for entries in self.log]


def sweep_rung(cells, seats, gamma, seeds, near, rounds, passes, first_run, interchange, responsibilities):
    """One level of a local fit: each cell's own run, then ``rounds`` sweeps against the others.

    Parameters
    ----------
    cells : list of (ndarray (n_c, d) float64, ndarray (n_c, d) float32)
        Each cell's standardised rows, C-contiguous, and their float32 copy for the fields
        (kernel sums to other cells' members: float32 products halve their time, and their
        rounding, ~1e-5 of a squared distance, is far below the draw's noise).
    seats : ndarray of int (C,)
        The level's members in each cell at the start.
    gamma : float
        ``0.5 / epsilon**2`` of the level's (global) kernel width.
    seeds : ndarray of int (C,)
        Each cell's seed (its first run's start and order, its draws and visiting orders).
    near : ndarray of int (C, NEAR_CELLS)
    rounds : int
        Sweeps after the first run; seats move between cells after each sweep but the last.
    passes : int
        Passes over a cell's rows in each sweep's interchange.
    first_run : callable (cell rows, k, seed) -> (members, responsibilities)
    interchange : the compiled interchange with a field, ``(z, members, r, visits, gamma, field, crowding)``
    responsibilities : callable (rows, gamma) -> responsibilities among themselves

    Returns
    -------
    members : list of ndarray of int64
        Each cell's members, as row positions inside the cell.
    responsibilities : list of ndarray
        Their responsibilities, the field of the cell's last sweep included (what the
        greedy eviction between rungs starts from).
    """
    n_cells = len(cells)
    members, resp = [], []
    for c in range(n_cells):
        if seats[c] == 0:
            members.append(np.zeros(0, dtype=np.int64))
            resp.append(np.zeros(0))
        else:
            m, r = first_run(cells[c][0], int(seats[c]), int(seeds[c]))
            members.append(m.astype(np.int64))
            resp.append(r)
    if rounds == 0 or n_cells == 1:
        return members, resp

    def member_rows():
        counts = np.array([len(m) for m in members])
        return (np.repeat(np.arange(n_cells), counts), group_starts(counts),
                np.concatenate([cells[c][1][members[c]] for c in range(n_cells)]))

    fields = NearFields([rows32 for _, rows32 in cells], near, gamma)
    far_field = [0.0] * n_cells
    owner, starts, rows = member_rows()
    for sweep in range(1, rounds + 1):
        offers = []
        for c in range(n_cells):
            k = len(members[c])
            rng = np.random.default_rng((int(seeds[c]), sweep))
            zc, zc32 = cells[c]
            close = near[c]
            if sweep == 1:
                # The first sweep starts from random members: their field is smooth, and a draw
                # of the near ones stands for them as for the far ones (a sum over all of them
                # here took a quarter of the fields' time at N = 10^6).
                near_field = fields.drawn(c, members, rng, FAR_DRAWS)
            else:
                near_field = fields.summed(c, members)
            if sweep <= FAR_EVERY_SWEEP or sweep % 2:
                skip = np.zeros(n_cells, dtype=bool)
                skip[close] = True
                skip[c] = True
                far = np.flatnonzero(~skip[owner])
                far_field[c] = 0.0
                if len(far):
                    drawn = far if len(far) <= FAR_DRAWS else rng.choice(far, size=FAR_DRAWS, replace=False)
                    far_field[c] = kernel_sums(zc32, rows[drawn], gamma) * (len(far) / len(drawn))
            field = near_field + far_field[c]
            crowding = field.copy()  # an outsider never compared: its field alone (no member in the cell)
            if k:
                start = members[c]
                r = responsibilities(zc32[start], gamma) + field[start]
                if k < len(zc):
                    visits = np.concatenate([rng.permutation(len(zc)) for _ in range(passes)]).astype(np.int64)
                    m, r = interchange(zc32, start, r, visits, gamma, field, crowding)
                    fields.record(c, start, m)
                    members[c] = m
                    rows[starts[c]:starts[c + 1]] = zc32[m]
                resp[c] = r
            if sweep < rounds:  # seats move between sweeps (:func:`_move_seats`)
                outside = np.ones(len(zc), dtype=bool)
                outside[members[c]] = False
                outside = np.flatnonzero(outside)
                offers.append((outside, crowding[outside]))
        if sweep < rounds:
            before = [m.copy() for m in members]
            _move_seats(members, resp, offers)
            for c in range(n_cells):
                if len(before[c]) != len(members[c]) or not np.array_equal(before[c], members[c]):
                    fields.record(c, before[c], members[c])
            owner, starts, rows = member_rows()
        fields.forget_seen()
    return members, resp


def _move_seats(members, resp, offers):
    """Seats from the most crowded members to the least crowded outsiders, across cells.

    The exact interchange takes in an outsider t whenever some member is more crowded than t
    would be, wherever that member lies; a cell's own sweep only compares within the cell.
    Pairs (most crowded member, least crowded outsider), ranked over all cells, are matched
    while the member is the more crowded, no cell losing or gaining more than
    ``TRANSFER_SHARE`` of its seats (at least one): each move makes the outsiders near it more
    crowded, which the pairing does not see, and moving every pair at once made the objective
    rise from sweep to sweep; the next sweep settles the rest.

    Parameters
    ----------
    members, resp : list of ndarray
        Each cell's members (row positions) and their responsibilities; changed in place.
    offers : list of (ndarray, ndarray)
        Each cell's outsiders and what each would cost to add (its ``crowding``).
    """
    r = np.concatenate(resp)
    r_cell = np.repeat(np.arange(len(members)), [len(m) for m in members])
    r_pos = np.concatenate([np.arange(len(m)) for m in members])
    q = np.concatenate([o[1] for o in offers])
    q_cell = np.repeat(np.arange(len(offers)), [len(o[0]) for o in offers])
    q_row = np.concatenate([o[0] for o in offers])
    n = min(len(r), len(q))
    by_r = np.argsort(-r, kind="stable")[:n]
    by_q = np.argsort(q, kind="stable")[:n]
    pairs = int(np.count_nonzero(r[by_r] > q[by_q]))
    # A cell gains or loses a few seats per step at most: moved all at once, the seats of a
    # sparse region's cells would crowd each other (the objective rose over the sweeps).
    cap = np.maximum(1, np.ceil(TRANSFER_SHARE * np.array([len(m) for m in members]))).astype(np.int64)
    lost = np.zeros(len(members), dtype=np.int64)
    gained = np.zeros(len(members), dtype=np.int64)
    leave, enter = [], []
    i = j = 0
    while i < pairs and j < pairs:
        a, b = by_r[i], by_q[j]
        if r[a] <= q[b]:
            break
        if lost[r_cell[a]] >= cap[r_cell[a]]:
            i += 1
            continue
        if gained[q_cell[b]] >= cap[q_cell[b]]:
            j += 1
            continue
        lost[r_cell[a]] += 1
        gained[q_cell[b]] += 1
        leave.append(a)
        enter.append(b)
        i += 1
        j += 1
    if not leave:
        return
    leave = np.asarray(leave)
    enter = np.asarray(enter)
    for c in range(len(members)):
        out = r_pos[leave[r_cell[leave] == c]]
        come = q_row[enter[q_cell[enter] == c]]
        if len(out) == 0 and len(come) == 0:
            continue
        keep = np.ones(len(members[c]), dtype=bool)
        keep[out] = False
        members[c] = np.concatenate([members[c][keep], come]).astype(np.int64)
        resp[c] = np.concatenate([resp[c][keep], q[enter[q_cell[enter] == c]]])
