"""Chunk stores: evaluation data on disk in .npy chunks, written resumably and read streaming."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from dldiag.chunks import ChunkedSource, ChunkWriter, read_manifest
from dldiag.datasets import load_dataset
from dldiag.sources import DatasetError, DatasetNotFoundError


def _write(folder, x, y, names=("a", "b", "c"), chunk_items=4, dtype="uint8"):
    w = ChunkWriter(folder, len(x), x.shape[1:], names, chunk_items=chunk_items, dtype=dtype)
    for c in w.missing():
        lo, hi = w.bounds(c)
        w.write(c, x[lo:hi])
    w.finish(y)
    return w


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(11, 1, 3, 2), dtype=np.uint8)
    y = rng.integers(0, 3, size=11)
    _write(tmp_path / "s", x, y)
    return tmp_path / "s", x, y


def test_items_read_back_as_the_other_loaders_read_uint8(store):
    folder, x, y = store
    src = ChunkedSource(folder)
    assert src.shape == (11, 1, 3, 2) and src.n_chunks == 3 and src.chunk_bounds(2) == (8, 11)
    want = x.astype(np.float32) / np.float32(255.0)
    np.testing.assert_array_equal(src[:], want)
    # runs across chunk edges, scattered items, repeats and negative indices, in the order asked
    for idx in ([3, 4, 5], [10, 0, 7, 7, 2], [-1], np.array([8, 9, 10, 1])):
        np.testing.assert_array_equal(src[idx], want[idx])
    np.testing.assert_array_equal(src.labels(), y)
    assert src.class_names == ("a", "b", "c")


def test_float32_stores_keep_their_values(tmp_path):
    x = np.linspace(-1, 1, 30, dtype=np.float32).reshape(10, 3)
    _write(tmp_path / "f", x, np.zeros(10, dtype=int), chunk_items=3, dtype="float32")
    np.testing.assert_array_equal(ChunkedSource(tmp_path / "f")[:], x)


def test_a_crashed_write_keeps_finished_chunks_and_rewrites_the_rest(tmp_path):
    x = np.arange(10 * 2, dtype=np.uint8).reshape(10, 2)
    w = ChunkWriter(tmp_path / "s", 10, (2,), ["a"], chunk_items=4)
    w.write(0, x[:4])
    w.write(1, x[4:8])
    # a crash after chunk 2's file was renamed in but before its hash was recorded
    np.save(tmp_path / "s" / "x-00002.npy", x[8:])
    with pytest.raises(DatasetNotFoundError, match="still being written"):
        read_manifest(tmp_path / "s")
    w2 = ChunkWriter(tmp_path / "s", 10, (2,), ["a"], chunk_items=4)
    assert w2.missing() == [2]
    with pytest.raises(RuntimeError, match="1 chunk"):
        w2.finish(np.zeros(10, dtype=int))
    w2.write(2, x[8:])
    w2.finish(np.zeros(10, dtype=int))
    src = ChunkedSource(tmp_path / "s")
    np.testing.assert_array_equal(np.rint(src[:] * 255).astype(np.uint8), x)
    assert src.verify() == []
    assert not [p for p in os.listdir(tmp_path / "s") if p.endswith(".tmp")]


def test_the_digest_changes_when_a_chunk_changes_and_verify_names_it(store):
    folder, x, _ = store
    before = ChunkedSource(folder).digest()
    assert ChunkedSource(folder).digest() == before
    path = folder / "x-00001.npy"
    arr = np.load(path)
    arr[0, 0, 0, 0] ^= 1
    np.save(path, arr)
    os.utime(path, ns=(1, 1))  # even with an old mtime, the size+mtime pair changed
    src = ChunkedSource(folder)
    assert src.digest() != before
    assert src.verify() == ["x-00001.npy"]


def test_a_source_pickles_without_its_open_maps(store):
    folder, x, _ = store
    src = ChunkedSource(folder)
    first = src[[9]]
    assert src._maps
    clone = pickle.loads(pickle.dumps(src))
    assert clone._maps == {}  # reopened on first read, in the process that reads
    np.testing.assert_array_equal(clone[[9]], first)


def test_chunks_data_set_and_its_errors(store, tmp_path):
    folder, x, y = store
    ds = load_dataset(f"chunks:{folder}", splits=("test",))
    assert ds.name == f"chunks:{folder}" and ds.class_names == ("a", "b", "c") and ds.n_classes == 3
    np.testing.assert_array_equal(ds.y_test, y)
    with pytest.raises(ValueError, match="holds only the evaluation split"):
        load_dataset(f"chunks:{folder}")
    with pytest.raises(DatasetNotFoundError, match="no manifest.json"):
        load_dataset(f"chunks:{tmp_path / 'nothing'}", splits=("test",))
    m = json.loads((folder / "manifest.json").read_text())
    m["chunks"][0]["items"] = 5
    (folder / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DatasetError, match="the chunks hold 12 items, the manifest says n_items=11"):
        ChunkedSource(folder)


def test_writer_errors_name_the_value(tmp_path):
    w = ChunkWriter(tmp_path / "s", 5, (2,), ["a", "b"], chunk_items=2)
    with pytest.raises(ValueError, match=r"chunk 0 must be uint8 of shape \(2, 2\); got float64 \(2, 2\)"):
        w.write(0, np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"index must be in \[0, 3\); got 3"):
        w.write(3, np.zeros((1, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="dtype must be one of"):
        ChunkWriter(tmp_path / "t", 5, (2,), ["a"], dtype="int16")
    for c in w.missing():
        lo, hi = w.bounds(c)
        w.write(c, np.zeros((hi - lo, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\); got 0 to 2"):
        w.finish(np.array([0, 1, 2, 0, 0]))
    w.finish(np.array([0, 1, 1, 0, 0]))
    with pytest.raises(ValueError, match="holds another store"):
        ChunkWriter(tmp_path / "s", 6, (2,), ["a", "b"], chunk_items=2)
