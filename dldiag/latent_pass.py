"""The latent pass at scale: predictions, probabilities and the latent of N items, streaming and resumable.

Everything the samplers, the projection and the latent view need is per item and small (the
prediction, C probabilities and the d-wide latent); no diagnosed layer's activations are kept.
The results are ``y_pred.npy``, ``probs.npy`` and ``latent.npy`` in the pass's folder, created
at full size at the start and filled in place as memory maps, one chunk of items at a time:
each finished chunk is flushed to disk and then marked done (an empty ``chunk-NNNNN.done``),
so a pass killed at any moment (``kill -9`` included) keeps every chunk marked, and the same
call afterwards computes only the unmarked ones (a chunk written but not marked is computed
again, over the same bytes). When all are marked, ``done.json`` records the result and the
markers go. The arrays are returned as read-only memory maps.

Writing in place, rather than chunk files gathered at the end, keeps the pass to one write of
each result: on 10^6 items the gathering copy had cost about a tenth of the pass.

Peak memory does not grow with N: one batch's activations and the memory-mapped results, whose
pages the operating system may write out and drop at will.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import npyio
from ._validation import check_int
from .activations import forward_with_activations
from .progress import progress

__all__ = ["LatentPassResult", "latent_pass", "finished_parts"]

_ARRAYS = ("y_pred", "probs", "latent")
_DONE = "done.json"
_STARTED = "pass.json"


@dataclass(frozen=True)
class LatentPassResult:
    """The outputs of a latent pass.

    Attributes
    ----------
    y_pred : ndarray (N,), int64
    probs : ndarray (N, C), float32
        Softmax of the logits.
    latent : ndarray (N, d), float32
        The latent layer's flattened output.
    folder : Path
        Where they are stored.
    computed_chunks : int
        Chunks computed by this call (0 when the pass was already complete).
    seconds : float
        Time of this call.
    """

    y_pred: np.ndarray
    probs: np.ndarray
    latent: np.ndarray
    folder: Path
    computed_chunks: int
    seconds: float


def _marker(folder: Path, index: int) -> Path:
    return folder / f"chunk-{index:05d}.done"


def finished_parts(folder) -> list[int]:
    """The chunks of an unfinished pass in ``folder`` that are already written (and marked)."""
    return sorted(int(p.name[6:11]) for p in Path(folder).glob("chunk-*.done"))


def _read_json(path: Path):
    """A small JSON file's content, or None if it is missing or cut short by a crash."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _load_done(folder: Path, key: str, n: int):
    meta = json.loads((folder / _DONE).read_text())
    if meta.get("key") != key or meta.get("n_items") != n:
        raise ValueError(f"{folder} holds the latent pass of another model or data (key {meta.get('key')!r}, "
                         f"{meta.get('n_items')} items); give a folder of its own for key {key!r}")
    return [npyio.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS]


