"""2-D projections of the latent space for the latent view (UMAP, t-SNE, PCA).

At scale (issue 13): UMAP is fitted on a seeded subsample of at most :data:`UMAP_FIT_MAX`
items and places every other item with ``transform`` (it embeds new points into the fitted
map); t-SNE has no such step and its cost grows faster than N, so it is offered only up to
:data:`TSNE_MAX` items; PCA takes any N.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_finite_matrix, check_int, check_option

__all__ = ["PROJECTIONS", "TSNE_MAX", "UMAP_FIT_MAX", "offered_projections", "project"]

PROJECTIONS = ("umap", "tsne", "pca")
#: Most items UMAP is fitted on; the rest are placed with ``transform``. At 50,000 a fit takes
#: about a minute on 2 cores, and the map it learns already holds every class's structure.
UMAP_FIT_MAX = 50_000
#: Most items t-SNE is offered for (Barnes-Hut t-SNE on 2 cores: minutes at 50,000).
TSNE_MAX = 50_000


def offered_projections(methods, n_items: int) -> tuple[str, ...]:
    """The ``methods`` that can project ``n_items`` items (t-SNE only up to :data:`TSNE_MAX`).

    Examples
    --------
    >>> offered_projections(("umap", "tsne", "pca"), 10_000), offered_projections(("tsne", "pca"), 10**6)
    (('umap', 'tsne', 'pca'), ('pca',))
    """
    return tuple(m for m in methods if not (m == "tsne" and n_items > TSNE_MAX))


def project(latent: np.ndarray, method: str = "umap", *, seed: int = 0, umap_fit_max: int = UMAP_FIT_MAX,
            tsne_max: int = TSNE_MAX) -> np.ndarray:
    """Project ``latent`` (N, d) to 2-D with ``method``, seeded by ``seed``.

    Parameters
    ----------
    latent : ndarray of shape (N, d)
        Latent vectors; standardised per dimension before projecting so that no single
        unit with a large scale dominates the neighbourhoods.
    method : {"umap", "tsne", "pca"}
        UMAP (umap-learn, 15 neighbours), t-SNE (scikit-learn, perplexity 30, PCA init) or PCA.
    seed : int
        Random state of the projection (and of UMAP's subsample).
    umap_fit_max : int
        UMAP is fitted on at most this many items (a seeded subsample) and ``transform``
        places the rest.
    tsne_max : int
        Most items t-SNE accepts.

    Returns
    -------
    ndarray of shape (N, 2), float32

    Raises
    ------
    ValueError
        For t-SNE on more than ``tsne_max`` items (naming UMAP and PCA, which take any N).
    """
    check_option("method", method, PROJECTIONS)
    umap_fit_max = check_int("umap_fit_max", umap_fit_max, 2)
    if method == "tsne" and len(latent) > tsne_max:
        raise ValueError(f"method 'tsne' is offered for at most {tsne_max:,} items (it has no way to place new "
                         f"points, and its cost grows faster than N); got {len(latent):,}: use 'umap' or 'pca'")
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

        n_neighbors = min(15, max(2, min(len(x), umap_fit_max) - 1))
        # A seeded UMAP is single-threaded anyway; saying so explicitly silences its warning.
        reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, random_state=seed, n_jobs=1)
        if len(x) <= umap_fit_max:
            out = reducer.fit_transform(x)
        else:
            fit = np.sort(np.random.default_rng(seed).choice(len(x), umap_fit_max, replace=False))
            rest = np.setdiff1d(np.arange(len(x)), fit)
            out = np.empty((len(x), 2))
            out[fit] = reducer.fit_transform(x[fit])
            for start in range(0, len(rest), 100_000):  # bounded memory for the neighbour search
                part = rest[start : start + 100_000]
                out[part] = reducer.transform(x[part])
    return np.asarray(out, dtype=np.float32)
