"""The fast VAS interchange and boundary tree return the same sample as the pure-Python references.

The benchmark times them side by side on 2k Fashion-MNIST items; here small synthetic sets
keep the naive O(N K^2 d) interchange to a fraction of a second.
"""

from __future__ import annotations

import numpy as np
import pytest

from dldiag.bench._reference import reference_eb_tree, reference_vas
from dldiag.sampling import make_sampler, sample_size
from dldiag.sampling._base import standardize
from dldiag.sampling._ebtree import build_boundary_tree
from dldiag.sampling._vas import vas_interchange


def blobs(n, d, classes, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(classes, d))
    y = rng.integers(0, classes, n)
    x = centres[y] + rng.normal(size=(n, d))
    y_pred = np.where(rng.random(n) < 0.15, rng.integers(0, classes, n), y)
    return x, y, y_pred


@pytest.mark.parametrize("n, d, k, passes, seed", [
    (200, 5, 10, 1, 0),
    (240, 12, 24, 2, 1),
    (150, 3, 1, 1, 2),
])
def test_vas_interchange_matches_reference(n, d, k, passes, seed):
    z = standardize(blobs(n, d, 4, seed)[0])
    fast, _, _ = vas_interchange(z, k, seed, n_passes=passes)
    ref = reference_vas(z, k, seed, n_passes=passes)
    assert np.array_equal(fast, ref)  # same members in the same positions


def test_vas_sampler_at_a_rung_is_the_reference_sample():
    x, y, p = blobs(300, 6, 5, 3)
    s = make_sampler("vas", levels=(0.05, 0.2)).fit(x, y, p, seed=4)
    for f in (0.05, 0.2):
        ref = reference_vas(standardize(x), sample_size(f, 300), 4)
        assert np.array_equal(s.sample(f), np.sort(ref))


@pytest.mark.parametrize("max_children", [None, 3])
@pytest.mark.parametrize("passes", [1, 10])
def test_boundary_tree_matches_reference(max_children, passes):
    x, _, y_pred = blobs(500, 8, 6, 5)
    z = standardize(x)
    nodes, parent, _ = build_boundary_tree(z, y_pred, 7, max_children=max_children, max_passes=passes)
    ref_nodes, ref_parent = reference_eb_tree(z, y_pred, 7, max_children=max_children, max_passes=passes)
    assert np.array_equal(nodes, ref_nodes) and np.array_equal(parent, ref_parent)


def test_boundary_tree_matches_reference_with_duplicated_rows():
    """Exactly equal distances (duplicated rows) resolve the same way: earliest candidate wins."""
    x, _, y_pred = blobs(150, 4, 3, 6)
    x, y_pred = np.concatenate([x, x, x[:50]]), np.concatenate([y_pred, (y_pred + 1) % 3, y_pred[:50]])
    z = standardize(x)
    for k in (None, 2):
        nodes, parent, _ = build_boundary_tree(z, y_pred, 1, max_children=k, max_passes=5)
        ref_nodes, ref_parent = reference_eb_tree(z, y_pred, 1, max_children=k, max_passes=5)
        assert np.array_equal(nodes, ref_nodes) and np.array_equal(parent, ref_parent)


def test_eb_tree_sampler_natural_sample_is_the_reference_tree():
    x, y, p = blobs(400, 6, 4, 8)
    s = make_sampler("eb-tree").fit(x, y, p, seed=9)
    ref_nodes, ref_parent = reference_eb_tree(standardize(x), p, 9, max_passes=1)
    assert np.array_equal(s.natural_sample(), np.sort(ref_nodes))
    assert np.array_equal(s.parent_[ref_nodes], ref_parent[ref_nodes])
