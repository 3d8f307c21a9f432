"""Named data sets, generic loaders, and the data a user hands to the Python API.

A :class:`Dataset` holds a train split (for fitting a model) and the evaluation split D
(``x_test``, ``y_test``) whose items are addressed by their integer index. Items are
``float32``, held in an array of shape ``(N, *item_shape)`` or streamed from an
:class:`~dldiag.sources.ItemSource` that behaves like one; an item is an image ``(C, H, W)``
or a feature vector ``(F,)`` (other shapes pass through to the model unchanged). Labels are
``int64`` arrays of shape ``(N,)``, always in memory.

:func:`load_dataset` understands

- ``"digits"``: scikit-learn's bundled 8×8 digits, split 75/25 with a fixed seed;
- ``"fashion-mnist"``: the Fashion-MNIST IDX files, looked up in a fixed list of folders;
- ``"idx:DIR"``: any folder in MNIST's IDX layout;
- ``"npz:FILE"``: a NumPy ``.npz`` archive holding ``x_train, y_train, x_test, y_test``;
- ``"folder:DIR"``: one sub-folder of PNG/JPEG images per class (the evaluation split only),
  streamed;
- ``"h5:FILE"``: an HDF5 file holding the datasets ``x_test`` and ``y_test`` (and optionally
  ``x_train``, ``y_train``, ``class_names``), items streamed. Other dataset names are given
  after the last ``?`` as ``key=NAME`` pairs joined by ``&``, with keys ``x``, ``y``,
  ``x_train``, ``y_train``, ``class_names``: ``"h5:/data/run:3.h5?x=images&y=labels"``.
  Only the leading ``h5:`` is a prefix, so file names may hold colons; a file name holding
  ``?`` is taken whole when that file exists. NAME may use %-escapes (``%26`` for ``&``).

:func:`as_dataset` turns what a user hands to the Python API into a :class:`Dataset` of the
evaluation split: ``(x, y)`` arrays or tensors, a map-style torch ``Dataset``, a
``DataLoader``, a spec string as above, or a :class:`Dataset`.

Corrupt or inconsistent data raise :class:`DatasetError` and missing files raise
:class:`DatasetNotFoundError` (both defined in :mod:`dldiag.sources`); the messages name the
file (or every folder looked in) and the problem, so that a user can fix the data from the
message alone.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import sys
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from .sources import (
    DatasetError,
    DatasetNotFoundError,
    FolderSource,
    H5Source,
    ItemSource,
    TorchDatasetSource,
    as_labels,
    check_finite,
    file_item_layout,
    file_items_to_float,
    h5_dataset,
    h5_open,
    items_digest,
)
from .sources import _iterable_message, _torch_data

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "H5_KEYS",
    "as_dataset",
    "load_dataset",
    "read_idx",
]

DATASET_NAMES = ("digits", "fashion-mnist", "galaxies")
"""Names of the built-in data sets; :func:`load_dataset` also takes ``"idx:DIR"``,
``"npz:FILE"``, ``"folder:DIR"`` and ``"h5:FILE"``."""

#: Keys of an ``h5:FILE?key=NAME&...`` spec and the dataset name each defaults to.
#: ``x_test`` and ``y_test`` are also accepted for ``x`` and ``y``.
H5_KEYS = {
    "x": "x_test",
    "y": "y_test",
    "x_train": "x_train",
    "y_train": "y_train",
    "class_names": "class_names",
}

SPLITS = ("train", "test")

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: File names of MNIST's IDX layout, per split: (images, labels), without ``.gz``.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

DIGITS_TEST_SIZE = 0.25
DIGITS_RANDOM_STATE = 0

# Lookup folders for "fashion-mnist". Module attributes so that tests can point them elsewhere.
_REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
_SYSTEM_DATA_DIR = Path("/usr/share/datasets")
_ENV_VAR = "DLDIAG_DATA"
_MAX_INFERRED_CLASSES = 65536

_FASHION_MNIST_HINT = (
    "To get Fashion-MNIST: on Debian/Ubuntu run `apt-get install dataset-fashion-mnist` "
    "(installs /usr/share/datasets/fashion-mnist/); or download the four .gz files from "
    "https://github.com/zalandoresearch/fashion-mnist into one of the folders above, or set "
    f"{_ENV_VAR} to a folder holding them; or load any folder in IDX layout with "
    "load_dataset('idx:DIR')."
)

# Errors that reading a damaged file can raise; re-raised as DatasetError near the read.
_READ_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile, ValueError)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set: a train split and the evaluation split D.

    Parameters
    ----------
    name : str
        The name it was loaded by, e.g. ``"fashion-mnist"`` or ``"npz:/data/my.npz"``. It is
        part of :meth:`fingerprint`, so it must not change between runs for the same data.
    x_train : ndarray of float32, shape (N_train, *item_shape), ItemSource, or None
        Train items; ``None`` if the train split was not requested.
    y_train : ndarray of int64, shape (N_train,), or None
        Train labels; ``None`` exactly when ``x_train`` is.
    x_test : ndarray of float32, shape (N, *item_shape), or ItemSource
        The evaluation split D. Items are addressed by their index in it: ``x_test[i]`` is one
        item, ``x_test[slice]`` and ``x_test[int_array]`` a batch.
    y_test : ndarray of int64, shape (N,)
        Labels of D, in ``[0, n_classes)``.
    class_names : tuple of str
        One name per class; label ``i`` is ``class_names[i]``.
    sources : tuple of str
        Files and folders read, for messages and provenance.
    feature_names : tuple of str, optional
        For feature-vector items (N, F): one name per feature, shown when the app describes
        an item (not part of the fingerprint: names do not change results).

    Notes
    -----
    Equality is identity (``eq=False``): arrays do not compare to a single truth value. The
    arrays are not copied or locked; treat them as read-only, since :meth:`fingerprint` is
    computed once and cached.
    """

    name: str
    x_train: np.ndarray | ItemSource | None
    y_train: np.ndarray | None
    x_test: np.ndarray | ItemSource
    y_test: np.ndarray
    class_names: tuple[str, ...]
    sources: tuple[str, ...] = ()
    feature_names: tuple[str, ...] | None = None

    def __post_init__(self):
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "sources", tuple(str(s) for s in self.sources))
        if not self.class_names:
            raise ValueError("class_names must name at least one class; got ()")
        if (self.x_train is None) != (self.y_train is None):
            raise ValueError(
                "x_train and y_train must both be arrays or both be None; got "
                f"x_train={_describe(self.x_train)}, y_train={_describe(self.y_train)}"
            )
        pairs = [("test", self.x_test, self.y_test)]
        if self.x_train is not None:
            pairs.insert(0, ("train", self.x_train, self.y_train))
        for split, x, y in pairs:
            is_array = isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim >= 2
            if not (is_array or isinstance(x, ItemSource)):
                raise ValueError(
                    f"x_{split} must be a float32 array of shape (N, *item_shape), e.g. "
                    f"(N, C, H, W) or (N, F), or an ItemSource; got {_describe(x)}"
                )
            if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.shape != (len(x),):
                raise ValueError(
                    f"y_{split} must be an int64 array of shape ({len(x)},) to match "
                    f"x_{split}; got {_describe(y)}"
                )
            if y.size and (y.min() < 0 or y.max() >= len(self.class_names)):
                raise ValueError(
                    f"y_{split} must hold labels in [0, {len(self.class_names)}) "
                    f"(one per class name); got values in [{y.min()}, {y.max()}]"
                )
        if self.x_train is not None and self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"x_train items have shape {self.x_train.shape[1:]} but x_test items have "
                f"shape {self.x_test.shape[1:]}; both splits must share one item shape"
            )
        if self.feature_names is not None:
            names = tuple(str(n) for n in self.feature_names)
            object.__setattr__(self, "feature_names", names)
            if len(self.x_test.shape) != 2 or len(names) != self.x_test.shape[1]:
                raise ValueError(
                    f"feature_names must name each feature of items of shape (F,); got {len(names)} "
                    f"names for items of shape {tuple(self.x_test.shape[1:])}"
                )

    def __repr__(self) -> str:
        n_train = None if self.x_train is None else len(self.x_train)
        return (
            f"Dataset(name={self.name!r}, item_shape={self.item_shape}, "
            f"n_classes={self.n_classes}, n_train={n_train}, n_test={len(self.x_test)})"
        )

    @property
    def item_shape(self) -> tuple[int, ...]:
        """Shape of one item: ``(C, H, W)`` for images, ``(F,)`` for feature vectors."""
        return tuple(int(s) for s in self.x_test.shape[1:])

    @property
    def item_kind(self) -> str:
        """``"image"`` for items (C, H, W) with C in (1, 3), ``"vector"`` for (F,), else
        ``"other"``."""
        shape = self.item_shape
        if len(shape) == 3 and shape[0] in (1, 3):
            return "image"
        return "vector" if len(shape) == 1 else "other"

    @property
    def n_classes(self) -> int:
        """Number of classes, ``len(class_names)``."""
        return len(self.class_names)

    def fingerprint(self) -> str:
        """Return a content hash of the evaluation split, for cache keys.

        Returns
        -------
        str
            SHA-256 hex digest of ``name``, ``class_names``, the digest of ``x_test``'s items
            (:func:`~dldiag.sources.items_digest`, the same for an array and for a source
            holding equal values) and the shape and bytes of ``y_test``. The train split is
            not part of it. Computed on the first call and cached: about 30 ms for 10 000
            28×28 items in memory; a source reads every item once (cached by the source).
        """
        return self._fingerprint

    @functools.cached_property
    def _x_test_digest(self) -> str:
        if isinstance(self.x_test, ItemSource):
            return self.x_test.digest()
        return items_digest(self.x_test)

    @functools.cached_property
    def _fingerprint(self) -> str:
        # cached_property writes into the instance __dict__, which a frozen dataclass allows.
        h = hashlib.sha256()
        header = {
            "format": "dldiag.Dataset/2",
            "name": self.name,
            "class_names": list(self.class_names),
            "x_test": self._x_test_digest,
            "y_test": [str(self.y_test.dtype), list(self.y_test.shape)],
        }
        h.update(json.dumps(header, sort_keys=True).encode("utf-8"))
        h.update(np.ascontiguousarray(self.y_test).data)
        return h.hexdigest()


