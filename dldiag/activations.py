"""Forward hooks, and the streaming pass that turns activations into per-group aggregates.

A pass runs the model over items batch by batch, captures the outputs of the diagnosed layers
with forward hooks, and folds each batch into :class:`LayerAggregates` right away, so that the
N × units activation matrix never exists: memory grows with the batch size, not with N (per
item, a pass keeps only its prediction, logits, latent vector and one int per layer: the index of
its maximally activated unit, until the predictions of all items are known).
Aggregates are kept per confusion cell (true class, predicted class), the finest grouping the
query sets need; (class, outcome) groups and the report's Q5 cell "a predicted as b" are sums
of cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ._validation import check_int, check_option
from .progress import progress
from .replicas import exclusive, model_lock

__all__ = [
    "UNIT_MODES",
    "OUTCOMES",
    "LayerAggregates",
    "Aggregates",
    "PassResult",
    "INPUT_SUFFIX",
    "split_layer",
    "capture",
    "select_output",
    "forward_with_activations",
    "run_pass",
    "unit_view",
    "collect_activations",
]

UNIT_MODES = ("flat", "channel")
OUTCOMES = ("correct", "incorrect")


#: Suffix of a layer reference to a module's first positional input instead of its output.
INPUT_SUFFIX = ":input"

#: Module names an error message lists before it only counts the rest.
_NAMES_SHOWN = 30


def split_layer(ref: str) -> tuple[str, str]:
    """Split a layer reference into ``(module name, "output" | "input")``.

    ``"NAME"`` is the output of module ``NAME``; ``"NAME:input"`` is the first positional
    input of module ``NAME`` (for a ResNet, ``"fc:input"`` is the pooled, flattened features
    that no module outputs).

    Examples
    --------
    >>> split_layer("fc:input")
    ('fc', 'input')
    >>> split_layer("conv1")
    ('conv1', 'output')
    """
    if not isinstance(ref, str):
        raise TypeError(f"a layer must be a str ('NAME' or 'NAME{INPUT_SUFFIX}'); got {type(ref).__name__}")
    if ref.endswith(INPUT_SUFFIX):
        return ref[: -len(INPUT_SUFFIX)], "input"
    return ref, "output"


def _module_names(modules) -> str:
    names = [repr(n) for n in modules if n]
    shown = ", ".join(names[:_NAMES_SHOWN])
    return shown + (f", … ({len(names)} modules)" if len(names) > _NAMES_SHOWN else "")


class _Captured(dict):
    """Layer reference → captured tensor, plus what the hooks saw while capturing.

    ``versions`` holds each tensor's autograd version counter when it was captured;
    ``calls`` counts each reference's hook calls in the current forward pass; ``problems``
    holds the first thing a hook could not capture. Hooks record problems instead of raising
    because an exported model runs its submodules in ``torch.fx.Interpreter``, which appends
    paragraphs of graph context to any exception raised inside it.
    """

    def __init__(self):
        super().__init__()
        self.versions: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.problems: list[Exception] = []

    def modified(self) -> list[str]:
        """Layers whose captured tensor was changed in place after the hook ran."""
        return [name for name, t in self.items() if t._version != self.versions[name]]

    def check(self) -> None:
        """Raise the first problem a hook recorded."""
        if self.problems:
            raise self.problems[0]


@contextmanager
def capture(model: nn.Module, layers: Sequence[str], *, clone: bool = True):
    """Register forward hooks on ``layers`` for the duration of a ``with`` block.

    Yields a dict that maps each layer reference to the last tensor it produced, detached and,
    by default, cloned (a later in-place op, such as ``ReLU(inplace=True)``, would otherwise
    change it). With ``clone=False`` the tensors are shared with the model, and the dict's
    ``modified()`` tells which of them an in-place op changed afterwards.
    The hooks are removed on exit, also when the block raised. The model's lock
    (:func:`~dldiag.replicas.model_lock`) is held throughout, so that no other thread's
    forward pass runs through these hooks.

    Parameters
    ----------
    model : nn.Module
        The model.
    layers : sequence of str
        Layer references: ``"NAME"``, the output of the module of dotted name ``NAME``, or
        ``"NAME:input"``, its first positional input. An input is taken by a forward
        *pre*-hook, before the module runs, so that an in-place module (``ReLU(inplace=True)``)
        cannot overwrite it first.
    clone : bool
        Copy each captured tensor.

    Raises
    ------
    ValueError
        If a layer names no module of ``model`` (the message lists the names it has), or, when
        the block ends, if a referenced module ran more than once in one forward pass (its
        captured value would be ambiguous).
    TypeError
        When the block ends, if a referenced output or input was not a tensor.
    """
    modules = dict(model.named_modules())
    parsed = {ref: split_layer(ref) for ref in dict.fromkeys(layers)}
    unknown = [ref for ref, (name, _) in parsed.items() if name not in modules]
    if unknown:
        raise ValueError(
            f"layers {unknown!r} are not modules of the model; it has: {_module_names(modules)} "
            f"(a layer is 'NAME', a module's output, or 'NAME{INPUT_SUFFIX}', its first input)"
        )
    store = _Captured()

    def keep(ref, value, what):
        count = store.calls[ref] = store.calls.get(ref, 0) + 1
        if count > 1:
            if count == 2:  # one message per module, not one per extra call
                name = parsed[ref][0]
                store.problems.append(ValueError(
                    f"layer {ref!r}: module {name!r} runs more than once in one forward pass, so "
                    "its captured value would be ambiguous; pick its parent block or a module "
                    "that runs once"))
            return
        if not isinstance(value, torch.Tensor):
            store.problems.append(TypeError(f"layer {ref!r}: the module's {what} is a "
                                            f"{type(value).__name__}, not a tensor"))
            return
        out = value.detach()
        store[ref] = out.clone() if clone else out
        store.versions[ref] = store[ref]._version

    def output_hook(ref):
        def hook(_module, _inputs, output):
            keep(ref, output, "output")
        return hook

    def input_hook(ref):
        def hook(_module, inputs):
            keep(ref, inputs[0] if inputs else None, "first positional input")
        return hook

    def new_pass(_module, _inputs):
        # Counts are per forward pass: a block that calls the model twice is not an error.
        store.calls.clear()

    handles = []
    with model_lock(model):
        try:
            handles.append(model.register_forward_pre_hook(new_pass))
            for ref, (name, where) in parsed.items():
                module = modules[name]
                if where == "input":
                    handles.append(module.register_forward_pre_hook(input_hook(ref)))
                else:
                    handles.append(module.register_forward_hook(output_hook(ref)))
            yield store
            store.check()
        finally:
            for handle in handles:
                handle.remove()


def select_output(output, selector=None) -> torch.Tensor:
    """The logits out of what a model returned.

    Parameters
    ----------
    output : Tensor, tuple, list or dict
        What the model's forward returned.
    selector : None, int, str or callable
        ``None``: ``output`` must be the logits tensor itself. An int: ``output[i]`` of a tuple
        or list. A str: ``output[key]`` of a dict (or a dict-like output, such as Hugging
        Face's ``ModelOutput``). A callable: ``selector(output)``.

    Returns
    -------
    Tensor
        The logits, (batch, classes).

    Raises
    ------
    ValueError
        If the model returned a tuple or dict and no selector was given (the message names its
        length or keys), or the index or key is not in it.
    TypeError
        If ``selector`` is of another type, or it selected something that is not a tensor.

    Examples
    --------
    >>> out = {"logits": torch.zeros(2, 3), "features": torch.ones(2, 8)}
    >>> select_output(out, "logits").shape
    torch.Size([2, 3])
    """
    if selector is None:
        if isinstance(output, torch.Tensor):
            return output
        if isinstance(output, dict):
            keys = ", ".join(repr(k) for k in list(output)[:10])
            raise ValueError(f"the model returned a dict with keys {keys}, not a tensor of logits; "
                             "pass output= (a key, an index or a callable) to pick the logits")
        if isinstance(output, (tuple, list)):
            raise ValueError(f"the model returned a {type(output).__name__} of {len(output)} items, "
                             "not a tensor of logits; pass output= (an index, a key or a callable) "
                             "to pick the logits")
        raise TypeError(f"the model returned a {type(output).__name__}, not a tensor of logits")
    if isinstance(selector, bool) or not (isinstance(selector, (int, str)) or callable(selector)):
        raise TypeError(f"output must be None, an int (index), a str (key) or a callable; "
                        f"got {type(selector).__name__} {selector!r}")
    if callable(selector):
        picked = selector(output)
    elif isinstance(selector, int):
        if not isinstance(output, (tuple, list)):
            raise ValueError(f"output={selector!r} indexes a tuple or list, but the model returned "
                             f"a {type(output).__name__}")
        if not -len(output) <= selector < len(output):
            raise ValueError(f"output={selector!r} is out of range for the model's "
                             f"{type(output).__name__} of {len(output)} items")
        picked = output[selector]
    else:
        if not hasattr(output, "keys"):
            raise ValueError(f"output={selector!r} is a dict key, but the model returned a "
                             f"{type(output).__name__}")
        if selector not in output:
            keys = ", ".join(repr(k) for k in list(output.keys())[:10])
            raise ValueError(f"output={selector!r} is not a key of the model's output; its keys: {keys}")
        picked = output[selector]
    if not isinstance(picked, torch.Tensor):
        raise TypeError(f"output={selector!r} selected a {type(picked).__name__}, not a tensor of logits")
    return picked


def forward_with_activations(model: nn.Module, layers: Sequence[str], x: torch.Tensor, output=None):
    """Run ``model`` on ``x`` in eval mode under ``torch.no_grad()``; return ``(logits, activations)``.

    The model is held alone for the call (:func:`~dldiag.replicas.exclusive`) and its modes
    are given back afterwards.

    Outputs are captured without copying; only if an in-place op changed one of them after
    its hook (their version counters tell) is the batch run again with cloning hooks. Copying
    every output of every batch would cost as much as the aggregates themselves.

    Parameters
    ----------
    model : nn.Module
        The classifier.
    layers : sequence of str
        Layer references, ``"NAME"`` or ``"NAME:input"`` (see :func:`capture`).
    x : Tensor
        One batch of items.
    output : None, int, str or callable
        Picks the logits when the model returns a tuple or dict (see :func:`select_output`).

    Returns
    -------
    logits : Tensor
    activations : dict
        Layer reference → captured tensor.

    Raises
    ------
    RuntimeError
        If a layer produced no output during the forward pass (it is not on the path
        from input to logits).
    """
    with exclusive(model):
        with capture(model, layers, clone=False) as store, torch.no_grad():
            logits = select_output(model(x), output)
        if store.modified():
            with capture(model, layers, clone=True) as store, torch.no_grad():
                logits = select_output(model(x), output)
    silent = [name for name in dict.fromkeys(layers) if name not in store]
    if silent:
        raise RuntimeError(f"layers {silent!r} produced no output in the forward pass")
    return logits.detach(), dict(store)


def unit_view(act: torch.Tensor, unit_mode: str) -> torch.Tensor:
    """Activations of one layer as a (batch, units) tensor.

    ``flat`` flattens every element into a unit; ``channel`` averages a conv output
    (batch, C, H, W) over space so that a unit is a channel. Outputs that are already
    (batch, units) are the same in both modes.
    """
    if unit_mode == "channel" and act.ndim > 2:
        return act.flatten(2).mean(2)
    return act.flatten(1)


@dataclass
class LayerAggregates:
    """Sufficient statistics of one layer's activations per confusion cell.

    Attributes
    ----------
    sums : ndarray of shape (C, C, U), float64
        Sum of each unit's activation over the items of cell (true class, predicted class).
    counts : ndarray of shape (C, C), int64
        Items per cell.
    argmax_counts : ndarray of shape (C, C, U), int64
        For each cell, how many items have their maximally activated unit at each unit
        (ties go to the lowest unit index, as ``torch.argmax`` does).
    unit_shape : tuple of int
        Shape of one item's output in this unit mode, to lay units out as maps.
    """

    sums: np.ndarray
    counts: np.ndarray
    argmax_counts: np.ndarray
    unit_shape: tuple[int, ...] = field(default=())

    @property
    def n_units(self) -> int:
        return int(self.sums.shape[-1])

    def cell_mask(self, cls=None, outcome=None, predicted=None) -> np.ndarray:
        """Boolean (C, C) mask of the confusion cells that form a group.

        Parameters
        ----------
        cls : int or None
            True class; ``None`` for every class.
        outcome : {"correct", "incorrect"} or None
            ``None`` for both.
        predicted : int or None
            Predicted class (the report's Q5 "class a predicted as b"); ``None`` for any.
        """
        n = self.counts.shape[0]
        true_idx, pred_idx = np.indices((n, n))
        mask = np.ones((n, n), dtype=bool)
        if cls is not None:
            mask &= true_idx == int(cls)
        if predicted is not None:
            mask &= pred_idx == int(predicted)
        if outcome is not None:
            check_option("outcome", outcome, OUTCOMES)
            mask &= (true_idx == pred_idx) if outcome == "correct" else (true_idx != pred_idx)
        return mask

    def group(self, cls=None, outcome=None, predicted=None) -> tuple[int, np.ndarray, np.ndarray]:
        """``(count, sums, argmax_counts)`` of the group, summed over its cells."""
        mask = self.cell_mask(cls, outcome, predicted)
        return (
            int(self.counts[mask].sum()),
            self.sums[mask].sum(axis=0),
            self.argmax_counts[mask].sum(axis=0),
        )

    def __add__(self, other: "LayerAggregates") -> "LayerAggregates":
        return LayerAggregates(
            self.sums + other.sums,
            self.counts + other.counts,
            self.argmax_counts + other.argmax_counts,
            self.unit_shape,
        )


@dataclass
class Aggregates:
    """:class:`LayerAggregates` for every (layer, unit mode) of a pass."""

    layers: tuple[str, ...]
    n_classes: int
    by_layer: dict[tuple[str, str], LayerAggregates]

    def __getitem__(self, key: tuple[str, str]) -> LayerAggregates:
        layer, unit_mode = key
        check_option("layer", layer, self.layers)
        check_option("unit_mode", unit_mode, UNIT_MODES)
        return self.by_layer[key]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flatten into named numpy arrays (for the disk cache)."""
        out: dict[str, np.ndarray] = {
            "layers": np.array(self.layers),
            "n_classes": np.array(self.n_classes),
        }
        for (layer, mode), agg in self.by_layer.items():
            prefix = f"agg/{layer}/{mode}/"
            out[prefix + "sums"] = agg.sums
            out[prefix + "counts"] = agg.counts
            out[prefix + "argmax_counts"] = agg.argmax_counts
            out[prefix + "unit_shape"] = np.array(agg.unit_shape, dtype=np.int64)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Aggregates":
        layers = tuple(str(v) for v in arrays["layers"])
        by_layer = {}
        for layer in layers:
            for mode in UNIT_MODES:
                prefix = f"agg/{layer}/{mode}/"
                by_layer[(layer, mode)] = LayerAggregates(
                    arrays[prefix + "sums"],
                    arrays[prefix + "counts"],
                    arrays[prefix + "argmax_counts"],
                    tuple(int(v) for v in arrays[prefix + "unit_shape"]),
                )
        return cls(layers, int(arrays["n_classes"]), by_layer)


@dataclass
class PassResult:
    """What one streaming pass produces.

    Attributes
    ----------
    y_pred : ndarray (n,), int64
        Predicted class of each item passed.
    probs : ndarray (n, C), float32
        Softmax of the logits.
    latent : ndarray (n, d), float32 or None
        Flattened output of the latent layer, if one was asked for.
    aggregates : Aggregates
        Per-cell aggregates of every diagnosed layer in both unit modes.
    """

    y_pred: np.ndarray
    probs: np.ndarray
    latent: np.ndarray | None
    aggregates: Aggregates


class _Accumulator:
    """Folds batches of (batch, units) activations into per-cell sums and arg-max counts.

    Sums go into a float32 tensor with ``index_add_`` (one pass over the activations, in
    torch's thread pool), flushed into float64 totals every ``FLUSH_EVERY`` batches: float32
    is exact to ~1e-6 over a few thousand items but would drift over a whole data set, and a
    float64 ``index_add_`` would first copy every activation to float64 (measured 3× slower).
    Each item's arg-max unit is numpy's (many times faster on CPU than ``torch.argmax`` on
    these shapes) and is kept, one int per item, until the pass ends and its cell is known for
    all items; one ``bincount`` then makes the histograms.

    With ``sums_from`` (a conv layer's flat accumulator) the sums are not accumulated but
    derived at the end: a channel's summed spatial mean is its units' summed values over H·W.
    """

    FLUSH_EVERY = 16

    def __init__(self, n_classes: int, n_units: int, unit_shape: tuple[int, ...], n_items: int,
                 sums_from: "_Accumulator | None" = None):
        self.n_classes = n_classes
        self.n_units = n_units
        self.unit_shape = unit_shape
        self.sums_from = sums_from
        self.winner = np.empty(n_items, dtype=np.int32)
        if sums_from is None:
            self.sums = np.zeros((n_classes * n_classes, n_units), dtype=np.float64)
            self._partial = torch.zeros((n_classes * n_classes, n_units), dtype=torch.float32)
            self._pending = 0

    def add(self, units: torch.Tensor, cell_t: torch.Tensor, start: int) -> None:
        if self.sums_from is None:
            self._partial.index_add_(0, cell_t, units)
            self._pending += 1
            if self._pending == self.FLUSH_EVERY:
                self._flush()
        self.winner[start : start + len(units)] = units.numpy().argmax(axis=1)

    def _flush(self) -> None:
        self.sums += self._partial.numpy()
        self._partial.zero_()
        self._pending = 0

    def result(self, cells: np.ndarray, counts: np.ndarray) -> LayerAggregates:
        c = self.n_classes
        if self.sums_from is None:
            self._flush()
            sums = self.sums
        else:
            flat = self.sums_from.sums
            sums = flat.reshape(len(flat), self.n_units, -1).sum(axis=2) / (flat.shape[1] // self.n_units)
        argmax = np.bincount(cells * self.n_units + self.winner, minlength=c * c * self.n_units)
        return LayerAggregates(sums.reshape(c, c, self.n_units), counts,
                               argmax.reshape(c, c, self.n_units), self.unit_shape)


def run_pass(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    layers: Sequence[str],
    *,
    n_classes: int,
    indices: np.ndarray | None = None,
    latent_layer: str | None = None,
    batch_size: int = 256,
    show_progress: bool = False,
    desc: str = "pass",
    output=None,
    transform=None,
    on_progress=None,
) -> PassResult:
    """One streaming pass over ``x`` (or ``x[indices]``) that yields predictions and aggregates.

    Parameters
    ----------
    model : nn.Module
        The classifier. It is held alone for the whole pass (a second pass on the same module
        waits; see :mod:`dldiag.replicas` for passes side by side), run in eval mode, and its
        modes are given back afterwards.
    x : ndarray of shape (N, ...)
        Items (float32).
    y : ndarray of shape (N,)
        True labels in ``[0, n_classes)``.
    layers : sequence of str
        The diagnosed layers: references ``"NAME"`` (the output of the module of dotted name
        ``NAME``) or ``"NAME:input"`` (its first positional input); see :func:`capture`.
    n_classes : int
        Number of classes (the model's logits).
    indices : ndarray of int, optional
        Pass only these items (a sample), in this order.
    latent_layer : str, optional
        Also return this layer's flattened output for every item (the latent space); a layer
        reference like those of ``layers``.
    batch_size : int
        Items per forward pass; peak memory grows with it.
    show_progress : bool
        Show a progress bar.
    desc : str
        Label of the progress bar.
    output : None, int, str or callable
        Picks the logits when the model returns a tuple or dict (see :func:`select_output`).
    transform : callable, optional
        Applied to each batch (a float32 tensor) before the model, e.g. the normalisation the
        model was trained with. It must not change its input in place.
    on_progress : callable, optional
        Called as ``on_progress(done, total)`` after each batch (a page's progress bar).

    Returns
    -------
    PassResult
    """
    batch_size = check_int("batch_size", batch_size, 1)
    n_classes = check_int("n_classes", n_classes, 1)
    layers = tuple(layers)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length; got {len(x)} and {len(y)}")
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"y must hold labels in [0, {n_classes}); got values from {y.min()} to {y.max()}")
    order = np.arange(len(x)) if indices is None else np.asarray(indices, dtype=np.int64)
    if order.size and (order.min() < 0 or order.max() >= len(x)):
        raise ValueError(f"indices must lie in [0, {len(x)}); got values from {order.min()} to {order.max()}")
    hooked = layers if latent_layer is None or latent_layer in layers else layers + (latent_layer,)
    with exclusive(model):
        return _stream(model, x, y, layers, hooked, order, n_classes, latent_layer, batch_size,
                       show_progress, desc, output, transform, on_progress)


def _stream(model, x, y, layers, hooked, order, n_classes, latent_layer, batch_size, show_progress,
            desc, output, transform, on_progress=None) -> PassResult:
    """The body of :func:`run_pass`, with its arguments checked and the model held."""
    n = len(order)
    y_pred = np.empty(n, dtype=np.int64)
    logits_all = np.empty((n, n_classes), dtype=np.float32)
    latent = None
    accs: dict[tuple[str, str], _Accumulator] = {}
    bar = progress(total=n, desc=desc, unit="item", disable=not show_progress)
    try:
        for start in range(0, n, batch_size):
            idx = _as_slice(order[start : start + batch_size])
            xb = torch.from_numpy(np.ascontiguousarray(x[idx], dtype=np.float32))
            yb = torch.from_numpy(np.asarray(y[idx], dtype=np.int64))
            size = len(yb)
            logits, acts = forward_with_activations(model, hooked, xb if transform is None else transform(xb), output)
            if xb._version:
                # xb may be a view of x (see _as_slice): an in-place op on it changed the data.
                raise RuntimeError(
                    "the model (or the transform) changed its input batch in place (e.g. an in-place op on "
                    "its input); the items in memory are no longer the data set's: reload the data and make "
                    "the first operation out of place"
                )
            if logits.ndim != 2 or logits.shape[1] != n_classes:
                raise ValueError(f"the model's output has shape {tuple(logits.shape)} for a batch of {size} items; "
                                 f"the data has {n_classes} classes, so (batch, {n_classes}) logits are expected")
            pred = logits.argmax(dim=1)
            cell_t = yb * n_classes + pred
            y_pred[start : start + size] = pred.numpy()
            logits_all[start : start + size] = logits.numpy()
            if latent_layer is not None:
                lat = acts[latent_layer].flatten(1).numpy()
                if latent is None:
                    latent = np.empty((n, lat.shape[1]), dtype=np.float32)
                latent[start : start + size] = lat
            for layer in layers:
                act = acts[layer]
                # a dense output is the same in both unit modes: one accumulator serves both
                modes = UNIT_MODES if act.ndim > 2 else UNIT_MODES[:1]
                for mode in modes:
                    units = unit_view(act, mode).contiguous()
                    if (layer, mode) not in accs:
                        shape = tuple(act.shape[1:]) if mode == "flat" else (units.shape[1],)
                        sums_from = accs[(layer, "flat")] if mode == "channel" else None
                        accs[(layer, mode)] = _Accumulator(n_classes, units.shape[1], shape, n, sums_from)
                    accs[(layer, mode)].add(units, cell_t, start)
                if len(modes) == 1:
                    accs[(layer, "channel")] = accs[(layer, "flat")]
            # Free this batch's activations before the next forward pass, so that the
            # allocator reuses their memory instead of mapping (and faulting in) fresh pages.
            logits = acts = act = units = None
            bar.update(size)
            if on_progress is not None:
                on_progress(start + size, n)
    finally:
        bar.close()
    if n == 0 and layers:
        # An empty sample: every group is absent, with the unit counts of the model's layers.
        return _empty_result(model, x, layers, n_classes, latent_layer, output, transform)
    cells = y[order] * n_classes + y_pred
    cell_counts = np.bincount(cells, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    by_layer = {key: acc.result(cells, cell_counts) for key, acc in accs.items()}
    aggregates = Aggregates(layers, n_classes, by_layer)
    probs = torch.softmax(torch.from_numpy(logits_all), dim=1).numpy()
    return PassResult(y_pred, probs, latent, aggregates)


def _as_slice(idx: np.ndarray):
    """``idx`` as a slice when it is a run of consecutive items, else unchanged.

    A run is then read as a view of the data, without a copy, and the batches of a sample that
    holds every item are the very same views as those of the full pass: oneDNN picks kernels by
    memory alignment, so a copied batch could differ from its view in the last bits.
    """
    if len(idx) and idx[-1] - idx[0] == len(idx) - 1 and np.all(np.diff(idx) == 1):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def _empty_result(model, x, layers, n_classes, latent_layer, output, transform) -> PassResult:
    probe = run_pass(model, x[:1], np.zeros(1, dtype=np.int64), layers, n_classes=n_classes,
                     latent_layer=latent_layer, output=output, transform=transform)
    by_layer = {
        key: LayerAggregates(np.zeros_like(a.sums), np.zeros_like(a.counts),
                             np.zeros_like(a.argmax_counts), a.unit_shape)
        for key, a in probe.aggregates.by_layer.items()
    }
    latent = None if probe.latent is None else probe.latent[:0]
    return PassResult(probe.y_pred[:0], probe.probs[:0], latent,
                      Aggregates(tuple(layers), n_classes, by_layer))


def collect_activations(
    model: nn.Module,
    x: np.ndarray,
    layers: Sequence[str],
    indices: np.ndarray,
    *,
    unit_modes: Sequence[str] = UNIT_MODES,
    batch_size: int = 256,
    output=None,
    transform=None,
) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
    """Per-item activations of ``layers`` for the items ``x[indices]`` (a sample, not all of D).

    Unlike :func:`run_pass` this keeps the (n, units) matrix of every layer, so it is meant for
    samples: 500 Fashion-MNIST items of LeNet-5 take about 13 MB in the flat unit mode. Each
    batch runs through :func:`forward_with_activations` (``torch.no_grad()``, hooks removed
    when it ends, outputs cloned if an in-place op changed them), with the model held alone for
    the whole call; the arrays are new for every call, so nothing is shared between passes.

    Parameters
    ----------
    model : nn.Module
        The classifier.
    x : ndarray of shape (N, ...)
        Items (float32).
    layers : sequence of str
        Layer references (see :func:`capture`).
    indices : ndarray of int
        The items to pass, in this order.
    unit_modes : sequence of {"flat", "channel"}
        The unit modes to return (see :func:`unit_view`).
    batch_size : int
        Items per forward pass.
    output : None, int, str or callable
        Picks the logits (see :func:`select_output`).
    transform : callable, optional
        Applied to each batch before the model.

    Returns
    -------
    y_pred : ndarray of shape (n,), int64
        Each item's predicted class, from this pass.
    activations : dict
        ``(layer, unit_mode)`` → float32 array of shape (n, units).
    """
    batch_size = check_int("batch_size", batch_size, 1)
    unit_modes = tuple(dict.fromkeys(unit_modes))
    for mode in unit_modes:
        check_option("unit_mode", mode, UNIT_MODES)
    layers = tuple(dict.fromkeys(layers))
    order = np.asarray(indices, dtype=np.int64)
    if order.ndim != 1:
        raise ValueError(f"indices must be a 1-d array of item indices; got shape {order.shape}")
    if order.size and (order.min() < 0 or order.max() >= len(x)):
        raise ValueError(f"indices must lie in [0, {len(x)}); got values from {order.min()} to {order.max()}")
    if not order.size:
        # The unit counts come from a probe item, so that an empty group still has its width.
        _, probe = collect_activations(model, x, layers, np.zeros(1, dtype=np.int64), unit_modes=unit_modes,
                                       output=output, transform=transform)
        return np.zeros(0, dtype=np.int64), {key: a[:0] for key, a in probe.items()}
    n = len(order)
    y_pred = np.empty(n, dtype=np.int64)
    out: dict[tuple[str, str], np.ndarray] = {}
    with exclusive(model):
        for start in range(0, n, batch_size):
            idx = _as_slice(order[start : start + batch_size])
            xb = torch.from_numpy(np.ascontiguousarray(x[idx], dtype=np.float32))
            logits, acts = forward_with_activations(model, layers, xb if transform is None else transform(xb),
                                                    output)
            if xb._version:
                # xb may be a view of x (see _as_slice): an in-place op on it changed the data.
                raise RuntimeError("the model (or the transform) changed its input batch in place; the items in "
                                   "memory are no longer the data set's: reload the data and make the first "
                                   "operation out of place")
            y_pred[start : start + len(xb)] = logits.argmax(dim=1).numpy()
            for layer in layers:
                for mode in unit_modes:
                    units = unit_view(acts[layer], mode).numpy()
                    if (layer, mode) not in out:
                        out[(layer, mode)] = np.empty((n, units.shape[1]), dtype=np.float32)
                    out[(layer, mode)][start : start + len(xb)] = units
            logits = acts = None
    return y_pred, out
