"""Explicable boundary tree (Wu et al., WWW 2018; on Mathy et al.'s boundary trees, 2015).

A boundary tree approximates a classifier by a few of its items: the nodes. Items are
inserted in a seeded random order. To query an item, walk from the root: at node v the
candidates are v's children, plus v itself while v has fewer than ``max_children`` children;
move to the candidate nearest to the item and stop when that is v. If the stop node's label
differs from the item's, the item becomes a child of the stop node. Labels are the model's
*predicted* labels, so the tree explains the model, and its nodes crowd along the model's
decision boundaries; every parent-child edge joins different labels.

The walk evaluates one distance per candidate and is compiled with numba (O(depth * k * d)
per item); the pure-Python reference is :func:`dldiag.bench._reference.reference_eb_tree`.
"""

from __future__ import annotations

import numba
import numpy as np

from .._validation import check_int, check_option
from ._base import Sampler, standardize

__all__ = ["EBTreeSampler", "build_boundary_tree", "eb_tree_orders"]

_NO_LIMIT = np.iinfo(np.int64).max


# fastmath lets LLVM vectorise the distance sum (4x faster than the sequential chain of
# adds); it changes rounding only, and equal rows still give exactly equal distances, so ties
# (duplicated rows) resolve as in the reference.
_JIT = dict(cache=True, nogil=True, fastmath=True)


@numba.njit(**_JIT)
def _sqdist(z, a, b):
    s = 0.0
    for k in range(z.shape[1]):
        d = z[a, k] - z[b, k]
        s += d * d
    return s


@numba.njit(**_JIT)
def _grow(z, labels, visits, max_children, parent, first_child, next_sibling, last_child,
          n_children, node_list, n_nodes):
    """Insert ``visits`` (items not yet nodes) into the tree; returns the new node count.

    Candidates at v are, in this order, v (while it has room for a child) and its children in
    insertion order; the strictly nearest wins, so ties go to the earliest candidate.
    """
    for x in visits:
        if n_nodes == 0:
            node_list[0] = x
            n_nodes = 1
            continue
        v = node_list[0]
        while True:
            best = -1
            best_d = np.inf
            if n_children[v] < max_children:
                best = v
                best_d = _sqdist(z, x, v)
            c = first_child[v]
            while c != -1:
                d = _sqdist(z, x, c)
                if d < best_d:
                    best_d = d
                    best = c
                c = next_sibling[c]
            if best == v:
                break
            v = best
        if labels[v] != labels[x]:
            parent[x] = v
            if first_child[v] == -1:
                first_child[v] = x
            else:
                next_sibling[last_child[v]] = x
            last_child[v] = x
            n_children[v] += 1
            node_list[n_nodes] = x
            n_nodes += 1
    return n_nodes


