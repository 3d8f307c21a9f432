"""The report's own samplers (Section IV-B): clusters sorted by a likelihood ratio.

Each item x gets a cluster A — the arg-max component of a variational Gaussian mixture
(``gmm-full``, ``gmm-spherical``) or the class predicted by a Platt-calibrated linear SVM
(``max-margin``) — and the log likelihood ratio of belonging to it,
``log P(A|x) / P(not A|x) = l_A - logsumexp_{k != A} l_k``, from per-class log-probabilities
``l_k``. Low ratios are the boundary ("outliers"), high ratios the exemplars. A sample
allots seats to the clusters in proportion to their sizes and takes a share j of the seats
from the clusters' low ends and 1 - j from their high ends: round(j n) boundary seats in
all, shared over the clusters in proportion to their seats (largest remainder). The weighted variants draw each
cluster's seats without replacement with probability proportional to 1 / ratio (clipped).

Everything is computed in log space: ``predict_proba`` saturates at 1.0 for many items, which
would turn the ratio into ties.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import logsumexp
from threadpoolctl import threadpool_limits

from .._validation import check_int, check_interval, check_option
from ._base import (Sampler, allocate, check_max_fit_items, fit_subsample, group_starts, standardize,
                    take_first_per_group)

__all__ = [
    "GMMFullSampler",
    "GMMSphericalSampler",
    "MaxMarginSampler",
    "GMMFullWeightedSampler",
    "GMMSphericalWeightedSampler",
    "MaxMarginWeightedSampler",
    "log_ratio",
]


def log_ratio(log_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cluster (arg-max) and log likelihood ratio against all other clusters, per row.

    Parameters
    ----------
    log_prob : ndarray (N, C)
        Log-probabilities (or log-densities: a common offset per row cancels).

    Returns
    -------
    cluster : ndarray of int64 (N,)
    log_ratio : ndarray (N,)
        ``l_A - logsumexp_{k != A} l_k``; +inf when there is a single class.

    Examples
    --------
    >>> c, r = log_ratio(np.log([[0.5, 0.25, 0.25], [0.2, 0.7, 0.1]]))
    >>> c.tolist(), np.round(r, 6).tolist()
    ([0, 1], [0.0, 0.847298])
    """
    cluster = np.argmax(log_prob, axis=1)
    rows = np.arange(len(log_prob))
    top = log_prob[rows, cluster]
    others = log_prob.copy()
    others[rows, cluster] = -np.inf
    with np.errstate(divide="ignore"):
        rest = logsumexp(others, axis=1)
    return cluster.astype(np.int64), top - rest


class _RatioSampler(Sampler):
    """Shared fit bookkeeping and the j split; subclasses provide ``_scores``."""

    uses_j = True
    randomised = False
    _state_names = ("cluster_", "log_ratio_", "order_", "cluster_sizes_", "fit_items_")

    def _scores(self, z, y_true, sub, seed):
        """Return (cluster, log_ratio, secondary key) per item and set any diagnostics.

        ``sub``: the rows to fit the model on (:func:`fit_subsample`), or None for all rows;
        every row is scored either way.
        """
        raise NotImplementedError

    def _fit(self, x, y_true, y_pred, seed):
        z = standardize(x)
        sub = _fit_rows(self.max_fit_items, y_true, y_pred, seed)
        # Small matrices in many calls: one BLAS thread is as fast and immune to other
        # processes competing for the cores (oversubscribed BLAS threads spin for seconds).
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            cluster, ratio, secondary = self._scores(z, y_true, sub, seed)
        tie = np.random.default_rng((seed, 2)).random(len(cluster))
        # N for the exact fit; the subsample's size when max_fit_items cut it.
        self.fit_items_ = len(z) if sub is None else len(sub)
        self.cluster_ = cluster.astype(np.int64)
        self.log_ratio_ = ratio.astype(np.float64)
        # Inside each cluster ascending: boundary (low ratio) first, exemplars last. A stable
        # sort on (ratio, secondary key, random key) keeps ties deterministic for a seed.
        self.order_ = np.lexsort((tie, secondary, ratio, cluster)).astype(np.int64)
        self.cluster_sizes_ = np.bincount(cluster, minlength=int(cluster.max()) + 1).astype(np.int64)

    def _allocation(self, n, rng):
        return allocate(self.cluster_sizes_, n, self.cluster_sizes_, rng)

    def _split(self, n, j, rng):
        """Seats per cluster and, of those, seats from the boundary (low-ratio) end.

        Exactly ``round(j * n)`` (halves up) boundary seats in total, shared over the clusters
        in proportion to their seats by largest remainder. Rounding ``j * take`` per cluster
        instead loses j on small samples: with two or three seats per cluster, j = 0.5 and
        j = 0.7 round to the same split in every cluster.
        """
        take = self._allocation(n, rng)
        n_low = int(np.floor(j * int(take.sum()) + 0.5))
        # caps = take: a cluster never gives more boundary seats than it has seats
        low = allocate(take, n_low, take, rng)
        return take, low

    def _sample(self, n, j, rng):
        take, low = self._split(n, j, rng)
        high = take - low
        groups = self.cluster_[self.order_]
        starts = group_starts(self.cluster_sizes_)
        rank = np.arange(len(self.order_), dtype=np.int64) - starts[groups]
        size = self.cluster_sizes_[groups]
        keep = (rank < low[groups]) | (rank >= size - high[groups])
        return self.order_[keep]

    def _info(self, n, j, rng):
        take, low = self._split(n, j, rng)
        return {"boundary": int(low.sum()), "exemplars": int(take.sum() - low.sum())}


