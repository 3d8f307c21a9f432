"""The bootstrap estimates of a sample's accuracy, on hand-checkable arrays and on digits."""

from __future__ import annotations

import numpy as np
import pytest

from dldiag.cache import ArrayCache
from dldiag.estimates import (
    GroupEstimate,
    NoEstimate,
    bootstrap_counts,
    estimate_group,
    estimate_groups,
    expanded_level,
    fpc_shrink,
    group_rng,
    group_sizes,
    with_estimates,
)
from dldiag.metrics import cosine_distance, js_distance, precision_at_k
from dldiag.queries import answer, top_k


# ----------------------------------------------------------------- hand-checkable arrays
def test_two_items_match_the_binomial_law_of_their_resamples():
    """Items [1, 0] and [0, 1]: a resample holds item 0 c times, c ~ Binomial(2, 1/2).

    c = 2 gives the mean [1, 0], c = 1 the sample mean [.5, .5], c = 0 [0, 1]. The sample's
    top-1 is unit 0 (a tie, lower index), which stays first unless c = 0: probability 3/4.
    """
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    n_boot = 20_000
    est = estimate_group(x, k=1, n_boot=n_boot, seed=3)
    p = {2: 0.25, 1: 0.5, 0: 0.25}
    means = {2: np.array([1.0, 0.0]), 1: np.array([0.5, 0.5]), 0: np.array([0.0, 1.0])}
    dists = {2: np.array([1.0, 0.0]), 1: np.array([0.5, 0.5]), 0: np.array([0.0, 1.0])}
    sample_mean, sample_dist = means[1], dists[1]
    expect = {
        "s1": sum(p[c] * precision_at_k(top_k(means[c], 1), np.array([0])) for c in p),
        "s2": sum(p[c] * cosine_distance(means[c], sample_mean) for c in p),
        "s3": sum(p[c] * js_distance(dists[c], sample_dist) for c in p),
    }
    assert est.top.tolist() == [0]
    assert not est.s1_trivial
    for metric, value in expect.items():
        rep = est.replicates[metric]
        # 4 standard errors of a mean of n_boot draws
        assert abs(getattr(est, metric).value - value) < 4 * rep.std() / np.sqrt(n_boot) + 1e-12, metric
    assert abs(est.stay[0] - 0.75) < 4 * np.sqrt(0.75 * 0.25 / n_boot)
    np.testing.assert_allclose(est.mean, sample_mean)
    # 5 % and 95 % of a law with 1/4 at each end are its ends
    np.testing.assert_allclose(est.mean_low, [0.0, 0.0])
    np.testing.assert_allclose(est.mean_high, [1.0, 1.0])


@pytest.mark.parametrize("scale", [np.ones(40), np.r_[np.ones(12), np.full(188, 0.1)]], ids=["dense", "sparse"])
def test_replicates_are_the_metrics_of_each_resample(scale):
    """Every replicate equals the query sets of the resample its counts describe."""
    rng = np.random.default_rng(0)
    # Small integers: many ties, so that the vectorised top-k must break them as top_k does;
    # "sparse" has most units far below the top, which the exact top-k leaves out.
    x = (rng.integers(0, 3, size=(9, len(scale))) * scale).astype(np.float32)
    k, n_boot = 4, 80
    est = estimate_group(x, k=k, n_boot=n_boot, seed=np.random.default_rng(7))
    counts = bootstrap_counts(len(x), n_boot, np.random.default_rng(7))
    sample_mean = x.mean(axis=0, dtype=np.float64)
    sample_top = top_k(sample_mean, k)
    winners = x.argmax(axis=1)
    sample_dist = np.bincount(winners, minlength=x.shape[1]) / len(x)
    np.testing.assert_array_equal(est.top, sample_top)
    for b in range(n_boot):
        resample = np.repeat(x, counts[b], axis=0)
        mean = resample.mean(axis=0, dtype=np.float64)
        dist = np.bincount(np.repeat(winners, counts[b]), minlength=x.shape[1]) / len(x)
        assert est.replicates["s1"][b] == precision_at_k(top_k(mean, k), sample_top)
        assert est.replicates["s2"][b] == pytest.approx(cosine_distance(mean, sample_mean), abs=1e-6)
        assert est.replicates["s3"][b] == pytest.approx(js_distance(dist, sample_dist), abs=1e-9)


