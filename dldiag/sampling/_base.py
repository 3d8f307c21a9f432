"""The sampler contract and the helpers every sampler family shares.

A sampler is fitted once on the latent space (the expensive part) and then answers
``sample(fraction, j, seed)`` cheaply, so that moving a slider never refits. Its fitted state is
a flat dict of numpy arrays (:meth:`Sampler.get_state`), which is what the artifacts cache stores.
"""

from __future__ import annotations

import json
import math

import numpy as np

from .._validation import check_finite_matrix, check_fraction, check_int, check_interval

__all__ = [
    "Sampler",
    "NotFittedError",
    "sample_size",
    "allocate",
    "take_first_per_group",
    "group_starts",
    "standardize",
    "fit_subsample",
    "check_max_fit_items",
]


class NotFittedError(ValueError, AttributeError):
    """Raised when ``sample`` (or a fitted attribute) is used before ``fit`` or ``set_state``.

    Like scikit-learn's ``NotFittedError`` it is both a ``ValueError`` and an ``AttributeError``.
    """


def sample_size(fraction: float, n_items: int) -> int:
    """The number of items of a ``fraction`` sample: ``floor(fraction * n_items + 0.5)``.

    Neither ``round`` (half to even: 0.5 -> 0, 2.5 -> 2) nor ``int(f * N)`` (0.29 * 100 =
    28.999... -> 28) gives the size a person expects, so halves round up. A fraction below
    ``0.5 / n_items`` gives 0, which :meth:`Sampler.sample` refuses.

    Examples
    --------
    >>> sample_size(0.29, 100), sample_size(0.025, 100), sample_size(0.05, 10_000)
    (29, 3, 500)
    """
    return int(math.floor(fraction * n_items + 0.5))


def _empty_sample_message(fraction: float, n_items: int) -> str:
    """Why ``fraction`` is refused for ``n_items`` items, with the smallest one that works."""
    smallest = 0.5 / n_items  # the least f with floor(f * N + 0.5) >= 1
    shown = f"{smallest:.6g}"
    if sample_size(float(shown), n_items) < 1:
        # Six digits rounded to nearest can fall just short; round the last one up instead.
        scale = 10.0 ** (5 - math.floor(math.log10(smallest)))
        shown = f"{math.ceil(smallest * scale) / scale:.6g}"
    sign = "=" if float(shown) == smallest else "≈"
    return (f"fraction must be at least 0.5/{n_items} {sign} {shown}, the smallest that selects one of "
            f"the {n_items} items; got {fraction!r}, which selects 0 of {n_items} items")


def standardize(x: np.ndarray) -> np.ndarray:
    """Columns to zero mean and unit variance, as a C-contiguous float64 copy.

    Constant columns are only centred (their scale is taken as 1), so that duplicated or
    degenerate latent spaces do not divide by zero.
    """
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    return np.ascontiguousarray((x - mean) / std)