def latent_pass(model: torch.nn.Module, x, *, latent_layer: str, n_classes: int, folder, key: str = "",
                chunk_items: int = 16384, batch_size: int = 256, output=None, transform=None,
                show_progress: bool = False, desc: str = "latent pass") -> LatentPassResult:
    """Predictions, probabilities and latent of every item of ``x``, kept in ``folder``.

    Parameters
    ----------
    model : nn.Module
        The classifier, held alone (:func:`~dldiag.replicas.exclusive`) for each batch.
    x : ndarray or ItemSource of shape (N, ...)
        The items; read one batch at a time.
    latent_layer : str
        The latent layer reference (``"NAME"`` or ``"NAME:input"``).
    n_classes : int
    folder : path
        Where the parts and the results go. It belongs to one (model, data) pair: ``key``
        (e.g. a content hash of both) is recorded, and a finished pass of another key there
        is an error.
    key : str
        What the folder's pass is of.
    chunk_items : int
        Items per part: the work lost to a crash, and the granularity of resuming.
    batch_size : int
        Items per forward pass.
    output, transform
        As for :func:`~dldiag.activations.run_pass`.
    show_progress : bool
        A progress bar with the rate and the time left.
    desc : str
        The bar's label.

    Returns
    -------
    LatentPassResult
    """
    start = time.perf_counter()
    folder = Path(folder)
    n = len(x)
    chunk_items = check_int("chunk_items", chunk_items, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    n_classes = check_int("n_classes", n_classes, 1)
    if n == 0:
        raise ValueError("x must hold at least one item; got 0")
    if (folder / _DONE).is_file():
        arrays = _load_done(folder, key, n)
        return LatentPassResult(*arrays, folder=folder, computed_chunks=0, seconds=time.perf_counter() - start)
    from .build import build_lock

    # One pass at a time per folder (two requests, or two processes): the second waits, then
    # finds the first's result.
    with build_lock(folder):
        if (folder / _DONE).is_file():
            arrays = _load_done(folder, key, n)
            return LatentPassResult(*arrays, folder=folder, computed_chunks=0, seconds=time.perf_counter() - start)
        arrays, computed = _run(model, x, folder, key, n, n_classes, latent_layer, chunk_items, batch_size, output,
                                transform, show_progress, desc)
    return LatentPassResult(*arrays, folder=folder, computed_chunks=computed, seconds=time.perf_counter() - start)


def _run(model, x, folder, key, n, n_classes, latent_layer, chunk_items, batch_size, output, transform,
         show_progress, desc):
    """The unmarked chunks, written in place into the result memory maps; under the folder's lock."""
    plan = {"key": key, "n_items": n, "chunk_items": chunk_items}
    started = folder / _STARTED
    n_chunks = -(-n // chunk_items)
    outs = None
    if _read_json(started) == plan:
        try:
            outs = {name: npyio.load(folder / f"{name}.npy", mmap_mode="r+") for name in _ARRAYS}
        except (OSError, ValueError):
            outs = None  # the arrays were never created, or cut short: start over
    if outs is None:
        # markers of another pass (other data, model or chunk size) would be read as this one's
        for c in finished_parts(folder):
            _marker(folder, c).unlink()
    have = set(finished_parts(folder))
    computed = 0
    bar = progress(total=n, desc=desc, unit="item", disable=not show_progress)
    try:
        bar.update(sum(min(chunk_items, n - c * chunk_items) for c in have))
        for c in range(n_chunks):
            if c in have:
                continue
            lo, hi = c * chunk_items, min(n, (c + 1) * chunk_items)
            for b in range(lo, hi, batch_size):
                e = min(hi, b + batch_size)
                xb = torch.from_numpy(np.ascontiguousarray(x[b:e], dtype=np.float32))
                logits, acts = forward_with_activations(model, [latent_layer],
                                                        xb if transform is None else transform(xb), output)
                if logits.ndim != 2 or logits.shape[1] != n_classes:
                    raise ValueError(f"the model's output has shape {tuple(logits.shape)}; (batch, {n_classes}) "
                                     "logits are expected")
                latent = acts[latent_layer].flatten(1)
                if outs is None:  # the first batch of a new pass: now the latent's width is known
                    outs = _create(folder, n, n_classes, latent.shape[1])
                    started.write_text(json.dumps(plan))
                outs["y_pred"][b:e] = logits.argmax(dim=1).numpy()
                outs["probs"][b:e] = torch.softmax(logits, dim=1).numpy()
                outs["latent"][b:e] = latent.numpy()
                bar.update(e - b)
            for name in _ARRAYS:
                outs[name].flush()  # on disk before the marker says so
            _marker(folder, c).touch()
            computed += 1
    finally:
        bar.close()
    for name in list(outs):
        outs[name].flush()
        del outs[name]
    meta = {"key": key, "n_items": n, "chunks": n_chunks}
    tmp = folder / f".{_DONE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, folder / _DONE)
    for c in range(n_chunks):
        _marker(folder, c).unlink(missing_ok=True)
    started.unlink(missing_ok=True)
    return [npyio.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS], computed


def _create(folder: Path, n: int, n_classes: int, width: int) -> dict:
    """The three result arrays at full size, as writable memory maps."""
    shapes = {"y_pred": ((n,), np.int64), "probs": ((n, n_classes), np.float32), "latent": ((n, width), np.float32)}
    return {name: np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
            for name, (shape, dtype) in shapes.items()}