def _describe(a) -> str:
    if a is None:
        return "None"
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array of shape {a.shape}"
    if isinstance(a, ItemSource):
        return repr(a)
    return type(a).__name__


# --------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the format of MNIST and Fashion-MNIST), gzipped or not.

    Parameters
    ----------
    path : str or path-like
        The file. It is decompressed if it starts with the gzip magic bytes, whatever its
        name; files named ``*.gz`` normally are.

    Returns
    -------
    ndarray
        Array of the shape and element type given in the header (uint8, int8, int16, int32,
        float32 or float64), in native byte order.

    Raises
    ------
    DatasetError
        If the file is not IDX (bad magic number, unknown type code), is truncated or has
        trailing bytes, or is a damaged gzip stream. The data size is checked against the
        header before the array is shaped.
    FileNotFoundError
        If ``path`` does not exist.

    Notes
    -----
    The header is two zero bytes, a type code, the number of dimensions d, then d big-endian
    uint32 sizes; the data follow in C order, big-endian.

    Examples
    --------
    >>> labels = read_idx("t10k-labels-idx1-ubyte.gz")  # doctest: +SKIP
    >>> labels.shape, labels.dtype  # doctest: +SKIP
    ((10000,), dtype('uint8'))
    """
    path = Path(path)
    gzipped = False
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        if gzipped:
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except FileNotFoundError:
        raise
    except EOFError as exc:
        raise DatasetError(
            f"{path}: truncated gzip stream (the compressed data end early: {exc})"
        ) from exc
    except _READ_ERRORS as exc:
        what = "damaged gzip stream" if gzipped else "cannot be read"
        raise DatasetError(f"{path}: {what}: {exc}") from exc

    if len(data) < 4:
        raise DatasetError(
            f"{path}: not an IDX file: {len(data)} bytes, shorter than the 4-byte magic number"
        )
    magic = data[:4]
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise DatasetError(
            f"{path}: bad magic number 0x{magic.hex().upper()}; an IDX file starts with "
            f"0x0000, a type code in ({known}) and the number of dimensions"
        )
    dtype = _IDX_DTYPES[magic[2]]
    ndim = magic[3]
    header_size = 4 + 4 * ndim
    if ndim == 0 or len(data) < header_size:
        raise DatasetError(
            f"{path}: bad IDX header: {ndim} dimensions need a {header_size}-byte header, "
            f"the file has {len(data)} bytes"
        )
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header_size
    dims = "×".join(str(s) for s in shape)
    if got < expected:
        raise DatasetError(
            f"{path}: truncated: the header says {dims} items of {dtype.name} = {expected} "
            f"bytes of data, the file holds only {got}"
        )
    if got > expected:
        raise DatasetError(
            f"{path}: {got - expected} unexpected bytes after the data: the header says "
            f"{dims} items of {dtype.name} = {expected} bytes, the file holds {got}"
        )
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header_size)
    # astype copies: the result is writable, native-endian and owns its memory.
    return arr.reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx_file(folder: Path, stem: str) -> Path | None:
    """Return ``folder/stem.gz`` or ``folder/stem``, whichever exists first, else None."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _read_idx_images(path: Path) -> np.ndarray:
    return _as_items(read_idx(path), f"{path}")


