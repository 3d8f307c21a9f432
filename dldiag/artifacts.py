"""The cached workspace of a (data set, model) pair.

Everything derived from a data set and a trained model — predictions, the latent matrix, the
full-data aggregates of every group, 2-D projections, sampler fits — is computed once and kept
in an :class:`~dldiag.cache.ArrayCache` keyed by content hashes: the evaluation split's
fingerprint, the weights' hash and the diagnosed layers. A second process finds it all there.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import models
from ._validation import check_option
from .activations import (UNIT_MODES, Aggregates, PassResult, collect_activations, forward_with_activations,
                          run_pass, unit_view)
from .cache import ArrayCache, content_key, open_tiers
from .datasets import Dataset
from .engine import full_pass, resolve_engine
from .estimates import (DEFAULT_FPC, DEFAULT_INTERVAL, DEFAULT_LEVEL, DEFAULT_N_BOOT, GroupEstimate, NoEstimate,
                        SampleEstimate, estimate_group, estimate_groups, group_rng, group_sizes)
from .projections import PROJECTIONS, placement_key, project
from .queries import QueryAccuracy, evaluate, item_mask
from .replicas import ModelPool

__all__ = ["Workspace", "LatentSpace", "LatentArtifacts", "load_workspace", "resolve_weights"]

# Bump when the layout of cached arrays changes, so that old entries are not misread.
CACHE_VERSION = 2  # 2: the key holds the model's code, the transform and the output selector
#: Most megabytes the samples' activation stores take together (least recently used removed first).
STORES_CAP_MB = 4096


@functools.lru_cache(maxsize=1)
def _sampling_code_hash() -> str:
    """sha256 of the sampling package's source, so that a changed sampler never reuses old fits."""
    folder = Path(__file__).resolve().parent / "sampling"
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def resolve_weights(dataset_name: str, weights: str | Path | None,
                    cache_dir: str | Path | None = None) -> Path:
    """The checkpoint to use: ``weights`` if given, else where ``python -m dldiag train`` saves it.

    Parameters
    ----------
    dataset_name : str
        The data set's name, as given to ``train --dataset``.
    weights : path or None
        An explicit checkpoint.
    cache_dir : path, optional
        The cache folder given to ``train --cache-dir``: weights of data sets other than the
        shipped ones are looked up in its ``weights/`` subfolder
        (:func:`~dldiag.models.default_checkpoint_path`).

    Returns
    -------
    Path

    Raises
    ------
    FileNotFoundError
        If there is no file there; the message names the path looked at and how to train.
    """
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"no checkpoint at {str(path)!r} (the weights given for dataset {dataset_name!r}); "
                f"check the path, or train one there with "
                f"`python -m dldiag train --dataset {dataset_name} --out {path}`"
            )
        return path
    path = models.default_checkpoint_path(dataset_name, cache_dir)
    if not path.is_file():
        train = f"python -m dldiag train --dataset {dataset_name}"
        if cache_dir is not None:
            train += f" --cache-dir {cache_dir}"
        raise FileNotFoundError(
            f"no weights for dataset {dataset_name!r} at {str(path)!r}; train them with `{train}` "
            "or pass --weights PATH"
        )
    return path


