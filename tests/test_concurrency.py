"""Passes under concurrency: every thread gets the answer it would get alone.

Before passes held their model alone, eight threads evaluating different samples on one
workspace recorded each other's batches through the shared module's hooks: wrong figures
without an error, or ``index_add_`` shape errors.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from dldiag.activations import forward_with_activations, run_pass
from dldiag.replicas import ModelPool, exclusive

from conftest import TINY_X, TINY_Y, TinyNet

N_THREADS = 8


def _in_threads(fn, args_list):
    """Run ``fn(*args)`` for each args in its own thread, all released at once; results in order."""
    barrier = threading.Barrier(len(args_list))
    results: list = [None] * len(args_list)

    def run(i, args):
        barrier.wait()
        try:
            results[i] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} of {len(results)} threads raised: {errors[0]!r}"
    return results


def _samples(n_items, size, count, seed=0):
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(n_items, size, replace=False)) for _ in range(count)]


def _assert_same_scores(got, want):
    assert len(got.groups) == len(want.groups)
    for g, w in zip(got.groups, want.groups):
        assert (g["layer"], g["cls"], g["outcome"], g["n_sample"]) == (w["layer"], w["cls"], w["outcome"], w["n_sample"])
        for m in ("s1", "s2", "s3"):
            assert g[m] == pytest.approx(w[m], abs=1e-9), (g, w)


def test_threads_on_one_workspace_get_their_sequential_answers(digits_ws):
    samples = _samples(digits_ws.n_items, 60, N_THREADS)
    sequential = [digits_ws.evaluate(s, k=10) for s in samples]
    for _ in range(3):  # the races were intermittent; three rounds of eight at once
        concurrent = _in_threads(lambda s: digits_ws.evaluate(s, k=10), [(s,) for s in samples])
        for got, want in zip(concurrent, sequential):
            _assert_same_scores(got, want)


def test_threads_get_the_sequential_aggregates_and_activations(digits_ws):
    samples = _samples(digits_ws.n_items, 45, N_THREADS, seed=1)
    layer = digits_ws.layers[0]
    want_agg = [digits_ws.sample_pass(s).aggregates for s in samples]
    want_act = [digits_ws.activations(s, layer, "channel") for s in samples]

    def both(s):
        return digits_ws.sample_pass(s).aggregates, digits_ws.activations(s, layer, "channel")

    for (agg, act), wa, wact in zip(_in_threads(both, [(s,) for s in samples]), want_agg, want_act):
        np.testing.assert_array_equal(act, wact)
        for key, la in agg.by_layer.items():
            np.testing.assert_allclose(la.sums, wa.by_layer[key].sums, rtol=0, atol=1e-9)
            np.testing.assert_array_equal(la.counts, wa.by_layer[key].counts)
            np.testing.assert_array_equal(la.argmax_counts, wa.by_layer[key].argmax_counts)


def test_threads_on_one_bare_module_take_turns(fashion_small):
    """run_pass on the caller's own module (no pool) is serialised, not corrupted."""
    model, x, y = fashion_small
    layers = ("conv1", "fc2", "logits")
    samples = _samples(len(x), 50, N_THREADS, seed=2)
    want = [run_pass(model, x, y, layers, n_classes=10, indices=s, batch_size=16).aggregates for s in samples]
    got = _in_threads(lambda s: run_pass(model, x, y, layers, n_classes=10, indices=s, batch_size=16).aggregates,
                      [(s,) for s in samples])
    for g, w in zip(got, want):
        for key in w.by_layer:
            np.testing.assert_allclose(g.by_layer[key].sums, w.by_layer[key].sums, rtol=0, atol=1e-9)
            np.testing.assert_array_equal(g.by_layer[key].argmax_counts, w.by_layer[key].argmax_counts)


class _Frozen(nn.Module):
    """A model whose sub-network stays in eval mode while the rest trains."""

    def __init__(self):
        super().__init__()
        self.body = TinyNet()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.body(x))


def test_a_pass_gives_every_module_its_mode_back():
    model = _Frozen()
    model.train()
    model.body.eval()
    run_pass(model, TINY_X, TINY_Y, ("body.act",), n_classes=2)
    assert model.training and model.drop.training
    assert not model.body.training and not model.body.act.training
    # and the pass itself ran in eval mode: dropout off, so the logits are TinyNet's
    _, acts = forward_with_activations(model, ("body.logits", "drop"), torch.from_numpy(TINY_X))
    np.testing.assert_array_equal(acts["drop"].numpy(), acts["body.logits"].numpy())
    assert model.training


def test_exclusive_is_reentrant_and_restores_after_an_error():
    model = TinyNet()
    model.train()
    with pytest.raises(RuntimeError, match="boom"):
        with exclusive(model):
            with exclusive(model):
                assert not model.training
            assert not model.training
            raise RuntimeError("boom")
    assert model.training


