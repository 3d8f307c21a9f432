"""Design weights and the weighted (Hájek) estimator, on hand-checkable arrays and digits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dldiag.queries import evaluate
from dldiag.weighting import (
    WeightedLayerAggregates,
    design_weights,
    group_codes,
    post_stratified_weights,
    strata_weights,
    successive_inclusion,
    weighted_aggregates,
    weighted_pass,
)


def _exact_successive(w, n):
    """Inclusion probabilities of successive sampling by enumerating every ordered draw."""
    w = np.asarray(w, dtype=float)
    pi = np.zeros(len(w))
    for draw in itertools.permutations(range(len(w)), n):
        p, left = 1.0, w.sum()
        for i in draw:
            p *= w[i] / left
            left -= w[i]
        pi[list(draw)] += p
    return pi


# ------------------------------------------------------------------ inclusion probabilities
def test_successive_inclusion_equal_weights_is_n_over_N():
    assert np.allclose(successive_inclusion(np.ones(7), 3), 3 / 7)


@pytest.mark.parametrize("w, n", [([1, 2, 3, 4], 2), ([1, 1, 1, 10], 2), ([1, 2, 3, 4, 5, 6, 7, 8], 4),
                                  (np.exp(np.linspace(-3, 3, 7)), 3)])
def test_successive_inclusion_is_closer_to_exact_than_n_times_p(w, n):
    exact = _exact_successive(w, n)
    approx = successive_inclusion(w, n)
    naive = np.minimum(1.0, n * np.asarray(w) / np.sum(w))
    assert approx.sum() == pytest.approx(n)
    assert np.all((approx > 0) & (approx <= 1))
    assert np.abs(approx - exact).max() < np.abs(naive - exact).max()
    # Monotone in the weight, like the exact probabilities.
    order = np.argsort(w, kind="stable")
    assert np.all(np.diff(approx[order]) >= -1e-12)


def test_successive_inclusion_errors_name_the_parameter():
    with pytest.raises(ValueError, match="weights must be"):
        successive_inclusion([1.0, 0.0], 1)
    with pytest.raises(ValueError, match="n must be at most"):
        successive_inclusion([1.0, 2.0], 3)


# ------------------------------------------------------------------ strata and post-strata
def test_strata_weights_are_N_h_over_n_h():
    strata = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    idx = np.array([0, 2, 5, 6])
    # stratum 0: 4 items, 2 sampled -> 2; stratum 1: 2 items, 1 sampled -> 2; stratum 2: 3 items, 1 -> 3
    assert strata_weights(idx, strata).tolist() == [2.0, 2.0, 2.0, 3.0]


def test_post_stratification_reproduces_full_bin_shares():
    groups = np.array([0] * 8 + [1] * 4)
    score = np.array([5, 1, 7, 3, 2, 8, 6, 4, 0.5, 0.1, 0.3, 0.2])
    # group 0, 2 bins by rank: {1,2,3,4} and {5,6,7,8}; sample 3 of the low bin, 1 of the high
    idx = np.array([1, 3, 4, 2, 11, 8])
    w, collapsed = post_stratified_weights(idx, groups, score, n_bins=2)
    assert collapsed == 0
    assert w.tolist() == pytest.approx([4 / 3, 4 / 3, 4 / 3, 4.0, 2.0, 2.0])
    # the weighted share of each bin equals its full share (1/2 each) and totals are N_g
    assert w[:4].sum() == pytest.approx(8) and w[4:].sum() == pytest.approx(4)


def test_post_stratification_merges_empty_bins_into_the_nearest():
    groups = np.zeros(10, dtype=int)
    score = np.arange(10.0)
    # 5 bins of 2; items sampled from bins 0 and 4 only. Bin 1 -> bin 0, bin 3 -> bin 4,
    # bin 2 is as near to both and is split evenly: each side stands for 5 items.
    w, collapsed = post_stratified_weights(np.array([0, 9]), groups, score, n_bins=5)
    assert collapsed == 3
    assert w.tolist() == pytest.approx([5.0, 5.0])


def test_post_stratification_errors():
    with pytest.raises(ValueError, match="indices must be unique"):
        post_stratified_weights(np.array([1, 1]), np.zeros(3, int), np.zeros(3))
    with pytest.raises(ValueError, match="n_bins"):
        post_stratified_weights(np.array([1]), np.zeros(3, int), np.zeros(3), n_bins=0)


# ------------------------------------------------------------------ on digits
def test_random_sample_weights_are_uniform_within_every_group(digits_ws):
    s = digits_ws.fitted_sampler("random")
    idx = s.sample(0.2, seed=3)
    dw = design_weights(digits_ws, "random", idx)
    g = group_codes(digits_ws.y_true, digits_ws.y_pred)[idx]
    for code in np.unique(g):
        assert np.ptp(dw.weights[g == code]) == 0
    assert dw.method == "hajek-uniform" and dw.estimator == "weighted"


def test_stratified_cm_weights_equal_cell_size_over_sample_count(digits_ws):
    idx = digits_ws.fitted_sampler("stratified-cm").sample(0.1, seed=1)
    dw = design_weights(digits_ws, "stratified-cm", idx)
    cells = digits_ws.y_true * 100 + digits_ws.y_pred
    n_full = {c: int((cells == c).sum()) for c in np.unique(cells[idx])}
    n_samp = {c: int((cells[idx] == c).sum()) for c in np.unique(cells[idx])}
    assert dw.weights.tolist() == pytest.approx([n_full[c] / n_samp[c] for c in cells[idx]])


@pytest.mark.parametrize("name", ["max-margin", "vas"])
def test_post_stratified_weights_sum_to_group_sizes(digits_ws, name):
    idx = digits_ws.fitted_sampler(name).sample(0.2, j=0.7)
    dw = design_weights(digits_ws, name, idx)
    assert dw.method == "post-stratified"
    g = group_codes(digits_ws.y_true, digits_ws.y_pred)
    for code in np.unique(g[idx]):
        assert dw.weights[g[idx] == code].sum() == pytest.approx((g == code).sum())


@pytest.mark.parametrize("name", ["random", "latent-grid", "eb-tree", "gmm-full", "max-margin-weighted"])
def test_design_weights_of_the_whole_data_are_one(digits_ws, name):
    dw = design_weights(digits_ws, name, np.arange(digits_ws.n_items))
    assert dw.weights == pytest.approx(np.ones(digits_ws.n_items))


def test_weighted_variant_weights_are_inverse_inclusion(digits_ws):
    s = digits_ws.fitted_sampler("max-margin-weighted")
    idx = s.sample(0.2, seed=0)
    dw = design_weights(digits_ws, s, idx)
    assert dw.method == "hajek-successive"
    # inside a cluster, the sum of pi over all items is the items drawn from it
    cluster = s.cluster_
    for c in np.unique(cluster[idx]):
        members = cluster == c
        w = np.exp(-np.clip(s.log_ratio_[members], -s.log_ratio_clip, s.log_ratio_clip))
        pi = successive_inclusion(w, int((cluster[idx] == c).sum()))
        assert np.sort(1 / pi[np.isin(np.flatnonzero(members), idx)]) == pytest.approx(
            np.sort(dw.weights[cluster[idx] == c]))


def test_weighted_mean_of_the_full_data_is_the_full_mean(digits_ws):
    idx = np.arange(digits_ws.n_items)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.5, 2.0, size=len(idx))
    # Weights constant within each group (class, outcome) leave every group's mean unchanged.
    w = w[group_codes(digits_ws.y_true, digits_ws.y_pred)]
    plain, weighted = weighted_aggregates(digits_ws, idx, w)
    for agg in (plain, weighted):
        acc = evaluate(agg, digits_ws.full)
        assert acc.overall["s1"] == pytest.approx(1.0)
        assert acc.overall["s2"] == pytest.approx(0.0, abs=1e-9)
        # JS distance is a square root: a 1e-18 rounding of the divergence shows as 1e-9.
        assert acc.overall["s3"] == pytest.approx(0.0, abs=1e-6)


def test_weighted_aggregates_match_a_hand_weighted_mean(tiny):
    model, x, y = tiny
    idx = np.array([0, 1, 4])
    w = np.array([1.0, 2.0, 3.0])
    plain, weighted = weighted_pass(model, x, y, ("act",), n_classes=2, indices=idx, weights=w)
    agg = weighted["act", "flat"]
    assert isinstance(agg, WeightedLayerAggregates)
    # class 0 correct: items 0 [2, 1, 3] (w 1) and 4 [4, 0, 4] (w 3)
    count, sums, argmax = agg.group(0, "correct")
    assert count == 2
    assert (sums / count).tolist() == pytest.approx([(2 + 12) / 4, (1 + 0) / 4, (3 + 12) / 4])
    # arg-max: item 0 -> unit 2 (w 1), item 4 -> unit 0 (tie with 2, lowest index) (w 3)
    assert (argmax / count).tolist() == pytest.approx([0.75, 0.0, 0.25])
    assert plain["act", "flat"].group(0, "correct")[0] == 2


def test_equal_weights_give_the_plain_answers(digits_ws):
    idx = digits_ws.fitted_sampler("max-margin").sample(0.2, j=0.7)
    plain = digits_ws.evaluate(idx).overall
    same = digits_ws.evaluate(idx, weights=np.full(len(idx), 7.0)).overall
    assert same == pytest.approx(plain, abs=1e-9)


def test_max_margin_weighted_s2_is_measured(digits_ws, capsys):
    """Digits, max-margin at 20 %: the weighted S2 against the plain one (reported, not asserted)."""
    idx = digits_ws.fitted_sampler("max-margin").sample(0.2, j=0.7)
    dw = design_weights(digits_ws, "max-margin", idx)
    plain, weighted = weighted_aggregates(digits_ws, idx, dw.weights)
    p, w = evaluate(plain, digits_ws.full), evaluate(weighted, digits_ws.full)
    with capsys.disabled():
        print(f"\ndigits max-margin 20 %: S2 plain {p.overall['s2']:.4f}, weighted {w.overall['s2']:.4f} "
              f"({dw.collapsed} bins merged)")
    # By construction: the same groups are present, with the same item counts.
    assert [r["n_sample"] for r in p.groups] == [r["n_sample"] for r in w.groups]
    assert 0.0 <= w.overall["s2"] <= 1.0


def test_design_weights_errors(digits_ws):
    with pytest.raises(ValueError, match="sampler must be one of"):
        design_weights(digits_ws, "nope", np.array([0]))
    with pytest.raises(ValueError, match="indices must lie in"):
        design_weights(digits_ws, "random", np.array([digits_ws.n_items]))
    with pytest.raises(ValueError, match="weights must be"):
        digits_ws.evaluate(np.array([0, 1]), weights=np.array([1.0, -1.0]))


def test_the_experiment_refits_every_seeded_sampler_per_draw(digits_ws):
    """As the main grid: a seeded fit is a new fit per draw, a randomised one a new sample seed."""
    from dldiag.experiments.weighting import run_weighting, summarise

    rows = run_weighting(digits_ws, fractions=(0.2,), seeds=2, samplers=("random", "max-margin"),
                         log=lambda line: None)
    plain = [r for r in rows if r["estimator"] == "plain"]
    assert [(r["sampler"], r["seed"], r["fit_seed"]) for r in plain] == [
        ("random", 0, 0), ("random", 1, 0), ("max-margin", 0, 0), ("max-margin", 0, 1)]
    # the two max-margin draws are two fits, scored as two draws
    mm = [r for r in plain if r["sampler"] == "max-margin"]
    fits = [digits_ws.fitted_sampler("max-margin", seed=s).sample(0.2, j=0.7) for s in (0, 1)]
    assert [r["n_sample"] for r in mm] == [len(f) for f in fits]
    summary = {r["sampler"]: r for r in summarise(rows)}
    assert summary["max-margin"]["n_draws"] == 2
    assert summary["max-margin"]["s1_plain"] == pytest.approx(np.mean([r["s1"] for r in mm]))


def test_the_experiment_s_per_outcome_s1_leaves_out_trivial_layers(digits_ws):
    from dldiag.experiments.weighting import _scores

    idx = digits_ws.fitted_sampler("random").sample(0.2, seed=0)
    acc = digits_ws.evaluate(idx)
    assert any(g["s1_trivial"] for g in acc.groups)  # the 10-unit logits at k = 10
    row = _scores(acc)
    kept = [g["s1"] for g in acc.groups if g["outcome"] == "correct" and not g["s1_trivial"]]
    assert row["s1_correct"] == pytest.approx(np.mean(kept))
    assert row["s1"] == pytest.approx(acc.overall["s1"])