class LatentArtifacts:
    """What is derived from the latent space alone: 2-D projections and sampler fits.

    A mixin over ``key``, ``latent``, ``y_true``, ``y_pred`` and ``cache`` (the core tier), so
    that a :class:`Workspace` and a bare :class:`LatentSpace` (a background process's view of
    one: the latent matrix and labels, no data set or model) compute and cache them alike,
    under the same keys.
    """

    def fitted_sampler(self, name: str, *, seed: int = 0, show_progress: bool = False, **params):
        """A sampler fitted on this workspace's latent space, from the cache when it is there."""
        from .sampling import make_sampler

        sampler = make_sampler(name, **params)

        def build():
            if show_progress:
                print(f"fitting sampler {name} …", flush=True)
            return sampler.fit(self.latent, self.y_true, self.y_pred, seed=seed).get_state()

        state, hit = self.cache.get_or_build(self._fit_key(sampler, seed), build)
        return sampler.set_state(state) if hit else sampler

    def _fit_key(self, sampler, seed: int) -> str:
        return content_key("sampler", CACHE_VERSION, self.key, sampler.fit_key(), int(seed), _sampling_code_hash())

    def has_fit(self, name: str, *, seed: int = 0, **params) -> bool:
        """Whether the fit of sampler ``name`` is in the cache (present; verified when read)."""
        from .sampling import make_sampler

        return self.cache.has(self._fit_key(make_sampler(name, **params), seed))

    def has_projection(self, method: str, *, seed: int = 0) -> bool:
        """Whether the projection ``method`` is in the cache (present; verified when read)."""
        return self.cache.has(self._projection_key(method, seed))

    def _projection_key(self, method: str, seed: int) -> str:
        check_option("method", method, PROJECTIONS)
        # UMAP beyond its fit size places the rest (projections.placement_key): that part is in the
        # key, so that a projection placed another way is not served; the others keep their keys.
        extra = placement_key(method, len(self.latent))
        parts = ("projection", CACHE_VERSION, self.key, method, int(seed))
        return content_key(*parts) if extra is None else content_key(*parts, extra)

    def projection(self, method: str = "umap", *, seed: int = 0) -> np.ndarray:
        """2-D projection of the latent space (N, 2), computed once and cached."""
        key = self._projection_key(method, seed)
        arrays, _ = self.cache.get_or_build(key, lambda: {"xy": project(self.latent, method, seed=seed)})
        return arrays["xy"]


@dataclass
class LatentSpace(LatentArtifacts):
    """The latent matrix and labels of a workspace with its cache: enough for projections and fits."""

    key: str
    latent: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    cache: ArrayCache


