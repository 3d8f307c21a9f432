"""Tests of dldiag.sources: item sources behave like the float32 array they stand for.

Fixtures are scikit-learn's bundled digits written as PNG files (grayscale and RGB) and as
HDF5 files into ``tmp_path``, and a small torch Dataset over the same arrays. Every source is
compared with the numpy array holding the same values.
"""

from __future__ import annotations

import pickle
import re
import tracemalloc
import warnings

import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from dldiag.sources import (
    DatasetError,
    DatasetNotFoundError,
    FolderSource,
    H5Source,
    ItemSource,
    TorchDatasetSource,
    items_digest,
)


# --------------------------------------------------------------------------------------------
# Fixture writers
# --------------------------------------------------------------------------------------------


def digits_uint8(n: int, seed: int = 0):
    """``n`` digits as uint8 8×8 images (values 0..16 scaled to 0..255) and their labels."""
    bunch = load_digits()
    pick = np.random.default_rng(seed).choice(len(bunch.images), size=n, replace=False)
    images = np.round(bunch.images[pick] * (255 / 16)).astype(np.uint8)
    return images, bunch.target[pick].astype(np.int64)


def as_rgb(images: np.ndarray) -> np.ndarray:
    """Three different channels per digit, (n, 8, 8, 3): the digit, its negative, its half."""
    return np.stack([images, 255 - images, images // 2], axis=-1)


def write_folder(root, images, labels, *, names=None):
    """Write each image as ``root/<class name>/<index>.png``; return (x, y) in item order.

    FolderSource's classes are the sorted sub-folders that exist, and its items are ordered by
    class, then by file name (zero-padded indices here); (x, y) are given in that order, with
    y the index of the item's sub-folder.
    """
    names = names or [f"digit-{k}" for k in range(10)]
    for i, (im, label) in enumerate(zip(images, labels)):
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(folder / f"{i:04d}.png")
    present = sorted({names[label] for label in labels})
    y = np.array([present.index(names[label]) for label in labels], dtype=np.int64)
    order = np.argsort(y, kind="stable")
    x = images[order].astype(np.float32) / np.float32(255.0)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x), y[order]


class PairDataset(torch.utils.data.Dataset):
    """A map-style Dataset over arrays, counting its item reads."""

    def __init__(self, x, y, *, targets=None, target_transform=None):
        self.x, self.y = x, y
        self.reads = 0
        if targets is not None:
            self.targets = targets
        self.target_transform = target_transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        self.reads += 1
        return torch.from_numpy(self.x[i]), int(self.y[i])


@pytest.fixture(scope="module")
def gray(tmp_path_factory):
    """A FolderSource of 40 grayscale PNG digits and the array it stands for."""
    root = tmp_path_factory.mktemp("gray")
    x, y = write_folder(root, *digits_uint8(40))
    return FolderSource(root), x, y


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    root = tmp_path_factory.mktemp("rgb")
    images, labels = digits_uint8(40, seed=1)
    x, y = write_folder(root, as_rgb(images), labels)
    return FolderSource(root), x, y


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    """An H5Source over 40 float32 digits (N, 1, 8, 8) and the array it stands for."""
    images, labels = digits_uint8(40, seed=2)
    x = images[:, None].astype(np.float32) / np.float32(255.0)
    path = tmp_path_factory.mktemp("h5") / "digits.h5"
    with h5py.File(path, "w") as f:
        f["x_test"] = x
    return H5Source(path, "x_test"), x, labels


@pytest.fixture(scope="module")
def torch_ds():
    images, labels = digits_uint8(40, seed=3)
    x = images[:, None].astype(np.float32) / np.float32(255.0)
    return TorchDatasetSource(PairDataset(x, labels)), x, labels


SOURCES = ("gray", "rgb", "h5", "torch_ds")


# --------------------------------------------------------------------------------------------
# The array contract, for every source
# --------------------------------------------------------------------------------------------

KEYS = [
    0,
    -1,
    17,
    np.int64(3),
    np.array(5),
    slice(2, 9),
    slice(None),
    slice(None, None, -3),
    slice(30, 10, -4),
    slice(38, 100),
    [3, 1, 3],
    np.array([7, -2, 0, 7]),
    np.array([[1, 2], [3, 0]]),
    np.arange(40) % 3 == 0,
    [],
    np.array([], dtype=np.int64),
    (slice(None), 0),
    ([4, 2], 0, slice(1, 3)),
    (5, 0, 3),
]


@pytest.mark.parametrize("which", SOURCES)
def test_attributes(which, request):
    src, x, _ = request.getfixturevalue(which)
    assert isinstance(src, ItemSource)
    assert len(src) == len(x) and src.shape == x.shape and src.ndim == x.ndim
    assert src.dtype == np.float32 and src.item_shape == x.shape[1:]


@pytest.mark.parametrize("which", SOURCES)
@pytest.mark.parametrize("key", KEYS, ids=lambda k: re.sub(r"\s+", "", repr(k))[:40])
def test_indexing_equals_numpy(which, key, request):
    src, x, _ = request.getfixturevalue(which)
    got, want = src[key], x[key]
    assert got.dtype == np.float32 and got.shape == want.shape
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)
    if got.size and not isinstance(key, tuple):
        assert got.ctypes.data % 64 == 0  # see test_a_pass_over_a_source


