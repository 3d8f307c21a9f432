"""Projections at scale: UMAP fitted on a subsample and the rest placed by transform; t-SNE capped."""

from __future__ import annotations

import numpy as np
import pytest

from dldiag.projections import TSNE_MAX, project


def _clusters(per: int = 200):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(8.0 * c, 1.0, size=(per, 6)) for c in range(3)]).astype(np.float32)
    return x, np.repeat(np.arange(3), per)


def test_umap_on_a_subsample_places_every_other_item_by_its_neighbours():
    x, labels = _clusters()
    xy = project(x, "umap", seed=3, umap_fit_max=200)  # fitted on 200 of 600, the rest transformed
    assert xy.shape == (600, 2) and np.isfinite(xy).all()
    np.testing.assert_array_equal(xy, project(x, "umap", seed=3, umap_fit_max=200))  # seeded
    # every item, fitted or placed, lies nearest to its own cluster's centre
    centres = np.stack([xy[labels == c].mean(axis=0) for c in range(3)])
    nearest = np.argmin(((xy[:, None] - centres[None]) ** 2).sum(axis=-1), axis=1)
    assert np.array_equal(nearest, labels)


def test_tsne_is_refused_beyond_its_limit_naming_what_takes_any_n():
    big = np.zeros((TSNE_MAX + 1, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"method 'tsne' is offered for at most 50,000 items .*got 50,001: use "
                                         r"'umap' or 'pca'"):
        project(big, "tsne")
    with pytest.raises(ValueError, match="umap_fit_max"):
        project(big[:10], "umap", umap_fit_max=1)


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
