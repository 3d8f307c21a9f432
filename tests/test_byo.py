"""Your own model and data: every model form and every data form, through the API, the CLI and the app.

Two models dldiag has never seen: a small residual CNN with in-place ReLU on 3-channel images
(scikit-learn's digits, coloured and enlarged to 16×16) and an MLP on scikit-learn's bundled
breast-cancer table (569 items, 30 features, 2 classes), trained here in a second. For every
form, a sample of every item must answer S1 = 1, S2 = S3 = 0 exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_breast_cancer

import dldiag
from dldiag.cli import main as cli
from dldiag.datasets import load_dataset

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "examples" / "models.py"
EXACT = {"s1": 1.0, "s2": 0.0, "s3": 0.0}


def _measured(figures: dict) -> dict:
    """The measured S1/S2/S3 of a `query --json` entry, without the estimate beside them."""
    return {k: v for k, v in figures.items() if k != "estimate"}


def _example_models():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_byo_example_models", MODELS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seeded(factory, seed, *args):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return factory(*args)


@pytest.fixture(scope="module")
def cancer():
    """(x, y, names, mean, std) of the breast-cancer table."""
    data = load_breast_cancer()
    x = data.data.astype(np.float32)
    return x, data.target.astype(np.int64), list(data.target_names), x.mean(0), x.std(0)


@pytest.fixture(scope="module")
def mlp(cancer):
    """The example MLP trained on standardised features (400 items, 300 Adam steps, seeded)."""
    x, y, _, mean, std = cancer
    model = _seeded(_example_models().breast_cancer_mlp, 0)
    xs = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    order = np.random.default_rng(0).permutation(len(x))[:400]
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xs[order]), yt[order]).backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def colour_digits():
    """scikit-learn's digits (the 450 test items) as 3-channel 16×16 images in [0, 1]."""
    ds = load_dataset("digits", splits=("test",))
    grey = ds.x_test[:, 0].repeat(2, axis=1).repeat(2, axis=2)
    rgb = np.stack([grey, 0.5 * grey + 0.25, 1.0 - grey], axis=1).astype(np.float32)
    return rgb, ds.y_test


@pytest.fixture(scope="module")
def resnet():
    return _seeded(_example_models().small_resnet, 1, 3, 10).eval()


def _standardise(mean, std):
    m, s = torch.from_numpy(mean), torch.from_numpy(std)

    def transform(batch):
        return (batch - m) / s

    return transform


def _exact(ws):
    """A sample of every item answers exactly, and the app serves the workspace."""
    acc = ws.evaluate(np.arange(ws.n_items), k=5)
    assert acc.overall == EXACT and acc.groups
    assert all((g["s1"], g["s2"], g["s3"]) == (1.0, 0.0, 0.0) for g in acc.groups)
    _serves(ws)
    return acc


def _serves(ws):
    """The app's layout and the panels' callback, over HTTP (the Flask test client)."""
    from dldiag.app import create_app
    from dldiag.app.callbacks import derived_stores
    from dldiag.app.service import build_meta

    samplers = ["random", "max-margin"]
    app = create_app(ws, default_projection="pca", samplers=samplers)
    client = app.server.test_client()
    assert "latent-graph" in client.get("/_dash-layout").get_data(as_text=True)
    stores = derived_stores(build_meta(ws, default_projection="pca", samplers=samplers).default_state())
    output = ("..topk-graph.figure...heatmap-graph.figure...argmax-graph.figure...confusion-graph.figure"
              "...group-label.children...confusion-shown.data...selection-info.children...exact-start.style"
              "...exact-poll.disabled...panels-error.children..")
    body = {"output": output, "outputs": [{"id": o.split(".")[0], "property": o.split(".")[1]}
                                          for o in output.strip(".").split("...")],
            "inputs": [{"id": "sample-params", "property": "data", "value": stores["sample-params"]},
                       {"id": "panel-params", "property": "data", "value": stores["panel-params"]},
                       {"id": "exact-ready", "property": "data", "value": None}],
            "state": [{"id": "confusion-shown", "property": "data", "value": None}],
            "changedPropIds": ["sample-params.data"]}
    answer = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
    assert answer.status_code == 200
    response = answer.get_json()["response"]
    assert response["panels-error"]["children"] is None and response["topk-graph"]["figure"]["data"]


# ------------------------------------------------------------------ the Python API