@pytest.mark.parametrize("which", SOURCES)
def test_out_of_range_and_bad_keys(which, request):
    src, x, _ = request.getfixturevalue(which)
    n = len(x)
    for key in (n, -n - 1, [0, n], np.array([-n - 5])):
        with pytest.raises(IndexError):
            x[key]  # numpy refuses the same keys
        bad = np.ravel(key)[-1] if not isinstance(key, int) else key
        with pytest.raises(IndexError, match=rf"index {bad} is out of range for .* which holds "
                                             rf"N={n} items \(valid: -{n} to {n - 1}\)"):
            src[key]
    with pytest.raises(IndexError, match=r"only integers, slices, integer arrays and boolean "
                                         r"masks .* float64"):
        src[np.array([1.0, 2.0])]
    with pytest.raises(IndexError, match=r"boolean index .* must have shape \(40,\); got "
                                         r"shape \(3,\)"):
        src[np.array([True, False, True])]


@pytest.mark.parametrize("which", SOURCES)
def test_digest_equals_the_arrays_and_is_cached(which, request, monkeypatch):
    src, x, _ = request.getfixturevalue(which)
    assert src.digest() == items_digest(x)
    assert re.fullmatch(r"[0-9a-f]{64}", src.digest())
    # Cached: a second call reads nothing.
    calls = []
    monkeypatch.setattr(type(src), "_read_unique",
                        lambda self, idx: calls.append(idx) or pytest.fail("read again"))
    assert src.digest() == items_digest(x) and calls == []


def test_digest_is_sensitive_to_values_and_shape(h5):
    _, x, _ = h5
    changed = x.copy()
    changed[13, 0, 4, 4] += 1e-3
    assert items_digest(changed) != items_digest(x)
    assert items_digest(x.reshape(40, 64)) != items_digest(x)  # same bytes, other shape
    # float64 arrays are hashed as their float32 values
    assert items_digest(x.astype(np.float64)) == items_digest(x)


@pytest.mark.parametrize("which", SOURCES)
def test_iteration_asarray_and_pickle(which, request):
    src, x, _ = request.getfixturevalue(which)
    np.testing.assert_array_equal(np.stack(list(src)), x)
    np.testing.assert_array_equal(np.asarray(src), x)
    assert np.asarray(src, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match=r"copy=False cannot be met for .*: its items are read "):
        np.asarray(src, copy=False)
    if which != "torch_ds":  # the test's Dataset class is local to this module
        again = pickle.loads(pickle.dumps(src))
        np.testing.assert_array_equal(again[[5, 1]], x[[5, 1]])


# --------------------------------------------------------------------------------------------
# Reads grow with the batch, not with N
# --------------------------------------------------------------------------------------------


def test_h5_batch_reads_only_its_items(tmp_path, monkeypatch):
    n = 2000
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8)  # 6.3 MB as float32
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as f:
        f["x_test"] = x
    src = H5Source(path, "x_test")
    assert src.item_shape == (1, 28, 28)

    rows_read = []
    original = h5py.Dataset.__getitem__

    def spy(self, key, *args, **kwargs):
        out = original(self, key, *args, **kwargs)
        rows_read.append(len(out))
        return out

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    idx = np.array([1999, 5, 700, 5, 1200])
    tracemalloc.start()
    try:
        batch = src[idx]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(batch, x[idx].astype(np.float32) / np.float32(255))
    assert rows_read == [4]  # the 4 distinct items, in one fancy read
    full = n * 28 * 28 * 4
    assert peak < full / 50, f"reading 5 items peaked at {peak} bytes; all N are {full}"

    rows_read.clear()
    np.testing.assert_array_equal(src[100:164], x[100:164].astype(np.float32) / np.float32(255))
    assert rows_read == [64]


