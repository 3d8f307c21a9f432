"""Full passes as a map over shards and a merge: the local engine and Ray (a local 2-worker cluster)."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from dldiag.activations import Aggregates, run_pass
from dldiag.engine import full_pass, merge_aggregates, pass_shard, resolve_engine, shard_ranges


def _same_pass(a, b):
    """Equal up to float32 rounding: a worker runs the model on one thread, the local pass on several,
    so convolutions sum in another order (measured: probabilities 5e-7 apart, sums 3e-7 relative)."""
    np.testing.assert_array_equal(a.y_pred, b.y_pred)
    np.testing.assert_allclose(a.probs, b.probs, rtol=0, atol=1e-5)
    if a.latent is not None:
        np.testing.assert_allclose(a.latent, b.latent, rtol=1e-5, atol=1e-5)
    assert set(a.aggregates.by_layer) == set(b.aggregates.by_layer)
    for key, agg in a.aggregates.by_layer.items():
        other = b.aggregates.by_layer[key]
        np.testing.assert_array_equal(agg.counts, other.counts)
        np.testing.assert_allclose(agg.sums, other.sums, rtol=0, atol=1e-5 * np.abs(other.sums).max())
        # an item's arg-max unit may flip on a near-tie under the other rounding: at most 2 items a layer
        diff = np.abs(agg.argmax_counts - other.argmax_counts).sum() // 2
        assert agg.argmax_counts.sum() == other.argmax_counts.sum() and diff <= 2, (key, diff)
        assert agg.unit_shape == other.unit_shape


def test_engine_names_and_the_environment(monkeypatch):
    monkeypatch.delenv("DLDIAG_ENGINE", raising=False)
    assert resolve_engine() == "local" and resolve_engine("ray") == "ray"
    monkeypatch.setenv("DLDIAG_ENGINE", "ray")
    assert resolve_engine() == "ray"
    monkeypatch.setenv("DLDIAG_ENGINE", "spark")
    with pytest.raises(ValueError, match=r"engine must be one of 'local', 'ray'; got 'spark'"):
        resolve_engine()


def test_shards_cover_every_item_once():
    assert shard_ranges(np.zeros(10), 4) == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(ValueError, match="shard_items"):
        shard_ranges(np.zeros(10), 0)
    with pytest.raises(ValueError, match="at least one"):
        merge_aggregates([])


def test_shards_merged_equal_the_one_pass(digits_ws):
    ws = digits_ws
    x, y = ws.dataset.x_test, ws.y_true
    parts = [pass_shard(ws.model, x, y, ws.layers, a, b, n_classes=10, latent_layer=ws.latent_layer)
             for a, b in shard_ranges(x, 97)]
    whole = run_pass(ws.model, x, y, ws.layers, n_classes=10, latent_layer=ws.latent_layer)
    merged = merge_aggregates([Aggregates.from_arrays(p) for p in parts])
    for key, agg in whole.aggregates.by_layer.items():
        np.testing.assert_array_equal(merged.by_layer[key].counts, agg.counts)
        np.testing.assert_allclose(merged.by_layer[key].sums, agg.sums, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate([p["y_pred"] for p in parts]), whole.y_pred)


def test_the_merge_takes_each_shard_once_and_names_a_lost_one(digits_ws):
    from dldiag.engine import _Merger

    ws = digits_ws
    x, y = ws.dataset.x_test, ws.y_true
    ranges = shard_ranges(x, 200)
    parts = [pass_shard(ws.model, x, y, ws.layers, a, b, n_classes=10) for a, b in ranges]
    merger = _Merger(ranges, 10)
    for shard in (2, 0, 0, 1):  # out of order, shard 0 twice (a retried task's second arrival)
        merger.add(shard, parts[shard])
    res = merger.result()
    assert merger.duplicates == 1
    assert res.aggregates[ws.layers[0], "flat"].counts.sum() == len(x)
    np.testing.assert_array_equal(res.y_pred, ws.y_pred)
    bad = dict(parts[1], y_pred=parts[1]["y_pred"] + 1)
    with pytest.raises(RuntimeError, match="shard 1 arrived twice with different results"):
        merger.add(1, bad)
    lost = _Merger(ranges, 10)
    lost.add(0, parts[0])
    with pytest.raises(RuntimeError, match="lost 2 shard"):
        lost.result()


# ------------------------------------------------------------------------------------- Ray
ray = pytest.importorskip("ray", reason="the ray extra (ray[data]) is not installed")


@pytest.fixture(scope="module")
def ray_cluster():
    from dldiag.engine import ray_init

    # a local cluster of 2 worker processes, small enough for the 2-core CI machine
    ray_init(num_cpus=2, object_store_memory=256 * 2**20)
    yield ray
    ray.shutdown()


def test_the_ray_engine_gives_the_local_aggregates(digits_ws, ray_cluster, tmp_path, monkeypatch):
    from dldiag.activations import PassResult
    from dldiag.artifacts import load_workspace

    ws = digits_ws  # its full pass was made by the local engine
    local = PassResult(ws.y_pred, ws.probs, ws.latent, ws.full)
    lines = []
    res = full_pass(ws.model, ws.dataset.x_test, ws.y_true, ws.layers, n_classes=10, latent_layer=ws.latent_layer,
                    engine="ray", shard_items=100, workers=2, log=lines.append)
    _same_pass(res, local)
    assert "450 items in 5 shards on 2 actor(s)" in lines[0]
    # a workspace built on Ray (chosen by the environment) is the local one, under the same cache key
    monkeypatch.setenv("DLDIAG_ENGINE", "ray")
    on_ray = load_workspace("digits", cache_dir=tmp_path, show_progress=False)
    assert on_ray.key == ws.key and not on_ray.cache_hit
    _same_pass(PassResult(on_ray.y_pred, on_ray.probs, on_ray.latent, on_ray.full), local)


def _killer(marker: str):
    """A transform that kills its worker process the first time it runs anywhere (a marker file says so)."""

    def transform(xb):
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return xb
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)

    return transform


def test_a_worker_killed_mid_pass_is_retried_without_counting_items_twice(digits_ws, ray_cluster, tmp_path):
    ws = digits_ws
    marker = str(tmp_path / "killed")
    res = full_pass(ws.model, ws.dataset.x_test, ws.y_true, ws.layers, n_classes=10, latent_layer=ws.latent_layer,
                    engine="ray", shard_items=90, workers=2, transform=_killer(marker))
    assert os.path.exists(marker)  # a worker did die
    assert int(open(marker).read()) != os.getpid()
    local = full_pass(ws.model, ws.dataset.x_test, ws.y_true, ws.layers, n_classes=10, latent_layer=ws.latent_layer)
    _same_pass(res, local)
    for agg in res.aggregates.by_layer.values():
        assert agg.counts.sum() == ws.n_items  # every item counted once



# ------------------------------------------------------------------ a resumable local pass (chunk stores)

_KILLED_BUILD = """
import os, sys
import dldiag.engine as engine
from dldiag.artifacts import load_workspace
real, calls = engine.pass_shard, []
def dying(*args, **kwargs):
    calls.append(1)
    if len(calls) == 3:  # two shards are on disk: die as kill -9 does, with no clean-up
        os.kill(os.getpid(), 9)
    return real(*args, **kwargs)
