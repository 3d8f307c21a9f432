"""Evaluation data too large for memory: items in chunk files on disk, read streaming.

A *chunk store* is a folder::

    manifest.json      format, N, item shape, dtype, scale, class names, the chunks and their hashes
    x-00000.npy        items 0 .. chunk_items-1, shape (chunk_items, *item_shape), dtype uint8 or float32
    x-00001.npy        the next chunk_items items, ...
    y.npy              the N labels, int64

Each chunk is a plain ``.npy`` file, opened as a read-only memory map
(``np.load(mmap_mode="r")``), so reading a batch touches only its pages and the store never
has to fit in memory; the labels (8 bytes an item) are read whole. A float item is the stored
value divided by ``divisor`` in float32 (255 for uint8 images, as the other loaders; 1 for float32).

Writing is crash-safe and resumable (:class:`ChunkWriter`): every chunk is written to a
temporary file and renamed into place, and its SHA-256 goes into a sidecar
``x-NNNNN.sha256`` written (renamed) after it; a chunk without its sidecar is incomplete and is
written again. ``manifest.json`` is written last: a folder without it is an unfinished store.

Chosen over zarr: ``.npy`` needs nothing beyond numpy, every tool reads it, and a memory map
reads a batch of consecutive items without decompressing; zarr's compression would save
little on noisy augmented images and cost CPU on every read.

The store's digest (:meth:`ChunkedSource.digest`, the cache key of everything computed on it)
is made of the manifest's chunk hashes and each chunk file's size and modification time, so
opening a million items does not reread them, and a chunk changed in place changes the key.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import npyio
from ._validation import check_int
from .sources import DatasetError, DatasetNotFoundError, ItemSource, aligned_empty

__all__ = ["FORMAT", "ChunkWriter", "ChunkedSource", "chunk_file", "read_manifest", "file_sha256"]

FORMAT = "dldiag.chunks/1"
MANIFEST = "manifest.json"
LABELS = "y.npy"
#: Stored dtype → the divisor that makes a float item (as every other loader: uint8 / 255 in float32).
_DTYPES = {"uint8": 255.0, "float32": 1.0}


def chunk_file(index: int) -> str:
    """The file name of chunk ``index``."""
    return f"x-{index:05d}.npy"


def file_sha256(path: Path, block: int = 8 * 2**20) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(path: Path, write) -> None:
    """``write(tmp_path)`` then rename onto ``path``: readers see the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_manifest(folder) -> dict:
    """The manifest of the chunk store in ``folder``, checked.

    Raises
    ------
    DatasetNotFoundError
        If ``folder`` has no ``manifest.json`` (not a store, or one still being written).
    DatasetError
        If the manifest is not one this version reads.
    """
    folder = Path(folder).expanduser()
    path = folder / MANIFEST
    if not path.is_file():
        unfinished = any(folder.glob("x-*.npy")) if folder.is_dir() else False
        raise DatasetNotFoundError(
            f"chunks:{folder}: no {MANIFEST}"
            + (" — the store is still being written, or its writing was interrupted: run the same command "
               "again to finish it" if unfinished else "; a chunk store is made by ChunkWriter or "
               "python -m dldiag.workloads")
        )
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable manifest: {exc}") from exc
    if m.get("format") != FORMAT:
        raise DatasetError(f"{path}: format must be {FORMAT!r}; got {m.get('format')!r}")
    if m.get("dtype") not in _DTYPES:
        raise DatasetError(f"{path}: dtype must be one of {sorted(_DTYPES)}; got {m.get('dtype')!r}")
    sizes = [c["items"] for c in m["chunks"]]
    if sum(sizes) != m["n_items"]:
        raise DatasetError(f"{path}: the chunks hold {sum(sizes)} items, the manifest says n_items={m['n_items']}")
    return m


def store_weights(folder) -> Path | None:
    """The checkpoint a chunk store was made for (its manifest's provenance), if it names one.

    A workload written by :mod:`dldiag.workloads` records the shipped checkpoint of its model
    (a path relative to the repository); a store without that record gives None.
    """
    weights = (read_manifest(folder).get("provenance") or {}).get("weights")
    if not weights:
        return None
    path = Path(weights)
    return path if path.is_absolute() else Path(__file__).resolve().parents[1] / path


