"""A sample's activations on disk: written once, read by every later question about the sample.

Once a sample is drawn, one forward pass over its n items writes the activations of every
diagnosed layer, in both unit modes, to a folder of ``.npy`` files (``act-<i>-<mode>.npy``,
(n, units), one per layer and mode), read back as memory maps: a panel, a group, a lasso over
the sample's points or a neuron's values is a read of the rows it needs, never a forward pass,
and a sample larger than memory (5 % of 10^5 galaxies is 5.8 GB of float32) is no problem.

Values are stored as float16 by default, half the bytes: S2 is a mean computed in float64 from
them, S1 the top-k of that mean, and S3 is exact whatever the dtype, because each item's arg-max
unit is taken from the float32 activations when the store is written and kept beside them
(``argmax-<i>-<mode>.npy``). A layer with a value beyond float16's range (±65,504) is kept in
float32. :func:`store_error` measures what float16 changes in S1 and S2 against float32: on
Fashion-MNIST 5 % samples (LeNet-5, random and max-margin, every layer and unit mode, 390 group
answers) the largest cosine distance between a float16 and a float32 mean vector was 2.8e-8
(S2 measures sample errors of 1e-2), the largest unit mean moved by 0.003, and one top-10 set
of 390 changed (a near-tie at the 10th unit); the test bounds it on digits.

Writing is crash-safe: every file goes through a temporary name and a rename, and ``done.json``
(n, the indices' hash, each file's dtype) is written last; a folder without it is written again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import npyio
from ._validation import check_int, check_option
from .activations import OUTCOMES, UNIT_MODES, LayerAggregates, collect_activations
from .queries import GroupAnswer, answer_rows, item_mask

__all__ = ["DTYPES", "SampleStore", "write_store", "open_store", "prune_stores", "store_error"]

DTYPES = ("float16", "float32")
_DONE = "done.json"
#: Format of a store's folder; a folder of another version is written again.
STORE_VERSION = 2
#: Rows summed per block when aggregates are read from a store (float64 copies of one block).
SUM_BLOCK = 2048
#: Rows copied per block when the float32 staging file becomes the stored dtype.
COPY_BLOCK = 16384
_F16_MAX = float(np.finfo(np.float16).max)


def _digest(indices: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()


def _save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class SampleStore:
    """An open store: the sample's items, their predictions, and each layer's rows as memory maps.

    Attributes
    ----------
    folder : Path
    indices : ndarray (n,)
        The sample's items, in the order of the rows.
    y_true, y_pred : ndarray (n,)
    layers : tuple of str
    dtypes : dict
        ``"<layer>/<mode>"`` → the stored dtype.
    unit_shapes : dict
        ``"<layer>/<mode>"`` → shape of one item's output in that unit mode (to lay units out).
    n_classes : int
    seconds : float
        How long writing the store took (its forward pass and the files).
    """

    folder: Path
    indices: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    layers: tuple
    dtypes: dict
    unit_shapes: dict
    n_classes: int
    seconds: float

    def _file(self, kind: str, layer: str, mode: str) -> Path:
        check_option("layer", layer, self.layers)
        check_option("unit_mode", mode, UNIT_MODES)
        return self.folder / f"{kind}-{self.layers.index(layer)}-{mode}.npy"

    def rows(self, layer: str, mode: str = "flat") -> np.ndarray:
        """The (n, units) activations of ``layer`` in ``mode``, a read-only memory map."""
        return npyio.load(self._file("act", layer, mode), mmap_mode="r")

    def winners(self, layer: str, mode: str = "flat") -> np.ndarray:
        """Each item's arg-max unit of ``layer`` in ``mode`` (from float32, ties to the lowest)."""
        return npyio.load(self._file("argmax", layer, mode), mmap_mode="r")

    def members(self, cls=None, outcome=None, predicted=None, selection=None) -> np.ndarray:
        """Rows of the sample in the group (``None`` meaning any), within ``selection`` (item indices of D)."""
        mask = item_mask(self.y_true, self.y_pred, cls, outcome, predicted)
        if selection is not None:
            mask &= np.isin(self.indices, np.asarray(selection, dtype=np.int64))
        return np.flatnonzero(mask)

    def answer(self, layer: str, k: int, *, mode: str = "flat", cls=None, outcome=None, predicted=None,
               selection=None) -> GroupAnswer:
        """S1–S3 of the sample's items in a group (or a selection), read from the store."""
        rows = self.members(cls, outcome, predicted, selection)
        x = self.rows(layer, mode)
        return answer_rows(x[rows] if len(rows) else x[:0], k, winners=np.asarray(self.winners(layer, mode))[rows])

    def rows_of(self, items) -> np.ndarray:
        """Rows of the store holding the items ``items`` of D (items not in the sample are left out)."""
        return np.flatnonzero(np.isin(self.indices, np.asarray(items, dtype=np.int64)))

    def aggregates(self, layer: str, mode: str = "flat", *, rows=None, weights=None) -> LayerAggregates:
        """Per-cell aggregates of the stored rows ``rows`` (default: all), as a pass would give them.

        With ``weights`` (one positive design weight per row of ``rows``) the design-weighted
        ones (:class:`~dldiag.weighting.WeightedLayerAggregates`). Sums are taken in float64
        from the stored values; the arg-max histograms from the float32 winners.
        """
        rows = np.arange(len(self.indices)) if rows is None else np.asarray(rows, dtype=np.int64)
        w = None if weights is None else np.asarray(weights, dtype=np.float64)
        if w is not None and w.shape != rows.shape:
            raise ValueError(f"weights must hold one weight per row ({len(rows)}); got shape {w.shape}")
        # Sums do not depend on the order: rows in the order they lie on disk read sequentially.
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        w = None if w is None else w[order]
        c = int(self.n_classes)
        cells = self.y_true[rows] * c + self.y_pred[rows]
        x = self.rows(layer, mode)
        u = x.shape[1]
        sums = np.zeros((c * c, u))
        for start in range(0, len(rows), SUM_BLOCK):
            part = slice(start, start + SUM_BLOCK)
            # Per-cell totals as one product with the (cells × items) indicator (weighted or not).
            onehot = np.zeros((c * c, len(rows[part])))
            onehot[cells[part], np.arange(len(rows[part]))] = 1.0 if w is None else w[part]
            sums += onehot @ np.asarray(x[rows[part]], dtype=np.float64)
        winners = np.asarray(self.winners(layer, mode))[rows]
        counts = np.bincount(cells, minlength=c * c).reshape(c, c)
        argmax = np.bincount(cells * u + winners, weights=w, minlength=c * c * u).reshape(c, c, u)
        shape = self.unit_shapes[f"{layer}/{mode}"]
        if w is None:
            return LayerAggregates(sums.reshape(c, c, u), counts, argmax.astype(np.int64), shape)
        from .weighting import WeightedLayerAggregates

        return WeightedLayerAggregates(sums.reshape(c, c, u), counts, argmax, shape,
                                       weight_sums=np.bincount(cells, weights=w, minlength=c * c).reshape(c, c))

    def values(self, layer: str, mode: str, unit: int) -> np.ndarray:
        """One unit's stored activation on every item of the sample (float32, in the rows' order)."""
        x = self.rows(layer, mode)
        if not 0 <= int(unit) < x.shape[1]:
            raise ValueError(f"unit must be in [0, {x.shape[1]}) for layer {layer!r} in {mode} mode; got {unit!r}")
        return np.asarray(x[:, int(unit)], dtype=np.float32)

    def nbytes(self) -> int:
        """Bytes of the activation files on disk."""
        return sum(p.stat().st_size for p in self.folder.glob("act-*.npy"))