engine.pass_shard = dying
load_workspace(sys.argv[1], cache_dir=sys.argv[2], show_progress=False)
"""


def test_a_killed_workspace_build_resumes_from_its_finished_shards(tmp_path, monkeypatch):
    import subprocess
    import sys

    import dldiag.engine as engine
    from dldiag.artifacts import load_workspace
    from dldiag.workloads import make_workload

    store = tmp_path / "wide"
    make_workload("wide", 3000, store, base="test", chunk_items=512, show_progress=False, log=lambda *a: None)
    cache = tmp_path / "cache"
    killed = subprocess.run([sys.executable, "-c", _KILLED_BUILD, f"chunks:{store}", str(cache)],
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    parts = sorted((cache / "parts").glob("part-*.npz"))
    assert len(parts) == 2  # the finished shards, whole (written under a temporary name, then renamed)

    real, calls = engine.pass_shard, []

    def counting(model, x, y, layers, start, stop, **kwargs):
        calls.append((start, stop))
        return real(model, x, y, layers, start, stop, **kwargs)

    monkeypatch.setattr(engine, "pass_shard", counting)
    ws = load_workspace(f"chunks:{store}", cache_dir=cache, show_progress=False)
    assert calls == [(1024, 1536), (1536, 2048), (2048, 2560), (2560, 3000)]  # the first two were read back
    assert not list((cache / "parts").glob("part-*.npz"))  # kept only until the pass ends

    calls.clear()
    fresh = load_workspace(f"chunks:{store}", cache_dir=tmp_path / "fresh", show_progress=False)
    assert len(calls) == 6
    np.testing.assert_array_equal(ws.y_pred, fresh.y_pred)
    np.testing.assert_array_equal(ws.latent, fresh.latent)
    for key, agg in fresh.full.by_layer.items():  # merged in shard order: the same sums to the bit
        np.testing.assert_array_equal(ws.full.by_layer[key].sums, agg.sums)
        np.testing.assert_array_equal(ws.full.by_layer[key].argmax_counts, agg.argmax_counts)


def test_shards_of_another_pass_are_never_read(tmp_path, monkeypatch):
    import dldiag.engine as engine
    from dldiag.engine import resumable_pass
    from dldiag.models import SmallCNN

    rng = np.random.default_rng(0)
    x = rng.random((300, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 10, 300)
    model = SmallCNN(n_classes=10)
    real, calls = engine.pass_shard, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("stopped")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "pass_shard", failing)
    with pytest.raises(RuntimeError, match="stopped"):
        resumable_pass(model, x, y, ("fc1",), n_classes=10, parts_dir=tmp_path, key="a", shard_items=100)
    left = sorted(tmp_path.glob("part-*.npz"))
    assert len(left) == 2
    calls.clear()
    monkeypatch.setattr(engine, "pass_shard", lambda *a, **k: calls.append(1) or real(*a, **k))
    other = resumable_pass(model, x[::-1].copy(), y[::-1].copy(), ("fc1",), n_classes=10, parts_dir=tmp_path,
                           key="b", shard_items=100)
    assert len(calls) == 3 and sorted(tmp_path.glob("part-*.npz")) == left  # "a"'s shards: not read, not removed
    np.testing.assert_array_equal(other.y_pred, real(model, x[::-1].copy(), y[::-1].copy(), ("fc1",), 0, 300,
                                                     n_classes=10)["y_pred"])
