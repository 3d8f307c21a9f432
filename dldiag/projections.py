"""2-D projections of the latent space for the latent view (UMAP, t-SNE, PCA).

At scale (issue 13): UMAP is fitted on a seeded subsample of at most :data:`UMAP_FIT_MAX`
items, and every other item is placed at the weighted mean of the 2-D positions of its
:data:`UMAP_PLACE_NEIGHBORS` nearest fitted items in the (standardised) latent space, with
UMAP's own membership weights (:func:`place_by_neighbors`). t-SNE has no way to place new
points and its cost grows faster than N, so it is offered only up to :data:`TSNE_MAX` items;
PCA takes any N. Up to :data:`UMAP_FIT_MAX` items UMAP is fitted on all of them, exactly as
before.

Why this placement (the wide workload: LeNet-5's 84-d latent, 2 cores shared with other jobs;
``python -m dldiag.bench projection``, see BENCHMARKS.md). The fit on 50,000 items takes about
27 s (a seeded UMAP runs on one core). umap's ``transform``, the previous placement, runs 30
optimisation epochs over each new item's neighbours, about 0.12 ms an item: at 10^6 it took
121 s, 145 s with the fit (one run), over issue 13's 120 s. The neighbour search alone, in the
index the fit already built, with UMAP's membership-weighted mean, takes about 0.025 ms an item:
22 s at 10^6, 51 s with the fit (median of 3). At 10^5, on 5,000 placed items, the 10-NN accuracy
of the true label in 2-D is 0.857 against 0.862 with ``transform`` (0.884 in the latent space),
trustworthiness 0.955 against 0.958, and placed items lie 2.5 % of the map's RMS radius from
where ``transform`` puts them. Also measured once at 10^5 and set aside (a scratch run with its
own 5,000 held-out items, where ``transform`` after the 50,000 fit scored 0.866 and this mean
0.864): exact-neighbour interpolation (torch), 20 times slower than the index's search for no
better map; ``transform`` after a 20,000-item fit (0.869, but its epochs still cost 0.1 ms an
item); ``transform`` with 10 epochs instead of 30 (0.866, 4 times the cost of the mean); a small
MLP regressor latent -> 2-D trained on a 20,000-item fit (slower here, and 0.837). PCA takes 6 s
at 10^6.
"""

from __future__ import annotations

import time

import numpy as np

from ._validation import check_finite_matrix, check_int, check_option

__all__ = ["PLACEMENTS", "PROJECTIONS", "TSNE_MAX", "UMAP_FIT_MAX", "UMAP_PLACE_NEIGHBORS", "offered_projections",
           "place_by_neighbors", "placement_key", "project"]

PROJECTIONS = ("umap", "tsne", "pca")
#: How UMAP places the items beyond its fitted subsample: ``"neighbors"`` (the default, see
#: :func:`place_by_neighbors`) or ``"transform"`` (umap's own, about 5 times slower per item;
#: kept to compare against).
PLACEMENTS = ("neighbors", "transform")
#: Most items UMAP is fitted on (a seeded subsample); the rest are placed. At 50,000 a fit takes
#: about half a minute on one core, and the map it learns already holds every class's structure.
UMAP_FIT_MAX = 50_000
#: Fitted neighbours whose 2-D positions place each other item (UMAP's own neighbourhood size).
UMAP_PLACE_NEIGHBORS = 15
#: Most items t-SNE is offered for (Barnes-Hut t-SNE on 2 cores: minutes at 50,000).
TSNE_MAX = 50_000
_BATCH = 100_000  # items placed at a time: bounds the memory of the neighbour search


def offered_projections(methods, n_items: int) -> tuple[str, ...]:
    """The ``methods`` that can project ``n_items`` items (t-SNE only up to :data:`TSNE_MAX`).

    Examples
    --------
    >>> offered_projections(("umap", "tsne", "pca"), 10_000), offered_projections(("tsne", "pca"), 10**6)
    (('umap', 'tsne', 'pca'), ('pca',))
    """
    return tuple(m for m in methods if not (m == "tsne" and n_items > TSNE_MAX))


def placement_key(method: str, n_items: int, *, umap_fit_max: int = UMAP_FIT_MAX,
                  placement: str = "neighbors") -> tuple | None:
    """What a cache key of a projection of ``n_items`` items must add to (method, seed), or None.

    None where the projection is computed as it always was (PCA, t-SNE, UMAP on all items);
    for UMAP on a subsample, the subsample's size and how the rest are placed.

    Examples
    --------
    >>> placement_key("umap", 10_000) is None, placement_key("umap", 10**6)
    (True, ('umap-subsample', 50000, 'neighbors', 15))
    """
    check_option("method", method, PROJECTIONS)
    check_option("placement", placement, PLACEMENTS)
    if method != "umap" or n_items <= umap_fit_max:
        return None
    return ("umap-subsample", int(umap_fit_max), placement, UMAP_PLACE_NEIGHBORS if placement == "neighbors" else 0)


