"""load_model: every form of model spec, round trip, and one clear line for every bad input."""

import copy
import json
import re
import sys
import zipfile
from dataclasses import FrozenInstanceError
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import TinyNet
from dldiag.activations import forward_with_activations, run_pass
from dldiag.model_spec import LoadedModel, load_model
from dldiag.models import build_model, default_layers, latent_layer, save_checkpoint, weights_hash
from dldiag.replicas import ModelPool
from examples.models import breast_cancer_mlp, small_resnet

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "models.py"
RESNET_LAYERS = ("stem", "block1", "block2", "block3", "fc")


def _seeded(factory, *args, seed=0):
    """Build a model with seeded initial weights, leaving the global generator as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return factory(*args)


def _images(n, seed=1):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def _one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    return message


def _export(model, x, path, dynamic=True):
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    torch.export.save(torch.export.export(model.eval(), (x,), dynamic_shapes=shapes), path)
    return path


@pytest.fixture(scope="module")
def resnet_program(tmp_path_factory):
    """A seeded small_resnet and its torch.export program with a dynamic batch dimension."""
    model = _seeded(small_resnet).eval()
    path = _export(model, _images(2), tmp_path_factory.mktemp("export") / "resnet.pt2")
    return model, path


# --- the forms, round trip ---
def test_a_module_is_used_as_it_is():
    model = TinyNet()
    model.train()
    loaded = load_model(model)
    assert isinstance(loaded, LoadedModel) and loaded.module is model
    assert model.training  # not switched to eval mode: the caller's object is left alone
    assert loaded.info == {"kind": "module", "source": "conftest.TinyNet instance",
                           "weights_hash": weights_hash(model), "code_hash": loaded.info["code_hash"]}
    assert re.fullmatch(r"[0-9a-f]{64}", loaded.info["code_hash"])
    with pytest.raises(FrozenInstanceError):
        loaded.module = None


def test_code_hash_tells_apart_equal_weights_with_different_code():
    class Doubled(TinyNet):
        def forward(self, x):
            return 2 * super().forward(x)

    a, b = TinyNet(), Doubled()  # TinyNet sets its weights by hand: equal state_dicts
    assert load_model(a).info["weights_hash"] == load_model(b).info["weights_hash"]
    assert load_model(a).info["code_hash"] != load_model(b).info["code_hash"]
    assert load_model(TinyNet()).info["code_hash"] == load_model(a).info["code_hash"]
    # the same classes with other settings (a stride) compute something else from equal weights
    one, two = nn.Sequential(nn.Conv2d(1, 1, 3)), nn.Sequential(nn.Conv2d(1, 1, 3, stride=2))
    two.load_state_dict(one.state_dict())
    assert load_model(one).info["weights_hash"] == load_model(two).info["weights_hash"]
    assert load_model(one).info["code_hash"] != load_model(two).info["code_hash"]


def test_export_program_round_trip_with_hooks(resnet_program):
    model, path = resnet_program
    loaded = load_model(path)
    assert loaded.info["kind"] == "export" and loaded.info["source"] == str(path)
    assert loaded.info["batch_size"] is None
    assert loaded.info["weights_hash"] == weights_hash(model)
    assert loaded.info["code_hash"] == load_model(str(path)).info["code_hash"]
    x = _images(5, seed=3)  # not the exported batch size
    # the unflattened program has the original submodules: the rule finds the same layers
    assert default_layers(loaded.module, x) == RESNET_LAYERS
    assert latent_layer(loaded.module, example=x) == "fc:input"
    layers = RESNET_LAYERS + ("fc:input", "block1.bn2")
    want_logits, want = forward_with_activations(model, layers, x)
    got_logits, got = forward_with_activations(loaded.module, layers, x)
    np.testing.assert_allclose(got_logits.numpy(), want_logits.numpy(), rtol=1e-5, atol=1e-5)
    for layer in layers:
        np.testing.assert_allclose(got[layer].numpy(), want[layer].numpy(), rtol=1e-5, atol=1e-5)
    assert sum(len(m._forward_hooks) for m in loaded.module.modules()) == 0
    with pytest.raises(ValueError, match=r"^layer 'block1.relu': module 'block1.relu' runs more than once"):
        forward_with_activations(loaded.module, ("block1.relu",), x)


def test_export_with_a_fixed_batch_size_says_how_to_re_export(tmp_path):
    path = _export(_seeded(breast_cancer_mlp), torch.zeros(4, 30), tmp_path / "fixed.pt2", dynamic=False)
    loaded = load_model(path)
    assert loaded.info["batch_size"] == 4
    assert loaded.module(torch.zeros(4, 30)).shape == (4, 2)
    with pytest.raises(ValueError) as err:
        loaded.module(torch.zeros(3, 30))
    assert _one_line(err) == (
        f"model file {str(path)!r} was exported for batches of exactly 4 items and got 3; re-export it "
        "with a dynamic batch dimension: torch.export.save(torch.export.export(model, (example,), "
        "dynamic_shapes=({0: torch.export.Dim('batch')},)), 'model.pt2')")


def test_file_factory_with_weights(tmp_path):
    trained = _seeded(small_resnet, seed=5).eval()
    torch.save(trained.state_dict(), tmp_path / "w.pt")
    spec = f"{EXAMPLES}:small_resnet"
    loaded = load_model(spec, weights=tmp_path / "w.pt")
    assert loaded.info["kind"] == "factory" and loaded.info["weights"] == str(tmp_path / "w.pt")
    assert loaded.info["source"] == f"{spec} with weights {tmp_path / 'w.pt'}"
    assert loaded.info["weights_hash"] == weights_hash(trained)
    assert loaded.info["code_hash"] == load_model(trained).info["code_hash"]  # same code, other import
    assert not loaded.module.training
    x = _images(3)
    with torch.no_grad():
        np.testing.assert_array_equal(loaded.module(x).numpy(), trained(x).numpy())
    # without weights: the factory's own initial weights
    fresh = load_model(spec)
    assert fresh.info["weights"] is None and fresh.info["weights_hash"] != weights_hash(trained)


def test_file_factory_imports_its_neighbours(tmp_path, monkeypatch):
    (tmp_path / "neighbour_blocks.py").write_text("WIDTH = 7\n")
    (tmp_path / "net.py").write_text(
        "from torch import nn\nimport neighbour_blocks\n\n"
        "def make():\n    return nn.Linear(2, neighbour_blocks.WIDTH)\n")
    monkeypatch.delitem(sys.modules, "neighbour_blocks", raising=False)  # removed again after the test
    loaded = load_model(f"{tmp_path / 'net.py'}:make")
    assert loaded.module.out_features == 7
    assert str(tmp_path) not in sys.path


def test_package_factory(tmp_path, monkeypatch):
    package = tmp_path / f"userpkg_{tmp_path.name}"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(
        "from torch import nn\n\nclass Net(nn.Sequential):\n"
        "    def __init__(self):\n        super().__init__(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_model(f"{package.name}.nets:Net")  # a class is a factory too
    assert loaded.info["kind"] == "factory" and loaded.info["source"] == f"{package.name}.nets:Net"
    assert default_layers(loaded.module, torch.zeros(2, 2)) == ("1", "2")


def test_dldiag_checkpoint(tmp_path):
    model = _seeded(build_model, "small-cnn", (1, 8, 8), 10).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, arch="small-cnn", item_shape=(1, 8, 8), n_classes=10,
                           meta={"note": "x"})
    loaded = load_model(path)
    info = loaded.info
    assert info["kind"] == "checkpoint" and info["source"] == str(path)
    assert (info["arch"], info["item_shape"], info["n_classes"], info["meta"]) == ("small-cnn", (1, 8, 8), 10,
                                                                                    {"note": "x"})
    assert info["weights_hash"] == weights_hash(model)
    assert info["code_hash"] == load_model(model).info["code_hash"]
    assert default_layers(loaded.module) == ("conv1", "conv2", "fc1", "logits")


def _saved_on_cuda(monkeypatch, obj, path):
    """torch.save ``obj`` as if its tensors lived on CUDA: torch writes each storage's device tag."""
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(obj, path)
    with pytest.raises(RuntimeError, match="on a CUDA device"):
        torch.load(path, weights_only=True)  # what a CPU-only torch does without map_location
    return path


