import numpy as np
import pytest
import torch
from torch import nn

from conftest import TINY_X, TINY_Y, TinyNet
from dldiag.activations import (capture, collect_activations, forward_with_activations, run_pass, select_output,
                                unit_view)


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_tiny_model_aggregates_by_hand(tiny):
    model, x, y = tiny
    res = run_pass(model, x, y, ("act", "logits"), n_classes=2, latent_layer="act", batch_size=2)
    np.testing.assert_array_equal(res.y_pred, [0, 1, 1, 0, 0])
    np.testing.assert_allclose(res.latent, [[2, 1, 3], [1, 3, 4], [0, 2, 1], [3, 0, 2], [4, 0, 4]])
    agg = res.aggregates["act", "flat"]
    # cells (true, predicted): (0,0) items 0 and 4, (1,1) item 1, (0,1) item 2, (1,0) item 3
    np.testing.assert_array_equal(agg.counts, [[2, 1], [1, 1]])
    np.testing.assert_allclose(agg.sums[0, 0], [6, 1, 7])
    np.testing.assert_allclose(agg.sums[0, 1], [0, 2, 1])
    np.testing.assert_allclose(agg.sums[1, 0], [3, 0, 2])
    # arg-max units: item 0 → 2, item 4 → 0 (tie of units 0 and 2 goes to the lower index)
    np.testing.assert_array_equal(agg.argmax_counts[0, 0], [1, 0, 1])
    np.testing.assert_array_equal(agg.argmax_counts[1, 1], [0, 0, 1])
    count, sums, arg = agg.group(cls=0, outcome="correct")
    assert count == 2 and np.allclose(sums / count, [3, 0.5, 3.5])
    count, sums, arg = agg.group(cls=1, outcome="incorrect")
    assert count == 1 and np.array_equal(arg, [1, 0, 0])
    assert agg.group(cls=0, predicted=1)[0] == 1  # the report's Q5: class 0 predicted as 1
    assert agg.group()[0] == 5