def test_pool_lends_each_replica_to_one_pass_and_keeps_a_snapshot():
    model = TinyNet()
    pool = ModelPool(model, size=3)
    inside = threading.Barrier(3)
    seen = []

    def hold():
        with pool.lease() as replica:
            seen.append(replica)
            inside.wait(timeout=10)  # all three held at once
            assert not replica.training
            assert not replica._forward_hooks and not replica.act._forward_hooks

    _in_threads(hold, [()] * 3)
    assert len({id(r) for r in seen}) == 3 and pool.replicas_made == 3
    assert all(r is not model for r in seen)
    # replicas share the snapshot's parameters, not the caller's
    assert seen[0].fc.weight.data_ptr() == seen[1].fc.weight.data_ptr() == pool.model.fc.weight.data_ptr()
    assert seen[0].fc.weight.data_ptr() != model.fc.weight.data_ptr()
    with torch.no_grad():
        model.fc.weight.mul_(-1.0)  # the caller changes its model later: passes keep the snapshot
    with pool.lease() as replica:
        _, acts = forward_with_activations(replica, ("act",), torch.tensor([[2.0, 1.0]]))
    np.testing.assert_array_equal(acts["act"].numpy(), [[2.0, 1.0, 3.0]])


def test_pool_never_lends_more_than_its_size():
    pool = ModelPool(TinyNet(), size=2)
    active, peak, guard = [0], [0], threading.Lock()

    def use():
        with pool.lease():
            with guard:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            threading.Event().wait(0.02)
            with guard:
                active[0] -= 1

    _in_threads(use, [()] * 8)
    assert peak[0] == 2 and pool.replicas_made == 2


def test_pool_of_a_model_that_cannot_be_copied_runs_it_alone(caplog):
    class Uncopyable(TinyNet):
        def __deepcopy__(self, memo):
            raise TypeError("holds a handle")

    model = Uncopyable()
    pool = ModelPool(model, size=4)
    assert pool.size == 1 and "cannot be copied" in caplog.text
    with pool.lease() as replica:
        assert replica is model


def test_overlapping_app_requests_get_their_sequential_answers(digits_ws, tmp_path):
    """Eight browser-like clients at once against the threaded server; every answer is then
    replayed one at a time against an app with an empty cache of its own and must agree."""
    from werkzeug.serving import make_server

    from dldiag.app import create_app
    from dldiag.app.service import build_meta
    from dldiag.bench.load import Plan, replay, run_clients

    app = create_app(digits_ws, default_projection="pca", sample_cache_dir=tmp_path / "served")
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        plan = Plan(digits_ws, build_meta(digits_ws, default_projection="pca"))
        result = run_clients(f"http://127.0.0.1:{server.server_port}", plan, clients=8, seconds=6, seed=3)
    finally:
        server.shutdown()
    assert result["errors"] == []
    kinds = {kind for kind, _ in result["chains"]}
    assert {"sampler", "fraction", "box", "layer"} <= kinds and len(result["records"]) > 200
    reference = create_app(digits_ws, default_projection="pca", sample_cache_dir=tmp_path / "replay")
    assert replay(result["records"], reference) == []


def test_the_throughput_benchmark_counts_checked_passes(digits_ws):
    from dldiag.bench.concurrency import throughput

    samples = _samples(digits_ws.n_items, 40, 4, seed=5)
    expected = [digits_ws.sample_pass(s).aggregates for s in samples]
    rate, wrong = throughput(digits_ws, samples, expected, clients=3, seconds=0.5)
    assert rate > 1 and wrong == 0
    rate, wrong = throughput(digits_ws, samples, expected[::-1], clients=2, seconds=0.3)
    assert wrong > 0  # answers compared with the wrong expectations are counted as wrong


def test_a_process_forked_while_other_threads_hold_locks_does_not_wait_for_them(tmp_path):
    """The app's background jobs are forks of a serving process: a lock another thread holds at
    the fork (a header being parsed, a cache's flight table, a model's guard) is never released
    in the child, so the child must start with its own."""
    import os
    import signal

    from dldiag import npyio, replicas
    from dldiag.cache import ArrayCache

    np.save(tmp_path / "a.npy", np.arange(5))
    cache = ArrayCache(tmp_path / "cache")
    cache.put("k", {"v": np.arange(3)})
    held, release = threading.Event(), threading.Event()

    def hold():
        with npyio.header_lock(), cache._flights_guard, replicas._LOCKS_GUARD:
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: every one of these would block forever on the parent's locks
        try:
            ok = (npyio.load(tmp_path / "a.npy").sum() == 10 and cache.get("k")["v"].sum() == 3
                  and replicas.model_lock(torch.nn.Linear(1, 1)) is not None)
            with cache.single_flight("x"):
                pass
        finally:
            os._exit(0 if ok else 1)
    try:
        for _ in range(200):  # 20 s
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child waited on a lock held by a thread of its parent")
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        release.set()
        thread.join()