def allocate(caps, n: int, weights, rng: np.random.Generator, *, spill: bool = True) -> np.ndarray:
    """Split ``n`` seats over strata in proportion to ``weights``, never above ``caps``.

    Largest-remainder rounding: each stratum first gets the floor of its quota, the seats left
    go to the largest fractional parts, ties broken by a random key from ``rng``. A stratum
    whose quota reaches its cap is taken whole, and with ``spill=True`` its surplus is shared
    again over the others (repeated until every seat is placed), so the total is exactly ``n``.

    Parameters
    ----------
    caps : array of int, shape (S,)
        Items available in each stratum.
    n : int
        Seats to place, ``0 <= n <= caps.sum()``.
    weights : array of float, shape (S,)
        Non-negative allocation weights (sizes for proportional allocation, ones for equal).
        Strata with zero weight or zero cap get nothing.
    rng : numpy.random.Generator
        Source of the tie-breaking keys.
    spill : bool
        If False, seats that a full stratum cannot take are dropped instead of spilled, so the
        total may be less than ``n`` (the report's latent grid).

    Returns
    -------
    ndarray of int64, shape (S,)

    Examples
    --------
    >>> allocate([10, 1, 10], 9, [1, 1, 1], np.random.default_rng(0)).tolist()
    [4, 1, 4]
    >>> allocate([10, 1, 10], 9, [1, 1, 1], np.random.default_rng(0), spill=False).tolist()
    [3, 1, 3]
    """
    caps = np.asarray(caps, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    if n < 0 or n > caps.sum():
        raise ValueError(f"cannot place {n} seats in strata holding {int(caps.sum())} items")
    # One key per stratum for the whole call, so that ties are broken consistently.
    tie_key = rng.random(len(caps))
    alloc = np.zeros(len(caps), dtype=np.int64)
    active = (caps > 0) & (weights > 0)
    remaining = int(n)
    while remaining > 0 and active.any():
        w = np.where(active, weights, 0.0)
        quota = remaining * w / w.sum()
        room = caps - alloc
        full = active & (quota >= room)
        if full.any() and spill:
            # Take the strata that cannot hold their quota whole; share what is left again.
            remaining -= int(room[full].sum())
            alloc[full] = caps[full]
            active &= ~full
            continue
        base = np.floor(quota).astype(np.int64)
        frac = np.where(active, quota - base, -1.0)
        alloc += base
        extra = remaining - int(base.sum())
        if extra > 0:
            # Largest remainder first, then the random key: lexsort sorts by its last key first.
            order = np.lexsort((-tie_key, -frac))
            alloc[order[:extra]] += 1
        if not spill:
            alloc = np.minimum(alloc, caps)
        break
    return alloc


def check_max_fit_items(value, low: int = 100):
    """Validate ``max_fit_items``: None (never approximate) or an integer of at least ``low``."""
    if value is not None:
        check_int("max_fit_items", value, low)
    return value


def fit_subsample(y_true: np.ndarray, y_pred: np.ndarray, m: int, seed: int) -> np.ndarray:
    """A seeded subsample of ``m`` items stratified by confusion cell, as sorted indices.

    The approximate fits of large data sets (``max_fit_items``) fit their model on it and then
    score every item. Seats go to the (true, predicted) cells in proportion to their sizes
    (:func:`allocate`: largest remainder, ties by a seeded key), so the misclassified keep
    their share, and the items inside a cell are uniform. The generator is seeded by
    ``(seed, 3)``, a stream of its own.

    Examples
    --------
    >>> y = np.array([0] * 6 + [1] * 4)
    >>> idx = fit_subsample(y, y, 5, seed=0)
    >>> len(idx), int((y[idx] == 0).sum())
    (5, 3)
    """
    rng = np.random.default_rng((seed, 3))
    _, cells = np.unique(y_true * (int(y_pred.max()) + 1) + y_pred, return_inverse=True)
    cells = cells.ravel()
    sizes = np.bincount(cells)
    take = allocate(sizes, m, sizes, rng)
    order = np.lexsort((rng.random(len(cells)), cells))
    picked = take_first_per_group(order, cells[order], group_starts(sizes), take)
    return np.sort(picked).astype(np.int64)


def group_starts(counts: np.ndarray) -> np.ndarray:
    """Offsets of each group in an array sorted by group: ``[0, c0, c0+c1, ...]`` (S+1 values)."""
    starts = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    return starts


def take_first_per_group(order: np.ndarray, groups_sorted: np.ndarray, starts: np.ndarray,
                         take: np.ndarray) -> np.ndarray:
    """Items ``order[i]`` whose rank inside their group is below that group's ``take``.

    ``order`` lists items grouped by group (``groups_sorted[i]`` is the group of ``order[i]``,
    groups contiguous and ascending, group g starting at ``starts[g]``); the rank of an item
    is its position inside its group's block. One vectorised pass, O(N).
    """
    rank = np.arange(len(order), dtype=np.int64) - starts[groups_sorted]
    return order[rank < take[groups_sorted]]


def _check_labels(name: str, y, n_items: int) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n_items:
        raise ValueError(f"{name} must be a 1-d array of {n_items} labels (one per latent row); "
                         f"got shape {arr.shape}")
    if arr.dtype.kind not in "iub":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer class labels; got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if n_items and arr.min() < 0:
        raise ValueError(f"{name} must hold non-negative class labels; got {int(arr.min())}")
    return arr


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class Sampler:
    """Base class of the samplers: fit once on the latent space, then sample cheaply.

    Subclasses set the class attributes, store their keyword-only parameters in ``__init__``
    under the same names, and implement ``_validate_params``, ``_fit`` and ``_sample`` (and
    ``_info`` if they have something to say about a sample).

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"gmm-full"``.
    uses_j : bool
        Whether ``j`` changes the sample (only the three unweighted ratio samplers).
    randomised : bool
        Whether ``sample`` depends on its ``seed``. For the others every random choice (random
        start, insertion order, mixture initialisation, folds, tie keys) is fixed by the seed
        given to ``fit``, and the seed of ``sample`` is ignored.
    seeded_fit : bool
        Whether the fit depends on its ``seed`` (mixture initialisation, calibration folds,
        insertion orders, tie keys). A sampler whose fit is the same for every seed (random,
        the strata samplers) says False, so that repeating its fit over seeds adds no fake
        variation; the experiments repeat the fits of the others over seeds.
    n_items_ : int
        N, the number of latent rows seen by ``fit``.
    seed_ : int
        The seed given to ``fit``.
    """

    name: str = ""
    uses_j: bool = False
    randomised: bool = True
    seeded_fit: bool = True
    # The family whose fit this sampler shares (weighted twins use their unweighted twin's).
    _family: str = ""
    # Parameters that change the fit (in fit_key) and the fitted attributes kept in the state.
    _fit_params: tuple[str, ...] = ()
    _state_names: tuple[str, ...] = ()

    # ---------------------------------------------------------------- public contract
    def fit(self, latent, y_true, y_pred, seed: int = 0) -> Sampler:
        """Do the expensive work once.

        Parameters
        ----------
        latent : array of float, shape (N, d)
            The latent space (last hidden layer); NaN or inf raise ``ValueError``.
        y_true, y_pred : array of int, shape (N,)
            True labels and the model's predictions.
        seed : int
            Seeds every random choice of the fit.

        Returns
        -------
        self
        """
        x = check_finite_matrix("latent", latent)
        n_items = x.shape[0]
        if n_items == 0:
            raise ValueError("latent must hold at least one row; got shape (0, ...)")
        y_true = _check_labels("y_true", y_true, n_items)
        y_pred = _check_labels("y_pred", y_pred, n_items)
        seed = check_int("seed", seed, 0)
        self._validate_params()
        self._fit(np.asarray(x, dtype=np.float64), y_true, y_pred, seed)
        self.n_items_ = n_items
        self.seed_ = seed
        return self

    def sample(self, fraction: float, j: float = 0.7, seed: int = 0) -> np.ndarray:
        """Indices of a sample of ``floor(fraction * N + 0.5)`` items.

        Parameters
        ----------
        fraction : float in (0, 1]
            Share of the N items to sample.
        j : float in [0, 1]
            Share of each cluster's seats taken from its boundary end (ratio samplers only;
            validated, then ignored, by the others).
        seed : int
            Seed of the draw; ignored by samplers whose ``randomised`` is False.

        Returns
        -------
        ndarray of int64
            Sorted, unique item indices in ``[0, N)``.

        Raises
        ------
        ValueError
            If ``fraction`` is outside (0, 1] or so small that the sample would be empty
            (below ``0.5 / N``); the message gives the smallest fraction that selects one item.
        """
        n, j, rng = self._start_sample(fraction, j, seed)
        idx = np.asarray(self._sample(n, j, rng), dtype=np.int64)
        idx.sort()
        return idx

    def sample_info(self, fraction: float, j: float = 0.7, seed: int = 0) -> dict:
        """Details of the sample that ``sample`` returns for the same arguments ({} if none)."""
        n, j, rng = self._start_sample(fraction, j, seed)
        return self._info(n, j, rng)

    def fit_key(self) -> dict:
        """JSON-able identity of the fit: the family and the parameters that change it.

        Weighted variants share the fit of their unweighted twin, so their keys are equal.
        """
        params = {p: _jsonable(getattr(self, p)) for p in self._fit_params}
        key = {"family": self._family or self.name, "params": params}
        json.dumps(key)  # fail here, not in the cache, if a parameter is not JSON-able
        return key

    def get_state(self) -> dict[str, np.ndarray]:
        """The fitted state as plain numpy arrays (0-d arrays for scalars)."""
        self._check_fitted()
        return {name: np.asarray(getattr(self, name)) for name in self._all_state_names()}

    def set_state(self, state: dict) -> Sampler:
        """Restore a state from :meth:`get_state`; ``sample`` then works without ``fit``."""
        missing = [n for n in self._all_state_names() if n not in state]
        if missing:
            raise ValueError(f"state for sampler {self.name!r} lacks {missing}; "
                             f"it holds {sorted(state)}")
        for name in self._all_state_names():
            value = np.asarray(state[name])
            setattr(self, name, value.item() if value.ndim == 0 else value)
        return self

    def get_params(self) -> dict:
        """The keyword parameters given to the constructor (with defaults filled in)."""
        return {p: getattr(self, p) for p in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"make_sampler({self.name!r}{', ' if args else ''}{args})"

    # ---------------------------------------------------------------- for subclasses
    def _validate_params(self) -> None:
        """Check the constructor parameters; raise ``ValueError`` naming the bad one."""

    def _fit(self, x: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, seed: int) -> None:
        raise NotImplementedError

    def _sample(self, n: int, j: float, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _info(self, n: int, j: float, rng: np.random.Generator) -> dict:
        return {}

    # ---------------------------------------------------------------- internals
    def _all_state_names(self) -> tuple[str, ...]:
        return ("n_items_", "seed_") + tuple(self._state_names)

    def _param_names(self) -> tuple[str, ...]:
        import inspect

        # Every keyword-only parameter along the MRO: a weighted twin adds its own to those of
        # the sampler it extends.
        names: list[str] = []
        for cls in type(self).__mro__:
            if "__init__" in vars(cls) and cls is not object:
                for p in inspect.signature(vars(cls)["__init__"]).parameters.values():
                    if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in names:
                        names.append(p.name)
        return tuple(names)

    def _check_fitted(self) -> None:
        if not all(hasattr(self, n) for n in self._all_state_names()):
            raise NotFittedError(
                f"this {self.name!r} sampler is not fitted yet; call fit(latent, y_true, y_pred) "
                "or set_state(state) before using it"
            )

    def _start_sample(self, fraction, j, seed):
        self._check_fitted()
        fraction = check_fraction(fraction)
        j = check_interval("j", j, 0.0, 1.0)
        seed = check_int("seed", seed, 0)
        self._validate_params()
        n_items = int(self.n_items_)
        n = sample_size(fraction, n_items)
        if n == 0:
            # An empty sample scores as a silent worst case (S1 = 0); refuse it instead.
            raise ValueError(_empty_sample_message(fraction, n_items))
        # Non-randomised samplers draw their remaining random choices (allocation ties) from
        # the fit's seed, so their sample depends on the fit alone.
        rng = np.random.default_rng(seed if self.randomised else int(self.seed_))
        return n, j, rng