@dataclass
class Workspace(LatentArtifacts):
    """Cached artifacts of one (data set, model, layers) triple.

    Build one with :func:`load_workspace`. Attributes are read-only by convention.

    Attributes
    ----------
    dataset : Dataset
    model : nn.Module
        The snapshot of the model that the passes' replicas are made from; in eval mode.
        Do not run it directly from several threads: passes lease replicas from ``pool``.
    layers : tuple of str
        Diagnosed layers.
    latent_layer : str
        The last hidden layer, whose output is the latent space.
    key : str
        Content hash of (evaluation split, weights, layers): the cache namespace.
    y_true, y_pred : ndarray (N,)
    probs : ndarray (N, C)
        Softmax outputs of the full pass.
    latent : ndarray (N, d)
    full : Aggregates
        Ground-truth aggregates per group from the full pass.
    cache : ArrayCache
        The core tier: the full pass, projections, sampler fits (never evicted).
    sample_cache : ArrayCache
        The samples tier: what is computed per sample (capped, least recently used first).
    build_seconds : float
        Time spent loading or building the full pass.
    cache_hit : bool
        Whether the full pass came from the cache.
    pool : ModelPool
        Replicas of the model, each lent to one pass at a time: any number of threads may
        call :meth:`sample_pass`, :meth:`activations` and :meth:`evaluate` at once, and each
        gets the answer it would get alone.
    transform, output : callable, int or str, optional
        Applied to each batch before the model; picks the logits from a tuple or dict output.
    full_pass_seconds : float or None
        How long the full pass took when it was built (kept in the cache with it; None for a
        pass cached before this was recorded).
    """

    dataset: Dataset
    model: nn.Module
    layers: tuple[str, ...]
    latent_layer: str
    key: str
    y_pred: np.ndarray
    probs: np.ndarray
    latent: np.ndarray
    full: Aggregates
    cache: ArrayCache
    sample_cache: ArrayCache | None = None
    batch_size: int = 256
    build_seconds: float = 0.0
    cache_hit: bool = False
    model_info: dict = field(default_factory=dict)
    pool: ModelPool | None = None
    transform: object = None
    output: object = None
    full_pass_seconds: float | None = None

    def __post_init__(self):
        if self.pool is None:
            self.pool = ModelPool(self.model)
        if self.sample_cache is None:
            self.sample_cache = self.cache
        self.model = self.pool.model

    @property
    def y_true(self) -> np.ndarray:
        return self.dataset.y_test

    @property
    def n_items(self) -> int:
        return len(self.dataset.y_test)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.y_pred == self.y_true))

    def sample_pass(self, indices: np.ndarray, *, show_progress: bool = False, on_progress=None,
                    pool=None) -> PassResult:
        """Forward pass over the sampled items only; their aggregates per group.

        ``on_progress(done, total)`` is called after each batch; ``pool`` lends the model
        instead of the workspace's own pool (a job in a forked process brings its own).
        """
        with (self.pool if pool is None else pool).lease() as model:
            return run_pass(model, self.dataset.x_test, self.dataset.y_test, self.layers,
                            n_classes=self.dataset.n_classes, indices=np.asarray(indices),
                            batch_size=self.batch_size, show_progress=show_progress, desc="sample",
                            output=self.output, transform=self.transform, on_progress=on_progress)

    def activations(self, indices: np.ndarray, layer: str, unit_mode: str = "flat") -> np.ndarray:
        """Activations (n, units) of ``layer`` for the items ``indices`` (a sample, not all of D)."""
        check_option("layer", layer, self.layers)
        check_option("unit_mode", unit_mode, UNIT_MODES)
        indices = np.asarray(indices, dtype=np.int64)
        out = []
        with self.pool.lease() as model:
            for start in range(0, len(indices), self.batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(self.dataset.x_test[indices[start:start + self.batch_size]],
                                                           dtype=np.float32))
                if self.transform is not None:
                    xb = self.transform(xb)
                _, acts = forward_with_activations(model, (layer,), xb, self.output)
                out.append(unit_view(acts[layer], unit_mode).numpy())
        if not out:
            return np.zeros((0, self.full[layer, unit_mode].n_units), dtype=np.float32)
        return np.concatenate(out)

    def unit_values(self, layer: str, unit_mode: str, unit: int, *, on_progress=None, pool=None) -> np.ndarray:
        """One unit's activation on every item of D, by a forward pass over all of them.

        The pass keeps the one unit of each batch and nothing else, so its memory does not
        grow with the layer (conv1 of LeNet holds 4,704 units: all of them for 10^6 items
        would be 18.8 GB in float32); the result is 4 bytes per item.

        Parameters
        ----------
        layer : str
            One of the diagnosed ``layers``.
        unit_mode : {"flat", "channel"}
        unit : int
            Index among the layer's units in that mode.
        on_progress : callable, optional
            ``on_progress(done, total)`` after each batch.
        pool : ModelPool, optional
            Where to lease the model from (default: the workspace's own).

        Returns
        -------
        ndarray of float32 (N,)
        """
        check_option("layer", layer, self.layers)
        check_option("unit_mode", unit_mode, UNIT_MODES)
        n_units = self.full[layer, unit_mode].n_units
        if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)) or not 0 <= unit < n_units:
            raise ValueError(f"unit must be an integer in [0, {n_units}) for layer {layer!r} in {unit_mode} mode; "
                             f"got {unit!r}")
        n = self.n_items
        out = np.empty(n, dtype=np.float32)
        with (self.pool if pool is None else pool).lease() as model:
            for start in range(0, n, self.batch_size):
                stop = min(start + self.batch_size, n)
                # A fresh copy, as the other passes' batches are: a view into the data set starts at
                # another alignment, and the kernels' rounding follows it (1e-6 apart, measured).
                xb = torch.from_numpy(np.array(self.dataset.x_test[start:stop], dtype=np.float32))
                if self.transform is not None:
                    xb = self.transform(xb)
                _, acts = forward_with_activations(model, (layer,), xb, self.output)
                out[start:stop] = unit_view(acts[layer], unit_mode)[:, int(unit)].numpy()
                if on_progress is not None:
                    on_progress(stop, n)
        return out

    def evaluate(self, indices: np.ndarray, *, k: int = 10, unit_mode: str = "flat",
                 weights: np.ndarray | None = None) -> QueryAccuracy:
        """Query-set accuracy of the sample ``indices`` against the full data.

        With ``weights`` (one design weight per index, :func:`dldiag.weighting.design_weights`)
        the groups' answers are the design-weighted (Hájek) estimates instead of plain means.
        """
        if weights is None:
            return evaluate(self.sample_pass(indices).aggregates, self.full, k=k, unit_mode=unit_mode)
        from .weighting import weighted_aggregates

        _, weighted = weighted_aggregates(self, indices, weights)
        return evaluate(weighted, self.full, k=k, unit_mode=unit_mode)

    def _acts_key(self, indices: np.ndarray, unit_mode: str) -> str:
        digest = hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()
        return content_key("sample-acts", CACHE_VERSION, self.key, digest, unit_mode)

    def sample_activations(self, indices: np.ndarray, unit_mode: str = "flat", *,
                           cache: ArrayCache | None = None) -> tuple[np.ndarray, dict]:
        """Per-item activations of every diagnosed layer for the sample ``indices``.

        One forward pass over the sample (:func:`~dldiag.activations.collect_activations`)
        gives both unit modes; each is kept in the samples tier (about 13 MB for 500
        Fashion-MNIST items in the flat mode), so the bootstrap of a sample, its panels and
        its ``query`` share one pass.

        Parameters
        ----------
        indices : ndarray of int
            The sample.
        unit_mode : {"flat", "channel"}
        cache : ArrayCache, optional
            Where to keep them (default: the samples tier; the app may pass its own).

        Returns
        -------
        y_pred : ndarray of shape (n,)
            The items' predicted classes from the sample pass (as the sample's aggregates
            have them).
        activations : dict
            Layer → float32 array (n, units) in ``unit_mode``, rows in the order of ``indices``.
        """
        check_option("unit_mode", unit_mode, UNIT_MODES)
        indices = np.asarray(indices, dtype=np.int64)
        cache = self.sample_cache if cache is None else cache
        key = self._acts_key(indices, unit_mode)
        arrays = cache.get(key)
        if arrays is None:
            with cache.single_flight(key):
                arrays = cache.get(key)
                if arrays is None:
                    with self.pool.lease() as model:
                        y_pred, acts = collect_activations(model, self.dataset.x_test, self.layers, indices,
                                                           batch_size=self.batch_size, output=self.output,
                                                           transform=self.transform)
                    by_mode = {mode: {"y_pred": y_pred, **{f"act/{layer}": acts[layer, mode] for layer in self.layers}}
                               for mode in UNIT_MODES}
                    for mode, entry in by_mode.items():
                        cache.put(self._acts_key(indices, mode), entry)
                    arrays = by_mode[unit_mode]
        return arrays["y_pred"], {layer: arrays[f"act/{layer}"] for layer in self.layers}

    def sample_store(self, indices: np.ndarray, *, dtype: str = "float16", on_progress=None):
        """The sample's activations on disk (:mod:`dldiag.sample_store`), written on first use.

        Kept beside the cache tiers, in ``stores/<workspace key>-<indices hash>-<dtype>/``: one
        forward pass over the sample, then every question about it is a read of memory maps.
        After a store is written, the least recently used others are removed while all of them
        take more than :data:`STORES_CAP_MB` (``$DLDIAG_STORES_MB`` when set).
        """
        from .sample_store import open_store, prune_stores, write_store

        indices = np.asarray(indices, dtype=np.int64)
        digest = hashlib.sha256(np.ascontiguousarray(indices).tobytes()).hexdigest()
        folder = Path(self.cache.directory).parent / "stores" / f"{self.key[:16]}-{digest[:16]}-{dtype}"
        done = open_store(folder)
        if done is not None and np.array_equal(done.indices, indices):
            return done
        store = write_store(self, indices, folder, dtype=dtype, on_progress=on_progress)
        cap = float(os.environ.get("DLDIAG_STORES_MB", STORES_CAP_MB))
        prune_stores(folder.parent, int(cap * 2**20), keep=(folder,))
        return store

    def estimate(self, indices: np.ndarray, *, k: int = 10, unit_mode: str = "flat", n_boot: int = DEFAULT_N_BOOT,
                 level: float = DEFAULT_LEVEL, seed: int = 0, layers=None,
                 interval: str = DEFAULT_INTERVAL, fpc: bool = DEFAULT_FPC,
                 cache: ArrayCache | None = None) -> SampleEstimate:
        """Accuracy of the sample ``indices`` estimated from the sample alone, every group.

        See :mod:`dldiag.estimates` for what the bootstrap estimates and its known bias; the
        groups and their resamples are those of :func:`~dldiag.estimates.estimate_groups`.

        Parameters
        ----------
        indices : ndarray of int
            The sample.
        k, unit_mode : as for :meth:`evaluate`
        n_boot, level, seed, interval : as for :func:`~dldiag.estimates.estimate_group`
        fpc : bool
            Apply the finite-population correction, with each group's size from the model's
            predictions of every item (the latent pass; no full activation is read).
        layers : sequence of str, optional
            Restrict to these layers (default: all diagnosed layers).
        cache : ArrayCache, optional
            Where the sample's activations are kept (see :meth:`sample_activations`).

        Returns
        -------
        SampleEstimate
        """
        check_option("unit_mode", unit_mode, UNIT_MODES)
        y_pred, acts = self.sample_activations(indices, unit_mode, cache=cache)
        if layers is not None:
            for layer in layers:
                check_option("layer", layer, self.layers)
            acts = {layer: acts[layer] for layer in layers}
        y_true = self.dataset.y_test[np.asarray(indices, dtype=np.int64)]
        sizes = group_sizes(self.y_true, self.y_pred, self.dataset.n_classes) if fpc else None
        return estimate_groups(acts, y_true, y_pred, n_classes=self.dataset.n_classes, k=k, n_boot=n_boot,
                               level=level, seed=seed, unit_mode=unit_mode, interval=interval, group_sizes=sizes)

    def group_estimate(self, indices: np.ndarray, layer: str, *, unit_mode: str = "flat", k: int = 10,
                       cls=None, outcome=None, predicted=None, n_boot: int = DEFAULT_N_BOOT,
                       level: float = DEFAULT_LEVEL, seed: int = 0, interval: str = DEFAULT_INTERVAL,
                       fpc: bool = DEFAULT_FPC, population: int | None = None,
                       cache: ArrayCache | None = None) -> GroupEstimate | NoEstimate:
        """The bootstrap of one group of the sample ``indices`` in one layer (what a panel shows).

        The group is (``cls``, ``outcome``, ``predicted``), ``None`` meaning any, as for
        :func:`~dldiag.queries.answer`. The result's :meth:`~dldiag.estimates.GroupEstimate.top_bars`
        gives the top-k bars with their intervals, ``dist_low``/``dist_high`` the S3 bins'
        intervals, and ``s1``/``s2``/``s3`` the estimate line; for a (class, outcome) group
        it equals that group's row of :meth:`estimate` with the same settings. ``cache`` is
        where the sample's activations are kept (see :meth:`sample_activations`); with ``fpc``
        the group's size over all items is counted from the model's predictions, unless
        ``population`` gives it (the group within a selection of the latent view).
        """
        check_option("layer", layer, self.layers)
        if outcome is not None:
            check_option("outcome", outcome, ("correct", "incorrect"))
        indices = np.asarray(indices, dtype=np.int64)
        y_pred, acts = self.sample_activations(indices, unit_mode, cache=cache)
        y_true = self.dataset.y_test[indices]
        mask = item_mask(y_true, y_pred, cls, outcome, predicted)
        if not fpc:
            population = None
        elif population is None:
            population = int(item_mask(self.y_true, self.y_pred, cls, outcome, predicted).sum())
        return estimate_group(acts[layer][mask], k=k, n_boot=n_boot, level=level,
                              seed=group_rng(seed, cls, outcome, predicted), interval=interval, population=population)