class _WeightedMixin:
    """Weighted variant: per cluster, n_c items drawn with probability proportional to 1 / ratio.

    The log ratio is clipped to [-L, L] (``log_ratio_clip``) before weighting, so exemplars,
    whose ratio is unbounded, keep a small non-zero weight ``exp(-L)`` and the weights stay
    finite. Efraimidis-Spirakis keys ``u ** (1 / w)`` (compared as ``log(u) / w``) make the
    weighted draw without replacement a single sort. ``j`` has no effect.
    """

    uses_j = False
    randomised = True

    def _validate_weight(self):
        check_interval("log_ratio_clip", self.log_ratio_clip, 0.0, None, closed="neither")

    def _sample(self, n, j, rng):
        take = self._allocation(n, rng)
        clipped = np.clip(self.log_ratio_, -self.log_ratio_clip, self.log_ratio_clip)
        # weight w = exp(-clipped); key log(u) / w = log(u) * exp(clipped), the largest win.
        key = np.log(rng.random(len(clipped))) * np.exp(clipped)
        order = np.lexsort((-key, self.cluster_))
        return take_first_per_group(order, self.cluster_[order],
                                    group_starts(self.cluster_sizes_), take)

    def _info(self, n, j, rng):
        return {}


# ------------------------------------------------------------------------------------ GMM
class _GMMSampler(_RatioSampler):
    """Variational Gaussian mixture on the standardised latent space.

    Parameters
    ----------
    n_components : int or None, default None
        Mixture components; None: as many as classes in ``y_true`` (the report).
    n_pca : int or None, default 32
        Fit the mixture on this many leading principal components of the standardised latent
        (None: all dimensions). A full covariance costs O(d^2) per item and component per
        iteration; on 10k x 84 scikit-learn needs ~60 iterations of ~0.2 s each, over 10 s,
        while 32 components keep ~90 % of the variance of the LeNet latent and fit in ~2-4 s.
    weight_concentration_prior_type : {"dirichlet_process", "dirichlet_distribution"}
        Prior on the weights; the default Dirichlet process can empty components of a
        spherical mixture, so the live count is reported (``live_components_``).
    weight_concentration_prior : float or None
        None: scikit-learn's default, 1 / n_components.
    max_iter : int, default 100
        Cap on variational EM iterations (k-means initialisation).
    tol : float, default 1e-3
        Convergence threshold on the lower bound.
    max_fit_items : int >= 100 or None, default 50_000 (gmm-full), None (gmm-spherical)
        Above this many items, the PCA and the mixture are fitted on a seeded subsample of
        ``max_fit_items`` items stratified by confusion cell (:func:`fit_subsample`), and
        every item is then scored (clusters, ratios) under that mixture. At or below it (the
        shipped data sets: digits, 10k Fashion-MNIST, the galaxies) the fit is the exact one
        on all items. None: always exact. A fit costs O(N x iterations): at N = 10^6 the
        exact full-covariance fit would take about 6 minutes (grown from 10^4 and 10^5), its
        subsample's takes under 30 s, and a 5 % sample of either scores the same within 0.01
        at 10^5 (``python -m dldiag.bench fits``). The spherical mixture is exact by default:
        about 50 s at 10^6, and its subsample fit moved S1 by 0.02 to 0.05 at 10^5.

    Notes
    -----
    Per-component log-probabilities are the plug-in ones, ``log w_k + log N(x | mu_k, S_k)``
    with the posterior-mean weights, means and covariances. The secondary sort key is the
    item's log-density under its own component.
    """

    covariance_type = ""
    _fit_params = ("n_components", "n_pca", "weight_concentration_prior_type",
                   "weight_concentration_prior", "max_iter", "tol", "max_fit_items")
    _state_names = _RatioSampler._state_names + ("component_weights_",)

    def __init__(self, *, n_components: int | None = None, n_pca: int | None = 32,
                 weight_concentration_prior_type: str = "dirichlet_process",
                 weight_concentration_prior: float | None = None, max_iter: int = 100,
                 tol: float = 1e-3, max_fit_items: int | None = 50_000):
        self.n_components = n_components
        self.n_pca = n_pca
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.max_iter = max_iter
        self.tol = tol
        self.max_fit_items = max_fit_items

    def _validate_params(self):
        if self.n_components is not None:
            check_int("n_components", self.n_components, 1)
        if self.n_pca is not None:
            check_int("n_pca", self.n_pca, 1)
        check_option("weight_concentration_prior_type", self.weight_concentration_prior_type,
                     ("dirichlet_process", "dirichlet_distribution"))
        if self.weight_concentration_prior is not None:
            check_interval("weight_concentration_prior", self.weight_concentration_prior, 0.0,
                           None, closed="neither")
        check_int("max_iter", self.max_iter, 1)
        check_interval("tol", self.tol, 0.0, None, closed="neither")
        check_max_fit_items(self.max_fit_items)

    @property
    def live_components_(self) -> int:
        """Components holding at least a tenth of an equal share of the weight (not collapsed)."""
        self._check_fitted()
        w = np.asarray(self.component_weights_)
        return int((w >= 0.1 / len(w)).sum())

    def _scores(self, z, y_true, sub, seed):
        from sklearn.decomposition import PCA
        from sklearn.mixture import BayesianGaussianMixture

        n_items = len(z)
        k = self.n_components or len(np.unique(y_true))
        k = max(1, min(k, n_items if sub is None else len(sub)))
        if sub is None:  # the exact fit, on all items
            if self.n_pca is not None and self.n_pca < min(z.shape):
                z = PCA(n_components=self.n_pca, svd_solver="full").fit_transform(z)
            z_fit = z
        else:
            if self.n_pca is not None and self.n_pca < min(len(sub), z.shape[1]):
                z = PCA(n_components=self.n_pca, svd_solver="full").fit(z[sub]).transform(z)
            z_fit = z[sub]
        gmm = BayesianGaussianMixture(
            n_components=k,
            covariance_type=self.covariance_type,
            weight_concentration_prior_type=self.weight_concentration_prior_type,
            weight_concentration_prior=self.weight_concentration_prior,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=seed,
        )
        with warnings.catch_warnings():
            # Not converging within max_iter is a documented trade-off here, not an error.
            warnings.simplefilter("ignore")
            gmm.fit(z_fit)
        log_prob = np.log(np.maximum(gmm.weights_, 1e-300)) + _log_gaussian(z, gmm)
        cluster, ratio = log_ratio(log_prob)
        self.component_weights_ = gmm.weights_.astype(np.float64)
        return cluster, ratio, log_prob[np.arange(n_items), cluster]


