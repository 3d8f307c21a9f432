"""Streaming item sources: evaluation data that need not fit in memory.

An :class:`ItemSource` behaves like a read-only ``float32`` array of shape ``(N, *item_shape)``:
``len(src)``, ``src.shape``, ``src.dtype``, ``src.ndim``, ``src.item_shape``; ``src[i]`` is one
item, and ``src[slice]``, ``src[int_array]``, ``src[list]`` and ``src[bool_mask]`` are a
C-contiguous ``float32`` batch in the order asked (indices may be unsorted, repeated or
negative, as in numpy). Only the asked items are read: the memory of a read grows with the
batch, not with N. :meth:`ItemSource.digest` is a content hash equal to :func:`items_digest` of
an array holding the same values, so a source and an array with equal items share cache keys.

Implementations

- :class:`TorchDatasetSource`: a map-style ``torch.utils.data.Dataset`` whose ``ds[i]`` is
  ``(x, y)``;
- :class:`FolderSource`: an image folder, one sub-folder per class, PNG/JPEG read with Pillow;
- :class:`H5Source`: one dataset of an HDF5 file, read with h5py.

Subclasses call ``super().__init__(n_items, item_shape)`` and implement ``_read_unique``.

Errors about the data are :class:`DatasetError` (corrupt or inconsistent) and
:class:`DatasetNotFoundError` (missing files), one line naming the file and the problem; they
are re-exported by :mod:`dldiag.datasets`.
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
import sys
import warnings
from numbers import Integral
from pathlib import Path

import numpy as np

__all__ = [
    "DatasetError",
    "DatasetNotFoundError",
    "FolderSource",
    "H5Source",
    "IMAGE_SUFFIXES",
    "ItemSource",
    "TorchDatasetSource",
    "items_digest",
]

#: File name endings that :class:`FolderSource` reads (compared in lower case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

# Hashing and whole-source reads go in chunks of about this many bytes: large enough that a
# read's fixed cost (opening an HDF5 file) is amortised, small enough to stay out of the way.
_CHUNK_BYTES = 8 << 20
# How many unreadable files an error message names before it gives only their count.
_SHOWN_FILES = 5

_DIGEST_FORMAT = "dldiag.items/1"

# Batches start on a 64-byte boundary. oneDNN picks kernels by memory alignment, so two reads of
# the same items (the full pass, then a sample of every item) must be aligned alike for the
# model to give bit-identical outputs; numpy's own allocations are only 16-byte aligned.
_ALIGN = 64


def aligned_empty(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised C-contiguous float32 array whose data start on a 64-byte boundary."""
    n = int(np.prod(shape, dtype=np.int64))
    if n == 0:
        return np.empty(shape, dtype=np.float32)  # no data to align
    raw = np.empty(4 * n + _ALIGN, dtype=np.uint8)
    offset = (-raw.ctypes.data) % _ALIGN
    return raw[offset:offset + 4 * n].view(np.float32).reshape(shape)


def _is_aligned(a: np.ndarray) -> bool:
    return a.ctypes.data % _ALIGN == 0


class DatasetError(ValueError):
    """A data file is corrupt or inconsistent; the message names the file and the problem."""


class DatasetNotFoundError(FileNotFoundError):
    """Data files are missing; the message lists every place looked and how to get the data."""


# --------------------------------------------------------------------------------------------
# Digest
# --------------------------------------------------------------------------------------------