def test_cuda_saved_weights_and_checkpoints_load_on_cpu(tmp_path, monkeypatch):
    trained = _seeded(breast_cancer_mlp).eval()
    weights = _saved_on_cuda(monkeypatch, trained.state_dict(), tmp_path / "w.pt")
    loaded = load_model(f"{EXAMPLES}:breast_cancer_mlp", weights=weights)
    assert loaded.info["weights_hash"] == weights_hash(trained)
    model = build_model("small-cnn", (1, 8, 8), 10)
    payload = {"arch": "small-cnn", "item_shape": [1, 8, 8], "n_classes": 10,
               "state_dict": model.state_dict(), "meta": {}}
    checkpoint = _saved_on_cuda(monkeypatch, payload, tmp_path / "ck.pt")
    assert load_model(checkpoint).info["weights_hash"] == weights_hash(model)


def test_cuda_saved_program_on_cpu_only_torch(tmp_path):
    """A program's weights record their device in a JSON config; torch moves each to it on load."""
    if torch.cuda.is_available():
        pytest.skip("this torch has CUDA: the program loads")
    cpu = _export(_seeded(breast_cancer_mlp), torch.zeros(2, 30), tmp_path / "cpu.pt2")
    cuda = tmp_path / "cuda.pt2"
    with zipfile.ZipFile(cpu) as src, zipfile.ZipFile(cuda, "w") as dst:
        for entry in src.infolist():
            data = src.read(entry)
            if entry.filename.endswith("model_weights_config.json"):
                config = json.loads(data)
                for weight in config["config"].values():
                    weight["tensor_meta"]["device"] = {"type": "cuda", "index": 0}
                data = json.dumps(config).encode()
            dst.writestr(entry.filename, data)
    with pytest.raises(ValueError) as err:
        load_model(cuda)
    assert _one_line(err) == (f"model file {str(cuda)!r} was saved on CUDA; this torch is CPU-only; "
                              "re-export on CPU (model.cpu() and a CPU example before torch.export.export)")