def test_units_in_blocks_give_the_same_estimate(monkeypatch):
    """A wide layer is bootstrapped a block of units at a time; the blocks change nothing."""
    import dldiag.estimates as estimates

    x = np.random.default_rng(4).integers(0, 4, size=(12, 50)).astype(np.float32)
    whole = estimate_group(x, k=3, n_boot=40, seed=5)
    monkeypatch.setattr(estimates, "_BLOCK_BYTES", 8 * 40 * 7)  # 7 units per block
    blocks = estimate_group(x, k=3, n_boot=40, seed=5)
    for name in ("mean_low", "mean_high", "stay", "dist_low", "dist_high"):
        np.testing.assert_array_equal(getattr(blocks, name), getattr(whole, name))
    np.testing.assert_array_equal(blocks.replicates["s1"], whole.replicates["s1"])
    np.testing.assert_allclose(blocks.replicates["s2"], whole.replicates["s2"], atol=1e-12)


def test_identical_items_give_zero_width_intervals_and_precision_one():
    x = np.tile(np.array([[0.5, 2.0, 0.0, 1.0, 2.0, 0.25]], dtype=np.float32), (7, 1))
    est = estimate_group(x, k=2, seed=0)
    assert not est.s1_trivial  # 6 units > k: S1 is not 1 by construction
    np.testing.assert_array_equal(est.mean_low, est.mean_high)
    np.testing.assert_array_equal(est.mean_low, x[0])
    np.testing.assert_array_equal(est.dist_low, est.dist_high)
    assert (est.s1.value, est.s1.low, est.s1.high) == (1.0, 1.0, 1.0)
    assert (est.s2.value, est.s2.high, est.s3.value, est.s3.high) == (0.0, 0.0, 0.0, 0.0)
    assert est.stay.tolist() == [1.0, 1.0]


def test_too_few_items_give_no_estimate_with_a_reason():
    for n in (0, 1):
        est = estimate_group(np.ones((n, 4)), k=2)
        assert isinstance(est, NoEstimate) and est.n == n
        assert est.to_dict() == {"n_sample": n, "s1": None, "s2": None, "s3": None, "reason": est.reason}
        assert "item" in est.reason
    assert isinstance(estimate_group(np.ones((2, 4)), k=2), GroupEstimate)


def test_a_layer_with_at_most_k_units_is_trivial_and_left_out_of_s1_means():
    rng = np.random.default_rng(1)
    y = np.array([0] * 6 + [1] * 5)
    acts = {"wide": rng.random((11, 8)), "narrow": rng.random((11, 3))}
    est = estimate_groups(acts, y, y, n_classes=2, k=3, n_boot=50, seed=0)
    narrow = est.lookup("narrow", 0, "correct")
    assert narrow.s1_trivial and narrow.s1.value == narrow.s1.low == 1.0
    assert not est.lookup("wide", 0, "correct").s1_trivial
    assert est.per_layer["narrow"]["s1"] is None
    assert est.per_layer["narrow"]["s2"]["n_groups"] == 2
    assert est.overall["s1"]["n_groups"] == 2 and est.overall["s2"]["n_groups"] == 4
    assert isinstance(est.lookup("wide", 0, "incorrect"), NoEstimate)  # no wrong item at all


def test_overall_is_the_mean_of_group_estimates_with_its_interval_from_the_same_replicates():
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 3, 60)
    y_pred = np.where(rng.random(60) < 0.8, y_true, (y_true + 1) % 3)
    acts = {"a": rng.random((60, 20)), "b": rng.random((60, 15))}
    est = estimate_groups(acts, y_true, y_pred, n_classes=3, k=5, n_boot=100, seed=4)
    groups = [r["estimate"] for r in est.rows if isinstance(r["estimate"], GroupEstimate)]
    for metric in ("s2", "s3"):
        overall = np.mean([g.replicates[metric] for g in groups], axis=0)
        assert est.overall[metric]["value"] == pytest.approx(np.mean([getattr(g, metric).value for g in groups]))
        assert est.overall[metric]["low"] == pytest.approx(np.quantile(overall, 0.05))
        assert est.overall[metric]["high"] == pytest.approx(np.quantile(overall, 0.95))