def place_by_neighbors(x_fit: np.ndarray, xy_fit: np.ndarray, x_new: np.ndarray, *, n_neighbors: int = 15,
                       index=None) -> np.ndarray:
    """2-D positions of ``x_new``: the weighted mean of their ``n_neighbors`` nearest fitted items'.

    The weights are UMAP's membership strengths, ``exp(-(d - rho) / sigma)`` with ``rho`` the
    distance to the nearest fitted item and ``sigma`` such that all but the nearest weigh
    ``log2(n_neighbors)`` together (umap's ``smooth_knn_dist``): the nearest weighs 1, the
    others fall off with distance on the scale of the item's own neighbourhood. One neighbour
    puts each item on its nearest fitted item.

    Parameters
    ----------
    x_fit : ndarray of shape (M, d)
        The fitted items.
    xy_fit : ndarray of shape (M, 2)
        Their 2-D positions.
    x_new : ndarray of shape (K, d)
        The items to place.
    n_neighbors : int
        Neighbours per item (at most M).
    index : pynndescent.NNDescent, optional
        A search index over ``x_fit`` (the one a UMAP fit builds): approximate neighbours, about
        0.025 ms an item at M = 50,000, d = 84. Without it the neighbours are exact (scikit-learn),
        for small ``x_fit``.

    Returns
    -------
    ndarray of shape (K, 2)
    """
    from umap.umap_ import smooth_knn_dist

    n_neighbors = check_int("n_neighbors", n_neighbors, 1, len(x_fit))
    if index is None:
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=n_neighbors).fit(x_fit)
    out = np.empty((len(x_new), xy_fit.shape[1]))
    for start in range(0, len(x_new), _BATCH):
        part = x_new[start : start + _BATCH]
        if index is None:
            dist, ind = nn.kneighbors(part)
        else:  # the same search as umap's transform (epsilon 0.12)
            ind, dist = index.query(np.ascontiguousarray(part, dtype=np.float32), k=n_neighbors, epsilon=0.12)
        dist = dist.astype(np.float32)
        sigma, rho = smooth_knn_dist(dist, float(n_neighbors), local_connectivity=1.0)
        w = np.exp(-np.maximum(dist - rho[:, None], 0.0) / sigma[:, None])
        w /= w.sum(axis=1, keepdims=True)
        out[start : start + len(part)] = np.einsum("ik,ikj->ij", w, xy_fit[ind])
    return out


def project(latent: np.ndarray, method: str = "umap", *, seed: int = 0, umap_fit_max: int = UMAP_FIT_MAX,
            tsne_max: int = TSNE_MAX, placement: str = "neighbors", timings: dict | None = None) -> np.ndarray:
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
        UMAP is fitted on at most this many items (a seeded subsample); the rest are placed.
    tsne_max : int
        Most items t-SNE accepts.
    placement : {"neighbors", "transform"}
        How UMAP places the items beyond ``umap_fit_max``: :func:`place_by_neighbors` with
        the fit's search index, or umap's ``transform`` (slower; see the module's notes).
    timings : dict, optional
        If given, receives the wall-clock seconds of each stage: ``"standardise"``, ``"fit"``
        and ``"place"`` (0 where nothing is placed).

    Returns
    -------
    ndarray of shape (N, 2), float32

    Raises
    ------
    ValueError
        For a bad argument (naming it, what it may be and what it was), or t-SNE on more than
        ``tsne_max`` items (naming UMAP and PCA, which take any N).
    """
    check_option("method", method, PROJECTIONS)
    check_option("placement", placement, PLACEMENTS)
    umap_fit_max = check_int("umap_fit_max", umap_fit_max, 2)
    if method == "tsne" and len(latent) > tsne_max:
        raise ValueError(f"method 'tsne' is offered for at most {tsne_max:,} items (it has no way to place new "
                         f"points, and its cost grows faster than N); got {len(latent):,}: use 'umap' or 'pca'")
    start = time.perf_counter()
    x = check_finite_matrix("latent", latent).astype(np.float64)
    mean, std = x.mean(0), x.std(0)
    x -= mean  # in place: a copy of the latent at 10^6 items is 0.7 GB
    x /= np.where(std > 0, std, 1.0)
    stages = {"standardise": time.perf_counter() - start, "fit": 0.0, "place": 0.0}
    start = time.perf_counter()
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
            stages["fit"] = time.perf_counter() - start
            start = time.perf_counter()
            # umap keeps the fit's neighbour index (pynndescent) privately, and only from 4,096
            # fitted items on; below that place_by_neighbors finds the neighbours exactly.
            index = getattr(reducer, "_knn_search_index", None)
            x_fit = x[fit]
            for lo in range(0, len(rest), _BATCH):  # batches bound the memory of the neighbour search
                part = rest[lo : lo + _BATCH]
                if placement == "neighbors":
                    out[part] = place_by_neighbors(x_fit, out[fit], x[part], index=index,
                                                   n_neighbors=min(UMAP_PLACE_NEIGHBORS, len(fit)))
                else:
                    out[part] = reducer.transform(x[part])
            stages["place"] = time.perf_counter() - start
    if not stages["fit"]:
        stages["fit"] = time.perf_counter() - start
    if timings is not None:
        timings.update(stages)
    return np.asarray(out, dtype=np.float32)