def _read_idx_labels(path: Path) -> np.ndarray:
    return _as_labels(read_idx(path), f"{path}")


# --------------------------------------------------------------------------------------------
# Array conversion shared by the loaders
# --------------------------------------------------------------------------------------------


def _as_items(x: np.ndarray, source: str) -> np.ndarray:
    """Convert items read from a file to float32 (N, *item_shape); ``source`` names the file
    (and array) in errors.

    Rules (:func:`~dldiag.sources.file_item_layout`): (N, F) stays (N, F), feature vectors;
    (N, H, W) -> (N, 1, H, W); (N, H, W, C) with C in (1, 3) and H, W > 4 -> transposed to
    (N, C, H, W); other 4-d arrays are taken as (N, C, H, W). uint8 is divided by 255; other
    numeric types are cast to float32 unchanged.
    """
    if x.dtype.kind not in "uif":
        raise DatasetError(f"{source}: items must be numeric; got dtype {x.dtype}")
    _, channels_last = file_item_layout(x.shape, source)
    out = file_items_to_float(x, channels_last)
    check_finite(out, source)
    return out


_as_labels = as_labels


def _check_pair(x: np.ndarray, y: np.ndarray, x_source: str, y_source: str) -> None:
    if len(x) != len(y):
        raise DatasetError(
            f"count mismatch: {x_source} holds {len(x)} items but {y_source} holds "
            f"{len(y)} labels"
        )


def _check_label_range(y: np.ndarray, n_classes: int, source: str, names_source: str) -> None:
    if y.size and y.max() >= n_classes:
        i = int(np.argmax(y >= n_classes))
        raise DatasetError(
            f"{source}: label {y[i]} at index {i} is out of range: {names_source} names "
            f"{n_classes} classes, so labels must be in [0, {n_classes})"
        )


def _check_same_item_shape(parts: dict, sources: dict) -> None:
    if "train" in parts and "test" in parts:
        a, b = parts["train"][0].shape[1:], parts["test"][0].shape[1:]
        if a != b:
            raise DatasetError(
                f"item shapes differ: {sources['train']} has items of shape {a} but "
                f"{sources['test']} has {b}; both splits must share one item shape"
            )


def _numbered_class_names(top: int, source: str, remedy: str) -> tuple[str, ...]:
    """Class names "0" .. str(top), refusing absurd counts that point at bad labels."""
    if top + 1 > _MAX_INFERRED_CLASSES:
        raise DatasetError(
            f"{source}: the largest label is {top}, which would mean {top + 1} classes "
            f"(at most {_MAX_INFERRED_CLASSES} are inferred); check the labels or give "
            f"{remedy}"
        )
    return tuple(str(i) for i in range(top + 1))