def test_a_module_on_arrays_with_a_transform(mlp, cancer, tmp_path):
    x, y, names, mean, std = cancer
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    mlp.train()  # the caller's mode: dldiag must give the model back as it was
    ws = dldiag.from_model(mlp, (x, y), class_names=names, transform=_standardise(mean, std),
                           cache_dir=tmp_path, show_progress=False)
    assert mlp.training and all(torch.equal(before[k], v) for k, v in mlp.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in mlp.modules())
    assert ws.layers == ("relu1", "relu2", "fc3") and ws.latent_layer == "fc3:input"
    assert ws.latent.shape == (569, 16) and ws.accuracy > 0.93
    _exact(ws)
    sample = ws.fitted_sampler("max-margin").sample(0.1, j=0.7, seed=0)
    assert 0 < ws.evaluate(sample, k=5).overall["s1"] <= 1
    again = dldiag.from_model(mlp, (x, y), class_names=names, transform=_standardise(mean, std),
                              cache_dir=tmp_path, show_progress=False)
    assert again.cache_hit and again.key == ws.key
    other = dldiag.from_model(mlp, (x, y), class_names=names, transform=_standardise(mean * 0, std),
                              cache_dir=tmp_path, show_progress=False)
    assert not other.cache_hit and other.key != ws.key  # another transform is another workspace


def test_a_torch_export_program_on_a_torch_dataset(resnet, colour_digits, tmp_path):
    x, y = colour_digits
    path = tmp_path / "resnet.pt2"
    example = torch.from_numpy(x[:4])
    program = torch.export.export(resnet, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, path)

    class Digits(torch.utils.data.Dataset):
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return torch.from_numpy(x[i]), int(y[i])

    ws = dldiag.from_model(str(path), Digits(), cache_dir=tmp_path, show_progress=False)
    assert ws.layers == ("stem", "block1", "block2", "block3", "fc") and ws.latent_layer == "fc:input"
    assert ws.model_info["kind"] == "export"
    _exact(ws)
    direct = dldiag.from_model(resnet, (x, y), cache_dir=tmp_path, show_progress=False)
    np.testing.assert_allclose(ws.latent, direct.latent, rtol=1e-4, atol=1e-5)  # the same network


def test_a_factory_with_weights_on_an_image_folder(resnet, colour_digits, tmp_path, capsys):
    x, y = colour_digits
    weights = tmp_path / "resnet.pt"
    torch.save(resnet.state_dict(), weights)
    folder = tmp_path / "digits"
    for i in range(120):
        cls = folder / f"digit-{y[i]}"
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(np.moveaxis(x[i], 0, -1) * 255).astype(np.uint8), "RGB").save(cls / f"{i:04d}.png")
    ws = dldiag.from_model(f"{MODELS}:small_resnet", f"folder:{folder}", weights=weights, cache_dir=tmp_path,
                           show_progress=False)
    assert ws.n_items == 120 and ws.dataset.class_names[0] == "digit-0" and ws.dataset.item_shape == (3, 16, 16)
    assert ws.model_info["kind"] == "factory"
    _exact(ws)
    assert cli(["query", "--model", f"{MODELS}:small_resnet", "--weights", str(weights), "--dataset",
                f"folder:{folder}", "--cache-dir", str(tmp_path), "--fraction", "1.0", "--json"]) == 0
    assert _measured(json.loads(capsys.readouterr().out)["overall"]) == EXACT


def test_h5_and_npz_data(mlp, cancer, tmp_path):
    x, y, names, mean, std = cancer
    xs = ((x - mean) / std).astype(np.float32)
    h5 = tmp_path / "cancer.h5"
    with h5py.File(h5, "w") as f:
        f["features"] = xs
        f["diagnosis"] = y
    weights = tmp_path / "mlp.pt"
    torch.save(mlp.state_dict(), weights)
    ws = dldiag.from_model(f"{MODELS}:breast_cancer_mlp", f"h5:{h5}?x=features&y=diagnosis", weights=weights,
                           class_names=names, cache_dir=tmp_path, show_progress=False)
    assert ws.dataset.item_shape == (30,) and ws.accuracy > 0.93
    _exact(ws)
    npz = tmp_path / "cancer.npz"
    np.savez(npz, x_test=xs, y_test=y, class_names=np.array(names))
    np.savez(npz, x_test=xs, y_test=y, class_names=np.array(names),
             feature_names=load_breast_cancer().feature_names)
    ws2 = dldiag.from_model(mlp, f"npz:{npz}", cache_dir=tmp_path, show_progress=False)
    assert ws2.dataset.class_names == tuple(names) and ws2.dataset.feature_names[0] == "mean radius"
    _exact(ws2)
    np.testing.assert_allclose(ws2.latent, ws.latent, rtol=1e-6)


# ------------------------------------------------------------------ the command line