def test_batch_size_does_not_change_aggregates(fashion_small):
    model, x, y = fashion_small
    layers = ("conv1", "fc2", "logits")
    a = run_pass(model, x, y, layers, n_classes=10, batch_size=300).aggregates
    b = run_pass(model, x, y, layers, n_classes=10, batch_size=7).aggregates
    for key in a.by_layer:
        np.testing.assert_allclose(a.by_layer[key].sums, b.by_layer[key].sums, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(a.by_layer[key].argmax_counts, b.by_layer[key].argmax_counts)


def test_unit_modes_on_lenet(fashion_small):
    model, x, y = fashion_small
    agg = run_pass(model, x[:20], y[:20], ("conv1", "conv2", "fc2"), n_classes=10).aggregates
    assert agg["conv1", "flat"].n_units == 6 * 28 * 28 and agg["conv1", "flat"].unit_shape == (6, 28, 28)
    assert agg["conv1", "channel"].n_units == 6
    assert agg["conv2", "flat"].n_units == 16 * 10 * 10
    assert agg["fc2", "flat"].n_units == agg["fc2", "channel"].n_units == 84
    # channel sums are the flat sums averaged over space
    flat = agg["conv2", "flat"].sums.reshape(10, 10, 16, 100).mean(-1)
    np.testing.assert_allclose(agg["conv2", "channel"].sums, flat, rtol=1e-6)


def test_unit_view_channel_mean():
    act = torch.arange(16.0).reshape(1, 2, 2, 4)
    np.testing.assert_allclose(unit_view(act, "channel").numpy(), [[3.5, 11.5]])
    assert unit_view(act, "flat").shape == (1, 16)


def test_hooks_removed_after_pass(tiny):
    model, x, y = tiny
    run_pass(model, x, y, ("act", "logits"), n_classes=2)
    assert _hooks(model) == 0


def test_hooks_removed_when_pass_raises():
    model = TinyNet()
    with pytest.raises(RuntimeError, match="boom"):
        with capture(model, ("act", "logits")):
            assert _hooks(model) == 3  # one per layer, and the model's per-pass call counter
            raise RuntimeError("boom")
    assert _hooks(model) == 0

    class Broken(TinyNet):
        def forward(self, x):
            self.act(self.fc(x.flatten(1)))
            raise ValueError("forward failed")

    broken = Broken()
    with pytest.raises(ValueError, match="forward failed"):
        run_pass(broken, TINY_X, TINY_Y, ("act",), n_classes=2)
    assert _hooks(broken) == 0


def test_captured_activations_are_detached_clones():
    model = TinyNet(inplace=True)
    x = torch.tensor([[1.0, -2.0]], requires_grad=True)
    with capture(model, ("fc",)) as store:
        model(x)  # the in-place ReLU overwrites fc's output after the hook ran
    assert not store["fc"].requires_grad
    np.testing.assert_allclose(store["fc"].numpy(), [[1.0, -2.0, -1.0]])


def test_unknown_and_silent_layers_are_loud(tiny):
    model, x, y = tiny
    with pytest.raises(ValueError, match=r"\['nope'\] are not modules of the model; it has: 'fc', 'act', "
                                         r"'logits' \(a layer is 'NAME', a module's output, or "
                                         r"'NAME:input', its first input\)$"):
        run_pass(model, x, y, ("nope",), n_classes=2)
    with pytest.raises(ValueError, match=r"\['nope:input', 'fc:output'\] are not modules"):
        run_pass(model, x, y, ("nope:input", "fc:output", "fc:input"), n_classes=2)
    model.unused = nn.Linear(1, 1)
    with pytest.raises(RuntimeError, match=r"\['unused'\] produced no output"):
        forward_with_activations(model, ("unused",), torch.from_numpy(x))
    assert _hooks(model) == 0


def test_bad_labels_and_indices(tiny):
    model, x, y = tiny
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 2\); got values from 0 to 5"):
        run_pass(model, x, np.array([0, 1, 0, 1, 5]), ("act",), n_classes=2)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 5\)"):
        run_pass(model, x, y, ("act",), n_classes=2, indices=np.array([0, 9]))
    with pytest.raises(ValueError, match="batch_size must be an integer"):
        run_pass(model, x, y, ("act",), n_classes=2, batch_size=0)


def test_empty_sample_has_zero_counts(tiny):
    model, x, y = tiny
    res = run_pass(model, x, y, ("act", "logits"), n_classes=2, indices=np.array([], dtype=int))
    assert res.aggregates["act", "flat"].counts.sum() == 0
    assert res.aggregates["act", "flat"].n_units == 3


def test_in_place_ops_after_the_hook_fall_back_to_copies():
    model = TinyNet(inplace=True)  # the ReLU overwrites fc's output after fc's hook ran
    _, acts = forward_with_activations(model, ("fc", "act"), torch.tensor([[1.0, -2.0]]))
    np.testing.assert_allclose(acts["fc"].numpy(), [[1.0, -2.0, -1.0]])
    np.testing.assert_allclose(acts["act"].numpy(), [[1.0, 0.0, 0.0]])
    assert _hooks(model) == 0


def test_pass_without_layers_gives_predictions_and_latent_only(tiny):
    model, x, y = tiny
    res = run_pass(model, x, y, (), n_classes=2, latent_layer="act")
    np.testing.assert_array_equal(res.y_pred, [0, 1, 1, 0, 0])
    assert res.latent.shape == (5, 3) and res.aggregates.by_layer == {}


def test_a_model_that_changes_its_input_in_place_is_refused():
    class Mutating(TinyNet):
        def forward(self, x):
            x.mul_(2.0)
            return super().forward(x)

    with pytest.raises(RuntimeError, match="changed its input batch in place"):
        run_pass(Mutating(), TINY_X.copy(), TINY_Y, ("act",), n_classes=2)


