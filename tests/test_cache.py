import numpy as np
import pytest

from dldiag.artifacts import load_workspace, resolve_weights
from dldiag.cache import ArrayCache, content_key


def _payload_files(directory):
    return [p for p in directory.rglob("*.val")]


def test_round_trip_and_miss(tmp_path):
    with ArrayCache(tmp_path) as cache:
        assert cache.get("k") is None
        arrays = {"a": np.arange(100_000), "b": np.array("text")}
        cache.put("k", arrays)
        got = cache.get("k")
        np.testing.assert_array_equal(got["a"], arrays["a"])
        assert str(got["b"]) == "text"


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


def test_entry_without_digest_counts_as_missing(tmp_path):
    # a build killed after the payload was written but before its digest
    with ArrayCache(tmp_path) as cache:
        cache.put("k", {"a": np.arange(10)})
        cache._cache.delete("k" + ArrayCache._DIGEST)
        assert cache.get("k") is None


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
    assert digits_ws.cache.get(content_key("projection", 1, digits_ws.key, "pca", 0)) is not None
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
