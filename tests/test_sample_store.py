"""The sample store: a sample's activations written once to disk, every question answered by reading it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dldiag.queries import answer, answer_rows
from dldiag.sample_store import open_store, store_error, write_store


@pytest.fixture(scope="module")
def sample(digits_ws):
    return digits_ws, digits_ws.fitted_sampler("random").sample(0.3, seed=2)


def test_a_group_read_from_the_store_is_the_sample_pass_s_answer(sample):
    ws, idx = sample
    store = ws.sample_store(idx, dtype="float32")
    agg = ws.sample_pass(idx).aggregates
    for layer in ws.layers:
        for mode in ("flat", "channel"):
            for group in (dict(cls=3, outcome="correct"), dict(outcome="correct"), dict(cls=5, predicted=5)):
                got = store.answer(layer, 5, mode=mode, **group)
                want = answer(agg[layer, mode], 5, **group)
                assert got.count == want.count
                np.testing.assert_allclose(got.mean, want.mean, rtol=1e-5, atol=1e-6)
                np.testing.assert_array_equal(got.top, want.top)
                np.testing.assert_array_equal(got.argmax_dist, want.argmax_dist)
    assert store.rows(ws.layers[0]).shape == (len(idx), ws.full[ws.layers[0], "flat"].n_units)
    assert isinstance(store.rows(ws.layers[0]), np.memmap)


def test_a_selection_is_answered_from_the_stored_rows_without_a_pass(sample, monkeypatch):
    ws, idx = sample
    store = ws.sample_store(idx, dtype="float32")
    import dldiag.sample_store as mod

    def no_pass(*args, **kwargs):
        raise AssertionError("a forward pass was run")

    monkeypatch.setattr(mod, "collect_activations", no_pass)
    again = ws.sample_store(idx, dtype="float32")  # the finished store is opened, not rewritten
    sel = np.arange(0, 450, 3)
    got = again.answer("fc1", 5, selection=sel)
    rows = np.flatnonzero(np.isin(idx, sel))
    want = answer_rows(np.asarray(store.rows("fc1"))[rows], 5)
    assert got.count == len(rows) and np.array_equal(got.top, want.top)


def test_float16_halves_the_bytes_and_changes_the_answers_by_rounding_only(sample):
    ws, idx = sample
    f16, f32 = ws.sample_store(idx), ws.sample_store(idx, dtype="float32")
    assert f16.dtypes[f"{ws.layers[0]}/flat"] == "float16"
    assert f16.nbytes() < 0.55 * f32.nbytes()
    err = store_error(f16, f32, k=10)
    for key, e in err.items():
        assert e["max_cosine"] < 1e-6, key  # measured: at most 2e-8 on digits
        assert e["top_k_changed"] <= 1, key  # a near-tie at the k-th unit may flip
    # S3 is exact: the winners were taken from float32
    for layer in ws.layers:
        np.testing.assert_array_equal(f16.winners(layer), f32.winners(layer))


def test_an_unfinished_store_is_written_again(sample, tmp_path):
    ws, idx = sample
    folder = tmp_path / "s"
    write_store(ws, idx[:20], folder)
    (folder / "done.json").unlink()  # as if killed before the end
    assert open_store(folder) is None
    store = write_store(ws, idx[:20], folder)
    assert len(store.indices) == 20 and json.loads((folder / "done.json").read_text())["n"] == 20
    # another sample in the same folder replaces it
    other = write_store(ws, idx[5:9], folder)
    np.testing.assert_array_equal(other.indices, idx[5:9])
    with pytest.raises(ValueError, match="dtype must be one of"):
        write_store(ws, idx, folder, dtype="int8")
    with pytest.raises(ValueError, match="non-empty"):
        write_store(ws, idx[:0], folder)


def test_two_requests_for_one_sample_at_once_make_one_store(sample, tmp_path, monkeypatch):
    import threading

    import dldiag.sample_store as mod

    ws, idx = sample
    calls, real = [], mod.collect_activations

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, "collect_activations", counted)
    stores, barrier = [], threading.Barrier(2)

    def request():
        barrier.wait()
        stores.append(write_store(ws, idx, tmp_path / "s"))

    threads = [threading.Thread(target=request) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(stores) == 2
    for layer in ws.layers:
        np.testing.assert_array_equal(stores[0].rows(layer), stores[1].rows(layer))


def test_old_stores_are_removed_beyond_the_cap_newest_kept(sample, tmp_path, monkeypatch):
    import os
    import time

    from dldiag.sample_store import prune_stores

    ws, idx = sample
    stores = [write_store(ws, idx[i:i + 40], tmp_path / f"s{i}") for i in (0, 40, 80)]
    size = sum(f.stat().st_size for f in stores[0].folder.iterdir())
    for age, store in zip((300, 200, 100), stores):  # s0 oldest
        t = time.time() - age
        os.utime(store.folder / "done.json", (t, t))
    open_store(stores[0].folder)  # opening marks it used: now s40 is the least recently used
    removed = prune_stores(tmp_path, int(2.5 * size), keep=(stores[2].folder,))
    assert removed == [stores[1].folder] and not stores[1].folder.exists()
    assert prune_stores(tmp_path, 0, keep=(stores[2].folder,)) == [stores[0].folder]
    assert stores[2].folder.exists()  # the one just written is never removed
    # the workspace prunes after each store it writes
    monkeypatch.setenv("DLDIAG_STORES_MB", "0")
    a = ws.sample_store(idx[:30], dtype="float32")
    b = ws.sample_store(idx[30:60], dtype="float32")
    assert b.folder.exists() and not a.folder.exists()
