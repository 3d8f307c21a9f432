"""2-D projections of the latent space for the latent view (UMAP, t-SNE, PCA)."""

from __future__ import annotations

import numpy as np

from ._validation import check_finite_matrix, check_option

__all__ = ["PROJECTIONS", "project"]

PROJECTIONS = ("umap", "tsne", "pca")


def project(latent: np.ndarray, method: str = "umap", *, seed: int = 0) -> np.ndarray:
    """Project ``latent`` (N, d) to 2-D with ``method``, seeded by ``seed``.

    Parameters
    ----------
    latent : ndarray of shape (N, d)
        Latent vectors; standardised per dimension before projecting so that no single
        unit with a large scale dominates the neighbourhoods.
    method : {"umap", "tsne", "pca"}
        UMAP (umap-learn, 15 neighbours), t-SNE (scikit-learn, perplexity 30, PCA init) or PCA.
    seed : int
        Random state of the projection.

    Returns
    -------
    ndarray of shape (N, 2), float32
    """
    check_option("method", method, PROJECTIONS)
    x = check_finite_matrix("latent", latent).astype(np.float64)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    if method == "pca":
        from sklearn.decomposition import PCA

        out = PCA(n_components=2, random_state=seed).fit_transform(x)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, max(2.0, (len(x) - 1) / 3.0))
        out = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    else:
        import umap  # heavy import (numba): only when a UMAP projection is asked for

        n_neighbors = min(15, max(2, len(x) - 1))
        # A seeded UMAP is single-threaded anyway; saying so explicitly silences its warning.
        out = umap.UMAP(n_components=2, n_neighbors=n_neighbors, random_state=seed, n_jobs=1).fit_transform(x)
    return np.asarray(out, dtype=np.float32)