def eb_tree_orders(n_items: int, seed: int, max_passes: int):
    """The seeded visiting order of each pass: one permutation of all items per pass."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n_items).astype(np.int64) for _ in range(max_passes)]


def build_boundary_tree(z, labels, seed: int, *, max_children=None, max_passes: int = 1):
    """Grow a boundary tree over the rows of ``z`` with ``labels``.

    Pass 1 visits every item in a seeded order; each further pass visits the items that are not
    yet nodes in a new seeded order, stopping early once a pass adds no node.

    Parameters
    ----------
    z : ndarray (N, d)
    labels : ndarray of int (N,)
    seed : int
    max_children : int or None
        k, the most children a node takes before it stops being a candidate itself; None: no
        limit.
    max_passes : int

    Returns
    -------
    nodes : ndarray of int64
        The nodes in insertion order (the root first).
    parent : ndarray of int64 (N,)
        Parent of each node; -1 for the root and for items that are not nodes.
    pass_sizes : list of int
        Node count after each pass run.
    """
    z = np.ascontiguousarray(z, dtype=np.float64)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    n = z.shape[0]
    limit = _NO_LIMIT if max_children is None else int(max_children)
    parent = np.full(n, -1, dtype=np.int64)
    first_child = np.full(n, -1, dtype=np.int64)
    next_sibling = np.full(n, -1, dtype=np.int64)
    last_child = np.full(n, -1, dtype=np.int64)
    n_children = np.zeros(n, dtype=np.int64)
    node_list = np.empty(n, dtype=np.int64)
    is_node = np.zeros(n, dtype=bool)
    n_nodes = 0
    pass_sizes = []
    for order in eb_tree_orders(n, seed, max_passes):
        before = n_nodes
        visits = order[~is_node[order]]
        n_nodes = _grow(z, labels, visits, limit, parent, first_child, next_sibling,
                        last_child, n_children, node_list, n_nodes)
        is_node[node_list[before:n_nodes]] = True
        pass_sizes.append(int(n_nodes))
        if n_nodes == before:
            break
    return node_list[:n_nodes].copy(), parent, pass_sizes


class EBTreeSampler(Sampler):
    """The nodes of an explicable boundary tree over the standardised latent space.

    Parameters
    ----------
    max_children : int or None, default None
        k of the boundary tree: a node with k children stops being a candidate itself, so the
        walk must descend. None (no limit) is Mathy et al.'s plain boundary tree; on the
        Fashion-MNIST latent k = 5 gives a tree of about the same size (1365 vs 1326 nodes)
        and builds 5x slower, so the limit buys nothing here.
    labels : {"pred", "true"}, default "pred"
        Labels the tree separates: the model's predictions (the tree explains the model) or
        the true labels.
    max_passes : int, default 10
        Passes over the data available to fractions above the natural size.

    Notes
    -----
    **Natural size.** The tree of one pass is the report's EB-tree sample; its size is
    ``natural_size_`` and :meth:`natural_sample` returns it. ``sample(fraction)`` gives exactly
    ``n = floor(fraction * N + 0.5)`` items: if the tree has more nodes, the first n in
    insertion order (a prefix of an insertion order is itself a valid boundary tree); if it
    has fewer, further passes over the non-nodes in new seeded orders add nodes, and once
    they add none the tree is *saturated* and the rest is filled uniformly at random
    (``sample_info`` reports ``saturated`` and ``filled``).

    ``randomised`` is False: the insertion orders and the fill come from the fit's seed.
    """

    name = "eb-tree"
    randomised = False
    _fit_params = ("max_children", "labels", "max_passes")
    _state_names = ("ranked_", "parent_", "n_nodes_", "natural_size_", "pass_sizes_")

    def __init__(self, *, max_children: int | None = None, labels: str = "pred",
                 max_passes: int = 10):
        self.max_children = max_children
        self.labels = labels
        self.max_passes = max_passes

    def _validate_params(self):
        if self.max_children is not None:
            check_int("max_children", self.max_children, 1)
        check_option("labels", self.labels, ("pred", "true"))
        check_int("max_passes", self.max_passes, 1)

    def _fit(self, x, y_true, y_pred, seed):
        labels = y_pred if self.labels == "pred" else y_true
        nodes, parent, pass_sizes = build_boundary_tree(
            standardize(x), labels, seed, max_children=self.max_children, max_passes=self.max_passes)
        rest = np.setdiff1d(np.arange(len(x)), nodes, assume_unique=True)
        fill = np.random.default_rng((seed, 1)).permutation(rest)
        # Ranked so that the sample of size n is the first n: nodes in insertion order, then
        # the uniform fill.
        self.ranked_ = np.concatenate([nodes, fill]).astype(np.int64)
        self.parent_ = parent
        self.n_nodes_ = int(len(nodes))
        self.natural_size_ = int(pass_sizes[0])
        self.pass_sizes_ = np.asarray(pass_sizes, dtype=np.int64)

    @property
    def nodes_(self) -> np.ndarray:
        """All nodes (every pass) in insertion order, the root first."""
        self._check_fitted()
        return self.ranked_[: int(self.n_nodes_)]

    def natural_sample(self) -> np.ndarray:
        """The tree of one pass, sorted: the report's EB-tree sample (``natural_size_`` items)."""
        self._check_fitted()
        return np.sort(self.ranked_[: int(self.natural_size_)])

    def _sample(self, n, j, rng):
        return self.ranked_[:n].copy()

    def _info(self, n, j, rng):
        n_nodes = int(self.n_nodes_)
        passes = int(np.searchsorted(self.pass_sizes_, min(n, n_nodes))) + 1
        return {
            "natural_size": int(self.natural_size_),
            "nodes": min(n, n_nodes),
            "passes": passes,
            "saturated": n > n_nodes,
            "filled": max(0, n - n_nodes),
        }