def open_store(folder) -> SampleStore | None:
    """The finished store in ``folder``, or None if there is none (or it was never finished).

    Opening marks the store as used now (its ``done.json``'s time), for :func:`prune_stores`.
    """
    folder = Path(folder)
    try:
        meta = json.loads((folder / _DONE).read_text())
        os.utime(folder / _DONE)
        data = npyio.load(folder / "items.npy")
    except (OSError, ValueError):
        return None
    if meta.get("version") != STORE_VERSION or _digest(data[0]) != meta.get("indices_sha256"):
        return None
    shapes = {key: tuple(v) for key, v in meta["unit_shapes"].items()}
    return SampleStore(folder, data[0], data[1], data[2], tuple(meta["layers"]), dict(meta["dtypes"]), shapes,
                       int(meta["n_classes"]), float(meta["seconds"]))


def write_store(ws, indices, folder, *, dtype: str = "float16", on_progress=None) -> SampleStore:
    """One forward pass over the sample ``indices`` of ``ws``, written to ``folder``; returns it open.

    A finished store of the same items already in ``folder`` is returned as it is.

    Parameters
    ----------
    ws : Workspace
    indices : array of int
        The sample's items, in the order of the rows.
    folder : path
    dtype : {"float16", "float32"}
        How values are stored (a layer beyond float16's range stays float32).
    on_progress : callable, optional
        Called as ``on_progress(done, total)`` after each batch of ``ws.batch_size`` items.
    """
    check_option("dtype", dtype, DTYPES)
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 1 or len(indices) == 0:
        raise ValueError(f"indices must be a non-empty 1-d array of item indices; got shape {indices.shape}")
    folder = Path(folder)
    done = open_store(folder)
    if done is not None and np.array_equal(done.indices, indices):
        return done
    from .build import build_lock

    # Two requests for one sample at once: the second waits, then opens the first's store.
    with build_lock(folder):
        done = open_store(folder)
        if done is not None and np.array_equal(done.indices, indices):
            return done
        return _write(ws, indices, folder, dtype, on_progress)


