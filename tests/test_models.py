import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dldiag.datasets import load_dataset
from dldiag.models import (
    LeNet5, build_model, default_architecture, default_checkpoint_path, default_layers,
    evaluate_accuracy, latent_layer, load_checkpoint, save_checkpoint, train_model, weights_hash,
)
from conftest import TinyNet
from dldiag.activations import forward_with_activations
from examples.models import breast_cancer_mlp, small_resnet


def _seeded(factory, *args, seed=0):
    """Build a model with seeded initial weights, leaving the global generator as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return factory(*args)


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
    with pytest.raises(ValueError, match="arch must be one of 'lenet5', 'small-cnn', 'galaxy-cnn'; got 'vgg'"):
        build_model("vgg", (1, 28, 28), 10)
    assert default_architecture((3, 32, 32)) == "lenet5"
    assert default_architecture((3, 69, 69)) == "galaxy-cnn"
    assert default_architecture((1, 69, 69)) == "lenet5"  # grey images of that size: not galaxies


def test_own_cnns_refuse_feature_vectors():
    # breast_cancer-like items (30 features): dldiag trains no model for them.
    message = (r"item_shape must be an image \(C, H, W\) for dldiag's own CNNs \(lenet5, "
               r"small-cnn, galaxy-cnn\); got \(30,\): for feature vectors")
    with pytest.raises(ValueError, match=message):
        default_architecture((30,))
    with pytest.raises(ValueError, match=message):
        build_model("small-cnn", (30,), 2)


def test_generic_model_default_layers():
    assert default_layers(TinyNet()) == ("act", "logits")  # declared: no example needed
    torch_model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    assert default_layers(torch_model, torch.zeros(2, 4)) == ("1", "2")
    assert latent_layer(torch_model, example=torch.zeros(2, 4)) == "2:input"
    assert latent_layer(torch_model, ("1", "2")) == "2:input"  # the logits are a linear layer
    with pytest.raises(ValueError, match=r"^model Sequential declares no diagnosed_layers; pass example= "
                                         r"\(a batch of a few inputs\) so that the default rule can trace "
                                         r"its forward pass, or name the layers explicitly$"):
        default_layers(torch_model)
    with pytest.raises(ValueError, match="^model Sequential declares no latent_layer; pass example="):
        latent_layer(torch_model)
    with pytest.raises(TypeError, match=r"^example must be a torch.Tensor \(one batch of inputs\); got ndarray$"):
        default_layers(torch_model, np.zeros((2, 4), dtype=np.float32))


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


def _lenet_sequential():
    """The classic LeNet as one flat nn.Sequential (functional layers as modules)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def test_default_rule_on_a_flat_lenet():
    model = _lenet_sequential()
    x = torch.zeros(2, 1, 28, 28)
    # groups: conv+ReLU (0, 1), conv+ReLU (3, 4), fc+ReLU (7, 8), fc+ReLU (9, 10), logits (11);
    # the pools and the flatten end a group without joining it
    assert default_layers(model, x) == ("1", "4", "8", "10", "11")
    assert latent_layer(model, example=x) == "11:input"


def test_default_rule_gives_lenet5_its_declared_layers():
    assert default_layers(LeNet5(), torch.zeros(2, 1, 28, 28)) == ("conv1", "conv2", "fc1", "fc2", "logits")
    assert latent_layer(LeNet5(), example=torch.zeros(2, 1, 28, 28)) == "fc2"

    class Undeclared(LeNet5):
        diagnosed_layers = ()
        latent_layer = ""

    model = _seeded(Undeclared).eval()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    # each block (conv/linear, batch norm, ReLU) is a whole Sequential, so it is named by it
    assert default_layers(model, x) == ("conv1", "conv2", "fc1", "fc2", "logits")
    assert latent_layer(model, example=x) == "logits:input"
    _, acts = forward_with_activations(model, ("fc2", "logits:input"), x)
    np.testing.assert_array_equal(acts["logits:input"].numpy(), acts["fc2"].numpy())


def test_default_rule_on_small_resnet():
    model = _seeded(small_resnet)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert default_layers(model, x) == ("stem", "block1", "block2", "block3", "fc")
    assert latent_layer(model, example=x) == "fc:input"
    assert 5_000 < sum(p.numel() for p in model.parameters()) < 100_000


