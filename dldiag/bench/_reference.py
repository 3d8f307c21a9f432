"""Pure-Python reference versions of the VAS interchange and the boundary-tree build.

They are the naive algorithms the report timed (Fig. 7): the interchange that recomputes
every pairwise kernel of the candidate sample at each step (O(N K^2 d)), and a tree walk that
computes one distance at a time. No numpy and no compiled helpers in the loops: points are
lists of floats and each squared distance is a Python loop over the coordinates. They
replay the same seeded plan as the fast versions in :mod:`dldiag.sampling` (random start,
visiting orders, kernel width), so that
``tests/test_sampling_reference.py`` can check that both return the same sample, and the
benchmark can time them side by side.
"""

from __future__ import annotations

import math

import numpy as np

from ..sampling._ebtree import eb_tree_orders
from ..sampling._vas import vas_epsilon, vas_plan

__all__ = ["reference_vas", "reference_eb_tree"]


def _sqdist(a: list, b: list) -> float:
    s = 0.0
    for u, v in zip(a, b):
        d = u - v
        s += d * d
    return s


def reference_vas(z, k: int, seed: int, *, n_passes: int = 1, epsilon=None) -> np.ndarray:
    """The interchange of :func:`dldiag.sampling._vas.vas_interchange`, recomputing all pairs.

    For each visited point t not in the sample: the candidate set is the sample plus t; the
    responsibility of every candidate is recomputed from scratch (all pairwise kernels); the
    candidate of highest responsibility is dropped — t itself on a tie, else the first member
    in position order — and t takes the dropped member's position.

    Returns
    -------
    ndarray of int64 (K,)
        The members, in the same positional order as the fast version.
    """
    z = np.ascontiguousarray(z, dtype=np.float64)
    eps = vas_epsilon(z, k, seed) if epsilon is None else float(epsilon)
    start, visits = vas_plan(z.shape[0], k, seed, n_passes)
    points = z.tolist()
    gamma = 0.5 / eps**2
    members = [int(i) for i in start]
    inside = set(members)
    if k == 0 or k == len(points):
        return np.asarray(members, dtype=np.int64)
    for t in visits.tolist():
        if t in inside:
            continue
        cand = members + [t]
        resp = [0.0] * len(cand)
        for a in range(len(cand)):
            pa = points[cand[a]]
            for b in range(a + 1, len(cand)):
                v = math.exp(-_sqdist(pa, points[cand[b]]) * gamma)
                resp[a] += v
                resp[b] += v
        top = max(resp)
        if resp[-1] >= top:
            continue  # t is the most crowded: dropping it leaves the sample as it was
        drop = resp.index(top)
        inside.discard(members[drop])
        inside.add(t)
        members[drop] = t
    return np.asarray(members, dtype=np.int64)


def reference_eb_tree(z, labels, seed: int, *, max_children=None, max_passes: int = 1):
    """The boundary tree of :func:`dldiag.sampling._ebtree.build_boundary_tree`, one distance at a time.

    Returns
    -------
    nodes : ndarray of int64
        Nodes in insertion order.
    parent : ndarray of int64 (N,)
        -1 for the root and non-nodes.
    """
    z = np.ascontiguousarray(z, dtype=np.float64)
    points = z.tolist()
    labels = [int(v) for v in labels]
    limit = math.inf if max_children is None else max_children
    n = len(points)
    children: dict[int, list[int]] = {}
    parent = [-1] * n
    nodes: list[int] = []
    for order in eb_tree_orders(n, seed, max_passes):
        before = len(nodes)
        for x in order.tolist():
            if x in children:
                continue  # already a node (from an earlier pass)
            if not nodes:
                nodes.append(x)
                children[x] = []
                continue
            px = points[x]
            v = nodes[0]
            while True:
                best, best_d = None, math.inf
                if len(children[v]) < limit:
                    best, best_d = v, _sqdist(px, points[v])
                for c in children[v]:
                    d = _sqdist(px, points[c])
                    if d < best_d:
                        best, best_d = c, d
                if best == v:
                    break
                v = best
            if labels[v] != labels[x]:
                children[v].append(x)
                children[x] = []
                parent[x] = v
                nodes.append(x)
        if len(nodes) == before:
            break
    return np.asarray(nodes, dtype=np.int64), np.asarray(parent, dtype=np.int64)
