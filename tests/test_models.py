import re
from pathlib import Path

import numpy as np
import pytest
import torch

from dldiag.datasets import load_dataset
from dldiag.models import (
    LeNet5, build_model, default_architecture, default_checkpoint_path, default_layers,
    evaluate_accuracy, latent_layer, load_checkpoint, save_checkpoint, train_model, weights_hash,
)
from conftest import TinyNet


def test_lenet5_shapes_and_layers():
    model = LeNet5()
    assert default_layers(model) == ("conv1", "conv2", "fc1", "fc2", "logits")
    assert latent_layer(model) == "fc2"
    out = model.eval()(torch.zeros(3, 1, 28, 28))
    assert out.shape == (3, 10)
    # batch norm after every hidden layer, as in the report's Fig. 2
    kinds = [type(m).__name__ for m in model.modules()]
    assert kinds.count("BatchNorm2d") == 2 and kinds.count("BatchNorm1d") == 2
    assert model.fc2[0].out_features == 84


def test_default_architecture_and_errors():
    assert default_architecture((1, 28, 28)) == "lenet5"
    assert default_architecture((1, 8, 8)) == "small-cnn"
    with pytest.raises(ValueError, match="arch must be one of 'lenet5', 'small-cnn'; got 'vgg'"):
        build_model("vgg", (1, 28, 28), 10)
    assert default_architecture((3, 32, 32)) == "lenet5"


def test_own_cnns_refuse_feature_vectors():
    # breast_cancer-like items (30 features): dldiag trains no model for them.
    message = (r"item_shape must be an image \(C, H, W\) for dldiag's own CNNs \(lenet5, "
               r"small-cnn\); got \(30,\): for feature vectors")
    with pytest.raises(ValueError, match=message):
        default_architecture((30,))
    with pytest.raises(ValueError, match=message):
        build_model("small-cnn", (30,), 2)


def test_generic_model_default_layers():
    assert default_layers(TinyNet()) == ("act", "logits")
    torch_model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    assert default_layers(torch_model) == ("1", "2")
    assert latent_layer(torch_model) == "1"


def test_seeded_training_is_reproducible_and_learns():
    ds = load_dataset("digits")
    accs, hashes = [], []
    for _ in range(2):
        model = build_model("small-cnn", ds.item_shape, ds.n_classes)
        train_model(model, ds.x_train, ds.y_train, epochs=3, lr=1e-2, seed=3, show_progress=False)
        accs.append(evaluate_accuracy(model, ds.x_test, ds.y_test))
        hashes.append(weights_hash(model))
    assert hashes[0] == hashes[1]
    assert accs[0] > 0.8


def test_checkpoint_round_trip_weights_only(tmp_path):
    model = build_model("small-cnn", (1, 8, 8), 10).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, arch="small-cnn", item_shape=(1, 8, 8),
                           n_classes=10, meta={"note": "x"})
    payload = torch.load(path, weights_only=True)  # nothing but tensors and plain values
    assert payload["arch"] == "small-cnn"
    loaded, info = load_checkpoint(path)
    assert info["weights_hash"] == weights_hash(model) and info["meta"] == {"note": "x"}
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy())


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; train one with"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a valid dldiag checkpoint: torch.load cannot read it") as err:
        load_checkpoint(bad)
    assert "\n" not in str(err.value)  # not torch's paragraphs on weights_only


def test_torch_files_holding_something_else_are_named(tmp_path):
    """Readable torch files that are not checkpoints: one ValueError naming the path and the content."""
    model = build_model("small-cnn", (1, 8, 8), 10)
    cases = {
        "list.pt": ([1, 2], r"holds a list, not a dldiag checkpoint \(a dict with arch, item_shape, "
                            r"n_classes, state_dict\)$"),
        "state_dict.pt": (model.state_dict(), r"holds a bare state_dict \(20 tensors\) without the "
                                              r"architecture.*come from `python -m dldiag train`"),
        "partial.pt": ({"arch": "small-cnn", "state_dict": model.state_dict()},
                       r"holds a dict without item_shape, n_classes \(its keys: arch, state_dict\), "
                       r"not a dldiag checkpoint"),
        "model.pt": (model, r"holds a pickled dldiag\.models\.SmallCNN object \(torch\.save\(model\) "
                            r"writes one\), which dldiag does not unpickle"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        torch.save(content, path)
        with pytest.raises(ValueError, match=rf"^checkpoint {re.escape(repr(str(path)))} {message}") as err:
            load_checkpoint(path)
        assert "\n" not in str(err.value)


def test_default_checkpoint_path_keeps_user_data_out_of_the_repository(tmp_path, monkeypatch):
    shipped = Path(__file__).resolve().parents[1] / "data" / "weights"
    assert default_checkpoint_path("digits", tmp_path) == shipped / "digits.pt"
    assert default_checkpoint_path("fashion-mnist") == shipped / "fashion-mnist.pt"
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path)
    mine = default_checkpoint_path("npz:a/data.npz", tmp_path / "c")
    assert mine.parent == tmp_path / "c" / "weights" and re.fullmatch(r"npz_data\.npz-[0-9a-f]{8}\.pt", mine.name)
    assert default_checkpoint_path(f"npz:{tmp_path}/a/data.npz", tmp_path / "c") == mine  # one file, one path
    assert default_checkpoint_path("npz:data.npz", tmp_path / "c") != mine  # another folder's data.npz
    monkeypatch.setenv("DLDIAG_CACHE", str(tmp_path / "env"))
    assert default_checkpoint_path("idx:a").parent == tmp_path / "env" / "weights"


def test_shipped_fashion_mnist_weights(fashion_small):
    model, x, y = fashion_small
    _, info = load_checkpoint(default_checkpoint_path("fashion-mnist"))
    assert info["meta"]["test_accuracy"] >= 0.89
    assert evaluate_accuracy(model, x, y) >= 0.85  # on the first 300 test items
