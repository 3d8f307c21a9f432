"""The latent pass at scale: predictions, probabilities and the latent of N items, streaming and resumable.

Everything the samplers, the projection and the latent view need is per item and small (the
prediction, C probabilities and the d-wide latent); no diagnosed layer's activations are kept.
The pass walks the items in chunks; each finished chunk is written to ``FOLDER/part-NNNNN.npz``
through a temporary file and a rename, so a pass killed at any moment (``kill -9`` included)
keeps every finished chunk, and the same call afterwards computes only the missing ones. When
all chunks are there they are copied into ``y_pred.npy``, ``probs.npy`` and ``latent.npy``
(written as memory maps, renamed into place), ``done.json`` records the result, and the parts
are removed. The arrays are returned as read-only memory maps.

Peak memory does not grow with N: one batch's activations, one chunk's outputs, and the
memory-mapped results, whose pages the operating system may drop at will.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

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


def _part(folder: Path, index: int) -> Path:
    return folder / f"part-{index:05d}.npz"


def finished_parts(folder) -> list[int]:
    """The chunks of an unfinished pass in ``folder`` that are already written."""
    return sorted(int(p.stem.split("-")[1]) for p in Path(folder).glob("part-*.npz"))


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
    return [np.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS]


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
    """The missing chunks, then the assembly; under the folder's lock."""
    plan = {"key": key, "n_items": n, "chunk_items": chunk_items}
    started = folder / _STARTED
    if _read_json(started) != plan:
        # parts of another pass (other data, model or chunk size) would be read as this one's
        for c in finished_parts(folder):
            _part(folder, c).unlink()
        started.write_text(json.dumps(plan))
    n_chunks = -(-n // chunk_items)
    have = set(finished_parts(folder))
    computed = 0
    bar = progress(total=n, desc=desc, unit="item", disable=not show_progress)
    try:
        bar.update(sum(min(chunk_items, n - c * chunk_items) for c in have))
        for c in range(n_chunks):
            if c in have:
                continue
            lo, hi = c * chunk_items, min(n, (c + 1) * chunk_items)
            parts = {name: [] for name in _ARRAYS}
            for b in range(lo, hi, batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(x[b : min(hi, b + batch_size)], dtype=np.float32))
                logits, acts = forward_with_activations(model, [latent_layer],
                                                        xb if transform is None else transform(xb), output)
                if logits.ndim != 2 or logits.shape[1] != n_classes:
                    raise ValueError(f"the model's output has shape {tuple(logits.shape)}; (batch, {n_classes}) "
                                     "logits are expected")
                parts["y_pred"].append(logits.argmax(dim=1).numpy())
                parts["probs"].append(torch.softmax(logits, dim=1).numpy())
                parts["latent"].append(acts[latent_layer].flatten(1).numpy().astype(np.float32, copy=True))
                bar.update(len(xb))
            chunk = {name: np.concatenate(v) for name, v in parts.items()}
            tmp = folder / f".part-{c:05d}.{os.getpid()}.tmp"
            try:
                with open(tmp, "wb") as fh:
                    np.savez(fh, **chunk)
                os.replace(tmp, _part(folder, c))
            finally:
                tmp.unlink(missing_ok=True)
            computed += 1
    finally:
        bar.close()
    return _assemble(folder, n, n_chunks, key), computed


def _assemble(folder: Path, n: int, n_chunks: int, key: str):
    """Copy the parts into the three result arrays, record the pass as done, remove the parts."""
    outs, tmps = {}, {}
    offset = 0
    for c in range(n_chunks):
        with np.load(_part(folder, c)) as part:
            size = len(part["y_pred"])
            for name in _ARRAYS:
                if name not in outs:
                    tail = part[name].shape[1:]
                    tmps[name] = folder / f".{name}.{os.getpid()}.tmp.npy"
                    outs[name] = np.lib.format.open_memmap(tmps[name], mode="w+", dtype=part[name].dtype,
                                                           shape=(n, *tail))
                outs[name][offset : offset + size] = part[name]
        offset += size
    if offset != n:
        raise RuntimeError(f"{folder}: the parts hold {offset} items; the data holds {n}")
    for name in _ARRAYS:
        outs[name].flush()
        del outs[name]
        os.replace(tmps[name], folder / f"{name}.npy")
    meta = {"key": key, "n_items": n, "chunks": n_chunks}
    tmp = folder / f".{_DONE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, folder / _DONE)
    for c in range(n_chunks):
        _part(folder, c).unlink(missing_ok=True)
    (folder / _STARTED).unlink(missing_ok=True)
    return [np.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS]