def _log_gaussian(z: np.ndarray, gmm) -> np.ndarray:
    """log N(z | mean_k, cov_k) for every component, (N, K), from the precision Cholesky factors."""
    n, d = z.shape
    means, prec = gmm.means_, gmm.precisions_cholesky_
    out = np.empty((n, len(means)))
    for k, mu in enumerate(means):
        if gmm.covariance_type == "full":
            y = (z - mu) @ prec[k]
            log_det = np.log(np.diag(prec[k])).sum()
        elif gmm.covariance_type == "spherical":
            y = (z - mu) * prec[k]
            log_det = d * np.log(prec[k])
        else:  # pragma: no cover - only full and spherical are registered
            raise ValueError(f"unsupported covariance_type {gmm.covariance_type!r}")
        out[:, k] = -0.5 * (d * np.log(2 * np.pi) + np.einsum("ij,ij->i", y, y)) + log_det
    return out


class GMMFullSampler(_GMMSampler):
    __doc__ = "Full-covariance variational GMM, clusters sorted by likelihood ratio.\n" + (
        _GMMSampler.__doc__.split("\n", 1)[1])
    name = "gmm-full"
    covariance_type = "full"


class GMMSphericalSampler(_GMMSampler):
    __doc__ = "Spherical variational GMM, clusters sorted by likelihood ratio.\n" + (
        _GMMSampler.__doc__.split("\n", 1)[1])
    name = "gmm-spherical"
    covariance_type = "spherical"

    def __init__(self, *, max_fit_items: int | None = None, **params):
        # Exact by default: fast enough at 10^6 (see max_fit_items above).
        super().__init__(max_fit_items=max_fit_items, **params)


