import numpy as np
import pytest

from conftest import TINY_X, TINY_Y, TinyNet
from dldiag.activations import run_pass
from dldiag.queries import answer, evaluate, top_k


def test_top_k_ties_by_unit_index():
    np.testing.assert_array_equal(top_k(np.array([1.0, 3.0, 3.0, 0.0, 3.0]), 2), [1, 2])
    np.testing.assert_array_equal(top_k(np.array([1.0, 2.0]), 10), [1, 0])
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, inf\]; got 0"):
        top_k(np.array([1.0]), 0)


@pytest.mark.parametrize("seed", range(4))
def test_top_k_partial_sort_equals_full_sort(seed):
    rng = np.random.default_rng(seed)
    mean = np.round(rng.random(5000), 2)  # many ties
    for k in (1, 10, 100, 4999, 5000, 6000):
        reference = np.lexsort((np.arange(mean.size), -mean))[: min(k, mean.size)]
        np.testing.assert_array_equal(top_k(mean, k), reference)


def test_answers_of_tiny_model_by_hand():
    agg = run_pass(TinyNet(), TINY_X, TINY_Y, ("act",), n_classes=2).aggregates["act", "flat"]
    a = answer(agg, 2, cls=0, outcome="correct")  # items 0 and 4: [2,1,3], [4,0,4]
    assert a.count == 2
    np.testing.assert_allclose(a.mean, [3.0, 0.5, 3.5])
    np.testing.assert_array_equal(a.top, [2, 0])
    np.testing.assert_allclose(a.argmax_dist, [0.5, 0.0, 0.5])
    empty = answer(agg, 2, cls=1, predicted=0, outcome="correct")
    assert empty.count == 0 and empty.top.size == 0


def test_sample_equal_to_full_scores_exactly(fashion_small):
    model, x, y = fashion_small
    layers = ("conv1", "conv2", "fc1", "fc2", "logits")
    full = run_pass(model, x, y, layers, n_classes=10).aggregates
    same = run_pass(model, x, y, layers, n_classes=10, indices=np.arange(len(x))).aggregates
    for mode in ("flat", "channel"):
        acc = evaluate(same, full, k=10, unit_mode=mode)
        assert acc.overall == {"s1": 1.0, "s2": 0.0, "s3": 0.0}
        assert all(r["s1"] == 1.0 and r["s2"] == 0.0 and r["s3"] == 0.0 for r in acc.groups)


def test_groups_cover_every_nonempty_group(fashion_small):
    model, x, y = fashion_small
    layers = ("fc2", "logits")
    full = run_pass(model, x, y, layers, n_classes=10)
    wrong = full.y_pred != y
    expected = {(c, o) for c, w in zip(y, wrong) for o in [("incorrect" if w else "correct")]}
    sample = run_pass(model, x, y, layers, n_classes=10, indices=np.flatnonzero(~wrong)).aggregates
    acc = evaluate(sample, full.aggregates, k=5)
    assert {(r["cls"], r["outcome"]) for r in acc.groups if r["layer"] == "fc2"} == expected
    # the sample has no misclassified item: those groups score S1 = 0, S2 = 1, S3 = 1
    missing = [r for r in acc.groups if r["outcome"] == "incorrect"]
    assert missing and all((r["n_sample"], r["s1"], r["s2"], r["s3"]) == (0, 0.0, 1.0, 1.0) for r in missing)
    assert acc.overall["s1"] == pytest.approx(np.mean([r["s1"] for r in acc.groups]))
    assert set(acc.per_layer) == {"fc2", "logits"}


def test_evaluate_validates(fashion_small):
    model, x, y = fashion_small
    full = run_pass(model, x[:30], y[:30], ("fc2",), n_classes=10).aggregates
    with pytest.raises(ValueError, match="unit_mode must be one of 'flat', 'channel'; got 'pixel'"):
        evaluate(full, full, unit_mode="pixel")
    other = run_pass(model, x[:30], y[:30], ("fc1",), n_classes=10).aggregates
    with pytest.raises(ValueError, match="sample and full aggregates differ"):
        evaluate(other, full)