class _ItemHasher:
    """SHA-256 over a header (format, shape) and the items' little-endian float32 bytes."""

    def __init__(self, shape: tuple[int, ...]):
        self._h = hashlib.sha256()
        header = {"format": _DIGEST_FORMAT, "dtype": "<f4", "shape": [int(s) for s in shape]}
        self._h.update(json.dumps(header, sort_keys=True).encode("utf-8"))

    def update(self, batch: np.ndarray) -> None:
        self._h.update(np.ascontiguousarray(batch, dtype="<f4").data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _chunk_items(item_shape: tuple[int, ...]) -> int:
    item_bytes = 4 * int(np.prod(item_shape, dtype=np.int64))
    return max(1, _CHUNK_BYTES // max(item_bytes, 1))


def items_digest(x) -> str:
    """Return the SHA-256 hex digest of items held in an array or an :class:`ItemSource`.

    Parameters
    ----------
    x : ndarray of shape (N, ...) or ItemSource
        The items. An array of another numeric type is hashed as its float32 values.

    Returns
    -------
    str
        The digest of a header (format, shape) followed by the items' little-endian float32
        bytes in C order, read in chunks of about 8 MiB. A source and an array holding the
        same values have the same digest. For a source, prefer :meth:`ItemSource.digest`,
        which is cached.
    """
    shape = tuple(int(s) for s in x.shape)
    hasher = _ItemHasher(shape)
    step = _chunk_items(shape[1:])
    for start in range(0, shape[0], step):
        hasher.update(x[start:start + step])
    return hasher.hexdigest()


# --------------------------------------------------------------------------------------------
# Item layout shared by the file formats (npz, idx, h5)
# --------------------------------------------------------------------------------------------


def file_item_layout(shape: tuple[int, ...], source: str) -> tuple[tuple[int, ...], bool]:
    """Return ``(item_shape, channels_last)`` for items stored in a file as ``shape``.

    Rules: (N, F) are feature vectors, kept as (F,); (N, H, W) become (1, H, W); a 4-d array
    whose last axis is 1 or 3 and whose axes 1 and 2 are both larger than 4 is channels-last
    (N, H, W, C), read as (C, H, W); any other 4-d array is (N, C, H, W).
    """
    if len(shape) == 2:
        return (int(shape[1]),), False
    if len(shape) == 3:
        return (1, int(shape[1]), int(shape[2])), False
    if len(shape) == 4:
        if shape[3] in (1, 3) and shape[1] > 4 and shape[2] > 4:
            return (int(shape[3]), int(shape[1]), int(shape[2])), True
        return tuple(int(s) for s in shape[1:]), False
    raise DatasetError(
        f"{source}: items must have 2 to 4 dimensions, (N, F), (N, H, W), (N, C, H, W) "
        f"or (N, H, W, C); got shape {tuple(shape)}"
    )


def file_items_to_float(raw: np.ndarray, channels_last: bool) -> np.ndarray:
    """Arrange stored items (N, ...) by :func:`file_item_layout`'s rules as C-contiguous
    float32: uint8 is divided by 255, other numeric types are cast unchanged."""
    if raw.ndim == 3:
        raw = raw[:, None, :, :]
    elif channels_last:
        raw = raw.transpose(0, 3, 1, 2)
    if raw.dtype == np.uint8:
        out = raw.astype(np.float32) / np.float32(255.0)
    else:
        out = raw.astype(np.float32)
    return np.ascontiguousarray(out)


def check_finite(x: np.ndarray, source: str, offset_of=None) -> None:
    """Raise :class:`DatasetError` naming the first NaN/inf value of ``x``.

    ``offset_of(j)`` maps the row ``j`` of ``x`` to the item index that the message names.
    """
    bad = ~np.isfinite(x)
    if bad.any():
        first = [int(i) for i in np.argwhere(bad)[0]]
        if offset_of is not None:
            first[0] = int(offset_of(first[0]))
        raise DatasetError(
            f"{source}: items must be finite; found {int(bad.sum())} NaN/inf values "
            f"(as float32), the first at index {tuple(first)}"
        )


def as_labels(y: np.ndarray, source: str) -> np.ndarray:
    """Convert labels to int64 (N,), checking they are whole numbers >= 0; ``source`` names
    the file (and array) in errors."""
    if y.ndim != 1:
        raise DatasetError(
            f"{source}: labels must be a 1-d array; got shape {y.shape}"
            + (" (for one-hot labels give y.argmax(1))" if y.ndim == 2 else "")
        )
    if y.dtype.kind in "iu":
        out = y.astype(np.int64)
    elif y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        out = y.astype(np.int64)
    else:
        raise DatasetError(
            f"{source}: labels must be integers (or floats with whole values); got dtype "
            f"{y.dtype}" + ("" if y.dtype.kind != "f" else " with non-integral or NaN values")
        )
    if out.size and out.min() < 0:
        i = int(np.argmax(out < 0))
        raise DatasetError(
            f"{source}: labels must be >= 0; found {int((out < 0).sum())} negative, "
            f"the first at index {i} ({out[i]})"
        )
    return out


# --------------------------------------------------------------------------------------------
# ItemSource
# --------------------------------------------------------------------------------------------


def _is_integer(key) -> bool:
    if isinstance(key, (bool, np.bool_)):
        return False
    if isinstance(key, np.ndarray):
        return key.ndim == 0 and key.dtype.kind in "iu"
    return isinstance(key, Integral)


class ItemSource(abc.ABC):
    """A read-only ``float32`` array of shape ``(N, *item_shape)`` whose items are read on demand.

    Parameters
    ----------
    n_items : int
        N, the number of items.
    item_shape : tuple of int
        Shape of one item, e.g. ``(C, H, W)`` or ``(F,)``.

    Notes
    -----
    Indexing follows numpy: ``src[i]`` with ``-N <= i < N`` is one item of shape
    ``item_shape``; ``src[a:b:c]``, ``src[[3, 1, 3]]``, ``src[np.array(...)]`` (any shape of
    integers) and ``src[mask]`` (a boolean array of length N) are a new C-contiguous batch
    whose data start on a 64-byte boundary (so that two reads of the same items run the same
    kernels in the model). A tuple key indexes items with its first element and the item axes
    with the rest (``src[:, 0]`` is the first channel). Each distinct item is read once per call, in
    increasing index order, then the batch is put in the order asked. An index out of range
    raises ``IndexError``; items that are not finite raise :class:`DatasetError`.

    Subclasses implement ``_read_unique(indices)``: given increasing unique int64 indices in
    ``[0, N)``, return a float32 array ``(len(indices), *item_shape)`` (allocated with
    :func:`aligned_empty` to save a copy). Sources can be pickled if their data can (the
    digest goes along).
    """

    dtype = np.dtype(np.float32)

    def __init__(self, n_items: int, item_shape: tuple[int, ...]):
        self._n = int(n_items)
        self._item_shape = tuple(int(s) for s in item_shape)
        self._digest: str | None = None

    # -- array-like attributes ----------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int, ...]:
        """``(N, *item_shape)``."""
        return (self._n, *self._item_shape)

    @property
    def ndim(self) -> int:
        """``1 + len(item_shape)``."""
        return 1 + len(self._item_shape)

    @property
    def item_shape(self) -> tuple[int, ...]:
        """Shape of one item."""
        return self._item_shape

    @property
    def description(self) -> str:
        """Where the items come from, for messages (e.g. ``"folder:/data/cells"``)."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r}, shape={self.shape})"

    # -- reading ------------------------------------------------------------------------------

    @abc.abstractmethod
    def _read_unique(self, indices: np.ndarray) -> np.ndarray:
        """Read the items at ``indices`` (increasing, unique, in range) as float32."""

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            if not key:
                return self[:]
            key, rest = key[0], key[1:]
        if _is_integer(key):
            i = self._check_indices(np.asarray([int(key)], dtype=np.int64))
            out = self._read(i)[0]
        elif isinstance(key, slice):
            out = self._read(np.arange(*key.indices(self._n), dtype=np.int64))
        else:
            arr = self._index_array(key)
            out = self._read(self._check_indices(arr.ravel())).reshape(
                arr.shape + self._item_shape)
        if rest:
            item_axes = (slice(None),) * (out.ndim - len(self._item_shape))
            out = np.ascontiguousarray(out[item_axes + rest])
        return out

    def __iter__(self):
        step = _chunk_items(self._item_shape)
        for start in range(0, self._n, step):
            yield from self[start:start + step]

    def __array__(self, dtype=None, copy=None):
        # np.asarray(src) reads every item: an explicit, whole materialisation.
        if copy is False:
            raise ValueError(
                f"copy=False cannot be met for {self!r}: its items are read from storage, so "
                "np.asarray makes a copy; call it without copy=False"
            )
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def _index_array(self, key) -> np.ndarray:
        arr = np.asarray(key)
        if arr.dtype == np.bool_:
            if arr.shape != (self._n,):
                raise IndexError(
                    f"a boolean index into {self.description} must have shape ({self._n},); "
                    f"got shape {arr.shape}"
                )
            return np.flatnonzero(arr)
        if arr.size == 0:
            return arr.astype(np.int64)
        if arr.dtype.kind not in "iu":
            raise IndexError(
                "only integers, slices, integer arrays and boolean masks index items of "
                f"{self.description}; got {type(key).__name__} of dtype {arr.dtype}"
            )
        return arr.astype(np.int64, copy=False)

    def _check_indices(self, idx: np.ndarray) -> np.ndarray:
        n = self._n
        bad = (idx < -n) | (idx >= n)
        if bad.any():
            raise IndexError(
                f"index {int(idx[np.argmax(bad)])} is out of range for {self.description}, "
                f"which holds N={n} items (valid: {-n} to {n - 1})"
            )
        return np.where(idx < 0, idx + n, idx)

    def _read(self, idx: np.ndarray) -> np.ndarray:
        if idx.size == 0:
            return aligned_empty((0, *self._item_shape))
        unique, inverse = np.unique(idx, return_inverse=True)
        data = self._read_unique(unique)
        if data.shape != (len(unique), *self._item_shape) or data.dtype != np.float32:
            raise RuntimeError(
                f"{type(self).__name__}._read_unique returned {data.dtype} {data.shape}; "
                f"expected float32 {(len(unique), *self._item_shape)}"
            )
        check_finite(data, self.description, offset_of=lambda j: unique[j])
        in_order = len(unique) == len(idx) and np.array_equal(unique, idx)
        if in_order and data.flags.c_contiguous and _is_aligned(data):
            return data
        out = aligned_empty((len(idx), *self._item_shape))
        np.take(data, inverse.ravel(), axis=0, out=out)
        return out

    # -- digest -------------------------------------------------------------------------------

    def digest(self) -> str:
        """Return :func:`items_digest` of the items: computed on the first call, then cached.

        The first call reads every item once, in chunks of about 8 MiB.
        """
        if self._digest is None:
            self._digest = items_digest(self)
        return self._digest


# --------------------------------------------------------------------------------------------
# torch Dataset
# --------------------------------------------------------------------------------------------


def _to_numpy(value):
    """A tensor as a CPU numpy array; anything else through ``np.asarray``."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        if not value.dtype.is_floating_point and not value.dtype.is_complex:
            return value.numpy()
        return value.float().numpy()
    return np.asarray(value)


class TorchDatasetSource(ItemSource):
    """The items ``x`` of a map-style ``torch.utils.data.Dataset`` whose ``ds[i]`` is ``(x, y)``.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Map-style: ``len(dataset)`` and ``dataset[i]`` for ``0 <= i < len(dataset)``. Each
        ``x`` is a tensor or array (of one shape for every item), converted to float32 with
        its values unchanged; ``y`` is the integer label.

    Notes
    -----
    Item 0 is read at construction to learn the item shape. Labels (:meth:`labels`) come from
    ``dataset.targets`` when it is a 1-d sequence of N labels whose first equals item 0's
    ``y`` and the dataset has no ``target_transform`` (the torchvision convention); otherwise
    every item is read once, in chunks, and the digest is computed in the same pass. A dataset
    with random transforms has no stable digest; give it deterministic ones.
    """

    def __init__(self, dataset):
        torch_data = _torch_data()
        if torch_data is not None and isinstance(dataset, torch_data.IterableDataset):
            raise DatasetError(_iterable_message(dataset))
        try:
            n = len(dataset)
        except TypeError:
            raise DatasetError(
                f"torch dataset {type(dataset).__name__} has no len(); give a map-style "
                "Dataset (with __len__ and __getitem__) whose items are (x, y) pairs"
            ) from None
        self._dataset = dataset
        self._labels: np.ndarray | None = None
        self._name = type(dataset).__name__
        if n == 0:
            raise DatasetError(f"{self._desc()}: the dataset holds no items; it needs at least one")
        x0, y0 = self._pair(0)
        x0 = self._item(x0, 0)
        self._first_label = y0
        super().__init__(n, x0.shape)

    def _desc(self) -> str:
        return f"torch dataset {self._name}"

    @property
    def description(self) -> str:
        return self._desc()

    @property
    def dataset(self):
        """The wrapped torch Dataset."""
        return self._dataset

    def _pair(self, i: int):
        item = self._dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            what = (f"a {len(item)}-tuple" if isinstance(item, (tuple, list))
                    else f"a {type(item).__name__}")
            raise DatasetError(
                f"{self._desc()}: item {i} is {what}, not an (x, y) pair; labels are missing: "
                "a Dataset must return (x, y) with y the item's integer label"
            )
        return item

    def _item(self, x, i: int) -> np.ndarray:
        if type(x).__module__.startswith("PIL."):
            raise DatasetError(
                f"{self._desc()}: item {i}'s x is a PIL image; give the Dataset a transform "
                "that returns a tensor, e.g. torchvision.transforms.ToTensor()"
            )
        arr = _to_numpy(x)
        if arr.dtype.kind not in "uifb":
            raise DatasetError(
                f"{self._desc()}: item {i}'s x must be a numeric tensor or array; got "
                f"{type(x).__name__} of dtype {arr.dtype}"
            )
        if i and arr.shape != self._item_shape:
            raise DatasetError(
                f"{self._desc()}: item {i} has shape {arr.shape} but item 0 has "
                f"{self._item_shape}; every item must have one shape"
            )
        if arr.ndim == 0:
            raise DatasetError(
                f"{self._desc()}: item {i}'s x is a scalar; items must have at least one "
                "dimension, e.g. a feature vector (F,) or an image (C, H, W)"
            )
        return arr.astype(np.float32, copy=False)

    def _read_unique(self, indices: np.ndarray) -> np.ndarray:
        out = aligned_empty((len(indices), *self._item_shape))
        for j, i in enumerate(indices.tolist()):
            out[j] = self._item(self._pair(i)[0], i)
        return out

    def labels(self) -> np.ndarray:
        """Return the labels of every item, int64 (N,), computed once (see Notes)."""
        if self._labels is None:
            self._labels = self._targets_labels()
            if self._labels is None:
                self._labels = self._streamed_labels()
            self._labels.setflags(write=False)
        return self._labels

    def _targets_labels(self) -> np.ndarray | None:
        targets = getattr(self._dataset, "targets", None)
        if targets is None or getattr(self._dataset, "target_transform", None) is not None:
            return None
        try:
            raw = _to_numpy(targets)
        except (TypeError, ValueError):
            return None
        if raw.shape != (self._n,) or raw.dtype.kind not in "iuf":
            return None
        y0 = _to_numpy(self._first_label)
        if y0.size != 1 or raw[0] != y0.ravel()[0]:
            return None  # targets disagree with what the items say: trust the items
        return as_labels(raw, f"{self._desc()}.targets")

    def _streamed_labels(self) -> np.ndarray:
        raw = []
        hasher = _ItemHasher(self.shape) if self._digest is None else None
        step = _chunk_items(self._item_shape)
        for start in range(0, self._n, step):
            stop = min(start + step, self._n)
            batch = np.empty((stop - start, *self._item_shape), dtype=np.float32)
            for j, i in enumerate(range(start, stop)):
                x, y = self._pair(i)
                batch[j] = self._item(x, i)
                y = _to_numpy(y)
                if y.size != 1:
                    raise DatasetError(
                        f"{self._desc()}: item {i}'s label has shape {y.shape}; give one "
                        "integer label per item" + (" (one-hot labels: give y.argmax())"
                                                    if y.ndim == 1 else "")
                    )
                raw.append(y.ravel()[0])
            if hasher is not None:
                check_finite(batch, self._desc(), offset_of=lambda j, s=start: s + j)
                hasher.update(batch)
        if hasher is not None:
            self._digest = hasher.hexdigest()
        return as_labels(np.asarray(raw), f"{self._desc()} labels")


def _torch_data():
    """``torch.utils.data`` if torch is imported, else None (no import just to check types)."""
    torch = sys.modules.get("torch")
    return None if torch is None else torch.utils.data


def _iterable_message(dataset) -> str:
    return (
        f"torch dataset {type(dataset).__name__} is an IterableDataset, which cannot be "
        "indexed; items are addressed by index, so pass a map-style Dataset (with __len__ "
        "and __getitem__) instead"
    )


# --------------------------------------------------------------------------------------------
# Image folder
# --------------------------------------------------------------------------------------------

_GRAY_8 = frozenset({"1", "L", "LA"})
_GRAY_16 = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_COLOUR = frozenset({"P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"})
_MODES = _GRAY_8 | _GRAY_16 | _COLOUR


def _pillow():
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - pillow is in requirements.txt
        raise ImportError(
            "folder: data sets need Pillow; install it with `pip install pillow`"
        ) from exc
    return Image


class FolderSource(ItemSource):
    """Images of a folder with one sub-folder per class, read with Pillow.

    Parameters
    ----------
    folder : str or path-like
        The folder. Each sub-folder (not starting with ``.``) is a class; class names are the
        sorted sub-folder names, and label ``i`` is the ``i``-th of them. A class's images are
        the files under its sub-folder, at any depth, whose names end in ``.png``, ``.jpg`` or
        ``.jpeg`` (any case), in sorted order of their relative paths; other files and files
        directly in ``folder`` are ignored. An empty class sub-folder is a class without
        items.
    skip_unreadable : bool, default=False
        What to do with image files that Pillow cannot open: stop with one
        :class:`DatasetError` naming up to 5 of them and their count (``False``), or leave
        them out with one ``UserWarning`` giving their count and the first (``True``).

    Notes
    -----
    Construction opens every file and reads its header (format, size, mode), not its pixels:
    for N files that is N small reads. All images must have one size (else one error naming
    two files of different sizes). Items are ``(C, H, W)`` float32 in [0, 1]: C = 1 when
    every image is grayscale (modes 1, L, LA; 16-bit I;16 and I, divided by 65535), else
    C = 3 and every image is read as RGB (grayscale ones repeated on the three channels,
    alpha dropped, palettes expanded); 8-bit values are divided by 255. A file whose header
    reads but whose pixels are damaged raises :class:`DatasetError` naming it when read.
    """

    def __init__(self, folder, *, skip_unreadable: bool = False):
        Image = _pillow()
        folder = Path(folder).expanduser()
        self._folder = folder
        if not folder.is_dir():
            raise DatasetNotFoundError(
                f"folder:{folder}: folder does not exist (resolved: {folder.resolve()}); give "
                "a folder with one sub-folder per class holding PNG/JPEG files"
            )
        classes = sorted(
            d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")
        )
        if not classes:
            raise DatasetError(
                f"folder:{folder}: no class sub-folders; a folder data set holds one "
                f"sub-folder per class with its images, e.g. {folder / 'cat' / '1.png'}"
            )
        files, labels = [], []
        for label, name in enumerate(classes):
            found = []
            for root, dirs, names in os.walk(folder / name):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                found += [
                    Path(root) / f for f in names
                    if not f.startswith(".") and f.lower().endswith(IMAGE_SUFFIXES)
                ]
            found.sort()
            files += found
            labels += [label] * len(found)
        if not files:
            raise DatasetError(
                f"folder:{folder}: its {len(classes)} class sub-folders ({', '.join(classes[:5])}"
                f"{', …' if len(classes) > 5 else ''}) hold no PNG or JPEG files "
                f"({', '.join('*' + s for s in IMAGE_SUFFIXES)}); the evaluation split would be "
                "empty"
            )

        sizes, modes, bad = [], [], []
        for path in files:
            try:
                with Image.open(path) as im:
                    size, mode = im.size, im.mode
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                bad.append((path, str(exc) or type(exc).__name__))
                size = mode = None
            if mode is not None and mode not in _MODES:
                bad.append((path, f"unsupported image mode {mode}"))
                size = mode = None
            sizes.append(size)
            modes.append(mode)
        if bad:
            shown = "; ".join(
                f"{p.relative_to(folder)} ({why})" for p, why in bad[:_SHOWN_FILES]
            )
            more = f" and {len(bad) - _SHOWN_FILES} more" if len(bad) > _SHOWN_FILES else ""
            if not skip_unreadable:
                raise DatasetError(
                    f"folder:{folder}: {len(bad)} of {len(files)} image files cannot be read: "
                    f"{shown}{more}; fix or remove them, or pass skip_unreadable=True to "
                    "leave them out"
                )
            warnings.warn(
                f"folder:{folder}: left out {len(bad)} of {len(files)} image files that "
                f"cannot be read: {shown}{more}",
                UserWarning,
                stacklevel=2,
            )
            keep = [i for i, m in enumerate(modes) if m is not None]
            if not keep:
                raise DatasetError(
                    f"folder:{folder}: none of its {len(files)} image files can be read; "
                    "the evaluation split would be empty"
                )
            files = [files[i] for i in keep]
            labels = [labels[i] for i in keep]
            sizes = [sizes[i] for i in keep]
            modes = [modes[i] for i in keep]

        for path, size in zip(files, sizes):
            if size != sizes[0]:
                raise DatasetError(
                    f"folder:{folder}: images differ in size: {files[0].relative_to(folder)} "
                    f"is {sizes[0][0]}×{sizes[0][1]} (width×height) but "
                    f"{path.relative_to(folder)} is {size[0]}×{size[1]}; all images must "
                    "have one size (resize them first)"
                )
        width, height = sizes[0]
        channels = 1 if all(m in _GRAY_8 | _GRAY_16 for m in modes) else 3
        self._files = tuple(files)
        self._labels = np.asarray(labels, dtype=np.int64)
        self._labels.setflags(write=False)
        self._class_names = tuple(classes)
        super().__init__(len(files), (channels, height, width))

    @property
    def description(self) -> str:
        return f"folder:{self._folder}"

    @property
    def folder(self) -> Path:
        """The folder."""
        return self._folder

    @property
    def files(self) -> tuple[Path, ...]:
        """The image file of each item, in item order."""
        return self._files

    @property
    def class_names(self) -> tuple[str, ...]:
        """The sorted class sub-folder names."""
        return self._class_names

    def labels(self) -> np.ndarray:
        """Return the label of every item (its class sub-folder's index), int64 (N,)."""
        return self._labels

    def _read_unique(self, indices: np.ndarray) -> np.ndarray:
        out = aligned_empty((len(indices), *self._item_shape))
        for j, i in enumerate(indices.tolist()):
            self._decode(self._files[i], out[j])
        return out

    def _decode(self, path: Path, out: np.ndarray) -> None:
        Image = _pillow()
        channels, height, width = self._item_shape
        try:
            with Image.open(path) as im:
                if im.size != (width, height):
                    raise DatasetError(
                        f"{self.description}: {path} is now {im.size[0]}×{im.size[1]}, not "
                        f"{width}×{height} as when the folder was opened; it changed on disk"
                    )
                if im.mode in _GRAY_16:
                    gray = np.clip(np.asarray(im, dtype=np.float32) / np.float32(65535.0), 0, 1)
                elif im.mode in _GRAY_8:
                    gray = np.asarray(im.convert("L"), dtype=np.float32) / np.float32(255.0)
                else:
                    gray = None
                    rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / np.float32(255.0)
        except (OSError, ValueError, SyntaxError) as exc:
            raise DatasetError(f"{self.description}: cannot read {path}: {exc}") from exc
        if gray is None and channels == 1:
            raise DatasetError(
                f"{self.description}: {path} is now a colour image; the folder held only "
                "grayscale images when it was opened; it changed on disk"
            )
        if gray is None:
            out[...] = rgb.transpose(2, 0, 1)
        else:
            out[...] = gray[None, :, :]  # broadcasts to 3 channels in a colour folder


# --------------------------------------------------------------------------------------------
# HDF5
# --------------------------------------------------------------------------------------------


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is in requirements.txt
        raise ImportError("h5: data sets need h5py; install it with `pip install h5py`") from exc
    return h5py


def h5_listing(f, limit: int = 20) -> str:
    """The datasets of an open HDF5 file as one line: ``name shape dtype``, at most ``limit``."""
    h5py = _h5py()
    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found.append(f"{name} {tuple(obj.shape)} {obj.dtype}")

    f.visititems(visit)
    if not found:
        return "no datasets"
    more = f", and {len(found) - limit} more" if len(found) > limit else ""
    return ", ".join(found[:limit]) + more


def h5_open(path: Path):
    """Open ``path`` read-only, as :class:`DatasetError` if it is not readable HDF5."""
    h5py = _h5py()
    if not path.is_file():
        raise DatasetNotFoundError(
            f"h5:{path}: file does not exist (resolved: {path.resolve()}); give an HDF5 file "
            "holding datasets x_test and y_test (or name them, h5:FILE?x=KEY&y=KEY)"
        )
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable HDF5 file: {exc}") from exc


def h5_dataset(f, key: str, path: Path, why: str = ""):
    """The dataset ``key`` of open file ``f``; one error listing what the file holds if not."""
    h5py = _h5py()
    obj = f.get(key)
    if not isinstance(obj, h5py.Dataset):
        what = "no dataset" if obj is None else "a group, not a dataset,"
        raise DatasetError(
            f"{path}: {what} {key!r}{f' ({why})' if why else ''}; the file holds "
            f"{h5_listing(f)}"
        )
    return obj


class H5Source(ItemSource):
    """The items of one HDF5 dataset, read lazily with h5py.

    Parameters
    ----------
    path : str or path-like
        The HDF5 file.
    dataset_key : str
        Path of the dataset inside the file, e.g. ``"x_test"`` or ``"eval/images"``.

    Notes
    -----
    Items follow the file rules of :func:`dldiag.datasets.load_dataset`: (N, F) are feature
    vectors; (N, H, W) become (N, 1, H, W); (N, H, W, C) with C in (1, 3) and H, W > 4 are
    transposed to (N, C, H, W); uint8 is divided by 255, other numbers cast to float32. The
    file is opened for each read and closed after it, so a source can be pickled and used
    in another process. h5py's fancy indexing needs increasing unique indices, so a batch
    reads its sorted unique indices (a contiguous run as one slice) and is then put in the
    order asked.
    """

    def __init__(self, path, dataset_key: str):
        path = Path(path).expanduser()
        self._path = path
        self._key = str(dataset_key)
        with h5_open(path) as f:
            ds = h5_dataset(f, self._key, path)
            shape, dtype = tuple(ds.shape), ds.dtype
        if dtype.kind not in "uif":
            raise DatasetError(f"{self.description}: items must be numeric; got dtype {dtype}")
        item_shape, self._channels_last = file_item_layout(shape, self.description)
        super().__init__(shape[0], item_shape)

    @property
    def description(self) -> str:
        return f"{self._path}[{self._key}]"

    @property
    def path(self) -> Path:
        """The HDF5 file."""
        return self._path

    @property
    def dataset_key(self) -> str:
        """The dataset's path inside the file."""
        return self._key

    def _read_unique(self, indices: np.ndarray) -> np.ndarray:
        lo, hi = int(indices[0]), int(indices[-1]) + 1
        with h5_open(self._path) as f:
            ds = h5_dataset(f, self._key, self._path)
            try:
                raw = ds[lo:hi] if hi - lo == len(indices) else ds[indices]
            except (OSError, ValueError) as exc:
                raise DatasetError(f"{self.description}: cannot read items: {exc}") from exc
        return file_items_to_float(raw, self._channels_last)