def test_input_references_by_hand(tiny):
    """'NAME:input' is the module's first positional input: act's is fc's output, before the ReLU."""
    model, x, y = tiny
    _, acts = forward_with_activations(model, ("act:input", "logits:input", "act"), torch.from_numpy(x))
    np.testing.assert_allclose(acts["act:input"].numpy(),
                               [[2, 1, 3], [1, 3, 4], [-1, 2, 1], [3, -1, 2], [4, 0, 4]])
    np.testing.assert_array_equal(acts["logits:input"].numpy(), acts["act"].numpy())
    res = run_pass(model, x, y, ("logits:input",), n_classes=2, latent_layer="logits:input", batch_size=2)
    np.testing.assert_allclose(res.latent, [[2, 1, 3], [1, 3, 4], [0, 2, 1], [3, 0, 2], [4, 0, 4]])
    np.testing.assert_allclose(res.aggregates["logits:input", "flat"].sums[0, 0], [6, 1, 7])
    assert _hooks(model) == 0


def test_input_of_an_in_place_module_is_taken_before_it_runs():
    model = TinyNet(inplace=True)  # the ReLU overwrites its input; the input is captured first
    _, acts = forward_with_activations(model, ("act:input", "act"), torch.tensor([[1.0, -2.0]]))
    np.testing.assert_allclose(acts["act:input"].numpy(), [[1.0, -2.0, -1.0]])
    np.testing.assert_allclose(acts["act"].numpy(), [[1.0, 0.0, 0.0]])
    with capture(model, ("act:input",), clone=False) as store:
        model(torch.tensor([[1.0, -2.0]]))
    assert store.modified() == ["act:input"]  # what the fallback to copies relies on


class _SharedReLU(nn.Module):
    """fc → ReLU → fc2 → the same ReLU → logits: the ReLU module runs twice per forward pass."""

    def __init__(self):
        super().__init__()
        self.fc, self.fc2, self.logits = nn.Linear(2, 3), nn.Linear(3, 3), nn.Linear(3, 2)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.logits(self.act(self.fc2(self.act(self.fc(x.flatten(1))))))


def test_a_module_that_runs_twice_is_refused():
    model = _SharedReLU()
    for ref in ("act", "act:input"):
        with pytest.raises(ValueError, match=rf"^layer '{ref}': module 'act' runs more than once in one "
                                             r"forward pass, so its captured value would be ambiguous; "
                                             r"pick its parent block or a module that runs once$"):
            run_pass(model, TINY_X, TINY_Y, ("fc", ref), n_classes=2)
        assert _hooks(model) == 0
    # once per forward pass is fine, however many passes a capture block holds
    with capture(model, ("fc2",)) as store:
        model(torch.from_numpy(TINY_X))
        model(torch.from_numpy(TINY_X[:2]))
    assert store["fc2"].shape == (2, 3)


def test_a_layer_that_outputs_no_tensor_is_named():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    class WithPair(TinyNet):
        def __init__(self):
            super().__init__()
            self.pair = Pair()

        def forward(self, x):
            return super().forward(self.pair(x)[0])

    with pytest.raises(TypeError, match=r"^layer 'pair': the module's output is a tuple, not a tensor$"):
        forward_with_activations(WithPair(), ("pair",), torch.from_numpy(TINY_X))


class _TwoHeads(TinyNet):
    """TinyNet that returns its logits with its hidden features, as a tuple or a dict."""

    def __init__(self, as_dict=False):
        super().__init__()
        self.as_dict = as_dict

    def forward(self, x):
        hidden = self.act(self.fc(x.flatten(1)))
        logits = self.logits(hidden)
        return {"features": hidden, "logits": logits} if self.as_dict else (hidden, logits)