# ----------------------------------------------------------------------------- max margin
class MaxMarginSampler(_RatioSampler):
    """Linear SVM on the standardised latent space with Platt-scaled probabilities.

    ``CalibratedClassifierCV(LinearSVC(dual=False), method="sigmoid")`` trained on the true
    labels, with seeded stratified folds; the cluster of an item is the class it predicts.

    Parameters
    ----------
    C : float, default 1.0
        Regularisation of the linear SVM.
    n_folds : int, default 5
        Calibration folds (StratifiedKFold, shuffled with the fit's seed). A class with fewer
        items than folds is allowed: the folds are passed as a list, so the classes missing
        from a fold get probability 0 from that fold's calibrators.
    max_fit_items : int >= 100 or None, default 50_000
        Above this many items, the SVMs and their calibration are fitted on a seeded subsample
        of ``max_fit_items`` items stratified by confusion cell (:func:`fit_subsample`), and
        every item is then scored by the fitted folds. At or below it the fit is the exact one
        on all items (the shipped data sets); None: always exact. liblinear's primal solver
        grows faster than N, so the exact fit at N = 10^6 takes minutes.

    Notes
    -----
    Log-probabilities are rebuilt from each fold's decision function and sigmoid parameters,
    ``log p_k = -softplus(a_k f_k + b_k)``, normalised per fold and averaged over folds in log
    space (``logmeanexp``), which equals ``log predict_proba`` where that does not saturate.
    The secondary sort key is the fold-averaged decision value of the item's class.
    """

    name = "max-margin"
    _fit_params = ("C", "n_folds", "max_fit_items")

    def __init__(self, *, C: float = 1.0, n_folds: int = 5, max_fit_items: int | None = 50_000):
        self.C = C
        self.n_folds = n_folds
        self.max_fit_items = max_fit_items

    def _validate_params(self):
        check_interval("C", self.C, 0.0, None, closed="neither")
        check_int("n_folds", self.n_folds, 2)
        check_max_fit_items(self.max_fit_items)

    def _scores(self, z, y_true, sub, seed):
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedKFold
        from sklearn.svm import LinearSVC

        classes = np.unique(y_true)
        if len(classes) < 2:
            raise ValueError(f"max-margin needs at least 2 classes in y_true; got {classes.tolist()}")
        z_fit, y_fit = (z, y_true) if sub is None else (z[sub], y_true[sub])
        folds = list(StratifiedKFold(n_splits=min(self.n_folds, len(z_fit)), shuffle=True,
                                     random_state=seed).split(z_fit, y_fit))
        model = CalibratedClassifierCV(LinearSVC(C=self.C, dual=False), method="sigmoid", cv=folds)
        model.fit(z_fit, y_fit)
        log_prob, margin = calibrated_log_proba(model, z)
        cluster, ratio = log_ratio(log_prob)
        return cluster, ratio, margin[np.arange(len(z)), cluster]


