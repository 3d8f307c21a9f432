"""The pieces of VAS's local fit (:mod:`dldiag.sampling._vas_local`), each against a direct
computation: kernel sums, the global kernel width, the near fields kept up to date by changes,
the moves of seats between cells and a level's sweeps."""

from __future__ import annotations

import numpy as np
import pytest

from dldiag.sampling._vas import _interchange, _responsibilities, vas_epsilon
from dldiag.sampling._vas_local import (NearFields, _move_seats, global_epsilon, kernel_sums, near_cells,
                                        sweep_rung)


def _direct_sums(a, b, gamma):
    d2 = ((a[:, None, :].astype(np.float64) - b[None, :, :]) ** 2).sum(-1)
    return np.exp(-gamma * d2).sum(axis=1)


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
def test_kernel_sums_match_the_direct_sum_over_blocks(dtype):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 7)).astype(dtype)
    b = rng.normal(size=(300, 7)).astype(dtype)
    want = _direct_sums(a, b, 0.3)
    got = kernel_sums(a, b, 0.3, block=64)  # five blocks, the last one short
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12 if dtype == np.float64 else 1e-5)
    assert np.array_equal(kernel_sums(a, b[:0], 0.3), np.zeros(50))


def test_global_width_is_the_exact_median_when_every_row_is_a_query():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(3000, 5))
    z[7] = z[8]  # a duplicated row: its zero distance is left out, as vas_epsilon does
    for k in (40, 400):
        assert global_epsilon(z, k, seed=3, queries=k) == pytest.approx(vas_epsilon(z, k, seed=3), rel=1e-9)
    # Fewer queries estimate it.
    assert global_epsilon(z, 2000, seed=3, queries=500) == pytest.approx(vas_epsilon(z, 2000, seed=3), rel=0.05)


def test_near_cells_are_the_nearest_other_centroids():
    centroids = np.array([[0.0], [1.0], [3.0], [7.0]])
    assert near_cells(centroids, 2).tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]
    assert near_cells(centroids, 10).shape == (4, 3)  # never more than the other cells


def test_near_fields_follow_changes_as_a_full_sum_would():
    rng = np.random.default_rng(2)
    rows = [rng.normal(size=(40, 3)).astype(np.float32) + i for i in range(5)]
    near = near_cells(np.stack([r.mean(axis=0) for r in rows]), 2)
    fields = NearFields(rows, near, gamma=0.5)
    members = [np.sort(rng.choice(40, size=10, replace=False)) for _ in rows]

    def full(c):
        return kernel_sums(rows[c], np.concatenate([rows[o][members[o]] for o in near[c]]), 0.5)

    for step in range(60):
        c = int(rng.integers(5))
        np.testing.assert_allclose(fields.summed(c, members), full(c), rtol=1e-5, atol=1e-5)
        # A cell changes a few members (a sweep's swaps or a move of seats: sizes change too).
        o = int(rng.integers(5))
        before = members[o]
        outside = np.setdiff1d(np.arange(40), before)
        after = np.concatenate([rng.choice(before, size=len(before) - int(rng.integers(0, 3)), replace=False),
                                rng.choice(outside, size=int(rng.integers(0, 3)), replace=False)])
        fields.record(o, before, after)
        members[o] = after
        if step % 10 == 9:
            fields.forget_seen()
    for c in range(5):
        np.testing.assert_allclose(fields.summed(c, members), full(c), rtol=1e-5, atol=1e-5)
    # A draw stands for the near members; the next sum is a full one.
    draw = fields.drawn(0, members, np.random.default_rng(0), draws=5)
    assert draw.shape == (40,) and np.all(draw >= 0)
    np.testing.assert_allclose(fields.summed(0, members), full(0), rtol=1e-5, atol=1e-5)


def test_seats_move_from_the_most_crowded_members_to_the_least_crowded_outsiders():
    # Cell 0: eight crowded members (responsibility 5); cell 1: eight members (1) and free rows
    # that would cost little to add (0.5, 2, 3) or much (9).
    members = [np.arange(8), np.arange(8)]
    resp = [np.full(8, 5.0), np.full(8, 1.0)]
    offers = [(np.arange(8, 20), np.full(12, 6.0)), (np.arange(8, 14), np.array([0.5, 2.0, 3.0, 9.0, 9.0, 9.0]))]
    _move_seats(members, resp, offers)
    # Pairs while the member is more crowded than the outsider: (5, 0.5), (5, 2), (5, 3); a
    # quarter of a cell's seats at most move at once: two.
    assert len(members[0]) == 6 and len(members[1]) == 10
    assert sorted(members[1].tolist()) == list(range(10))  # the two least crowded outsiders came in
    assert len(resp[1]) == 10 and sorted(resp[1][-2:]) == [0.5, 2.0]
    # The cap holds for gains too: cell 1, with four seats, takes one more.
    members = [np.arange(8), np.arange(4)]
    _move_seats(members, [np.full(8, 5.0), np.full(4, 1.0)],
                [(np.arange(8, 20), np.full(12, 6.0)), (np.arange(4, 10), np.array([0.5, 2.0, 9.0, 9.0, 9.0, 9.0]))])
    assert [len(m) for m in members] == [7, 5]
    # Nothing moves when every member is less crowded than every outsider.
    members2 = [np.arange(4), np.arange(4)]
    _move_seats(members2, [np.full(4, 1.0)] * 2, [(np.arange(4, 9), np.full(5, 2.0))] * 2)
    assert [len(m) for m in members2] == [4, 4]


def test_a_level_sweep_keeps_its_seats_and_valid_members():
    rng = np.random.default_rng(4)
    cells = []
    for i in range(6):
        z = rng.normal(size=(120, 4)) + [i * 1.5, 0, 0, 0]
        cells.append((np.ascontiguousarray(z), np.ascontiguousarray(z, dtype=np.float32)))
    seats = np.array([3, 20, 5, 0, 12, 8])
    near = near_cells(np.stack([z.mean(axis=0) for z, _ in cells]), 2)
    seeds = np.arange(6) + 10

    def first_run(rows, k, seed):
        return np.random.default_rng((seed, k)).choice(len(rows), size=k, replace=False), np.zeros(k)

    members, resp = sweep_rung(cells, seats, 0.5, seeds, near, 3, 1, first_run, _interchange, _responsibilities)
    assert sum(len(m) for m in members) == seats.sum()  # seats move, none is lost or made
    assert [len(m) for m in members] != seats.tolist()  # ... and they do move here
    for (z, _), m, r in zip(cells, members, resp):
        assert len(np.unique(m)) == len(m) and (m >= 0).all() and (m < len(z)).all()
        assert len(r) == len(m) and np.isfinite(r).all()
    again, _ = sweep_rung(cells, seats, 0.5, seeds, near, 3, 1, first_run, _interchange, _responsibilities)
    assert all(np.array_equal(a, b) for a, b in zip(members, again))  # seeded