def _write(ws, indices: np.ndarray, folder: Path, dtype: str, on_progress=None) -> SampleStore:
    started = time.perf_counter()
    (folder / _DONE).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(indices)
    staged: dict = {}  # (layer, mode) -> float32 memory map of all n rows, in a temporary file
    winners: dict = {}
    peaks: dict = {}
    y_pred = np.empty(n, dtype=np.int64)
    try:
        # The sample's rows go batch by batch into float32 memory maps: a store larger than
        # memory (5 % of 10^5 galaxies) never is in memory, and float16 is decided per layer
        # from the largest value once every row is seen.
        block = int(ws.batch_size)  # one forward batch's activations in memory at a time
        for start in range(0, n, block):
            part = indices[start:start + block]
            with ws.pool.lease() as model:
                pred, acts = collect_activations(model, ws.dataset.x_test, ws.layers, part,
                                                 batch_size=ws.batch_size, output=ws.output,
                                                 transform=ws.transform)
            y_pred[start:start + len(part)] = pred
            for key, a in acts.items():
                if key not in staged:
                    i = ws.layers.index(key[0])
                    staged[key] = np.lib.format.open_memmap(folder / f".stage-{i}-{key[1]}.npy", mode="w+",
                                                            dtype=np.float32, shape=(n, a.shape[1]))
                    winners[key] = np.empty(n, dtype=np.int32)
                    peaks[key] = 0.0
                staged[key][start:start + len(part)] = a
                winners[key][start:start + len(part)] = a.argmax(axis=1)
                peaks[key] = max(peaks[key], float(np.abs(a).max(initial=0.0)))
            acts = None
            if on_progress is not None:
                on_progress(start + len(part), n)
        dtypes = {}
        for (layer, mode), rows in staged.items():
            i = ws.layers.index(layer)
            _save(folder / f"argmax-{i}-{mode}.npy", winners[layer, mode])
            kind = dtype if dtype == "float32" or peaks[layer, mode] <= _F16_MAX else "float32"
            _save_rows(folder / f"act-{i}-{mode}.npy", rows, kind)
            dtypes[f"{layer}/{mode}"] = kind
    finally:
        for rows in staged.values():
            path = Path(rows.filename)
            del rows
            path.unlink(missing_ok=True)
        staged.clear()
    shapes = {f"{layer}/{mode}": list(unit_shape(ws, layer, mode)) for layer in ws.layers for mode in UNIT_MODES}
    _save(folder / "items.npy", np.stack([indices, ws.y_true[indices], y_pred]))
    meta = {"version": STORE_VERSION, "n": int(n), "indices_sha256": _digest(indices), "layers": list(ws.layers),
            "dtypes": dtypes, "unit_shapes": shapes, "n_classes": int(ws.dataset.n_classes),
            "seconds": time.perf_counter() - started}
    tmp = folder / f".{_DONE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, folder / _DONE)
    return open_store(folder)


