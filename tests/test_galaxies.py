"""The GalSim galaxies: bytes, labels, the split cache, the report's Fig. 3 model, the shipped weights."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from dldiag import galaxies
from dldiag.models import (GalaxyCNN, build_model, default_layers, latent_layer, load_checkpoint,
                           train_model, weights_hash)

ROOT = Path(__file__).resolve().parents[1]
REPORT_PARAMETERS = 1_095_842  # the report's Fig. 3 model (Table I)


def test_render_is_deterministic_and_shaped():
    a = galaxies.render(11, 5)
    b = galaxies.render(11, 5)
    image, label, inclination, share = a
    assert image.shape == (3, 69, 69) and image.dtype == np.uint8
    assert image.tobytes() == b[0].tobytes() and a[1:] == b[1:]
    assert label in (0, 1) and 0.0 <= inclination <= 90.0 and 0.0 <= share <= 1.0
    # another index is another galaxy, and the image is neither blank nor saturated
    assert galaxies.render(11, 6)[0].tobytes() != image.tobytes()
    assert 0 < image.mean() < 200 and image.max() > 100


def test_worker_processes_draw_the_same_bytes_as_one_process():
    # two workers, chunks of 2: which process draws an item must not change its bytes
    drawn = galaxies.draw(11, 5, workers=2, show_progress=False, chunk=2)
    assert drawn["x"].shape[0] == 5
    here = [galaxies.render(11, i) for i in range(5)]
    assert drawn["x"].dtype == np.uint8 and drawn["x"].shape == (5, 3, 69, 69)
    assert drawn["x"].tobytes() == np.stack([h[0] for h in here]).tobytes()
    assert drawn["y"].tolist() == [h[1] for h in here]
    assert np.array_equal(drawn["inclination"], [h[2] for h in here])


def test_worker_failure_names_the_seed_and_the_error():
    # a negative seed is refused by numpy inside the worker: the parent says which and why
    with pytest.raises(RuntimeError, match=r"drawing galaxies \(seed -1\) failed in a worker process "
                                           r"\(exit 1\): .*ValueError"):
        galaxies.draw(-1, 3, workers=1, show_progress=False)


def test_labels_are_a_third_edge_on_with_noise_only_near_the_threshold():
    seed, n = 20260, 20_000
    params = [galaxies.galaxy_parameters(seed, i) for i in range(n)]
    inclination = np.array([p[0]["inclination"] for p in params])
    label = np.array([p[1] for p in params])
    share = np.array([p[2] for p in params])
    # isotropic orientations: cos i uniform, so P(i > 72°) = cos 72° ≈ 0.309 (as documented)
    assert abs(np.cos(np.radians(inclination)).mean() - 0.5) < 0.01
    assert abs(label.mean() - np.cos(np.radians(72.0))) < 0.015
    side = inclination > galaxies.THRESHOLD_DEG
    wrong = label != side
    distance = np.abs(inclination - galaxies.THRESHOLD_DEG)
    # far from the threshold every vote agrees; near it the label is a noisy vote
    assert not wrong[distance > 4.0].any()
    far = distance > 15.0
    assert np.all(np.abs(share[far] - side[far]) <= 0.1)  # at most 4 of 40 votes stray
    assert np.abs(share[far] - side[far]).mean() < 0.01
    near = distance < 1.0
    assert near.sum() > 100 and 0.15 < wrong[near].mean() < 0.45
    assert 0.005 < wrong.mean() < 0.02  # "about 1 %" in the module's docstring
    # the same (seed, index) gives the same galaxy without rendering
    assert galaxies.galaxy_parameters(seed, 3)[1:] == params[3][1:]


def test_galaxy_split_draws_once_then_reads_the_cache(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(galaxies.SPLITS, "train", (11, 4))
    first = galaxies.galaxy_split("train", folder=tmp_path, show_progress=False)
    files = list(tmp_path.glob("galaxies-*-train-11-4.npz"))
    assert len(files) == 1 and not list(tmp_path.glob("*.partial*"))
    assert first["x"].shape == (4, 3, 69, 69) and first["x"].dtype == np.uint8
    assert "seed 11" in first["source"] and str(files[0]) in first["source"]

    def no_drawing(*args, **kwargs):
        raise AssertionError("drew again although the split is cached")

    monkeypatch.setattr(galaxies, "draw", no_drawing)
    again = galaxies.galaxy_split("train", folder=tmp_path, show_progress=False)
    assert again["x"].tobytes() == first["x"].tobytes()
    assert again["y"].tolist() == first["y"].tolist()

    # a damaged file is drawn again (with a warning naming it), not read as garbage
    monkeypatch.undo()
    monkeypatch.setitem(galaxies.SPLITS, "train", (11, 4))
    files[0].write_bytes(b"not an npz file")
    with caplog.at_level(logging.WARNING, logger="dldiag.galaxies"):
        redrawn = galaxies.galaxy_split("train", folder=tmp_path, show_progress=False)
    assert "damaged" in caplog.text and files[0].name in caplog.text
    assert redrawn["x"].tobytes() == first["x"].tobytes()


def test_two_threads_drawing_one_split_at_once_get_the_same_bytes(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setitem(galaxies.SPLITS, "train", (13, 3))
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: galaxies.galaxy_split("train", folder=tmp_path, show_progress=False), range(2))
    assert a["x"].tobytes() == b["x"].tobytes() and a["y"].tolist() == b["y"].tolist()
    names = [p.name for p in tmp_path.iterdir()]
    assert len(names) == 1 and names[0].endswith("-train-13-3.npz"), names  # no partial file left
    again = galaxies.galaxy_split("train", folder=tmp_path, show_progress=False)
    assert again["x"].tobytes() == a["x"].tobytes()


def test_test_split_digest_warns_only_when_the_bytes_differ(tmp_path, monkeypatch):
    monkeypatch.setitem(galaxies.SPLITS, "test", (11, 3))
    monkeypatch.setattr(galaxies, "TEST_DIGEST", galaxies.split_digest(galaxies.draw(11, 3, show_progress=False)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        galaxies.galaxy_split("test", folder=tmp_path, show_progress=False)
    monkeypatch.setattr(galaxies, "TEST_DIGEST", "0" * 64)
    with pytest.warns(UserWarning, match=r"GalSim \S+ drew a test split whose images or labels differ"):
        galaxies.galaxy_split("test", folder=tmp_path, show_progress=False)
    # a part of a split (n given) is not the recorded split: no digest check
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        galaxies.galaxy_split("test", n=2, folder=tmp_path, show_progress=False)


def test_galaxy_split_rejects_unknown_splits(tmp_path):
    with pytest.raises(ValueError, match=r"split must be one of 'train', 'test'; got 'valid'"):
        galaxies.galaxy_split("valid", folder=tmp_path)


def test_galaxy_cnn_is_the_reports_fig3_model():
    model = build_model("galaxy-cnn", (3, 69, 69), 2)
    assert isinstance(model, GalaxyCNN)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - REPORT_PARAMETERS) / REPORT_PARAMETERS < 0.05, n
    kinds = [type(m).__name__ for m in model.modules()]
    # batch normalisation after every convolution, one dropout left
    assert kinds.count("Conv2d") == 5 and kinds.count("BatchNorm2d") == 5 and kinds.count("Dropout") == 1
    assert model.fc1[0].out_features == 64 and model.fc1[0].in_features == 256 * 4 * 4
    assert default_layers(model) == ("conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "logits")
    assert latent_layer(model) == "fc1"
    with torch.no_grad():
        assert model.eval()(torch.zeros(2, 3, 69, 69)).shape == (2, 2)
    with pytest.raises(ValueError, match="image_size must be at least 16 for galaxy-cnn; got 12"):
        GalaxyCNN(image_size=12)


def test_galaxy_cnn_training_smoke_is_seeded():
    drawn = galaxies.draw(11, 8, workers=1, show_progress=False)
    x = drawn["x"].astype(np.float32) / 255.0
    hashes, losses = [], []
    for _ in range(2):
        torch.manual_seed(123)  # the global generator must not matter: train_model seeds its own
        model = build_model("galaxy-cnn", (3, 69, 69), 2)
        before = weights_hash(model)
        train_model(model, x, drawn["y"], epochs=1, batch_size=4, seed=5, show_progress=False)
        hashes.append(weights_hash(model))
        assert hashes[-1] != before  # it trained
    assert hashes[0] == hashes[1]


@pytest.fixture(scope="module")
def galaxy_cache(tmp_path_factory):
    """A fresh cache in which the first use draws the full test split, as on a fresh machine."""
    return tmp_path_factory.mktemp("galaxy-cache")


def _cli(args, cache):
    env = dict(os.environ, DLDIAG_CACHE=str(cache), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "dldiag", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_fresh_machine_query_and_info(galaxy_cache):
    """The acceptance: query and info on galaxies with nothing drawn yet (the test split is drawn)."""
    done = _cli(["query", "--dataset", "galaxies", "--sampler", "max-margin", "--fraction", "0.05", "--json"],
                galaxy_cache)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    assert answer["dataset"] == "galaxies" and answer["sampler"] == "max-margin"
    assert answer["n_sample"] == round(0.05 * galaxies.SPLITS["test"][1])
    assert set(answer["overall"]) >= {"s1", "s2", "s3"}
    drawn = list((Path(galaxy_cache) / "datasets").glob("galaxies-*-test-20261-2118.npz"))
    assert len(drawn) == 1
    with np.load(drawn[0]) as z:
        assert galaxies.split_digest({"x": z["x"], "y": z["y"]}) == galaxies.TEST_DIGEST
    assert "differ from the recorded" not in done.stderr

    done = _cli(["info", "--dataset", "galaxies", "--json"], galaxy_cache)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads(done.stdout)
    assert info["parameters"] == 1_095_650 and info["item_values"] == 3 * 69 * 69
    per_item = 32 * 69 * 69 + 64 * 34 * 34 + 160 * 17 * 17 + 192 * 8 * 8 + 256 * 4 * 4 + 64 + 2
    assert info["activation_values_per_item"] == per_item
    assert info["activation_to_item"] == pytest.approx(per_item / (3 * 69 * 69))
    assert info["accuracy"] > 0.95


def test_shipped_weights_reach_the_readme_accuracy(galaxy_cache, monkeypatch):
    monkeypatch.setenv("DLDIAG_CACHE", str(galaxy_cache))
    from dldiag.datasets import load_dataset
    from dldiag.models import default_checkpoint_path, evaluate_accuracy

    model, meta = load_checkpoint(default_checkpoint_path("galaxies"))
    ds = load_dataset("galaxies", splits=("test",))
    accuracy = evaluate_accuracy(model, ds.x_test, ds.y_test)
    assert accuracy == pytest.approx(meta["meta"]["test_accuracy"], abs=1e-9)
    assert 0.95 < accuracy < 1.0  # the labels near 72° are noisy votes: no model reaches 100 %
    readme = (ROOT / "README.md").read_text()
    assert f"{100 * accuracy:.1f} %" in readme