def test_folder_batch_opens_only_its_files(tmp_path, monkeypatch):
    n = 2000
    images, labels = digits_uint8(1797)
    images = np.concatenate([images, images[: n - 1797]])
    labels = np.concatenate([labels, labels[: n - 1797]])
    x, _ = write_folder(tmp_path, images, labels)
    src = FolderSource(tmp_path)
    assert len(src) == n

    opened = []
    original = Image.open

    def spy(fp, *args, **kwargs):
        opened.append(fp)
        return original(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", spy)
    idx = np.array([1999, 0, 1999, 1000, 17])
    np.testing.assert_array_equal(src[idx], x[idx])
    assert sorted(opened) == sorted(src.files[i] for i in {1999, 0, 1000, 17})
    opened.clear()
    assert src[-1].shape == (1, 8, 8) and opened == [src.files[-1]]


def test_torch_source_reads_only_the_batch():
    images, labels = digits_uint8(300, seed=5)
    ds = PairDataset(images[:, None].astype(np.float32), labels)
    src = TorchDatasetSource(ds)
    assert ds.reads == 1  # item 0, for the item shape
    src[[299, 7, 7, 150]]
    assert ds.reads == 1 + 3


# --------------------------------------------------------------------------------------------
# TorchDatasetSource
# --------------------------------------------------------------------------------------------


def test_torch_labels_from_targets_read_no_items():
    images, labels = digits_uint8(50, seed=6)
    x = images[:, None].astype(np.float32)
    ds = PairDataset(x, labels, targets=torch.from_numpy(labels))
    src = TorchDatasetSource(ds)
    np.testing.assert_array_equal(src.labels(), labels)
    assert src.labels().dtype == np.int64 and ds.reads == 1
    ds_list = PairDataset(x, labels, targets=labels.tolist())  # CIFAR-style list
    np.testing.assert_array_equal(TorchDatasetSource(ds_list).labels(), labels)


def test_torch_labels_streamed_once_with_the_digest():
    images, labels = digits_uint8(50, seed=7)
    x = images[:, None].astype(np.float32)
    ds = PairDataset(x, labels)
    src = TorchDatasetSource(ds)
    np.testing.assert_array_equal(src.labels(), labels)
    assert ds.reads == 1 + 50
    assert src.digest() == items_digest(x) and ds.reads == 51  # computed in the same pass


@pytest.mark.parametrize("why", ["targets disagree", "target_transform"])
def test_torch_targets_not_trusted(why):
    images, labels = digits_uint8(20, seed=8)
    x = images[:, None].astype(np.float32)
    if why == "targets disagree":
        ds = PairDataset(x, labels, targets=(labels + 1) % 10)
    else:
        ds = PairDataset(x, labels, targets=labels, target_transform=lambda t: t)
    src = TorchDatasetSource(ds)
    np.testing.assert_array_equal(src.labels(), labels)
    assert ds.reads == 21


def test_torch_source_errors():
    class Items(torch.utils.data.Dataset):
        def __init__(self, items):
            self.items = items

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    with pytest.raises(DatasetError, match=r"torch dataset Items: item 0 is a Tensor, not an "
                                           r"\(x, y\) pair; labels are missing"):
        TorchDatasetSource(Items([torch.zeros(3)]))
    with pytest.raises(DatasetError, match=r"item 0 is a 3-tuple, not an \(x, y\) pair"):
        TorchDatasetSource(Items([(torch.zeros(3), 0, "extra")]))
    with pytest.raises(DatasetError, match=r"item 1 has shape \(4,\) but item 0 has \(3,\); "
                                           r"every item must have one shape"):
        TorchDatasetSource(Items([(torch.zeros(3), 0), (torch.zeros(4), 1)]))[[0, 1]]
    with pytest.raises(DatasetError, match=r"item 1's label has shape \(2,\); give one integer "
                                           r"label per item \(one-hot"):
        TorchDatasetSource(Items([(torch.zeros(3), 0), (torch.zeros(3), torch.ones(2))])).labels()
    with pytest.raises(DatasetError, match=r"labels must be integers.*float64 with non-integral"):
        TorchDatasetSource(Items([(torch.zeros(3), 0.5), (torch.zeros(3), 1.0)])).labels()
    with pytest.raises(DatasetError, match=r"item 0's x is a PIL image; .*ToTensor"):
        TorchDatasetSource(Items([(Image.new("L", (4, 4)), 0)]))
    with pytest.raises(DatasetError, match=r"the dataset holds no items"):
        TorchDatasetSource(Items([]))
    with pytest.raises(DatasetError, match=r"Items: items must be finite; found 1 NaN/inf "
                                           r"values \(as float32\), the first at index \(0, 1\)"):
        TorchDatasetSource(Items([(torch.tensor([0.0, float("nan")]), 0)]))[0]

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield torch.zeros(3), 0

    with pytest.raises(DatasetError, match=r"Stream is an IterableDataset, which cannot be "
                                           r"indexed; .*pass a map-style Dataset"):
        TorchDatasetSource(Stream())


# --------------------------------------------------------------------------------------------
# FolderSource: layout, colour, policies
# --------------------------------------------------------------------------------------------


def test_folder_classes_labels_and_files(gray):
    src, x, y = gray
    assert src.class_names == tuple(f"digit-{k}" for k in range(10))  # all 10 drawn
    np.testing.assert_array_equal(src.labels(), y)
    assert src.files[0].parent.name == f"digit-{y[0]}"
    assert src.item_shape == (1, 8, 8)
    assert 0.0 <= x.min() and x.max() == 1.0


def test_folder_rgb_is_three_channels(rgb):
    src, x, _ = rgb
    assert src.item_shape == (3, 8, 8)
    # the three channels differ, so a channel mix-up would show
    assert not np.array_equal(src[0][0], src[0][1])


def test_folder_mixed_gray_and_rgb_reads_all_as_rgb(tmp_path):
    images, _ = digits_uint8(2, seed=9)
    colour = as_rgb(images[1:])[0]
    (tmp_path / "a").mkdir()
    Image.fromarray(images[0]).save(tmp_path / "a" / "1-gray.png")
    Image.fromarray(colour).save(tmp_path / "a" / "2-rgb.png")
    src = FolderSource(tmp_path)
    assert src.item_shape == (3, 8, 8)
    gray = images[0] / np.float32(255)
    np.testing.assert_array_equal(src[0], np.stack([gray] * 3))
    np.testing.assert_array_equal(src[1], colour.transpose(2, 0, 1) / np.float32(255))


def test_folder_16_bit_and_jpeg_and_ignored_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    deep = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    Image.fromarray(deep).save(tmp_path / "a" / "deep.png")
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(tmp_path / "b" / "x.JPEG")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / ".hidden.png").write_bytes(b"junk")
    (tmp_path / "loose.png").write_bytes(b"junk")  # outside every class folder
    (tmp_path / ".cache").mkdir()
    src = FolderSource(tmp_path)
    assert src.class_names == ("a", "b") and len(src) == 2
    np.testing.assert_allclose(src[0][0], deep / 65535.0, rtol=1e-6)
    assert abs(float(src[1].mean()) - 200 / 255) < 0.02  # JPEG is lossy