# --- bad input, one line each ---
def test_spec_of_no_accepted_form(tmp_path):
    forms = (r"an nn.Module, a torch.export program \('model.pt2'\), 'FILE.py:FACTORY' or "
             r"'package.module:FACTORY' \(with weights= a state_dict file\), or a dldiag checkpoint")
    with pytest.raises(ValueError, match=rf"^model must be {forms}; got 'resnet18'$"):
        load_model("resnet18")
    with pytest.raises(ValueError, match=rf"^model must be {forms}; got the folder "):
        load_model(tmp_path)
    with pytest.raises(TypeError, match=rf"^model must be {forms}; got a int$"):
        load_model(42)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_model(tmp_path / "model.pt2")
    assert _one_line(err) == f"model file {str(tmp_path / 'model.pt2')!r} does not exist"
    spec = f"{tmp_path / 'net.py'}:make"
    with pytest.raises(FileNotFoundError) as err:
        load_model(spec)
    assert _one_line(err) == f"model spec {spec!r}: file {str(tmp_path / 'net.py')!r} does not exist"
    with pytest.raises(FileNotFoundError) as err:
        load_model(f"{EXAMPLES}:small_resnet", weights=tmp_path / "w.pt")
    assert _one_line(err) == f"weights file {str(tmp_path / 'w.pt')!r} does not exist"