def test_the_command_line_takes_a_factory_or_a_program_and_any_data(mlp, cancer, tmp_path, capsys):
    x, y, names, mean, std = cancer
    xs = ((x - mean) / std).astype(np.float32)
    npz, weights, cache = tmp_path / "cancer.npz", tmp_path / "mlp.pt", str(tmp_path / "cache")
    np.savez(npz, x_test=xs, y_test=y)
    torch.save(mlp.state_dict(), weights)
    common = ["--model", f"{MODELS}:breast_cancer_mlp", "--weights", str(weights), "--dataset", f"npz:{npz}",
              "--cache-dir", cache, "--class-names", ",".join(names)]
    assert cli(["query", *common, "--fraction", "1.0", "--k", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert _measured(out["overall"]) == EXACT and set(out["per_layer"]) == {"relu1", "relu2", "fc3"}
    assert all(g["s1"] == 1.0 and g["s2"] == 0.0 and g["s3"] == 0.0 for g in out["groups"])
    assert cli(["query", *common, "--sampler", "max-margin", "--fraction", "0.1", "--json"]) == 0
    sampled = json.loads(capsys.readouterr().out)
    assert sampled["n_sample"] == 57 and 0 < sampled["overall"]["s1"] <= 1
    assert cli(["info", *common, "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["parameters"] == sum(p.numel() for p in mlp.parameters())
    assert row["item_shape"] == [30] and row["layers"] == {"relu1": 32, "relu2": 16, "fc3": 2}  # fc1 32, fc2 16
    program = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(mlp, (torch.from_numpy(xs[:3]),),
                                          dynamic_shapes=({0: torch.export.Dim("batch")},)), program)
    h5 = tmp_path / "cancer.h5"
    with h5py.File(h5, "w") as f:
        f["x_test"], f["y_test"] = xs, y
    assert cli(["query", "--model", str(program), "--dataset", f"h5:{h5}", "--cache-dir", cache,
                "--fraction", "1.0", "--json"]) == 0
    assert _measured(json.loads(capsys.readouterr().out)["overall"]) == EXACT
    assert cli(["build", "--model", str(program), "--dataset", f"h5:{h5}", "--cache-dir", cache,
                "--projections", "pca", "--samplers", "random"]) == 0


# ------------------------------------------------------------------ the app

def test_the_app_serves_a_workspace_of_feature_vectors_and_one_of_rgb_images(mlp, cancer, resnet, colour_digits,
                                                                               tmp_path):
    from dldiag.app import callbacks as cb
    from dldiag.app import create_app
    from dldiag.app.service import Diagnosis, build_meta

    x, y, names, mean, std = cancer
    features = list(load_breast_cancer().feature_names)
    vectors = dldiag.from_model(mlp, (x, y), class_names=names, transform=_standardise(mean, std),
                                feature_names=features, cache_dir=tmp_path, show_progress=False)
    images = dldiag.from_model(resnet, colour_digits, cache_dir=tmp_path, show_progress=False)
    for ws in (vectors, images):
        app = create_app(ws, default_projection="pca", samplers=["random", "max-margin"])
        client = app.server.test_client()
        assert "latent-graph" in client.get("/_dash-layout").get_data(as_text=True)
        meta = build_meta(ws, default_projection="pca", samplers=["random", "max-margin"])
        svc = Diagnosis(ws)
        state = meta.default_state()
        stores = cb.derived_stores(state)
        topk, heat, argmax, confusion, label, _, _ = cb.panel_outputs(meta, svc, stores["sample-params"],
                                                                stores["panel-params"])
        assert topk["data"] and confusion["data"][0]["type"] == "heatmap"
        show, _, tip = cb.tooltip_outputs(meta, svc, {"points": [{"customdata": 3}]}, "max-margin")
        text = json.dumps(tip.to_plotly_json(), default=str)
        if ws is vectors:
            assert "most unusual features" in text and "data:image/png" not in text
            assert sum(name in text for name in features) == 6  # the six farthest from the mean, by name
        else:
            assert "data:image/png;base64," in text


# ------------------------------------------------------------------ bad input, one line each

def _one_line(exc_info, *needles):
    text = str(exc_info.value)
    assert "\n" not in text, text
    for needle in needles:
        assert needle in text, text


def test_a_model_that_fails_on_the_first_batch_is_named_with_the_item_shape(resnet, cancer, tmp_path):
    x, y, *_ = cancer
    with pytest.raises(ValueError) as info:
        dldiag.from_model(resnet, (x, y), cache_dir=tmp_path, show_progress=False)
    _one_line(info, "failed on a batch of 2 items of shape (30,)", "RuntimeError")


def test_logits_that_do_not_fit_the_classes_are_named(resnet, colour_digits, tmp_path):
    x, y = colour_digits
    with pytest.raises(ValueError) as info:
        dldiag.from_model(resnet, (x[:50], y[:50] % 3), class_names=["a", "b", "c"], cache_dir=tmp_path,
                          show_progress=False)
    _one_line(info, "gives outputs of shape (2, 10)", "the data has 3 classes")


def test_labels_out_of_range_and_unknown_layers_are_named(mlp, cancer, tmp_path):
    x, y, names, mean, std = cancer
    with pytest.raises(ValueError) as info:
        dldiag.from_model(mlp, (x, y + 1), class_names=names, cache_dir=tmp_path, show_progress=False)
    _one_line(info, "out of range")
    with pytest.raises(ValueError) as info:
        dldiag.from_model(mlp, (x, y), layers=["relu1", "nope"], transform=_standardise(mean, std),
                          cache_dir=tmp_path, show_progress=False)
    _one_line(info, "'nope'", "fc1", "relu2")