def callable_key(obj):
    """What identifies a transform or an output selector in a cache key.

    ``None``, numbers and strings are themselves; an ``nn.Module`` is its class and weights
    hash; a function is its qualified name, its source code (when Python can find it) and the
    values it closes over or the globals it names hold (arrays and tensors by content); any
    other callable its type and ``repr``. A function whose result depends on something none of
    these show (an attribute of an object it reads, say) needs another name when that changes,
    or the cache would serve results computed before.
    """
    import inspect

    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, nn.Module):
        return ["module", type(obj).__qualname__, repr(obj), models.weights_hash(obj)]
    if isinstance(obj, (np.ndarray, torch.Tensor)):  # by content: a repr elides large arrays
        arr = np.ascontiguousarray(obj.detach().cpu().numpy() if isinstance(obj, torch.Tensor) else obj)
        return ["array", str(arr.dtype), list(arr.shape), hashlib.sha256(arr.tobytes()).hexdigest()]
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        try:
            source = inspect.getsource(obj)
        except (OSError, TypeError):
            source = None
        fn = getattr(obj, "__func__", obj)
        cells = [callable_key(c.cell_contents) if _keyable(c.cell_contents) else repr(c.cell_contents)
                 for c in (fn.__closure__ or ())]
        # Globals it names (a notebook's `mean` and `std`, say), by value: a changed value is a
        # changed transform.
        named = {n: callable_key(fn.__globals__[n]) for n in fn.__code__.co_names
                 if n in fn.__globals__ and _keyable(fn.__globals__[n])}
        return ["function", obj.__module__, obj.__qualname__, source, cells, named]
    return ["callable", type(obj).__module__, type(obj).__qualname__, repr(obj)]