def test_a_group_draws_the_same_resamples_in_every_layer_and_alone():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 30)
    acts = {"a": rng.random((30, 10)), "b": rng.random((30, 10))}
    est = estimate_groups(acts, y, y, n_classes=2, k=3, n_boot=60, seed=9)
    members = np.flatnonzero(y == 1)
    alone = estimate_group(acts["b"][members], k=3, n_boot=60, seed=group_rng(9, 1, "correct"))
    np.testing.assert_array_equal(alone.replicates["s2"], est.lookup("b", 1, "correct").replicates["s2"])


def test_errors_name_the_parameter_the_allowed_values_and_the_value():
    x = np.ones((3, 4))
    with pytest.raises(ValueError, match=r"level must be in \(0.0, 1.0\); got 1.5"):
        estimate_group(x, level=1.5)
    with pytest.raises(ValueError, match=r"interval must be one of 'percentile', 'expanded'; got 'bca'"):
        estimate_group(x, interval="bca")
    with pytest.raises(ValueError, match=r"n_boot must be an integer in \[1, inf\]; got 0"):
        estimate_group(x, n_boot=0)
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, inf\]; got -1"):
        estimate_group(x, seed=-1)
    with pytest.raises(ValueError, match=r"x must be a 2-d array"):
        estimate_group(np.ones(3))
    with pytest.raises(ValueError, match=r"acts\['a'\] must have shape \(3, units\)"):
        estimate_groups({"a": np.ones((2, 4))}, [0, 0, 1], [0, 0, 1], n_classes=2)


def test_expanded_level_is_wider_for_small_groups_and_tends_to_the_nominal_one():
    levels = [expanded_level(n, 0.9) for n in (2, 5, 10, 50, 1000)]
    assert all(a > b for a, b in zip(levels, levels[1:]))
    assert levels[-1] == pytest.approx(0.9, abs=0.002)
    x = np.random.default_rng(0).random((6, 30))
    plain = estimate_group(x, seed=1, interval="percentile")
    wide = estimate_group(x, seed=1, interval="expanded")
    assert np.all(wide.mean_low <= plain.mean_low) and np.all(wide.mean_high >= plain.mean_high)
    assert np.any(wide.mean_high - wide.mean_low > plain.mean_high - plain.mean_low)
    assert wide.s2 == plain.s2  # the metrics' intervals are plain percentiles either way