def test_folder_unreadable_files_stop_or_are_skipped(tmp_path):
    images, labels = digits_uint8(20, seed=10)
    write_folder(tmp_path, images, labels)
    first = sorted((tmp_path).glob("digit-*"))[0]
    (first / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (first / "empty.jpg").write_bytes(b"")
    with pytest.raises(DatasetError) as err:
        FolderSource(tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert re.search(r"2 of 22 image files cannot be read: .*broken\.png \(.*\); "
                     r".*empty\.jpg \(.*\); fix or remove them, or pass skip_unreadable=True",
                     message)
    with pytest.warns(UserWarning, match=r"left out 2 of 22 image files that cannot be read"):
        src = FolderSource(tmp_path, skip_unreadable=True)
    assert len(src) == 20 and all(p.stat().st_size for p in src.files)


def test_folder_many_unreadable_files_are_counted(tmp_path):
    (tmp_path / "c").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "c" / "good.png")
    for i in range(8):
        (tmp_path / "c" / f"bad{i}.png").write_bytes(b"nope")
    with pytest.raises(DatasetError, match=r"8 of 9 image files cannot be read: "
                                           r"(c/bad\d\.png \([^)]*\); ){4}c/bad4\.png \([^)]*\) "
                                           r"and 3 more;"):
        FolderSource(tmp_path)


def test_folder_mixed_sizes_names_two_files(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a" / "1.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a" / "2.png")
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(tmp_path / "a" / "3.png")
    with pytest.raises(DatasetError, match=r"images differ in size: a/1\.png is 8×8 "
                                           r"\(width×height\) but a/3\.png is 12×10; all images "
                                           r"must have one size"):
        FolderSource(tmp_path)


def test_folder_layout_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"folder:.*absent: folder does not exist"):
        FolderSource(tmp_path / "absent")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "loose.png")
    with pytest.raises(DatasetError, match=r"no class sub-folders; a folder data set holds one "
                                           r"sub-folder per class"):
        FolderSource(tmp_path)
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"its 1 class sub-folders \(cats\) hold no PNG or "
                                           r"JPEG files"):
        FolderSource(tmp_path)