def _write(tmp_path, text, name="net.py"):
    path = tmp_path / name
    path.write_text("from torch import nn\n\n" + text)
    return path


def test_factory_failures(tmp_path, monkeypatch):
    path = _write(tmp_path, "def make():\n    raise RuntimeError('needs a GPU\\nsecond line')\n\n"
                            "def not_a_model():\n    return {'fc': nn.Linear(2, 2)}\n\nWIDTH = 3\n")
    cases = {
        "make": r"make\(\) raised RuntimeError: needs a GPU$",
        "not_a_model": r"not_a_model\(\) returned a dict, not a torch nn.Module$",
        "WIDTH": r"WIDTH is a int, not a function that returns the model$",
        "nope": rf"{re.escape(repr(str(path)))} has no attribute 'nope'; its callables: make, not_a_model$",
    }
    for attr, message in cases.items():
        spec = f"{path}:{attr}"
        with pytest.raises(ValueError, match=rf"^model spec {re.escape(repr(spec))}: {message}") as err:
            load_model(spec)
        _one_line(err)
    broken = _write(tmp_path, "def make(:\n", name="broken.py")
    with pytest.raises(ValueError, match=rf"^model spec .*: importing {re.escape(repr(str(broken)))} raised "
                                         r"SyntaxError: ") as err:
        load_model(f"{broken}:make")
    _one_line(err)
    with pytest.raises(ValueError, match=r"^model spec 'no_such_package.nets:make': cannot import "
                                         r"no_such_package.nets \(ModuleNotFoundError: No module named "
                                         r"'no_such_package'\)$"):
        load_model("no_such_package.nets:make")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=r"^model spec 'net:nope': net has no attribute 'nope'; its callables: "
                                         r"make, not_a_model$"):
        load_model("net:nope")


