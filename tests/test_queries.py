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