def _tiny_eval(k, indices=(1, 3, 4), unit_mode="flat"):
    full = run_pass(TinyNet(), TINY_X, TINY_Y, ("act", "logits"), n_classes=2).aggregates
    sample = run_pass(TinyNet(), TINY_X, TINY_Y, ("act", "logits"), n_classes=2,
                      indices=np.array(indices)).aggregates
    return evaluate(sample, full, k=k, unit_mode=unit_mode)


def test_s1_of_tiny_model_by_hand_leaves_out_layers_with_at_most_k_units():
    # Groups (class, outcome): (0, correct) = items 0, 4; (0, incorrect) = 2; (1, correct) = 1;
    # (1, incorrect) = 3. The sample {1, 3, 4} lacks item 2 (S1 = 0 there) and, in (0, correct),
    # holds item 4 only: act [4, 0, 4] has top-1 unit 0 where the full mean [3, 0.5, 3.5] has 2.
    k1 = _tiny_eval(1)  # act has 3 units, logits 2: both count at k = 1
    assert k1.s1_trivial_layers == () and k1.s1_note is None
    assert k1.per_layer["act"]["s1"] == 0.5 and k1.per_layer["logits"]["s1"] == 0.75
    assert k1.overall["s1"] == 5 / 8
    assert not any(r["s1_trivial"] for r in k1.groups)

    k2 = _tiny_eval(2)  # logits: 2 units <= k, trivial; act: 3 units > k
    assert k2.s1_trivial_layers == ("logits",)
    logits = k2.per_layer["logits"]
    assert logits["s1"] is None and logits["s1_trivial"] and logits["n_units"] == 2
    assert "2 units <= k" in logits["s1_note"]
    assert logits["s2"] == k1.per_layer["logits"]["s2"]  # S2 and S3 keep every layer
    # the groups keep their S1 (1, or 0 where the sample lacks the group) and carry the flag
    assert [r["s1"] for r in k2.groups if r["layer"] == "logits"] == [1.0, 0.0, 1.0, 1.0]
    assert all(r["s1_trivial"] == (r["layer"] == "logits") for r in k2.groups)
    act = [r["s1"] for r in k2.groups if r["layer"] == "act"]
    assert k2.overall["s1"] == k2.per_layer["act"]["s1"] == np.mean(act)
    assert k2.overall["s2"] == np.mean([r["s2"] for r in k2.groups])


def test_s1_overall_is_none_with_a_reason_when_every_layer_is_trivial():
    acc = _tiny_eval(3)
    assert acc.s1_trivial_layers == ("act", "logits")
    assert acc.overall["s1"] is None and "every layer" in acc.s1_note and "k=3" in acc.s1_note
    assert acc.overall["s2"] is not None and acc.overall["s3"] is not None
    out = acc.to_dict()
    assert out["s1_note"] == acc.s1_note and out["s1_trivial_layers"] == ["act", "logits"]


def test_s1_trivial_layers_follow_k_and_the_unit_mode(fashion_small):
    model, x, y = fashion_small
    layers = ("conv1", "fc2", "logits")  # flat: 4704, 84, 10 units; channel: 6, 84, 10
    full = run_pass(model, x, y, layers, n_classes=10).aggregates
    sample = run_pass(model, x, y, layers, n_classes=10, indices=np.arange(0, len(x), 7)).aggregates
    below, at = evaluate(sample, full, k=9), evaluate(sample, full, k=10)
    assert below.s1_trivial_layers == () and at.s1_trivial_layers == ("logits",)
    counted = [r["s1"] for r in at.groups if r["layer"] != "logits"]
    everything = [r["s1"] for r in at.groups]
    assert at.overall["s1"] == pytest.approx(np.mean(counted))
    assert at.overall["s1"] != pytest.approx(np.mean(everything))  # the logits would inflate it
    channel = evaluate(sample, full, k=6, unit_mode="channel")
    assert channel.s1_trivial_layers == ("conv1",)
    assert channel.per_layer["conv1"]["n_units"] == 6
    assert evaluate(sample, full, k=5, unit_mode="channel").s1_trivial_layers == ()