class ChunkWriter:
    """Write a chunk store, chunk by chunk, resumably.

    Parameters
    ----------
    folder : path
        Where the store goes (created).
    n_items : int
        N.
    item_shape : sequence of int
    class_names : sequence of str
    chunk_items : int
        Items per chunk (the last one may hold fewer).
    dtype : {"uint8", "float32"}
        How items are stored; uint8 items are read as value / 255.
    provenance : dict, optional
        How the items were made (kept in the manifest: command, seeds, source data).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     w = ChunkWriter(d, 5, (2,), ["a", "b"], chunk_items=2)
    ...     for c in w.missing():
    ...         a, b = w.bounds(c)
    ...         _ = w.write(c, np.full((b - a, 2), c, dtype=np.uint8))
    ...     _ = w.finish(np.array([0, 1, 0, 1, 1]))
    ...     ChunkedSource(d)[[0, 4]].tolist()
    [[0.0, 0.0], [0.007843137718737125, 0.007843137718737125]]
    """

    def __init__(self, folder, n_items: int, item_shape: Sequence[int], class_names: Sequence[str], *,
                 chunk_items: int = 16384, dtype: str = "uint8", provenance: dict | None = None):
        self.folder = Path(folder).expanduser()
        self.n_items = check_int("n_items", n_items, 1)
        self.chunk_items = check_int("chunk_items", chunk_items, 1)
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}; got {dtype!r}")
        self.dtype = dtype
        self.item_shape = tuple(check_int("item_shape", s, 1) for s in item_shape)
        self.class_names = [str(c) for c in class_names]
        self.provenance = dict(provenance or {})
        self.n_chunks = -(-self.n_items // self.chunk_items)
        self.folder.mkdir(parents=True, exist_ok=True)
        old = self.folder / MANIFEST
        if old.exists():
            m = read_manifest(self.folder)
            if (m["n_items"], tuple(m["item_shape"]), m["chunk_items"], m["dtype"]) != (
                    self.n_items, self.item_shape, self.chunk_items, self.dtype):
                raise ValueError(f"{self.folder} holds another store (N={m['n_items']}, items "
                                 f"{tuple(m['item_shape'])} {m['dtype']}, chunks of {m['chunk_items']}); "
                                 "give an empty folder")

    def bounds(self, index: int) -> tuple[int, int]:
        """The items ``[start, stop)`` of chunk ``index``."""
        start = index * self.chunk_items
        return start, min(start + self.chunk_items, self.n_items)

    def _sidecar(self, index: int) -> Path:
        return self.folder / (chunk_file(index)[:-4] + ".sha256")

    def done(self, index: int) -> bool:
        """Whether chunk ``index`` was written completely (its sidecar exists and names its hash)."""
        side, path = self._sidecar(index), self.folder / chunk_file(index)
        return side.is_file() and path.is_file() and len(side.read_text().strip()) == 64

    def missing(self) -> list[int]:
        """The chunks still to write (all of them in a new store; after a crash, the rest)."""
        return [c for c in range(self.n_chunks) if not self.done(c)]

    def write(self, index: int, items: np.ndarray) -> str:
        """Write chunk ``index`` (its items, in the store's dtype); return its SHA-256."""
        index = check_int("index", index, 0)
        if index >= self.n_chunks:
            raise ValueError(f"index must be in [0, {self.n_chunks}); got {index}")
        start, stop = self.bounds(index)
        items = np.asarray(items)
        if items.shape != (stop - start, *self.item_shape) or items.dtype != np.dtype(self.dtype):
            raise ValueError(f"chunk {index} must be {self.dtype} of shape {(stop - start, *self.item_shape)}; "
                             f"got {items.dtype} {items.shape}")
        path = self.folder / chunk_file(index)
        self._sidecar(index).unlink(missing_ok=True)
        _write_atomic(path, lambda tmp: _save_npy(tmp, items))
        digest = file_sha256(path)
        _write_atomic(self._sidecar(index), lambda tmp: tmp.write_text(digest + "\n"))
        return digest

    def finish(self, labels: np.ndarray) -> Path:
        """Write the labels and the manifest once every chunk is there; return the manifest's path."""
        left = self.missing()
        if left:
            raise RuntimeError(f"{len(left)} chunk(s) of {self.n_chunks} are not written yet (first: {left[0]})")
        labels = np.asarray(labels)
        if labels.shape != (self.n_items,) or labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers of shape ({self.n_items},); got {labels.dtype} {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise ValueError(f"labels must lie in [0, {len(self.class_names)}); got {labels.min()} to {labels.max()}")
        _write_atomic(self.folder / LABELS, lambda tmp: _save_npy(tmp, labels.astype(np.int64)))
        chunks = []
        for c in range(self.n_chunks):
            start, stop = self.bounds(c)
            chunks.append({"file": chunk_file(c), "items": stop - start,
                           "sha256": self._sidecar(c).read_text().strip()})
        manifest = {"format": FORMAT, "n_items": self.n_items, "item_shape": list(self.item_shape),
                    "dtype": self.dtype, "divisor": _DTYPES[self.dtype], "chunk_items": self.chunk_items,
                    "class_names": self.class_names, "labels": LABELS,
                    "labels_sha256": file_sha256(self.folder / LABELS), "chunks": chunks,
                    "provenance": self.provenance}
        path = self.folder / MANIFEST
        _write_atomic(path, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1)))
        return path


