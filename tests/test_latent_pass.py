"""The streaming, resumable latent pass (predictions, probabilities, latent of N items on disk)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from dldiag.activations import run_pass
from dldiag.latent_pass import finished_parts, latent_pass

REPO = Path(__file__).resolve().parents[1]

#: A tiny classifier with fixed weights, slowed down so that a pass can be killed halfway; the
#: same text builds it in this process and in the one that is killed.
MODEL = textwrap.dedent("""
    import time
    import numpy as np
    import torch
    from torch import nn

    class Slow(nn.Module):
        def __init__(self, delay=0.0):
            super().__init__()
            rng = np.random.default_rng(0)
            self.hidden = nn.Linear(6, 5)
            self.out = nn.Linear(5, 3)
            with torch.no_grad():
                for p in self.parameters():
                    p.copy_(torch.from_numpy(rng.normal(size=tuple(p.shape)).astype(np.float32)))
            self.delay = delay

        def forward(self, x):
            time.sleep(self.delay)
            return self.out(torch.relu(self.hidden(x)))

    def data():
        return np.random.default_rng(1).normal(size=(230, 6)).astype(np.float32)
""")


@pytest.fixture
def model_module(tmp_path, monkeypatch):
    (tmp_path / "slow_model.py").write_text(MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import slow_model

    return importlib.reload(slow_model)


def test_the_pass_gives_the_full_pass_s_predictions_and_latent(model_module, tmp_path):
    model, x = model_module.Slow(), model_module.data()
    res = latent_pass(model, x, latent_layer="out:input", n_classes=3, folder=tmp_path / "p", key="k",
                      chunk_items=50, batch_size=16)
    ref = run_pass(model, x, np.zeros(len(x), dtype=int), [], n_classes=3, latent_layer="out:input")
    np.testing.assert_array_equal(res.y_pred, ref.y_pred)
    np.testing.assert_array_equal(res.latent, ref.latent)
    np.testing.assert_allclose(res.probs, ref.probs, rtol=1e-6)
    assert res.computed_chunks == 5 and isinstance(res.latent, np.memmap)
    assert sorted(os.listdir(tmp_path / "p")) == ["build.lock", "done.json", "latent.npy", "probs.npy", "y_pred.npy"]
    again = latent_pass(model, x, latent_layer="out:input", n_classes=3, folder=tmp_path / "p", key="k",
                        chunk_items=50)
    assert again.computed_chunks == 0
    np.testing.assert_array_equal(again.latent, res.latent)
    with pytest.raises(ValueError, match="holds the latent pass of another model or data"):
        latent_pass(model, x, latent_layer="out:input", n_classes=3, folder=tmp_path / "p", key="other")


def test_a_pass_killed_with_sigkill_resumes_without_redoing_finished_chunks(model_module, tmp_path):
    folder = tmp_path / "p"
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(tmp_path)!r}, {str(REPO)!r}]
        from slow_model import Slow, data
        from dldiag.latent_pass import latent_pass
        latent_pass(Slow(delay=0.05), data(), latent_layer="out:input", n_classes=3, folder={str(folder)!r},
                    key="k", chunk_items=40, batch_size=10)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        while len(finished_parts(folder)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    kept = finished_parts(folder)
    assert proc.returncode == -signal.SIGKILL and 2 <= len(kept) < 6, kept
    assert not (folder / "done.json").exists()
    model, x = model_module.Slow(), model_module.data()
    res = latent_pass(model, x, latent_layer="out:input", n_classes=3, folder=folder, key="k", chunk_items=40,
                      batch_size=10)
    assert res.computed_chunks == 6 - len(kept)
    whole = latent_pass(model, x, latent_layer="out:input", n_classes=3, folder=tmp_path / "q", key="k",
                        chunk_items=40, batch_size=10)
    np.testing.assert_array_equal(res.latent, whole.latent)
    np.testing.assert_array_equal(res.y_pred, whole.y_pred)
    assert not [p for p in os.listdir(folder) if p.startswith(".")]  # no temporary file left


def test_parts_of_another_pass_are_not_taken_for_this_one(model_module, tmp_path):
    model, x = model_module.Slow(), model_module.data()
    folder = tmp_path / "p"
    folder.mkdir()
    # a chunk marked done by a pass with other chunks (or data, or model) is not taken for this one's
    np.save(folder / "latent.npy", np.zeros((230, 5), np.float32))
    (folder / "chunk-00000.done").touch()
    (folder / "pass.json").write_text(json.dumps({"key": "k", "n_items": 230, "chunk_items": 7}))
    res = latent_pass(model, x, latent_layer="out:input", n_classes=3, folder=folder, key="k", chunk_items=100)
    assert res.computed_chunks == 3
    ref = run_pass(model, x, np.zeros(len(x), dtype=int), [], n_classes=3, latent_layer="out:input")
    np.testing.assert_array_equal(res.latent, ref.latent)


def test_errors_name_the_parameter(model_module, tmp_path):
    model = model_module.Slow()
    with pytest.raises(ValueError, match="x must hold at least one item"):
        latent_pass(model, np.zeros((0, 6), np.float32), latent_layer="out:input", n_classes=3, folder=tmp_path)
    with pytest.raises(ValueError, match=r"\(batch, 4\) logits are expected"):
        latent_pass(model, np.zeros((3, 6), np.float32), latent_layer="out:input", n_classes=4, folder=tmp_path)
    with pytest.raises(ValueError, match="chunk_items"):
        latent_pass(model, np.zeros((3, 6), np.float32), latent_layer="out:input", n_classes=3, folder=tmp_path,
                    chunk_items=0)


def test_two_passes_on_one_folder_at_once_compute_each_chunk_once(model_module, tmp_path):
    import threading

    x = model_module.data()
    results, barrier = [], threading.Barrier(2)

    def request():
        barrier.wait()
        results.append(latent_pass(model_module.Slow(), x, latent_layer="out:input", n_classes=3,
                                   folder=tmp_path / "p", key="k", chunk_items=50))

    threads = [threading.Thread(target=request) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.computed_chunks for r in results) == [0, 5]
    np.testing.assert_array_equal(results[0].latent, results[1].latent)


def test_results_cut_short_by_a_crash_are_computed_again(model_module, tmp_path):
    model, x = model_module.Slow(), model_module.data()
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "pass.json").write_text(json.dumps({"key": "k", "n_items": 230, "chunk_items": 100}))
    (folder / "chunk-00000.done").touch()
    (folder / "latent.npy").write_bytes(b"\x93NUMPY")  # a header cut short
    res = latent_pass(model, x, latent_layer="out:input", n_classes=3, folder=folder, key="k", chunk_items=100)
    assert res.computed_chunks == 3
    ref = run_pass(model, x, np.zeros(len(x), dtype=int), [], n_classes=3, latent_layer="out:input")
    np.testing.assert_array_equal(res.latent, ref.latent)