def test_output_selector_picks_the_logits(tiny):
    _, x, y = tiny
    want = run_pass(TinyNet(), x, y, ("act",), n_classes=2)
    for model, output in ((_TwoHeads(), 1), (_TwoHeads(), -1), (_TwoHeads(as_dict=True), "logits"),
                          (_TwoHeads(as_dict=True), lambda out: out["logits"])):
        got = run_pass(model, x, y, ("act",), n_classes=2, output=output, batch_size=2)
        np.testing.assert_array_equal(got.y_pred, want.y_pred)
        np.testing.assert_allclose(got.probs, want.probs)
        logits, _ = forward_with_activations(model, ("act",), torch.from_numpy(x), output=output)
        np.testing.assert_allclose(logits.numpy(), [[2, 1], [1, 3], [0, 2], [3, 0], [4, 0]])


def test_output_without_a_selector_says_what_the_model_returned(tiny):
    _, x, y = tiny
    with pytest.raises(ValueError, match=r"^the model returned a tuple of 2 items, not a tensor of logits; "
                                         r"pass output= \(an index, a key or a callable\) to pick the logits$"):
        run_pass(_TwoHeads(), x, y, ("act",), n_classes=2)
    with pytest.raises(ValueError, match=r"^the model returned a dict with keys 'features', 'logits', not a "
                                         r"tensor of logits; pass output="):
        forward_with_activations(_TwoHeads(as_dict=True), ("act",), torch.from_numpy(x))


def test_output_selector_errors():
    pair, named = (torch.zeros(1), torch.ones(1)), {"logits": torch.zeros(1), "n": 3}
    cases = [
        (pair, 2, ValueError, r"^output=2 is out of range for the model's tuple of 2 items$"),
        (named, 0, ValueError, r"^output=0 indexes a tuple or list, but the model returned a dict$"),
        (named, "logit", ValueError, r"^output='logit' is not a key of the model's output; its keys: 'logits', 'n'$"),
        (pair, "logits", ValueError, r"^output='logits' is a dict key, but the model returned a tuple$"),
        (named, "n", TypeError, r"^output='n' selected a int, not a tensor of logits$"),
        (pair, 1.0, TypeError, r"^output must be None, an int \(index\), a str \(key\) or a callable; got float 1.0$"),
        (pair, True, TypeError, r"got bool True$"),
        ([1], None, ValueError, r"^the model returned a list of 1 items"),
        ("text", None, TypeError, r"^the model returned a str, not a tensor of logits$"),
    ]
    for out, selector, kind, message in cases:
        with pytest.raises(kind, match=message):
            select_output(out, selector)
    assert select_output(pair, 1) is pair[1] and select_output(pair[0]) is pair[0]


def test_collect_activations_keeps_each_item_by_hand(tiny):
    model, x, _ = tiny
    y_pred, acts = collect_activations(model, x, ("act", "logits"), np.array([4, 0, 2]), batch_size=2)
    # ReLU outputs of items 4, 0 and 2 (conftest), in the order asked; logits = units 0 and 1
    np.testing.assert_array_equal(acts["act", "flat"], [[4, 0, 4], [2, 1, 3], [0, 2, 1]])
    np.testing.assert_array_equal(acts["logits", "channel"], [[4, 0], [2, 1], [0, 2]])
    np.testing.assert_array_equal(y_pred, [0, 0, 1])
    assert acts["act", "flat"].dtype == np.float32
    assert _hooks(model) == 0 and model.training
    y_pred, acts = collect_activations(model, x, ("act",), np.array([], dtype=np.int64))
    assert y_pred.shape == (0,) and acts["act", "flat"].shape == (0, 3)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 5\); got values from 0 to 5"):
        collect_activations(model, x, ("act",), np.array([0, 5]))
    with pytest.raises(ValueError, match="unit_mode must be one of 'flat', 'channel'; got 'pixel'"):
        collect_activations(model, x, ("act",), np.array([0]), unit_modes=("pixel",))


def test_collect_activations_of_a_conv_layer_per_channel_are_spatial_means():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 16, 3))
    x = np.random.default_rng(0).random((5, 1, 4, 4), dtype=np.float32)
    _, acts = collect_activations(model, x, ("1",), np.arange(5))
    np.testing.assert_allclose(acts["1", "channel"], acts["1", "flat"].reshape(5, 2, 16).mean(axis=2), rtol=1e-6)