def _save_npy(path: Path, array: np.ndarray) -> None:
    # np.save appends ".npy" to a name without it; an open file keeps the temporary name.
    with open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


class ChunkedSource(ItemSource):
    """The items of a chunk store, read from memory-mapped chunk files.

    Parameters
    ----------
    folder : path
        The store (see the module's notes).

    Notes
    -----
    A batch of consecutive items is read as slices of at most two chunks' memory maps;
    scattered items (a sample) chunk by chunk. Chunks are opened on first use and kept open
    (one file handle each); a pickled source carries its folder only and reopens them, so it
    can be sent to worker processes.
    """

    def __init__(self, folder):
        self._folder = Path(folder).expanduser()
        m = read_manifest(self._folder)
        self._manifest = m
        self._divisor = np.float32(m["divisor"])
        self._starts = np.cumsum([0] + [c["items"] for c in m["chunks"]])
        self._maps: dict[int, np.ndarray] = {}
        super().__init__(m["n_items"], tuple(m["item_shape"]))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_maps"] = {}
        return state

    @property
    def description(self) -> str:
        return f"chunks:{self._folder}"

    @property
    def folder(self) -> Path:
        """The store."""
        return self._folder

    @property
    def manifest(self) -> dict:
        """The store's manifest (a copy)."""
        return json.loads(json.dumps(self._manifest))

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self._manifest["class_names"])

    @property
    def n_chunks(self) -> int:
        return len(self._manifest["chunks"])

    def chunk_bounds(self, index: int) -> tuple[int, int]:
        """The items ``[start, stop)`` of chunk ``index``."""
        return int(self._starts[index]), int(self._starts[index + 1])

    def labels(self) -> np.ndarray:
        """The N labels (int64), read whole."""
        path = self._folder / self._manifest["labels"]
        try:
            y = npyio.load(path)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: cannot read the labels: {exc}") from exc
        if y.shape != (len(self),):
            raise DatasetError(f"{path}: the labels have shape {y.shape}; the store holds {len(self)} items")
        return y.astype(np.int64, copy=False)

    def _chunk(self, index: int) -> np.ndarray:
        raw = self._maps.get(index)
        if raw is None:
            entry = self._manifest["chunks"][index]
            path = self._folder / entry["file"]
            try:
                raw = npyio.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise DatasetError(f"{path}: cannot read chunk {index}: {exc}") from exc
            if raw.shape != (entry["items"], *self.item_shape) or raw.dtype != np.dtype(self._manifest["dtype"]):
                raise DatasetError(f"{path}: chunk {index} holds {raw.dtype} {raw.shape}; the manifest says "
                                   f"{self._manifest['dtype']} {(entry['items'], *self.item_shape)}")
            self._maps[index] = raw
        return raw

    def _read_unique(self, indices: np.ndarray) -> np.ndarray:
        out = aligned_empty((len(indices), *self.item_shape))
        chunk_of = np.searchsorted(self._starts, indices, side="right") - 1
        # indices are increasing, so each chunk's items are one run of them
        edges = np.flatnonzero(np.diff(chunk_of)) + 1
        for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(indices)]):
            c = int(chunk_of[lo])
            local = indices[lo:hi] - self._starts[c]
            raw = self._chunk(c)
            span = int(local[-1] - local[0]) + 1
            part = raw[int(local[0]) : int(local[-1]) + 1] if span == len(local) else raw[local]
            np.divide(part, self._divisor, out=out[lo:hi], dtype=np.float32, casting="unsafe")
        return out

    def digest(self) -> str:
        """A content key from the manifest's chunk hashes and each chunk file's size and mtime.

        Not :func:`~dldiag.sources.items_digest` (which would read all N items): an array
        holding the same values has another digest, which only costs a cache miss.
        """
        if self._digest is None:
            h = hashlib.sha256(json.dumps({k: v for k, v in self._manifest.items() if k != "provenance"},
                                          sort_keys=True).encode())
            for entry in self._manifest["chunks"]:
                st = (self._folder / entry["file"]).stat()
                h.update(f"{entry['file']}:{st.st_size}:{st.st_mtime_ns}".encode())
            self._digest = h.hexdigest()
        return self._digest

    def verify(self) -> list[str]:
        """Rehash every chunk and the labels; return the files whose hash differs from the manifest's."""
        bad = [e["file"] for e in self._manifest["chunks"] if file_sha256(self._folder / e["file"]) != e["sha256"]]
        if file_sha256(self._folder / self._manifest["labels"]) != self._manifest["labels_sha256"]:
            bad.append(self._manifest["labels"])
        return bad
