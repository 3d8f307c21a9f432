import errno
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import diskcache
import numpy as np
import pytest

from dldiag.artifacts import load_workspace, resolve_weights
from dldiag.cache import ArrayCache, CacheError, content_key, open_tiers


def _payload_files(directory):
    return [p for p in directory.rglob("*.val")]


class _WritesMarker:
    """Unpickling this object creates a file: the proof that something was unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_round_trip_and_miss(tmp_path):
    with ArrayCache(tmp_path) as cache:
        assert cache.get("k") is None and not cache.has("k")
        arrays = {"a": np.arange(100_000), "b": np.array("text")}
        assert cache.put("k", arrays)
        got = cache.get("k")
        np.testing.assert_array_equal(got["a"], arrays["a"])
        assert str(got["b"]) == "text" and cache.has("k")


def test_truncated_payload_is_rebuilt_not_served(tmp_path):
    with ArrayCache(tmp_path) as cache:
        cache.put("k", {"a": np.arange(100_000)})
    (big,) = _payload_files(tmp_path)  # large values live in their own file
    big.write_bytes(big.read_bytes()[:1000])
    with ArrayCache(tmp_path) as cache:
        assert cache.get("k") is None
        arrays, hit = cache.get_or_build("k", lambda: {"a": np.arange(5)})
        assert not hit and arrays["a"].size == 5
        assert cache.get("k")["a"].size == 5


def test_altered_payload_or_foreign_bytes_count_as_missing(tmp_path):
    with ArrayCache(tmp_path) as cache:
        cache.put("k", {"a": np.arange(100_000)})
        (big,) = _payload_files(tmp_path)
        data = bytearray(big.read_bytes())
        data[-100] ^= 0xFF  # one flipped byte, same length
        big.write_bytes(bytes(data))
        assert cache.get("k") is None and not cache.has("k")  # dropped
        cache._cache.set("old", b"PK\x03\x04 an npz without our header")
        assert cache.get("old") is None


def test_a_pickled_entry_is_never_unpickled(tmp_path, caplog):
    marker = tmp_path / "marker"
    folder = tmp_path / "cache"
    with diskcache.Cache(str(folder)) as raw:  # whoever can write the folder stores a pickle
        raw.set("k", _WritesMarker(marker))
        raw.set("big", [_WritesMarker(marker)] + [b"x" * 100_000])  # a pickle in its own file
    with ArrayCache(folder) as cache:
        assert cache.get("k") is None
        assert cache.get("big") is None
        arrays, hit = cache.get_or_build("k", lambda: {"a": np.arange(3)})
        assert not hit and cache.get("k")["a"].tolist() == [0, 1, 2]
    assert not marker.exists()
    assert "nothing in the cache is ever unpickled" in caplog.text


def test_the_cache_refuses_to_store_python_objects(tmp_path):
    with ArrayCache(tmp_path) as cache:
        with pytest.raises(TypeError, match="array 'bad' holds Python objects"):
            cache.put("k", {"bad": np.array([{"a": 1}], dtype=object)})
        with pytest.raises(TypeError, match="stores bytes only; got list"):
            cache._cache.set("k", [1, 2])


@pytest.mark.parametrize("damage", ["truncate", "overwrite", "garbage"])
def test_a_corrupt_database_is_moved_aside_and_the_cache_rebuilt(tmp_path, caplog, damage):
    folder = tmp_path / "core"
    with ArrayCache(folder) as cache:
        for i in range(300):  # enough rows for a database of several pages
            cache.put(f"k{i}", {"a": np.arange(i)})
    db = folder / "cache.db"
    data = db.read_bytes()
    if damage == "truncate":
        db.write_bytes(data[: len(data) // 3])
    elif damage == "overwrite":
        db.write_bytes(data[:4096] + bytes(range(256)) * 16 + data[8192:])
    else:
        db.write_bytes(b"not a database at all" * 100)
    for extra in folder.glob("cache.db-*"):
        extra.unlink()
    with ArrayCache(folder) as cache:  # no DatabaseError: a fresh, working cache
        assert cache.get("k5") is None
        cache.put("k5", {"a": np.arange(5)})
        assert cache.get("k5")["a"].size == 5
    warnings = [r for r in caplog.records if "was corrupt" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    (aside,) = tmp_path.glob("core.corrupt-*")
    assert (aside / "cache.db").exists()


def test_a_cache_folder_that_is_a_file_is_one_clear_error(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(CacheError, match=r"cache folder '.*file' is a file, not a folder; give --cache-dir"):
        ArrayCache(path)
    with pytest.raises(CacheError, match="is a file"):
        open_tiers(path)


def test_an_unwritable_cache_folder_is_one_clear_error():
    """Checked in a forked child that drops to an ordinary user (root writes anywhere)."""
    base = Path(tempfile.mkdtemp(prefix="dldiag-ro-", dir="/tmp"))  # traversable by every user
    try:
        base.chmod(0o755)
        folder = base / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report the message through the pipe, never return into pytest
            message = "no error"
            try:
                if os.geteuid() == 0:
                    os.setegid(65534)
                    os.seteuid(65534)
                ArrayCache(folder)
            except CacheError as exc:
                message = str(exc)
            except BaseException as exc:  # noqa: BLE001
                message = f"{type(exc).__name__}: {exc}"
            os.write(write_end, message.encode())
            os._exit(0)
        os.close(write_end)
        os.waitpid(pid, 0)
        with os.fdopen(read_end) as reader:
            message = reader.read()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert re.fullmatch(r"cache folder '.*ro' is not writable \(Permission denied\); give --cache-dir "
                        r"\(or \$DLDIAG_CACHE\) a writable folder", message), message


def test_a_full_disk_warns_once_and_results_are_still_computed(tmp_path, caplog, monkeypatch):
    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with ArrayCache(tmp_path) as cache:
        monkeypatch.setattr(cache._cache._disk, "store", full)
        for i in range(3):
            arrays, hit = cache.get_or_build(f"k{i}", lambda: {"a": np.arange(4)})
            assert not hit and arrays["a"].size == 4
        assert not cache.put("k", {"a": np.arange(2)})
    warnings = [r for r in caplog.records if "is full" in r.getMessage()]
    assert len(warnings) == 1


def test_a_folder_others_can_write_is_warned_about(tmp_path, caplog):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    ArrayCache(folder).close()
    assert "can be written by other users" in caplog.text


def test_concurrent_requests_for_one_missing_key_build_it_once(tmp_path):
    calls = []
    barrier = threading.Barrier(8)

    def build():
        calls.append(1)
        time.sleep(0.05)
        return {"a": np.arange(7)}

    with ArrayCache(tmp_path) as cache:
        def ask():
            barrier.wait()
            return cache.get_or_build("k", build)[0]["a"].sum()

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(calls) == 1 and not cache._flights


def test_the_samples_tier_evicts_least_recently_used_and_never_the_core(tmp_path):
    tiers = open_tiers(tmp_path, sample_cache_mb=2)
    tiers.core.put("full", {"a": np.zeros(400_000)})  # 3.2 MB: larger than the samples cap
    sample = lambda i: {"a": np.full(5_000, i, dtype=np.float64)}  # 40 kB each, ~50 under the cap
    tiers.samples.put("s0", sample(0))
    for i in range(1, 200):
        tiers.samples.put(f"s{i}", sample(i))
        assert tiers.samples.get("s0")["a"][0] == 0  # used again and again: never the one evicted
        assert tiers.samples.volume_mb() <= 2.0 + 0.05  # at most one entry over, before culling
    assert len(tiers.samples) > 30  # culled a few at a time, not wiped
    assert tiers.samples.get("s1") is None  # stored early, never used since: evicted
    assert tiers.samples.get("s199") is not None
    assert tiers.core.get("full")["a"].size == 400_000
    tiers.close()


def test_the_samples_cap_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DLDIAG_SAMPLE_CACHE_MB", "3")
    assert open_tiers(tmp_path).samples.size_limit_mb == 3.0
    monkeypatch.setenv("DLDIAG_SAMPLE_CACHE_MB", "lots")
    with pytest.raises(CacheError, match="DLDIAG_SAMPLE_CACHE_MB must be a number of MiB; got 'lots'"):
        open_tiers(tmp_path)
    with pytest.raises(CacheError, match="sample_cache_mb must be a positive number of MiB; got -1"):
        open_tiers(tmp_path, sample_cache_mb=-1)


def test_content_key_is_order_free():
    assert content_key({"a": 1, "b": 2}) == content_key({"b": 2, "a": 1})
    assert content_key("x", 1) != content_key("x", 2)


def test_second_workspace_load_reuses_the_cache(tmp_path):
    first = load_workspace("digits", cache_dir=tmp_path, show_progress=False)
    second = load_workspace("digits", cache_dir=tmp_path, show_progress=False)
    assert not first.cache_hit and second.cache_hit
    assert first.key == second.key
    np.testing.assert_array_equal(first.latent, second.latent)
    np.testing.assert_array_equal(first.full["conv1", "flat"].sums, second.full["conv1", "flat"].sums)


def test_corrupt_workspace_entry_is_rebuilt(tmp_path):
    first = load_workspace("digits", cache_dir=tmp_path, show_progress=False)
    for f in _payload_files(tmp_path):
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    again = load_workspace("digits", cache_dir=tmp_path, show_progress=False)
    assert not again.cache_hit
    np.testing.assert_array_equal(first.y_pred, again.y_pred)


def test_workspace_contents(digits_ws):
    ws = digits_ws
    assert ws.layers == ("conv1", "conv2", "fc1", "logits") and ws.latent_layer == "fc1"
    assert ws.latent.shape == (ws.n_items, 32)
    assert ws.accuracy > 0.95
    np.testing.assert_allclose(ws.probs.sum(1), 1.0, rtol=1e-5)
    acc = ws.evaluate(np.arange(ws.n_items), k=5)
    assert acc.overall == {"s1": 1.0, "s2": 0.0, "s3": 0.0}


def test_projection_is_cached(digits_ws):
    xy = digits_ws.projection("pca")
    assert xy.shape == (digits_ws.n_items, 2)
    assert digits_ws.cache.get(content_key("projection", 2, digits_ws.key, "pca", 0)) is not None
    with pytest.raises(ValueError, match="method must be one of 'umap', 'tsne', 'pca'; got 'mds'"):
        digits_ws.projection("mds")


def test_missing_weights_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m dldiag train --dataset idx:/x"):
        resolve_weights("idx:/x", None)


def test_workspace_activations_match_aggregates(digits_ws):
    ws = digits_ws
    idx = np.flatnonzero((ws.y_true == 3) & (ws.y_pred == 3))
    acts = ws.activations(idx, "conv2", "channel")
    assert acts.shape == (len(idx), 16)
    count, sums, _ = ws.full["conv2", "channel"].group(cls=3, outcome="correct")
    assert count == len(idx)
    np.testing.assert_allclose(acts.sum(0), sums, rtol=1e-5)
    assert ws.activations(idx[:0], "fc1").shape == (0, 32)