def test_folder_damaged_pixels_are_named_on_read(tmp_path):
    (tmp_path / "a").mkdir()
    path = tmp_path / "a" / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])  # header intact, pixel data cut
    src = FolderSource(tmp_path)
    with pytest.raises(DatasetError, match=r"folder:.*: cannot read .*cut\.png: "):
        src[0]


# --------------------------------------------------------------------------------------------
# H5Source: layouts and errors
# --------------------------------------------------------------------------------------------


def test_h5_layouts(tmp_path):
    rng = np.random.default_rng(11)
    hwc = rng.integers(0, 256, size=(6, 8, 9, 3), dtype=np.uint8)
    vectors = rng.random((6, 30))
    hw = rng.random((6, 5, 5)).astype(np.float32)
    path = tmp_path / "layouts.h5"
    with h5py.File(path, "w") as f:
        f["hwc"], f["group/vectors"], f["hw"] = hwc, vectors, hw
    src = H5Source(path, "hwc")
    assert src.item_shape == (3, 8, 9)
    np.testing.assert_array_equal(src[[4, 0]], hwc[[4, 0]].transpose(0, 3, 1, 2) / np.float32(255))
    src = H5Source(path, "group/vectors")
    assert src.item_shape == (30,)
    np.testing.assert_array_equal(src[::-1], vectors[::-1].astype(np.float32))
    assert H5Source(path, "hw").item_shape == (1, 5, 5)


def test_h5_errors(tmp_path):
    path = tmp_path / "e.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros((3, 4))
        f["labels"] = np.zeros(3)
        f["names"] = np.array([b"a", b"b"])
        f["bad"] = np.array([[0.0, np.inf]])
        f.create_group("grp")
    with pytest.raises(DatasetError, match=re.escape(str(path)) + r": no dataset 'images'; the "
                                           r"file holds bad \(1, 2\) float64, labels \(3,\) "
                                           r"float64, names \(2,\) \|S1, x \(3, 4\) float64$"):
        H5Source(path, "images")
    with pytest.raises(DatasetError, match=r"a group, not a dataset, 'grp'"):
        H5Source(path, "grp")
    with pytest.raises(DatasetError, match=r"items must have 2 to 4 dimensions.*got shape \(3,\)"):
        H5Source(path, "labels")
    with pytest.raises(DatasetError, match=r"\[names\]: items must be numeric; got dtype \|S1"):
        H5Source(path, "names")
    with pytest.raises(DatasetError, match=r"\[bad\]: items must be finite; found 1 NaN/inf "
                                           r"values \(as float32\), the first at index \(0, 1\)"):
        H5Source(path, "bad")[0]
    with pytest.raises(DatasetNotFoundError, match=r"h5:.*nope\.h5: file does not exist"):
        H5Source(tmp_path / "nope.h5", "x")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(DatasetError, match=r"text\.h5: not a readable HDF5 file"):
        H5Source(tmp_path / "text.h5", "x")


# --------------------------------------------------------------------------------------------
# The library's pass reads a source as it reads an array
# --------------------------------------------------------------------------------------------


def test_a_pass_over_a_source(h5):
    from dldiag.activations import run_pass
    from dldiag.models import build_model, default_layers, latent_layer

    src, x, y = h5
    model = build_model("small-cnn", (1, 8, 8), 10).eval()
    gen = torch.Generator().manual_seed(0)  # any weights do: one model sees both data forms
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    layers = default_layers(model)
    kwargs = dict(n_classes=10, latent_layer=latent_layer(model), batch_size=16)
    from_array = run_pass(model, x, y, layers, **kwargs)
    full = run_pass(model, src, y, layers, **kwargs)
    np.testing.assert_array_equal(full.y_pred, from_array.y_pred)
    np.testing.assert_allclose(full.latent, from_array.latent, rtol=1e-5, atol=1e-6)
    # A sample of every item reads fresh, equally aligned batches: bit-identical to the full
    # pass, which is what makes fraction 1.0 score S1 = 1, S2 = S3 = 0 exactly.
    every = run_pass(model, src, y, layers, indices=np.arange(len(y)), **kwargs)
    np.testing.assert_array_equal(every.latent, full.latent)
    np.testing.assert_array_equal(every.probs, full.probs)