def test_small_resnet_in_place_activations_match_a_manual_forward():
    model = _seeded(small_resnet).eval()
    # non-trivial batch-norm statistics, so that every block changes its input
    with torch.no_grad():
        for i, m in enumerate(model.modules()):
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(i))
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    layers = ("stem", "block1.bn2", "block1", "block2", "block3", "fc:input", "fc")
    logits, acts = forward_with_activations(model, layers, x)
    with torch.no_grad():
        stem = model.stem(x.clone())
        b1 = model.block1
        bn2 = b1.bn2(b1.conv2(b1.relu(b1.bn1(b1.conv1(stem.clone())))))
        block1 = model.block1(stem.clone())
        block2 = model.block2(block1.clone())
        block3 = model.block3(block2.clone())
        features = torch.flatten(model.pool(block3), 1)
        want = {"stem": stem, "block1.bn2": bn2, "block1": block1, "block2": block2, "block3": block3,
                "fc:input": features, "fc": model.fc(features)}
    for layer in layers:
        np.testing.assert_allclose(acts[layer].numpy(), want[layer].numpy(), rtol=1e-6, atol=1e-6)
    # the in-place `out += shortcut` and ReLU changed bn2's output after its hook: it is the copy
    assert (acts["block1.bn2"] < 0).any() and not (acts["block1"] < 0).any()
    np.testing.assert_array_equal(logits.numpy(), acts["fc"].numpy())
    # each block runs its one ReLU module twice: capturing it would be ambiguous
    with pytest.raises(ValueError, match=r"^layer 'block2.relu': module 'block2.relu' runs more than once"):
        forward_with_activations(model, ("block2.relu",), x)


def test_default_rule_on_breast_cancer_mlp():
    model = _seeded(breast_cancer_mlp)
    x = torch.randn(5, 30, generator=torch.Generator().manual_seed(3))
    assert default_layers(model, x) == ("relu1", "relu2", "fc3")
    assert latent_layer(model, example=x) == "fc3:input"
    _, acts = forward_with_activations(model, ("relu2", "fc3:input"), x)
    np.testing.assert_array_equal(acts["fc3:input"].numpy(), acts["relu2"].numpy())


class _Odd(nn.Module):
    """Cases of the rule: an input norm, a ModuleList, a shared ReLU, a ReLU after a pool."""

    def __init__(self):
        super().__init__()
        self.norm_in = nn.BatchNorm1d(4)       # before any group: dropped
        self.hidden = nn.ModuleList([nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6)])
        self.shared = nn.ReLU()               # runs twice: dropped
        self.unused = nn.Linear(6, 6)         # never runs: dropped
        self.pool = nn.AvgPool1d(2)           # changes the shape: ends the group
        self.after_pool = nn.ReLU()           # no group open: dropped
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        x = self.norm_in(x)
        for m in self.hidden:
            x = m(x)
        x = self.shared(self.shared(x))
        x = self.after_pool(self.pool(x.unsqueeze(1))).squeeze(1)
        return self.head(x)


def test_default_rule_cases():
    model = _Odd()
    model.train()
    model.hidden[1].eval()
    stats = model.norm_in.running_mean.clone()
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(4))
    # ModuleList expanded: Linear+Tanh is one group, the second Linear another
    assert default_layers(model, x) == ("hidden.1", "hidden.2", "head")
    assert latent_layer(model, example=x) == "head:input"
    # traced in eval mode, hooks removed, every module's mode given back
    assert torch.equal(model.norm_in.running_mean, stats)
    assert model.training and not model.hidden[1].training and model.hidden[0].training
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0


def test_latent_without_a_final_linear_is_the_layer_before_the_logits():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.zeros(2, 1, 6, 6)
    assert default_layers(model, x) == ("1", "2")
    assert latent_layer(model, example=x) == "1"
    with pytest.raises(ValueError, match="^the default layer rule found no module with parameters"):
        default_layers(nn.Sequential(nn.ReLU()), x)


def test_a_module_that_only_holds_others_is_expanded():
    class Holder(nn.Module):
        """Holds a conv and a ReLU that its parent calls directly; it never runs itself."""

        def __init__(self):
            super().__init__()
            self.conv, self.act = nn.Conv2d(1, 2, 3), nn.ReLU()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.parts, self.fc = Holder(), nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.parts.act(self.parts.conv(x)).flatten(1))

    x = torch.zeros(2, 1, 4, 4)
    assert default_layers(Net(), x) == ("parts.act", "fc")
    assert latent_layer(Net(), example=x) == "fc:input"