def _keyable(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, np.ndarray, torch.Tensor, nn.Module))


def _probe(pool: ModelPool, ds: Dataset, transform, output, source: str) -> torch.Tensor:
    """Run the model on the first two items: one clear line if it fails or its logits do not fit.

    Returns the example batch (transformed) for tracing the default layers.
    """
    from .activations import select_output

    raw = torch.from_numpy(np.ascontiguousarray(ds.x_test[:2], dtype=np.float32))
    example = raw if transform is None else transform(raw)
    with pool.lease() as model:
        try:
            with torch.no_grad():
                out = model(example)
        except Exception as exc:  # noqa: BLE001 - any failure of the user's model is named, once
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ValueError(f"the model ({source}) failed on a batch of {len(raw)} items of shape "
                             f"{tuple(raw.shape[1:])}{'' if transform is None else ' after the transform'}: "
                             f"{type(exc).__name__}: {first}") from None
    logits = select_output(out, output)
    if logits.ndim != 2 or logits.shape[1] != ds.n_classes:
        raise ValueError(f"the model ({source}) gives outputs of shape {tuple(logits.shape)} for {len(raw)} items, "
                         f"but the data has {ds.n_classes} classes ({', '.join(ds.class_names[:5])}"
                         f"{', …' if ds.n_classes > 5 else ''}); give the model's class names (class_names=) "
                         "or the data it was trained for")
    return example