def _fit_rows(max_fit_items, y_true, y_pred, seed):
    """The rows an approximate fit is fitted on, or None for the exact fit on all rows."""
    if max_fit_items is None or len(y_true) <= max_fit_items:
        return None
    return fit_subsample(y_true, y_pred, int(max_fit_items), seed)


#: Rows scored at once by :func:`calibrated_log_proba`: each fold's decision values, log
#: probabilities and margins are (rows, classes) float64 arrays, five folds of them at once; at
#: N = 10^6 scored in one go they took 4.2 GiB (measured, VmHWM), in blocks ~0.1 GiB.
SCORE_BLOCK_ROWS = 131_072


def calibrated_log_proba(model, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log of ``model.predict_proba(z)`` without saturation, and fold-averaged decision values.

    For a fitted sigmoid ``CalibratedClassifierCV``; columns follow ``model.classes_``. Rows
    are scored in blocks of :data:`SCORE_BLOCK_ROWS` (every step is row by row, so blocks change
    nothing but the memory held at once; data sets up to that size are one block).
    """
    if len(z) <= SCORE_BLOCK_ROWS:
        return _calibrated_log_proba(model, z)
    log_prob = np.empty((len(z), len(model.classes_)))
    margin = np.empty_like(log_prob)
    for lo in range(0, len(z), SCORE_BLOCK_ROWS):
        rows = slice(lo, lo + SCORE_BLOCK_ROWS)
        log_prob[rows], margin[rows] = _calibrated_log_proba(model, z[rows])
    return log_prob, margin


def _calibrated_log_proba(model, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_classes = len(model.classes_)
    fold_logs, fold_margins = [], []
    for pair in model.calibrated_classifiers_:
        est = pair.estimator
        f = est.decision_function(z)
        f = f.reshape(len(z), -1)
        cols = np.searchsorted(model.classes_, est.classes_)
        logp = np.full((len(z), n_classes), -np.inf)
        margin = np.zeros((len(z), n_classes))
        if n_classes == 2:
            t = pair.calibrators[0].a_ * f[:, 0] + pair.calibrators[0].b_
            # p1 = 1 / (1 + exp(t)), p0 = 1 - p1 = 1 / (1 + exp(-t))
            logp[:, 1] = -np.logaddexp(0.0, t)
            logp[:, 0] = -np.logaddexp(0.0, -t)
            margin[:, 1], margin[:, 0] = f[:, 0], -f[:, 0]
        else:
            for col, fk, cal in zip(cols, f.T, pair.calibrators):
                logp[:, col] = -np.logaddexp(0.0, cal.a_ * fk + cal.b_)
                margin[:, col] = fk
            logp -= logsumexp(logp, axis=1, keepdims=True)
        fold_logs.append(logp)
        fold_margins.append(margin)
    log_prob = logsumexp(np.stack(fold_logs), axis=0) - np.log(len(fold_logs))
    return log_prob, np.mean(fold_margins, axis=0)


# ------------------------------------------------------------------------ weighted variants
def _weighted(base):
    """The weighted twin of a ratio sampler: same fit (and fit_key), weighted draw."""

    class Weighted(_WeightedMixin, base):
        def __init__(self, *, log_ratio_clip: float = 10.0, **params):
            super().__init__(**params)
            self.log_ratio_clip = log_ratio_clip

        def _validate_params(self):
            base._validate_params(self)
            self._validate_weight()

    Weighted.name = f"{base.name}-weighted"
    Weighted._family = base.name
    Weighted.__name__ = Weighted.__qualname__ = base.__name__.replace("Sampler", "WeightedSampler")
    Weighted.__doc__ = (f"Weighted variant of ``{base.name}``.\n\n" + _WeightedMixin.__doc__
                        + "\n    Parameters\n    ----------\n    log_ratio_clip : float, default 10.0\n"
                        "        L: the log ratio is clipped to [-L, L] before weighting.\n"
                        f"    **params\n        Those of ``{base.name}``.\n")
    return Weighted


GMMFullWeightedSampler = _weighted(GMMFullSampler)
GMMSphericalWeightedSampler = _weighted(GMMSphericalSampler)
MaxMarginWeightedSampler = _weighted(MaxMarginSampler)