def unit_shape(ws, layer: str, mode: str) -> tuple:
    """Shape of one item's output of ``layer`` in ``mode``, as the full pass recorded it."""
    return tuple(int(v) for v in ws.full[layer, mode].unit_shape)


def _save_rows(path: Path, rows: np.ndarray, dtype: str) -> None:
    """``rows`` (a memory map) copied to ``path`` as ``dtype``, a block at a time, via a temporary name."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=rows.shape)
        for start in range(0, len(rows), COPY_BLOCK):
            out[start:start + COPY_BLOCK] = rows[start:start + COPY_BLOCK]
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def prune_stores(root, max_bytes: int, keep=()) -> list[Path]:
    """Remove the least recently used stores under ``root`` until they take at most ``max_bytes``.

    Every sample the app is asked about gets a store; without a cap the folder would only grow.
    A store in ``keep`` (the one just written) is never removed, nor one being written (its
    folder's lock is taken first). A reader holding a removed store's memory maps keeps reading
    them (the files live on until closed); its next open writes the store again.

    Returns
    -------
    list of Path
        The folders removed.
    """
    import shutil

    from .build import build_lock

    root = Path(root)
    keep = {Path(k).resolve() for k in keep}
    stores = []
    for folder in (root.iterdir() if root.is_dir() else ()):
        done = folder / _DONE
        if done.is_file():
            size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
            stores.append((done.stat().st_mtime, folder, size))
    total = sum(size for _, _, size in stores)
    removed = []
    for _, folder, size in sorted(stores):
        if total <= max_bytes:
            break
        if folder.resolve() in keep:
            continue
        with build_lock(folder):
            shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
        total -= size
    return removed


def store_error(f16: SampleStore, f32: SampleStore, k: int = 10) -> dict:
    """What float16 storage changes: per layer and mode, over every (class, outcome) group.

    Returns
    -------
    dict
        ``"<layer>/<mode>"`` → ``{"top_k_changed": groups whose top-k set differs,
        "max_mean_abs": largest |mean difference| of a unit, "max_cosine": largest cosine
        distance between the two mean vectors, "groups": groups compared}``.
    """
    from .metrics import cosine_distance

    k = check_int("k", k, 1)
    out = {}
    classes = np.unique(f32.y_true)
    for layer in f32.layers:
        for mode in UNIT_MODES:
            changed = compared = 0
            max_abs = max_cos = 0.0
            for cls in classes:
                for outcome in OUTCOMES:
                    a = f16.answer(layer, k, mode=mode, cls=cls, outcome=outcome)
                    b = f32.answer(layer, k, mode=mode, cls=cls, outcome=outcome)
                    if b.count == 0:
                        continue
                    compared += 1
                    changed += int(set(a.top.tolist()) != set(b.top.tolist()))
                    max_abs = max(max_abs, float(np.abs(a.mean - b.mean).max()))
                    max_cos = max(max_cos, float(cosine_distance(a.mean, b.mean)))
            out[f"{layer}/{mode}"] = {"top_k_changed": changed, "max_mean_abs": max_abs, "max_cosine": max_cos,
                                      "groups": compared}
    return out