def load_workspace(
    dataset="fashion-mnist",
    *,
    model=None,
    weights: str | Path | None = None,
    layers=None,
    latent: str | None = None,
    class_names=None,
    transform=None,
    output=None,
    name: str | None = None,
    feature_names=None,
    skip_unreadable: bool = False,
    cache_dir: str | Path | None = None,
    sample_cache_mb: float | None = None,
    batch_size: int = 256,
    show_progress: bool = True,
    pool_size: int | None = None,
    engine: str | None = None,
) -> Workspace:
    """Load the workspace of a data set and a model, building the full pass if not cached.

    Parameters
    ----------
    dataset : str, Dataset, (x, y), torch Dataset or DataLoader
        The evaluation data: anything :func:`~dldiag.datasets.as_dataset` takes.
    model : nn.Module or str, optional
        Anything :func:`~dldiag.model_spec.load_model` takes. Default: the dldiag checkpoint
        trained for this data set (``weights``, else where ``python -m dldiag train`` saves it:
        :func:`resolve_weights`).
    weights : path, optional
        With ``model`` a factory spec: its ``state_dict``; without ``model``: a dldiag checkpoint.
    layers : sequence of str, optional
        Diagnosed layers, ``"NAME"`` or ``"NAME:input"``; default
        :func:`~dldiag.models.default_layers`.
    latent : str, optional
        The latent layer; default :func:`~dldiag.models.latent_layer`.
    class_names : sequence of str, optional
        One name per class (default: the data's own).
    transform : callable, optional
        Applied to every batch before the model (see :func:`callable_key` for its cache key).
    output : int, str or callable, optional
        Picks the logits from a tuple or dict output.
    name : str, optional
        The data set's name (default: derived from the data).
    feature_names : sequence of str, optional
        Names of the features of feature-vector items (shown in the app's item previews).
    skip_unreadable : bool
        ``folder:`` data: leave out image files that cannot be read (default: stop, naming them).
    cache_dir : path, optional
        Cache folder (default :func:`~dldiag.cache.default_cache_dir`); its ``core/`` and
        ``samples/`` tiers are opened with :func:`~dldiag.cache.open_tiers`.
    sample_cache_mb : float, optional
        Size cap of the samples tier (default ``$DLDIAG_SAMPLE_CACHE_MB`` or
        :data:`~dldiag.cache.DEFAULT_SAMPLE_CACHE_MB`).
    batch_size : int
        Items per forward pass.
    show_progress : bool
        Progress bars for the full pass.
    pool_size : int, optional
        Most passes at once (model replicas; see :class:`~dldiag.replicas.ModelPool`).
    engine : {"local", "ray"}, optional
        What runs the full pass when it is not cached (:mod:`dldiag.engine`; default
        ``$DLDIAG_ENGINE`` or local). The result, and so the cache key, is the same.

    Returns
    -------
    Workspace
    """
    from .datasets import as_dataset
    from .model_spec import load_model

    start = time.perf_counter()
    ds = as_dataset(dataset, class_names=class_names, name=name, skip_unreadable=skip_unreadable,
                    feature_names=feature_names)
    if model is None:
        if weights is None and isinstance(dataset, str) and dataset.startswith("chunks:"):
            from .chunks import store_weights

            weights = store_weights(dataset.removeprefix("chunks:"))  # a workload names its model
        weights_path = resolve_weights(ds.name, weights, cache_dir)
        loaded = load_model(weights_path)
        info = dict(loaded.info, weights_path=str(weights_path.resolve()))
        if tuple(info["item_shape"]) != ds.item_shape or info["n_classes"] != ds.n_classes:
            raise ValueError(
                f"weights were trained for items {tuple(info['item_shape'])} and {info['n_classes']} "
                f"classes; dataset {ds.name!r} has {ds.item_shape} and {ds.n_classes}"
            )
    else:
        loaded = load_model(model, weights=weights)
        info = dict(loaded.info)
    # The pool snapshots the model now: the caller's object is never run or changed, and later
    # changes to it cannot reach results cached under this snapshot's weights hash.
    pool = ModelPool(loaded.module, size=pool_size)
    example = _probe(pool, ds, transform, output, info.get("source", "model"))
    with pool.lease() as replica:
        layers = tuple(layers) if layers else models.default_layers(replica, example)
        latent_name = latent or models.latent_layer(replica, layers, example)
    tiers = open_tiers(cache_dir, sample_cache_mb=sample_cache_mb)
    cache = tiers.core
    key = content_key("workspace", CACHE_VERSION, ds.fingerprint(), info["weights_hash"], info.get("code_hash"),
                      layers, latent_name, callable_key(transform), callable_key(output))

    engine = resolve_engine(engine)

    def build():
        start_pass = time.perf_counter()
        with pool.lease() as replica:
            # Data in chunks on disk (10^5–10^6 items): the pass keeps each finished chunk's
            # results until it ends, so a killed build resumes where it stopped.
            chunked = hasattr(ds.x_test, "chunk_bounds")
            result = full_pass(replica, ds.x_test, ds.y_test, layers, n_classes=ds.n_classes,
                               latent_layer=latent_name, batch_size=batch_size, output=output,
                               transform=transform, show_progress=show_progress, desc=f"full pass {ds.name}",
                               engine=engine, parts_dir=Path(cache.directory).parent / "parts" if chunked else None,
                               key=key)
        return {"y_pred": result.y_pred, "probs": result.probs, "latent": result.latent,
                "full_pass_seconds": np.array(time.perf_counter() - start_pass), **result.aggregates.to_arrays()}

    arrays, hit = cache.get_or_build(content_key("full", key), build)
    return Workspace(
        dataset=ds,
        model=pool.model,
        layers=layers,
        latent_layer=latent_name,
        key=key,
        y_pred=arrays["y_pred"],
        probs=arrays["probs"],
        latent=arrays["latent"],
        full=Aggregates.from_arrays(arrays),
        cache=cache,
        sample_cache=tiers.samples,
        pool=pool,
        batch_size=batch_size,
        build_seconds=time.perf_counter() - start,
        cache_hit=hit,
        model_info=info,
        transform=transform,
        output=output,
        full_pass_seconds=float(arrays["full_pass_seconds"]) if "full_pass_seconds" in arrays else None,
    )