def test_weights_that_do_not_fit_are_named(tmp_path):
    spec = f"{EXAMPLES}:breast_cancer_mlp"
    state = _seeded(breast_cancer_mlp, 30, 3).state_dict()  # 3 classes: fc3 is mis-shaped
    del state["fc1.bias"]
    state["head.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(ValueError) as err:
        load_model(spec, weights=tmp_path / "w.pt")
    assert _one_line(err) == (
        f"weights file {str(tmp_path / 'w.pt')!r} does not fit the model of {spec!r}: "
        "missing keys (1): fc1.bias; unexpected keys (1): head.weight; shape mismatches (2): "
        "fc3.weight [3, 16] in the file, [2, 16] in the model, fc3.bias [3] in the file, [2] in the model")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"holds a list that is not a state_dict; weights= takes a dict of "
                                         r"tensors, as torch.save\(model.state_dict\(\), path\) writes$"):
        load_model(spec, weights=tmp_path / "list.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"junk.pt' is not a file torch can read \(.+\); weights= takes"):
        load_model(spec, weights=tmp_path / "junk.pt")
    torch.save(breast_cancer_mlp(), tmp_path / "whole.pt")
    with pytest.raises(ValueError, match=r"holds a pickled torch.nn.modules.container.Sequential object, "
                                         r"not a state_dict; save one with torch.save\(model.state_dict\(\), path\)$"):
        load_model(spec, weights=tmp_path / "whole.pt")
    with pytest.raises(ValueError, match=r"^weights= applies to 'FILE.py:FACTORY' and 'package.module:FACTORY' "
                                         r"specs; an nn.Module instance carries its own weights; got weights="):
        load_model(TinyNet(), weights=tmp_path / "w.pt")


def test_model_files_that_hold_something_else(tmp_path):
    model = breast_cancer_mlp()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    torch.save(model, tmp_path / "whole.pt")
    torch.save({"epoch": 3}, tmp_path / "dict.pt")
    (tmp_path / "junk.bin").write_bytes(b"not a torch file")
    cases = {
        "sd.pt": r"holds a bare state_dict \(6 tensors\) without the code of the model; give the code that "
                 rf"builds it as 'FILE.py:FACTORY' with weights={re.escape(repr(str(tmp_path / 'sd.pt')))}$",
        "whole.pt": r"holds a pickled torch.nn.modules.container.Sequential object \(torch.save\(model\) writes "
                    r"one\), which dldiag does not unpickle: save model.state_dict\(\) and give the code",
        "dict.pt": r"holds a dict, not a model; a model file is a torch.export program \(.pt2\) or a dldiag "
                   r"checkpoint \(a dict with arch, item_shape, n_classes, state_dict\)$",
        "junk.bin": r"is not a file torch can read \(.+\); a model file is a torch.export program \(.pt2\) "
                    r"or a dldiag checkpoint$",
    }
    for name, message in cases.items():
        where = re.escape(repr(str(tmp_path / name)))
        with pytest.raises(ValueError, match=rf"^model file {where} {message}") as err:
            load_model(tmp_path / name)
        _one_line(err)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torchscript_is_refused_with_how_to_export(tmp_path):
    scripted = torch.jit.script(TinyNet())
    scripted.save(str(tmp_path / "net.pt"))
    howto = (r"forward hooks do not run on a TorchScript module's submodules, so dldiag cannot read its "
             r"layers: export the nn.Module instead, torch.export.save\(torch.export.export\(model, "
             r"\(example,\), dynamic_shapes=\(\{0: torch.export.Dim\('batch'\)\},\)\), 'model.pt2'\)$")
    with pytest.raises(ValueError, match=rf"^model file .*net.pt' is a TorchScript archive; {howto}") as err:
        load_model(tmp_path / "net.pt")
    _one_line(err)
    with pytest.raises(ValueError, match=rf"^model is a TorchScript module; {howto}"):
        load_model(scripted)
    with pytest.raises(ValueError, match=r"^weights= applies to .*; model file .* carries its own weights"):
        load_model(tmp_path / "net.pt", weights=tmp_path / "w.pt")


def test_a_program_runs_passes_like_its_module_and_has_replicas(resnet_program):
    model, path = resnet_program
    loaded = load_model(path)
    x = _images(6, seed=4).numpy()
    y = np.array([0, 1, 2, 3, 4, 5])
    # batches of 4 then 2: neither is the exported batch size
    want = run_pass(model, x, y, RESNET_LAYERS, n_classes=10, latent_layer="fc:input", batch_size=4)
    got = run_pass(loaded.module, x, y, RESNET_LAYERS, n_classes=10, latent_layer="fc:input", batch_size=4)
    np.testing.assert_array_equal(got.y_pred, want.y_pred)
    np.testing.assert_allclose(got.latent, want.latent, rtol=1e-5, atol=1e-6)
    for key, agg in want.aggregates.by_layer.items():
        np.testing.assert_allclose(got.aggregates.by_layer[key].sums, agg.sums, rtol=1e-5, atol=1e-5)
    # torch cannot deep-copy an unflattened program; dldiag's can be: a pool makes replicas that
    # share the snapshot's parameters, and a plain copy owns its own
    pool = ModelPool(loaded.module, size=2)
    assert pool.size == 2  # a pool that cannot copy its model falls back to size 1 (and this would wait)
    with pool.lease() as one, pool.lease() as two:
        assert one is not two and one is not loaded.module
        assert one.fc.weight.data_ptr() == two.fc.weight.data_ptr() == pool.model.fc.weight.data_ptr()
        _, acts = forward_with_activations(one, ("fc:input",), torch.from_numpy(x))
        np.testing.assert_allclose(acts["fc:input"].numpy(), want.latent, rtol=1e-5, atol=1e-6)
    twin = copy.deepcopy(loaded.module)
    assert twin.fc.weight.data_ptr() != loaded.module.fc.weight.data_ptr()
    assert weights_hash(twin) == loaded.info["weights_hash"]
