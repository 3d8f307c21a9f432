"""Projections at scale: UMAP fitted on a subsample and the rest placed by their fitted neighbours;
t-SNE capped."""

from __future__ import annotations

import numpy as np
import pytest

from dldiag.projections import TSNE_MAX, place_by_neighbors, placement_key, project


def _clusters(per: int = 200):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(8.0 * c, 1.0, size=(per, 6)) for c in range(3)]).astype(np.float32)
    return x, np.repeat(np.arange(3), per)


def test_up_to_the_fit_size_umap_is_fitted_on_every_item_as_before():
    import umap

    x, _ = _clusters(100)
    z = x.astype(np.float64)
    z = (z - z.mean(0)) / z.std(0)
    plain = umap.UMAP(n_components=2, n_neighbors=15, random_state=3, n_jobs=1).fit_transform(z)
    timings = {}
    xy = project(x, "umap", seed=3, timings=timings)  # 300 items, far below UMAP_FIT_MAX
    np.testing.assert_array_equal(xy, plain.astype(np.float32))
    assert timings["fit"] > 0 and timings["place"] == 0
    assert placement_key("umap", 300) is None and placement_key("pca", 10**6) is None


def test_beyond_the_fit_size_every_other_item_is_placed_by_its_fitted_neighbours():
    x, labels = _clusters()
    timings = {}
    xy = project(x, "umap", seed=3, umap_fit_max=200, timings=timings)  # fitted on 200 of 600, 400 placed
    assert xy.shape == (600, 2) and xy.dtype == np.float32 and np.isfinite(xy).all()
    assert timings["fit"] > 0 and timings["place"] > 0
    np.testing.assert_array_equal(xy, project(x, "umap", seed=3, umap_fit_max=200))  # seeded
    assert not np.array_equal(xy, project(x, "umap", seed=4, umap_fit_max=200))
    # every item, fitted or placed, lies nearest to its own cluster's centre
    centres = np.stack([xy[labels == c].mean(axis=0) for c in range(3)])
    nearest = np.argmin(((xy[:, None] - centres[None]) ** 2).sum(axis=-1), axis=1)
    assert np.array_equal(nearest, labels)
    assert placement_key("umap", 600, umap_fit_max=200) == ("umap-subsample", 200, "neighbors", 15)


def test_placement_is_a_weighted_mean_of_the_nearest_fitted_positions_nearer_weighing_more():
    x_fit = np.array([[0.0], [1.0], [2.0], [10.0]])
    xy_fit = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0], [50.0, 50.0]])
    new = np.array([[0.1], [1.9], [9.0]])
    np.testing.assert_array_equal(place_by_neighbors(x_fit, xy_fit, new, n_neighbors=1), xy_fit[[0, 2, 3]])
    xy = place_by_neighbors(x_fit, xy_fit, new[:2], n_neighbors=3)  # the three items 0, 1, 2: on the line y = 2x
    np.testing.assert_allclose(xy[:, 1], 2 * xy[:, 0])
    assert 0 < xy[0, 0] < 1 < xy[1, 0] < 2  # pulled towards the nearest, never past the neighbours


def test_bad_arguments_are_refused_naming_the_parameter_and_what_it_may_be():
    x, _ = _clusters(10)
    with pytest.raises(ValueError, match=r"placement must be one of 'neighbors', 'transform'; got 'nearest'"):
        project(x, "umap", placement="nearest")
    with pytest.raises(ValueError, match=r"method must be one of 'umap', 'tsne', 'pca'; got 'isomap'"):
        project(x, "isomap")
    with pytest.raises(ValueError, match=r"umap_fit_max must be an integer in \[2, inf\]; got 1"):
        project(x, "umap", umap_fit_max=1)
    with pytest.raises(ValueError, match=r"n_neighbors must be an integer in \[1, 3\]; got 4"):
        place_by_neighbors(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((1, 2)), n_neighbors=4)


def test_tsne_is_refused_beyond_its_limit_naming_what_takes_any_n():
    big = np.zeros((TSNE_MAX + 1, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"method 'tsne' is offered for at most 50,000 items .*got 50,001: use "
                                         r"'umap' or 'pca'"):
        project(big, "tsne")


def test_the_cache_key_changes_only_for_a_placed_umap(digits_ws, monkeypatch):
    import dldiag.artifacts as artifacts
    from dldiag.cache import content_key

    old = content_key("projection", artifacts.CACHE_VERSION, digits_ws.key, "umap", 0)
    assert digits_ws._projection_key("umap", 0) == old  # small data: the cached projections stay valid
    monkeypatch.setattr(artifacts, "placement_key", lambda method, n: ("umap-subsample", 100, "neighbors", 15))
    assert digits_ws._projection_key("umap", 0) != old


def test_beyond_the_limit_tsne_is_neither_built_nor_offered(digits_ws, monkeypatch):
    import dldiag.projections as projections
    from dldiag.app.service import build_meta
    from dldiag.build import run_steps, start_background

    assert projections.offered_projections(("umap", "tsne", "pca"), TSNE_MAX + 1) == ("umap", "pca")
    monkeypatch.setattr(projections, "TSNE_MAX", 100)  # digits' 450 items are then "too many"
    built = []
    monkeypatch.setattr(type(digits_ws), "projection", lambda self, m, seed=0: built.append(m))
    run_steps(digits_ws, ["tsne", "pca"], [], show_progress=False)
    assert built == ["pca"]
    assert "tsne" not in build_meta(digits_ws).projections
    monkeypatch.setattr(type(digits_ws), "has_projection", lambda self, m, seed=0: m == "pca")
    assert start_background(digits_ws, ["tsne", "pca"], []) is None  # nothing left to build