def _read_class_names(path: Path) -> tuple[str, ...]:
    """Read one class name per line; blank lines at the end are ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read class names: {exc}") from exc
    names = [line.strip() for line in text.splitlines()]
    while names and not names[-1]:
        names.pop()
    return _check_class_names(names, str(path))


def _check_class_names(names, source: str) -> tuple[str, ...]:
    names = tuple(str(n) for n in names)
    if not names:
        raise DatasetError(f"{source}: class names are empty; give one name per class")
    if any(not n for n in names):
        i = names.index("")
        raise DatasetError(f"{source}: class name {i} is empty")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DatasetError(f"{source}: class names must be unique; repeated: {dup}")
    return names


# --------------------------------------------------------------------------------------------
# load_dataset
# --------------------------------------------------------------------------------------------


def _check_splits(splits) -> tuple[str, ...]:
    allowed = repr(SPLITS)
    if isinstance(splits, str) or not isinstance(splits, (tuple, list)):
        raise ValueError(
            f"splits must be a non-empty tuple of names from {allowed}, e.g. ('test',); "
            f"got {splits!r}"
        )
    for s in splits:
        if s not in SPLITS:
            raise ValueError(
                f"splits must be a non-empty subset of {allowed}; got {tuple(splits)!r} "
                f"({s!r} is not a split)"
            )
    if "test" not in splits:
        raise ValueError(
            f"splits must include 'test' (the evaluation split is always loaded); "
            f"got {tuple(splits)!r}"
        )
    return tuple(s for s in SPLITS if s in splits)


def load_dataset(
    name: str,
    *,
    splits: tuple[str, ...] = ("train", "test"),
    skip_unreadable: bool = False,
) -> Dataset:
    """Load a data set by name.

    Parameters
    ----------
    name : str
        One of

        - ``"digits"``: scikit-learn's bundled ``load_digits()`` (1797 items, 8×8, values
          0..16 divided by 16, shape (N, 1, 8, 8)), split with
          ``train_test_split(test_size=0.25, random_state=0, stratify=y)``: 1347 train and
          450 test items. Class names ``"0"`` .. ``"9"``.
        - ``"fashion-mnist"``: the IDX files ``train-images-idx3-ubyte.gz``,
          ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
          ``t10k-labels-idx1-ubyte.gz`` (names without ``.gz`` are accepted too). For each
          requested split, the pair of files is looked up in order in
          ``<repo>/data/fashion-mnist/``, ``$DLDIAG_DATA/``, ``$DLDIAG_DATA/fashion-mnist/``
          and ``/usr/share/datasets/fashion-mnist/`` (Debian package
          ``dataset-fashion-mnist``); the first folder holding both files wins, so different
          splits may come from different folders. Images (N, 1, 28, 28), uint8 / 255.
        - ``"galaxies"``: simulated disk + bulge galaxies, edge-on or face-on, drawn with
          GalSim (:mod:`dldiag.galaxies`, which says what is simulated and why): 54,000 train
          and 2,118 test items as the report's Galaxy Zoo 2 set, colour images (N, 3, 69, 69),
          uint8 / 255, class names ``"face-on"``, ``"edge-on"``. A split is drawn on first use
          (about 10 ms a galaxy per core, with a progress bar) and read from
          ``<cache>/datasets/`` afterwards.
        - ``"idx:DIR"``: any folder in the same IDX layout. Class names come from
          ``DIR/class_names.txt`` (one per line) if present, else ``"0"`` .. ``"K-1"`` with
          K = 1 + the largest label in the label files present in DIR (read for this even if
          only one split is requested, so the class names do not depend on ``splits``).
        - ``"npz:FILE"``: a NumPy archive holding ``x_test``, ``y_test`` and, if the train
          split is requested, ``x_train``, ``y_train``; optionally ``class_names`` (a 1-d
          string array). Without it, class names are ``"0"`` .. ``"K-1"`` with K = 1 + the
          largest label of the ``y_*`` arrays present.

        - ``"chunks:DIR"``: a chunk store (:mod:`dldiag.chunks`): items in ``.npy`` chunk
          files read as memory maps, never all in memory, labels and class names from the
          store; the evaluation split only. ``python -m dldiag.workloads`` makes them.
        - ``"folder:DIR"``: one sub-folder per class holding PNG/JPEG images of one size;
          class names are the sorted sub-folder names. The whole folder is the evaluation
          split (``splits`` must be ``("test",)``). Items (C, H, W) in [0, 1], C = 1 if every
          image is grayscale else 3, streamed from the files by a
          :class:`~dldiag.sources.FolderSource` (see it for the rules and
          ``skip_unreadable``).
        - ``"h5:FILE"`` or ``"h5:FILE?key=NAME&key=NAME..."``: an HDF5 file. The evaluation
          split is the datasets named by keys ``x`` and ``y`` (default ``x_test`` and
          ``y_test``), the train split those of ``x_train`` and ``y_train`` (default the same
          names), and the optional ``class_names`` key names a 1-d string dataset (default
          ``class_names``, used if present). E.g. ``"h5:run.h5?x=eval/images&y=eval/labels"``.
          Only the leading ``h5:`` is a prefix, so FILE may hold colons; the keys follow the
          last ``?`` unless FILE itself (with its ``?``) exists; NAME may use %-escapes.
          Items are streamed by an :class:`~dldiag.sources.H5Source`; labels and class
          names are read whole.

        For ``idx:``, ``npz:`` and ``h5:``, items are converted by these rules: (N, F) stays
        (N, F), feature vectors; (N, H, W) becomes (N, 1, H, W); a 4-d array whose last axis
        is 1 or 3 and whose axes 1 and 2 are both larger than 4 is taken as channels-last
        (N, H, W, C) and transposed to (N, C, H, W); any other 4-d array is taken as
        (N, C, H, W). uint8 is divided by 255; other numeric types are cast to float32
        unchanged. Labels must be whole numbers >= 0, and < the number of class names when
        names are given.
    splits : tuple of {"train", "test"}, default=("train", "test")
        Splits to load; ``"test"`` (the evaluation split) is required. A split not
        requested is ``None`` in the result and its files are not read.
    skip_unreadable : bool, default=False
        For ``folder:``: leave out image files that cannot be read, with one warning, instead
        of stopping with an error naming them.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        If ``name`` or ``splits`` is not allowed (a ``folder:`` data set has no train split).
    DatasetNotFoundError
        If files are missing; the message lists every place looked and how to get the data.
    DatasetError
        If a file is corrupt or inconsistent, or a requested split holds no items; the
        message names the file (or data set) and the problem.

    Examples
    --------
    >>> d = load_dataset("digits", splits=("test",))
    >>> d.x_test.shape, d.x_train is None
    ((450, 1, 8, 8), True)
    """
    splits = _check_splits(splits)
    if not isinstance(name, str):
        raise ValueError(f"name must be one of {_FORMS}; got {name!r}")
    if name == "digits":
        return _load_digits(splits)
    if name == "fashion-mnist":
        return _load_fashion_mnist(splits)
    if name == "galaxies":
        return _load_galaxies(splits)
    for prefix, example in _PREFIXES.items():
        if name.startswith(prefix):
            target = name[len(prefix):]
            if not target or target.startswith("?"):
                raise ValueError(f"name {name!r} lacks a path after {prefix!r}; e.g. {example}")
            if prefix == "idx:":
                return _load_idx_dir(name, Path(target).expanduser(), splits)
            if prefix == "npz:":
                return _load_npz(name, Path(target).expanduser(), splits)
            if prefix == "folder:":
                return _load_folder(name, Path(target).expanduser(), splits, skip_unreadable)
            if prefix == "chunks:":
                return _load_chunks(name, Path(target).expanduser(), splits)
            return _load_h5(name, target, splits)
    raise ValueError(f"name must be one of {_FORMS}; got {name!r}")


_PREFIXES = {
    "idx:": "idx:data/my-idx",
    "npz:": "npz:data/my.npz",
    "folder:": "folder:data/my-images",
    "h5:": "h5:data/my.h5?x=images&y=labels",
    "chunks:": "chunks:/data/wide-1000000",
}
_FORMS = (
    ", ".join(repr(n) for n in DATASET_NAMES)
    + ", 'idx:DIR' (a folder in MNIST's IDX layout), 'folder:DIR' (one sub-folder of images "
    "per class), 'h5:FILE[?x=KEY&y=KEY]' (an HDF5 file), 'npz:FILE' (a NumPy archive) or "
    "'chunks:DIR' (a chunk store on disk)"
)


def _load_digits(splits: tuple[str, ...]) -> Dataset:
    import sklearn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=DIGITS_TEST_SIZE, random_state=DIGITS_RANDOM_STATE, stratify=y
    )
    keep = "train" in splits
    return Dataset(
        name="digits",
        x_train=np.ascontiguousarray(x_train) if keep else None,
        y_train=np.ascontiguousarray(y_train) if keep else None,
        x_test=np.ascontiguousarray(x_test),
        y_test=np.ascontiguousarray(y_test),
        class_names=tuple(str(i) for i in range(10)),
        sources=(f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__})",),
    )


def _fashion_mnist_folders() -> list[tuple[Path | None, str]]:
    """The lookup folders in order, each with a note for the not-found message."""
    folders: list[tuple[Path | None, str]] = [(_REPO_DATA_DIR / "fashion-mnist", "repository")]
    env = os.environ.get(_ENV_VAR, "")
    if env:
        base = Path(env).expanduser()
        folders += [(base, f"${_ENV_VAR}"), (base / "fashion-mnist", f"${_ENV_VAR}")]
    else:
        folders.append((None, f"${_ENV_VAR} is not set"))
    folders.append((_SYSTEM_DATA_DIR / "fashion-mnist", "Debian package dataset-fashion-mnist"))
    return folders


def _load_fashion_mnist(splits: tuple[str, ...]) -> Dataset:
    folders = _fashion_mnist_folders()
    found: dict[str, tuple[Path, Path]] = {}
    for split in splits:
        for folder, _ in folders:
            if folder is None:
                continue
            files = [_find_idx_file(folder, stem) for stem in IDX_FILES[split]]
            if all(files):
                found[split] = (files[0], files[1])
                break
    missing = [s for s in splits if s not in found]
    if missing:
        raise DatasetNotFoundError(_not_found_message(missing, folders))
    parts, sources = {}, {}
    for split, (images_path, labels_path) in found.items():
        x = _read_idx_images(images_path)
        y = _read_idx_labels(labels_path)
        _check_pair(x, y, str(images_path), str(labels_path))
        if x.shape[1:] != (1, 28, 28):
            raise DatasetError(
                f"{images_path}: Fashion-MNIST items must be 28×28 images; got items of "
                f"shape {x.shape[1:]}"
            )
        _check_label_range(y, len(FASHION_MNIST_CLASSES), str(labels_path), "Fashion-MNIST")
        parts[split] = (x, y)
        sources[split] = (str(images_path), str(labels_path))
    return _build("fashion-mnist", parts, FASHION_MNIST_CLASSES, sources)


def _load_galaxies(splits: tuple[str, ...]) -> Dataset:
    from . import galaxies

    parts, sources = {}, {}
    for split in splits:
        drawn = galaxies.galaxy_split(split)
        parts[split] = (drawn["x"].astype(np.float32) / np.float32(255.0), drawn["y"])
        sources[split] = (drawn["source"],)
    return _build("galaxies", parts, galaxies.CLASS_NAMES, sources)


def _not_found_message(missing_splits: list[str], folders) -> str:
    wanted = "; ".join(
        f"{s}: {IDX_FILES[s][0]}[.gz] and {IDX_FILES[s][1]}[.gz]" for s in missing_splits
    )
    lines = [
        f"fashion-mnist: no folder holds both files of the {' and '.join(missing_splits)} "
        f"split ({wanted}). Looked in, in order:"
    ]
    for folder, note in folders:
        if folder is None:
            lines.append(f"  - {note}")
            continue
        if not folder.is_dir():
            state = "no such folder"
        else:
            have = [
                stem
                for s in missing_splits
                for stem in IDX_FILES[s]
                if _find_idx_file(folder, stem) is not None
            ]
            state = "folder exists; has " + (", ".join(have) if have else "none of the files")
        lines.append(f"  - {folder} ({note}): {state}")
    lines.append(_FASHION_MNIST_HINT)
    return "\n".join(lines)


def _load_idx_dir(name: str, folder: Path, splits: tuple[str, ...]) -> Dataset:
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"{name}: folder {folder} does not exist (resolved: {folder.resolve()}); "
            "give a folder holding IDX files named like MNIST's: "
            + ", ".join(f"{s}[.gz]" for pair in IDX_FILES.values() for s in pair)
        )
    files = {}
    for split in splits:
        pair = [_find_idx_file(folder, stem) for stem in IDX_FILES[split]]
        if not all(pair):
            absent = [f"{stem}[.gz]" for stem, p in zip(IDX_FILES[split], pair) if p is None]
            raise DatasetNotFoundError(
                f"{name}: the {split} split needs {' and '.join(absent)} in {folder}; "
                "not found. An IDX folder holds "
                + ", ".join(f"{s}[.gz]" for pair in IDX_FILES.values() for s in pair)
                + " (and optionally class_names.txt, one name per line)"
            )
        files[split] = tuple(pair)

    parts, sources = {}, {}
    for split, (images_path, labels_path) in files.items():
        x = _read_idx_images(images_path)
        y = _read_idx_labels(labels_path)
        _check_pair(x, y, str(images_path), str(labels_path))
        parts[split] = (x, y)
        sources[split] = (str(images_path), str(labels_path))
    _check_same_item_shape(parts, {s: v[0] for s, v in sources.items()})

    names_path = folder / "class_names.txt"
    if names_path.is_file():
        class_names = _read_class_names(names_path)
        for split, (_, y) in parts.items():
            _check_label_range(y, len(class_names), sources[split][1], str(names_path))
        extra = (str(names_path),)
    else:
        top = max((int(y.max()) for _, y in parts.values() if y.size), default=0)
        for split in SPLITS:  # unrequested label files also count, so K does not vary
            if split not in parts:
                labels_path = _find_idx_file(folder, IDX_FILES[split][1])
                if labels_path is not None:
                    y = _read_idx_labels(labels_path)
                    top = max(top, int(y.max()) if y.size else 0)
        class_names = _numbered_class_names(top, f"{folder}", "class_names.txt in it")
        extra = ()
    return _build(name, parts, class_names, sources, extra)


def _load_npz(name: str, path: Path, splits: tuple[str, ...]) -> Dataset:
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{name}: file {path} does not exist (resolved: {path.resolve()}); give a .npz "
            "archive holding x_test, y_test (and x_train, y_train for the train split), "
            "e.g. written by np.savez(FILE, x_train=..., y_train=..., x_test=..., y_test=...)"
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise DatasetError(f"{path}: not a readable .npz archive: {exc}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetError(
            f"{path}: not a .npz archive (np.load returned a single array); save with "
            "np.savez(FILE, x_train=..., y_train=..., x_test=..., y_test=...)"
        )
    with archive:
        keys = set(archive.files)

        def get(key: str, why: str) -> np.ndarray:
            if key not in keys:
                raise DatasetError(
                    f"{path}: missing array {key!r} ({why}); the archive holds "
                    f"{sorted(keys) or 'no arrays'}"
                )
            try:
                return archive[key]
            except _READ_ERRORS as exc:
                raise DatasetError(f"{path}: cannot read array {key!r}: {exc}") from exc

        parts = {}
        for split in splits:
            why = "the evaluation split" if split == "test" else "for the train split"
            x = _as_items(get(f"x_{split}", why), f"{path}[x_{split}]")
            y = _as_labels(get(f"y_{split}", why), f"{path}[y_{split}]")
            _check_pair(x, y, f"{path}[x_{split}]", f"{path}[y_{split}]")
            parts[split] = (x, y)
        _check_same_item_shape(parts, {s: f"{path}[x_{s}]" for s in parts})

        if "class_names" in keys:
            raw = get("class_names", "")
            if raw.ndim != 1 or raw.dtype.kind not in "US":
                raise DatasetError(
                    f"{path}[class_names]: must be a 1-d array of strings; got "
                    f"{_describe(raw)}"
                )
            items = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in raw]
            class_names = _check_class_names(items, f"{path}[class_names]")
            for split, (_, y) in parts.items():
                _check_label_range(y, len(class_names), f"{path}[y_{split}]",
                                   f"{path}[class_names]")
        else:
            top = max((int(y.max()) for _, y in parts.values() if y.size), default=0)
            for split in SPLITS:  # unrequested labels also count, so K does not vary
                if split not in parts and f"y_{split}" in keys:
                    y = _as_labels(get(f"y_{split}", ""), f"{path}[y_{split}]")
                    top = max(top, int(y.max()) if y.size else 0)
            class_names = _numbered_class_names(top, str(path), "a 'class_names' array")
        feature_names = None
        if "feature_names" in keys:
            raw = get("feature_names", "")
            if raw.ndim != 1 or raw.dtype.kind not in "US":
                raise DatasetError(f"{path}[feature_names]: must be a 1-d array of strings; got {_describe(raw)}")
            feature_names = tuple(v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in raw)
    ds = _build(name, parts, class_names, {s: (str(path),) for s in parts})
    return ds if feature_names is None else replace(ds, feature_names=feature_names)


def _build(name, parts, class_names, sources, extra=()) -> Dataset:
    for split in SPLITS:
        # An empty split is well-formed arrays but no data: refused here, or it surfaces
        # later as a confusing error in training or in the full pass.
        if split in parts and len(parts[split][0]) == 0:
            raise DatasetError(
                f"dataset {name!r}: the {split} split holds no items (read from "
                f"{', '.join(sources.get(split, ())) or 'nowhere'}); it needs at least one"
            )
    train = parts.get("train", (None, None))
    x_test, y_test = parts["test"]
    seen = []
    for split in SPLITS:
        for s in sources.get(split, ()):
            if s not in seen:
                seen.append(s)
    return Dataset(
        name=name,
        x_train=train[0],
        y_train=train[1],
        x_test=x_test,
        y_test=y_test,
        class_names=tuple(class_names),
        sources=tuple(seen) + tuple(extra),
    )


# --------------------------------------------------------------------------------------------
# folder: and h5:
# --------------------------------------------------------------------------------------------


def _load_folder(name: str, folder: Path, splits: tuple[str, ...], skip_unreadable: bool
                 ) -> Dataset:
    if "train" in splits:
        raise ValueError(
            f"dataset {name!r} is an image folder, which holds only the evaluation split; "
            f"splits must be ('test',); got {splits!r}"
        )
    src = FolderSource(folder, skip_unreadable=skip_unreadable)
    return _build(name, {"test": (src, np.array(src.labels()))}, src.class_names,
                  {"test": (str(folder),)})


def _load_chunks(name: str, folder: Path, splits: tuple[str, ...]) -> Dataset:
    from .chunks import ChunkedSource

    if "train" in splits:
        raise ValueError(
            f"dataset {name!r} is a chunk store, which holds only the evaluation split; "
            f"splits must be ('test',); got {splits!r}"
        )
    src = ChunkedSource(folder)
    return _build(name, {"test": (src, src.labels())}, src.class_names, {"test": (str(folder),)})


def _parse_h5_target(name: str, target: str) -> tuple[Path, dict[str, str], set[str]]:
    """Split ``FILE[?key=NAME&...]`` into the file, the dataset name of every key, and the
    keys given explicitly."""
    path_text, query = target, ""
    if "?" in target and not Path(target).expanduser().is_file():
        path_text, query = target.rsplit("?", 1)
    if not path_text:
        raise ValueError(f"name {name!r} lacks a path after 'h5:'; e.g. {_PREFIXES['h5:']}")
    keys, given = dict(H5_KEYS), set()
    for part in query.split("&") if query else ():
        key, sep, value = part.partition("=")
        key = {"x_test": "x", "y_test": "y"}.get(unquote(key), unquote(key))
        if key not in H5_KEYS or not sep or not value:
            raise ValueError(
                f"name {name!r}: {part!r} must be key=NAME with key one of "
                f"{', '.join(H5_KEYS)} (x_test, y_test also mean x, y); e.g. "
                f"{_PREFIXES['h5:']}"
            )
        if key in given:
            raise ValueError(f"name {name!r}: key {key!r} is given twice")
        keys[key] = unquote(value)
        given.add(key)
    return Path(path_text).expanduser(), keys, given


def _h5_strings(ds, path: Path, key: str) -> list[str]:
    import h5py  # h5_open imported it already; this is a name lookup

    if ds.ndim != 1 or h5py.check_string_dtype(ds.dtype) is None:
        raise DatasetError(
            f"{path}[{key}]: class names must be a 1-d dataset of strings; got dtype "
            f"{ds.dtype} and shape {tuple(ds.shape)}"
        )
    try:
        return [str(v) for v in ds.asstr()[()]]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}[{key}]: cannot read class names: {exc}") from exc


def _load_h5(name: str, target: str, splits: tuple[str, ...]) -> Dataset:
    path, keys, given = _parse_h5_target(name, target)
    split_keys = {"test": (keys["x"], keys["y"]), "train": (keys["x_train"], keys["y_train"])}
    labels, names, other_top = {}, None, None
    with h5_open(path) as f:
        for split in splits:
            why = "the evaluation split" if split == "test" else "for the train split"
            x_key, y_key = split_keys[split]
            h5_dataset(f, x_key, path, why)
            y = h5_dataset(f, y_key, path, why)
            try:
                raw = np.asarray(y[()])
            except (OSError, ValueError) as exc:
                raise DatasetError(f"{path}[{y_key}]: cannot read labels: {exc}") from exc
            labels[split] = _as_labels(raw, f"{path}[{y_key}]")
        if "class_names" in given or keys["class_names"] in f:
            ds = h5_dataset(f, keys["class_names"], path, "the class names")
            names = _check_class_names(_h5_strings(ds, path, keys["class_names"]),
                                       f"{path}[{keys['class_names']}]")
        elif "train" not in splits and split_keys["train"][1] in f:
            # Unrequested train labels also count, so the class count does not vary with splits.
            y_key = split_keys["train"][1]
            y = _as_labels(np.asarray(h5_dataset(f, y_key, path)[()]), f"{path}[{y_key}]")
            other_top = int(y.max()) if y.size else None
    parts, sources = {}, {}
    for split in splits:
        x_key, y_key = split_keys[split]
        x = H5Source(path, x_key)
        _check_pair(x, labels[split], f"{path}[{x_key}]", f"{path}[{y_key}]")
        parts[split] = (x, labels[split])
        sources[split] = (str(path),)
    _check_same_item_shape(parts, {s: f"{path}[{split_keys[s][0]}]" for s in parts})
    if names is not None:
        for split, y in labels.items():
            _check_label_range(y, len(names), f"{path}[{split_keys[split][1]}]",
                               f"{path}[{keys['class_names']}]")
    else:
        tops = [int(y.max()) for y in labels.values() if y.size]
        if other_top is not None:
            tops.append(other_top)
        names = _numbered_class_names(max(tops, default=0), str(path),
                                      "a 'class_names' dataset")
    return _build(name, parts, names, sources)


# --------------------------------------------------------------------------------------------
# as_dataset: what a user hands to the Python API
# --------------------------------------------------------------------------------------------

_AS_DATASET_FORMS = (
    "an (x, y) pair of numpy arrays or torch tensors, a map-style torch Dataset yielding "
    "(x, y), a DataLoader over one, a spec string such as 'digits', 'npz:FILE', "
    "'folder:DIR' or 'h5:FILE', or a Dataset"
)


def as_dataset(data, *, class_names=None, name=None, skip_unreadable=False, feature_names=None) -> Dataset:
    """Turn the data a user hands to the Python API into a :class:`Dataset` (evaluation split).

    Parameters
    ----------
    data : tuple (x, y), torch Dataset, DataLoader, str, or Dataset
        - ``(x, y)``: numpy arrays or torch tensors, ``x`` of shape ``(N, *item_shape)`` (any
          item shape, e.g. images (N, C, H, W) or feature vectors (N, F)) and ``y`` of N
          integer labels. ``x`` is used as float32 with its values unchanged (no copy when it
          is already a float32 array or CPU tensor); ``y`` becomes int64 (floats with whole
          values are accepted).
        - a map-style ``torch.utils.data.Dataset`` whose ``ds[i]`` is ``(x, y)``: its items
          are streamed by a :class:`~dldiag.sources.TorchDatasetSource`, in index order.
          Class names default to ``dataset.classes`` when it is a list of strings. A
          ``TensorDataset`` of two tensors is taken as ``(x, y)``.
        - a ``DataLoader``: its ``.dataset`` as above (its sampler, batch size and
          ``collate_fn`` are not used). An ``IterableDataset`` cannot be indexed and is
          refused.
        - a spec string: ``load_dataset(data, splits=("test",))``, e.g. ``"folder:DIR"`` or
          ``"h5:FILE?x=images&y=labels"``.
        - a :class:`Dataset`: returned as is (with ``class_names`` and ``name`` applied if
          given).
    feature_names : sequence of str, optional
        For feature vectors (N, F): one name per feature (default: the data's own, e.g. an
        npz archive's ``feature_names``).
    class_names : sequence of str, optional
        One name per class. Without it: the data's own names (folder names, an archive's
        ``class_names``, ``dataset.classes``), else ``"0"`` .. ``"K-1"`` with K = 1 + the
        largest label. When the data name their classes, the count must match; otherwise it
        must exceed the largest label (more names than labels seen is allowed).
    name : str, optional
        The data set's name, part of the cache key. Default: the spec string; for arrays
        ``"arrays:"`` and for a torch Dataset its class name and ``":"``, followed by the
        first 12 hex digits of the items' digest, so it is stable across runs for the same
        data (computing it reads a streamed dataset once; the digest is cached).
    skip_unreadable : bool, default=False
        For ``folder:``: leave out unreadable image files with one warning instead of
        stopping with an error naming them.

    Returns
    -------
    Dataset
        With ``x_train`` and ``y_train`` ``None``, except for a :class:`Dataset` given with
        its train split.

    Raises
    ------
    DatasetError
        If labels are missing, not integers, negative or out of range for the class names,
        ``len(x) != len(y)``, the split is empty, items are not finite or of mixed shapes,
        ``class_names`` has the wrong length, or a file is unreadable; one line naming the
        problem.
    TypeError
        If ``data`` is of none of the forms above.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((6, 30), dtype=np.float32)
    >>> ds = as_dataset((x, np.array([0, 1, 1, 0, 1, 0])), class_names=["benign", "malignant"])
    >>> ds.item_shape, ds.n_classes, ds.name[:7]
    ((30,), 2, 'arrays:')
    """
    ds = _as_dataset(data, class_names, name, skip_unreadable)
    if feature_names is not None:
        if isinstance(feature_names, (str, bytes)):
            raise ValueError(f"feature_names must be a sequence of str, one per feature; got {feature_names!r}")
        ds = replace(ds, feature_names=tuple(feature_names))
    return ds


def _as_dataset(data, class_names, name, skip_unreadable) -> Dataset:
    """:func:`as_dataset` without the feature names."""
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"name must be a non-empty str or None; got {name!r}")
    if class_names is not None:
        if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__iter__"):
            raise ValueError(
                "class_names must be a sequence of str, one per class, e.g. ['cat', 'dog'], "
                f"or None; got {class_names!r}"
            )
        class_names = _check_class_names(list(class_names), "class_names")

    if isinstance(data, Dataset):
        return _renamed(data, class_names, name)
    if isinstance(data, str):
        ds = load_dataset(data, splits=("test",), skip_unreadable=skip_unreadable)
        return _renamed(ds, class_names, name)

    torch_data = _torch_data()
    if torch_data is not None:
        if isinstance(data, torch_data.DataLoader):
            data = data.dataset
        if isinstance(data, torch_data.IterableDataset):
            raise DatasetError(_iterable_message(data))
        if isinstance(data, torch_data.TensorDataset) and len(data.tensors) == 2:
            return _from_arrays(*data.tensors, class_names, name, "TensorDataset")
        if isinstance(data, torch_data.Dataset):
            return _from_torch_dataset(data, class_names, name)

    if isinstance(data, (tuple, list)) and len(data) == 2:
        return _from_arrays(data[0], data[1], class_names, name, "arrays")
    if isinstance(data, np.ndarray) or _is_tensor(data):
        raise DatasetError(
            f"labels are missing: data is a single {_kind(data)} of shape "
            f"{tuple(data.shape)}; give an (x, y) pair with y the N integer labels"
        )
    if isinstance(data, (tuple, list)):
        raise DatasetError(
            f"data must be an (x, y) pair; got a {type(data).__name__} of {len(data)} "
            "elements (labels missing if it is x alone)"
        )
    raise TypeError(f"data must be {_AS_DATASET_FORMS}; got {type(data).__name__}")


def _is_tensor(value) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _kind(value) -> str:
    return "torch tensor" if _is_tensor(value) else f"{type(value).__name__}"


def _user_array(value, what: str) -> np.ndarray:
    """A numpy view of a tensor or array given by the user (no copy where possible)."""
    if _is_tensor(value):
        value = value.detach().cpu()
        if value.dtype.is_floating_point and value.element_size() < 4:
            value = value.float()  # float16/bfloat16 have no (or no lossless) numpy type here
        return value.numpy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    raise DatasetError(
        f"{what} must be a numpy array or a torch tensor; got {type(value).__name__}"
    )


def _from_arrays(x, y, class_names, name, prefix: str) -> Dataset:
    if y is None:
        raise DatasetError(
            "labels are missing: y is None; give an (x, y) pair with y the N integer labels"
        )
    x = _user_array(x, "x")
    y = _user_array(y, "y")
    if x.dtype.kind not in "uifb":
        raise DatasetError(f"x: items must be numeric; got dtype {x.dtype}")
    if x.ndim < 2:
        raise DatasetError(
            f"x must have shape (N, *item_shape), at least 2 dimensions; got shape {x.shape} "
            "(for one feature per item give x[:, None])"
        )
    y = _as_labels(y, "y")
    if len(x) != len(y):
        raise DatasetError(
            f"count mismatch: x holds {len(x)} items but y holds {len(y)} labels; give one "
            "label per item"
        )
    if len(x) == 0:
        raise DatasetError("x and y hold no items; the evaluation split needs at least one")
    x = x if x.dtype == np.float32 else x.astype(np.float32)
    check_finite(x, "x")
    names = _resolve_class_names(y, class_names, None, "y", "")
    digest = items_digest(x)
    ds = Dataset(
        name=name or f"{prefix}:{digest[:12]}",
        x_train=None,
        y_train=None,
        x_test=x,
        y_test=y,
        class_names=names,
        sources=(f"{prefix} given in Python",),
    )
    # The name needed the digest already; seed the fingerprint's cache so it is not redone.
    ds.__dict__["_x_test_digest"] = digest
    return ds


def _from_torch_dataset(dataset, class_names, name) -> Dataset:
    src = TorchDatasetSource(dataset)
    y = src.labels()
    own = getattr(dataset, "classes", None)
    if not (isinstance(own, (list, tuple)) and own and all(isinstance(c, str) for c in own)):
        own = None
    kind = type(dataset).__name__
    names = _resolve_class_names(y, class_names, own, f"torch dataset {kind} labels",
                                 f"torch dataset {kind}.classes")
    return Dataset(
        name=name or f"{kind}:{src.digest()[:12]}",
        x_train=None,
        y_train=None,
        x_test=src,
        y_test=np.array(y),
        class_names=names,
        sources=(f"torch dataset {kind}",),
    )


def _resolve_class_names(y, given, own, y_source: str, own_source: str) -> tuple[str, ...]:
    """The class names: ``given`` if not None (checked against ``own``, the data's names, and
    the labels), else ``own``, else numbered names."""
    if given is not None:
        if own is not None and len(given) != len(own):
            raise DatasetError(
                f"class_names gives {len(given)} names but {own_source} names {len(own)} "
                f"classes ({_short(own)}); give one name per class"
            )
        _check_label_range(y, len(given), y_source, "class_names")
        return tuple(given)
    if own is not None:
        own = _check_class_names(own, own_source)
        _check_label_range(y, len(own), y_source, own_source)
        return own
    return _numbered_class_names(int(y.max()) if y.size else 0, y_source,
                                 "class_names")


def _short(names, limit: int = 5) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (", …" if len(names) > limit else "")


def _renamed(ds: Dataset, class_names, name) -> Dataset:
    if class_names is None and name is None:
        return ds
    changes = {}
    if name is not None:
        changes["name"] = name
    if class_names is not None:
        numbered = ds.class_names == tuple(str(i) for i in range(ds.n_classes))
        own = None if numbered else ds.class_names
        for split, y in (("test", ds.y_test), ("train", ds.y_train)):
            if y is not None:
                _resolve_class_names(y, class_names, own, f"dataset {ds.name!r} y_{split}",
                                     f"dataset {ds.name!r}")
        changes["class_names"] = tuple(class_names)
    return replace(ds, **changes)