# ----------------------------------------------------------------- finite-population correction
def test_the_correction_shrinks_every_deviation_by_sqrt_one_minus_n_over_N():
    x = np.random.default_rng(4).gamma(2.0, size=(20, 30))
    plain = estimate_group(x, k=3, seed=7, interval="percentile")
    corrected = estimate_group(x, k=3, seed=7, interval="percentile", population=80)
    shrink = np.sqrt(1 - 20 / 80)
    assert corrected.shrink == pytest.approx(shrink) and plain.shrink == 1.0
    np.testing.assert_array_equal(corrected.mean, plain.mean)
    np.testing.assert_allclose(corrected.mean_high - corrected.mean, shrink * (plain.mean_high - plain.mean),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(corrected.mean - corrected.mean_low, shrink * (plain.mean - plain.mean_low),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(corrected.dist_high - corrected.argmax_dist,
                               shrink * (plain.dist_high - plain.argmax_dist), rtol=1e-9, atol=1e-12)
    # closer resamples: the estimated distances fall, the estimated precision rises
    assert corrected.s2.value < plain.s2.value and corrected.s3.value < plain.s3.value
    assert corrected.s1.value >= plain.s1.value


def test_a_sample_holding_the_whole_group_is_exact():
    x = np.random.default_rng(5).gamma(2.0, size=(12, 8))
    est = estimate_group(x, k=3, seed=0, population=12)
    assert est.shrink == 0.0
    np.testing.assert_array_equal(est.mean_low, est.mean)
    np.testing.assert_array_equal(est.mean_high, est.mean)
    np.testing.assert_array_equal(est.dist_low, est.argmax_dist)
    assert (est.s1.value, est.s2.value, est.s3.value) == (1.0, 0.0, 0.0)
    assert np.all(est.stay == 1.0)


def test_population_errors_name_the_parameter():
    with pytest.raises(ValueError, match="population must be at least the group's 5 sample items; got 4"):
        estimate_group(np.ones((5, 3)), population=4)
    with pytest.raises(ValueError, match="population"):
        fpc_shrink(1, 0)
    with pytest.raises(ValueError, match=r"group_sizes must be an integer array of shape \(2, 2\)"):
        estimate_groups({"a": np.ones((3, 4))}, [0, 1, 1], [0, 1, 0], n_classes=2, group_sizes=np.ones(4, int))


def test_group_sizes_count_every_class_and_outcome():
    assert group_sizes([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 3).tolist() == [[1, 1], [1, 0], [1, 1]]


# ----------------------------------------------------------------- digits
@pytest.fixture(scope="module")
def digits_sample(digits_ws):
    ws = digits_ws
    idx = np.sort(np.random.default_rng(0).choice(ws.n_items, ws.n_items // 5, replace=False))
    return ws, idx


def test_same_seed_same_numbers_other_seed_other_numbers(digits_sample):
    ws, idx = digits_sample
    a = ws.estimate(idx, k=5, n_boot=200, seed=1)
    b = ws.estimate(idx, k=5, n_boot=200, seed=1)
    c = ws.estimate(idx, k=5, n_boot=200, seed=2)
    for ra, rb, rc in zip(a.rows, b.rows, c.rows):
        if isinstance(ra["estimate"], GroupEstimate):
            np.testing.assert_array_equal(ra["estimate"].mean_low, rb["estimate"].mean_low)
            assert ra["estimate"].s3 == rb["estimate"].s3
    assert a.overall == b.overall
    assert a.overall["s2"] != c.overall["s2"]
    conv = [r for r in a.rows if r["layer"] == ws.layers[0] and isinstance(r["estimate"], GroupEstimate)]
    other = [r for r in c.rows if r["layer"] == ws.layers[0] and isinstance(r["estimate"], GroupEstimate)]
    assert any(not np.array_equal(r["estimate"].mean_low, o["estimate"].mean_low) for r, o in zip(conv, other))


def test_intervals_contain_the_sample_answer_on_digits(digits_sample):
    ws, idx = digits_sample
    est = ws.estimate(idx, k=5, seed=0)
    sample = ws.sample_pass(idx).aggregates
    checked = 0
    for row in est.rows:
        e = row["estimate"]
        if not isinstance(e, GroupEstimate):
            assert row["n_sample"] < 2
            continue
        s = answer(sample[row["layer"], "flat"], 5, row["cls"], row["outcome"])
        assert s.count == e.n
        np.testing.assert_allclose(e.mean, s.mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(e.top, s.top)
        assert np.all(e.mean_low <= e.mean) and np.all(e.mean <= e.mean_high)
        assert np.all(e.dist_low <= e.argmax_dist) and np.all(e.argmax_dist <= e.dist_high)
        checked += 1
    assert checked >= 30


def test_group_estimate_is_the_row_of_the_sample_estimate(digits_sample):
    ws, idx = digits_sample
    layer = ws.layers[1]
    row = ws.estimate(idx, k=5, seed=3).lookup(layer, 4, "correct")
    one = ws.group_estimate(idx, layer, k=5, cls=4, outcome="correct", seed=3)
    np.testing.assert_array_equal(one.mean_high, row.mean_high)
    assert one.s1 == row.s1
    bars = one.top_bars()
    assert len(bars["units"]) == 5 and np.all(bars["low"] <= bars["mean"])
    assert np.all((0 <= bars["stay"]) & (bars["stay"] <= 1))
    any_class = ws.group_estimate(idx, layer, k=5, outcome="correct", seed=3)
    assert any_class.n > row.n
    # off by default; asked for, the group's size over all items comes from the model's
    # predictions (the latent pass)
    assert one.shrink == 1.0 and ws.estimate(idx, k=5, seed=3).settings()["finite_population_correction"] is False
    corrected = ws.group_estimate(idx, layer, k=5, cls=4, outcome="correct", seed=3, fpc=True)
    n_group = int(np.sum((ws.y_true == 4) & (ws.y_pred == 4)))
    assert corrected.shrink == pytest.approx(np.sqrt(1 - one.n / n_group))
    any_corrected = ws.group_estimate(idx, layer, k=5, outcome="correct", seed=3, fpc=True)
    assert any_corrected.shrink == pytest.approx(np.sqrt(1 - any_class.n / int(np.sum(ws.y_true == ws.y_pred))))
    row_corrected = ws.estimate(idx, k=5, seed=3, fpc=True).lookup(layer, 4, "correct")
    np.testing.assert_array_equal(row_corrected.mean_high, corrected.mean_high)


def test_sample_activations_are_kept_and_agree_with_the_per_layer_pass(digits_sample, tmp_path):
    ws, idx = digits_sample
    y_pred, acts = ws.sample_activations(idx, "channel")
    assert ws.sample_cache.has(ws._acts_key(idx, "flat")) and ws.sample_cache.has(ws._acts_key(idx, "channel"))
    np.testing.assert_array_equal(y_pred, ws.y_pred[idx])
    own = ArrayCache(tmp_path / "own")
    ws.group_estimate(idx[:40], ws.layers[0], cls=1, cache=own)
    assert own.has(ws._acts_key(idx[:40], "flat")) and not ws.sample_cache.has(ws._acts_key(idx[:40], "flat"))
    for layer in ws.layers:
        np.testing.assert_allclose(acts[layer], ws.activations(idx, layer, "channel"), rtol=1e-6, atol=1e-6)


def _coverage(ws, interval, *, draws=30, fraction=0.2, min_items=10, level=0.9):
    """Share of (unit, group) pairs whose interval holds the full-data mean, over random samples.

    Pairs are units that vary over the full group's items (a unit constant on the group is
    covered by construction) of groups with at least ``min_items`` sample items.
    """
    everything = np.arange(ws.n_items)
    y_pred, acts = ws.sample_activations(everything, "flat")
    y_true = ws.y_true
    right = y_pred == y_true
    hits = total = 0
    for draw in range(draws):
        idx = np.sort(np.random.default_rng(1000 + draw).choice(ws.n_items, int(fraction * ws.n_items + 0.5),
                                                                replace=False))
        est = estimate_groups({layer: a[idx] for layer, a in acts.items()}, y_true[idx], y_pred[idx],
                              n_classes=ws.dataset.n_classes, k=5, seed=draw, level=level, interval=interval)
        for row in est.rows:
            e = row["estimate"]
            if not isinstance(e, GroupEstimate) or e.n < min_items:
                continue
            members = (y_true == row["cls"]) & (right if row["outcome"] == "correct" else ~right)
            varies = acts[row["layer"]][members].std(axis=0) > 0
            full = answer(ws.full[row["layer"], "flat"], 5, row["cls"], row["outcome"]).mean
            slack = 1e-6 * np.maximum(1.0, np.abs(full))  # float32 sums of the full pass
            covered = (e.mean_low - slack <= full) & (full <= e.mean_high + slack)
            hits += int(covered[varies].sum())
            total += int(varies.sum())
    assert total > 10_000
    return hits / total


def test_expanded_intervals_cover_the_full_mean_on_digits(digits_ws):
    """30 random 20 % samples of digits (450 items; groups of about 9 sample items).

    Measured: 0.816 of the pairs of groups with at least 10 sample items (percentile intervals:
    0.788; hence "expanded" is the default). About 12 % of all
    pairs have a zero-width interval (the unit is 0 on every sampled item of the group but not
    on the full group), which no resampling of the sample can widen.
    """
    coverage = _coverage(digits_ws, "expanded")
    assert coverage >= 0.8, coverage


def test_with_estimates_keeps_the_measured_keys(digits_sample):
    ws, idx = digits_sample
    acc = ws.evaluate(idx, k=5).to_dict()
    est = ws.estimate(idx, k=5, n_boot=50, seed=0)
    out = with_estimates(acc, est)
    assert {key: out[key] for key in acc if key not in ("overall", "per_layer", "groups")} == \
        {key: acc[key] for key in acc if key not in ("overall", "per_layer", "groups")}
    for before, after in zip(acc["groups"], out["groups"]):
        assert {k: v for k, v in after.items() if k != "estimate"} == before
    assert {k: v for k, v in out["overall"].items() if k != "estimate"} == acc["overall"]
    with pytest.raises(ValueError, match="k=5"):
        with_estimates({**acc, "k": 3}, est)
