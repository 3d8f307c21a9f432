"""The app's state, service and callbacks as plain functions, and the app over HTTP (no browser).

Runs on the digits workspace (450 items, shipped weights) with PCA, so it needs no UMAP/t-SNE.
"""

from __future__ import annotations

import io
from dataclasses import replace
import json
import os
import threading
import time

import numpy as np
import pytest

from dldiag.app import Warmup, create_app
from dldiag.app import callbacks as cb
from dldiag.app.layout import GRAPH_IDS, pending_options
from dldiag.app.service import (
    K_MAX,
    Diagnosis,
    SampleParams,
    build_meta,
    pack_aggregates,
    precision_curve,
    unpack_aggregates,
)
from dldiag.app.state import (ESTIMATORS, ViewState, apply_event, check_field, parse_query, state_from_dict,
                              to_query)
from dldiag.metrics import precision_at_k
from dldiag.queries import answer, compare_group, evaluate
from dldiag.weighting import WeightedLayerAggregates, design_weights, weighted_aggregates


@pytest.fixture(scope="module")
def meta(digits_ws):
    return build_meta(digits_ws, default_projection="pca")


@pytest.fixture(scope="module")
def svc(digits_ws):
    return Diagnosis(digits_ws)


@pytest.fixture(scope="module")
def stores(meta, svc):
    """The stores of the default view and its sample, as the callbacks pass them on."""
    state, _ = cb.sync_state(meta, None, "", {})
    derived = cb.derived_stores(state)
    return state, derived, derived["sample-params"]


def decode(spec):
    """A plotly typed-array spec back to numpy."""
    import base64

    dtypes = {"u1": np.uint8, "i4": np.int32, "f4": np.float32}
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=dtypes[spec["dtype"]])


# ------------------------------------------------------------------ state and URL

def test_meta_describes_the_workspace(meta, digits_ws):
    assert meta.layers == digits_ws.layers and meta.n_items == digits_ws.n_items
    assert meta.uses_j["max-margin"] and not meta.uses_j["random"]
    assert meta.randomised["random"] and not meta.randomised["max-margin"]
    assert meta.default_state().layer == digits_ws.latent_layer
    assert meta.default_state().projection == "pca"


@pytest.mark.parametrize("changes", [
    {},
    {"sampler": "random", "fraction": 0.125, "j": 0.35, "seed": 42, "layer": "conv1", "cls": 3,
     "outcome": "incorrect", "predicted": 5, "k": 7, "units": "channel", "projection": "umap"},
    {"color": "neuron", "neuron": 12, "present": True, "layer": "fc1"},
    {"estimator": "weighted", "cmnorm": "rows"},
])
def test_query_round_trip(meta, changes):
    state = ViewState(**{**meta.default_state().to_dict(), **changes})
    parsed, notes = parse_query(to_query(state), meta)
    assert parsed == state and notes == []


def test_bad_link_values_fall_back_to_defaults_with_notes(meta):
    state, notes = parse_query("?sampler=nope&fraction=2&j=abc&seed=-1&layer=x&cls=99&k=0&units=z"
                               "&projection=q&color=neuron&outcome=maybe", meta)
    default = meta.default_state()
    assert state == default
    assert len(notes) == 11 and any("sampler must be one of 'random'" in n and n.endswith("got 'nope'; using the default")
                                    for n in notes)
    assert any("color=neuron needs" in n for n in notes)


def test_the_estimator_is_in_the_link_only_when_it_is_not_the_default(meta):
    default = meta.default_state()
    assert default.estimator == ESTIMATORS[0] == "plain" and "estimator" not in to_query(default)
    weighted = replace(default, estimator="weighted")
    assert "estimator=weighted" in to_query(weighted)
    assert parse_query(to_query(weighted), meta) == (weighted, [])
    assert parse_query("?estimator=plain", meta) == (default, [])


@pytest.mark.parametrize("value", ["hajek", "", "Weighted"])
def test_a_bad_estimator_falls_back_to_plain_and_says_what_is_allowed(meta, value):
    state, notes = parse_query(f"?estimator={value}&k=7", meta)
    assert state == replace(meta.default_state(), k=7)
    assert notes == [f"estimator must be one of 'plain', 'weighted'; got {value!r}; using the default"]


def test_a_bad_estimator_from_the_browser_is_refused_or_kept(meta):
    with pytest.raises(ValueError, match=r"estimator must be one of 'plain', 'weighted'; got 'mean'"):
        state_from_dict({"estimator": "mean"}, meta)
    with pytest.raises(ValueError, match="estimator must be one of"):
        check_field("estimator", ["weighted"], meta)
    notes = []
    s = apply_event(meta.default_state(), "controls", {"estimator": "bogus"}, meta, notes)
    assert s.estimator == "plain" and notes and "estimator must be one of 'plain', 'weighted'" in notes[0]
    assert apply_event(s, "controls", {"estimator": "weighted"}, meta).estimator == "weighted"


def test_link_class_by_name_and_unknown_keys(meta):
    state, notes = parse_query("?cls=7&predicted=1&utm=x&present=1", meta)
    assert (state.cls, state.predicted, state.present, notes) == (7, 1, True, [])
    assert parse_query("?cls=all", meta)[0].cls is None


def test_events(meta):
    s = meta.default_state()
    assert apply_event(s, "confusion", [3, 5], meta) == ViewState(**{**s.to_dict(), "cls": 3, "predicted": 5,
                                                                      "outcome": "incorrect"})
    assert apply_event(s, "confusion", [4, 4], meta).outcome == "correct"
    n = apply_event(s, "neuron", 9, meta)
    assert (n.color, n.neuron) == ("neuron", 9)
    assert apply_event(n, "controls", {"layer": "conv1"}, meta).color == "true"  # the unit was fc1's
    q = apply_event(s, "confusion", [3, 5], meta)
    # "predicted as" is a control of its own now: picking a class keeps it, "any" clears it
    assert apply_event(q, "controls", {"cls": "2"}, meta).predicted == 5
    assert apply_event(q, "controls", {"cls": "2", "predicted": "any"}, meta).predicted is None
    assert apply_event(s, "controls", {"predicted": "7"}, meta).predicted == 7
    assert apply_event(q, "clear-group", None, meta) == ViewState(**{**q.to_dict(), "cls": None,
                                                                     "predicted": None, "outcome": "all"})
    c = apply_event(s, "controls", {"fraction": 5, "k": 500, "seed": None, "sampler": "bogus"}, meta)
    assert (c.fraction, c.k, c.seed, c.sampler) == (0.8, 50, s.seed, s.sampler)
    assert apply_event(apply_event(s, "present", None, meta), "present", None, meta).present is False
    with pytest.raises(ValueError, match="unknown event"):
        apply_event(s, "nope", None, meta)


def test_sync_state_reads_the_url_first_then_events(meta):
    state, notes = cb.sync_state(meta, None, "?sampler=random&k=5", {"sampler": "vas"})
    assert (state.sampler, state.k, notes) == ("random", 5, [])
    controls = {"sampler": "vas", "fraction": 10, "j": 0.5, "seed": 1, "layer": "conv1", "cls": "2",
                "outcome": "correct", "k": 3, "units": "flat", "projection": "pca", "color": "pred"}
    moved, _ = cb.sync_state(meta, "layer", "", controls, previous=state.to_dict())
    assert (moved.sampler, moved.fraction, moved.layer, moved.cls, moved.k) == ("vas", 0.1, "conv1", 2, 3)
    clicked, _ = cb.sync_state(meta, "confusion-graph", "", controls,
                               confusion_click={"points": [{"customdata": [1, 7]}]}, previous=moved.to_dict())
    assert (clicked.cls, clicked.predicted) == (1, 7)
    by_name, _ = cb.sync_state(meta, "confusion-graph", "", controls,  # what dcc.Graph sends for a heatmap
                               confusion_click={"points": [{"x": meta.class_names[2], "y": meta.class_names[6],
                                                            "z": 0.3}]}, previous=moved.to_dict())
    assert (by_name.cls, by_name.predicted, by_name.outcome) == (6, 2, "incorrect")
    bar, _ = cb.sync_state(meta, "topk-graph", "", controls, topk_click={"points": [{"customdata": 4}]},
                           previous=moved.to_dict())
    assert (bar.color, bar.neuron) == ("neuron", 4)
    from dash.exceptions import PreventUpdate

    with pytest.raises(PreventUpdate):  # the "other" bar of (c) has no unit
        cb.sync_state(meta, "topk-graph", "", controls, topk_click={"points": [{"customdata": -1}]},
                      previous=moved.to_dict())


def test_derived_stores_split_the_state(meta):
    s = ViewState(**{**meta.default_state().to_dict(), "color": "neuron", "neuron": 3})
    d = cb.derived_stores(s)
    assert d["sample-params"] == {"sampler": s.sampler, "fraction": s.fraction, "j": s.j, "seed": s.seed}
    assert d["latent-params"]["neuron"] == [s.layer, s.units, 3]
    assert set(d["panel-params"]) == {"layer", "cls", "outcome", "predicted", "k", "units", "present", "sel",
                                      "neuron", "cmnorm", "estimator", "screen"}
    # the estimator changes the answers of the panels and the summary, not the sample
    w = cb.derived_stores(replace(s, estimator="weighted"))
    assert w["panel-params"]["estimator"] == w["eval-params"]["estimator"] == "weighted"
    assert {name for name in d if d[name] != w[name]} == {"panel-params", "eval-params"}
    assert cb.derived_stores(meta.default_state())["latent-params"]["neuron"] is None


# ------------------------------------------------------------------ service

def test_precision_curve_equals_precision_at_k():
    rng = np.random.default_rng(0)
    for _ in range(50):
        m = int(rng.integers(1, 12))
        universe = int(rng.integers(m, 3 * m + 1))
        s, f = rng.permutation(universe)[:m], rng.permutation(universe)[:m]
        curve = precision_curve(s, f, 15)
        for k in range(1, 16):
            kk = min(k, m)
            assert curve[k - 1] == precision_at_k(s[:kk], f[:kk])


def test_packed_aggregates_are_exact(digits_ws, svc):
    idx = svc.sample_indices(SampleParams("random", 0.1, 0.7, 2))
    agg = digits_ws.sample_pass(idx).aggregates
    for key, layer_agg in agg.by_layer.items():
        buf = io.BytesIO()
        np.savez(buf, **pack_aggregates(layer_agg))
        buf.seek(0)
        back = unpack_aggregates(dict(np.load(buf)))
        assert np.array_equal(back.sums, layer_agg.sums) and back.sums.dtype == layer_agg.sums.dtype
        assert np.array_equal(back.argmax_counts, layer_agg.argmax_counts)
        assert back.argmax_counts.dtype == layer_agg.argmax_counts.dtype and back.unit_shape == layer_agg.unit_shape
        for k in (1, 4, 1000):
            for cls, outcome in ((None, None), (2, "correct"), (7, "incorrect")):
                a, b = answer(layer_agg, k, cls, outcome), answer(back, k, cls, outcome)
                assert a.count == b.count and np.array_equal(a.top, b.top)
                assert np.array_equal(a.mean, b.mean) and np.array_equal(a.argmax_dist, b.argmax_dist)


@pytest.mark.parametrize("params", [SampleParams("max-margin", 0.05, 0.7, 0), SampleParams("random", 0.2, 0.7, 3)])
def test_summary_equals_the_library_evaluation(digits_ws, svc, params):
    idx = svc.sample_indices(params)
    ridx = svc.random_indices(params.fraction, params.seed)
    passed = {"sample": digits_ws.sample_pass(idx).aggregates, "random": digits_ws.sample_pass(ridx).aggregates}
    stored = {"sample": svc._sample_aggregates(idx, None), "random": svc._sample_aggregates(ridx, None)}
    for mode in ("flat", "channel"):
        for k in (1, 10, K_MAX):
            summary = svc.summary(params, k, mode)
            for name in ("sample", "random"):
                # The app reads the sample's float16 store: the library's evaluation of those
                # aggregates to the bit, and the forward pass's up to float16 rounding.
                ref = evaluate(stored[name], digits_ws.full, k=k, unit_mode=mode)
                assert summary[name]["overall"] == ref.overall
                assert summary[name]["per_layer"] == ref.per_layer
                exact = evaluate(passed[name], digits_ws.full, k=k, unit_mode=mode)
                for metric, value in exact.overall.items():
                    assert summary[name]["overall"][metric] == pytest.approx(value, abs=1e-3), (name, metric)
            assert summary["n_groups"] == len(ref.groups)
    counts = summary["counts"]["sample"]
    assert counts["n"] == len(idx) and counts["correct"] + counts["incorrect"] == len(idx)
    with pytest.raises(ValueError, match="k must be"):
        svc.summary(params, K_MAX + 1, "flat")


def test_group_of_a_selection_and_of_a_confusion_cell(digits_ws, svc, meta):
    params = SampleParams("random", 0.3, 0.7, 1)
    idx = svc.sample_indices(params)
    sel = np.arange(0, 300, 2)
    state = ViewState(**{**meta.default_state().to_dict(), "sampler": "random", "fraction": 0.3, "seed": 1,
                         "layer": "conv2", "k": 5})
    pending = svc.group(idx, state, selection=sel.tolist())
    # the sample's answer at once; the exact one only once exact_pass has run (a background job in the app)
    assert pending.full is None and pending.scores is None and pending.n_full == len(sel)
    assert svc.exact_aggregates(sel, "conv2", "flat") is None
    svc.exact_pass(sel[::-1])  # any order: the selection's items are what counts
    res = svc.group(idx, state, selection=sel.tolist())
    full_ref = answer(digits_ws.sample_pass(sel).aggregates["conv2", "flat"], 5)
    sample_ref = answer(digits_ws.sample_pass(np.intersect1d(sel, idx)).aggregates["conv2", "flat"], 5)
    assert np.array_equal(pending.sample.top, res.sample.top)
    assert res.full.count == len(sel) == full_ref.count and res.sample.count == sample_ref.count
    assert np.array_equal(res.full.top, full_ref.top)
    ref_scores = compare_group(sample_ref, full_ref)  # from a pass: the store's sums are taken in another order
    assert res.scores.keys() == ref_scores.keys()
    assert all(res.scores[m] == pytest.approx(ref_scores[m], rel=1e-6, abs=1e-9) for m in ref_scores)
    assert res.label.startswith("150 selected items")
    cell = ViewState(**{**state.to_dict(), "cls": 8, "predicted": 1, "outcome": "incorrect"})
    res_cell = svc.group(idx, cell)
    ref = answer(digits_ws.full["conv2", "flat"], 5, 8, "incorrect", 1)
    assert res_cell.full.count == ref.count and res_cell.label == "class 8, predicted as 1, incorrect"


# ------------------------------------------------------------------ the estimate from the sample alone

def _same_estimate(a, b) -> None:
    assert type(a) is type(b) and a.n == b.n and a.reason == b.reason
    if a.reason is None:
        for name in ("mean", "mean_low", "mean_high", "top", "stay", "argmax_dist", "dist_low", "dist_high"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert (a.s1, a.s2, a.s3, a.s1_trivial, a.k, a.n_boot, a.level, a.interval, a.shrink) == \
            (b.s1, b.s2, b.s3, b.s1_trivial, b.k, b.n_boot, b.level, b.interval, b.shrink)
        for m in ("s1", "s2", "s3"):
            assert np.array_equal(a.replicates[m], b.replicates[m])


@pytest.mark.parametrize("group", [dict(layer="fc1", cls=3, outcome="correct"), dict(layer="conv2", k=5),
                                   dict(layer="conv1", units="channel", cls=8, predicted=8)])
def test_the_group_estimate_is_the_library_s_and_is_cached(digits_ws, svc, meta, group):
    from dldiag.estimates import GroupEstimate

    state = replace(meta.default_state(), sampler="stratified-cm", fraction=0.2, **group)
    idx = svc.sample_indices(SampleParams.from_state(state))
    outcome = None if state.outcome == "all" else state.outcome
    ref = digits_ws.group_estimate(idx, state.layer, unit_mode=state.units, k=state.k, cls=state.cls,
                                   outcome=outcome, predicted=state.predicted)
    assert isinstance(ref, GroupEstimate) and ref.n >= 2
    first = svc.group_estimate(idx, state)
    _same_estimate(first, ref)
    _same_estimate(svc.group_estimate(idx, state), ref)  # the second time from the cache, unchanged
    # the estimate is of the plain mean: the design-weighted state gets the same one
    _same_estimate(svc.group_estimate(idx, replace(state, estimator="weighted")), ref)


def test_a_group_with_one_sample_item_has_no_estimate_and_the_panels_say_why(digits_ws, svc, meta):
    from dldiag.app import views

    base = replace(meta.default_state(), sampler="random", fraction=0.05, layer="fc1")
    idx = svc.sample_indices(SampleParams.from_state(base))
    yt, yp = digits_ws.y_true[idx], digits_ws.y_pred[idx]
    cells = [(t, p) for t, p in zip(yt, yp) if np.sum((yt == t) & (yp == p)) == 1]
    assert cells, "the 5 % sample of digits has a confusion cell with one item"
    state = replace(base, cls=int(cells[0][0]), predicted=int(cells[0][1]))
    est = svc.group_estimate(idx, state)
    assert est.reason is not None and est.n == 1
    assert est == svc.group_estimate(idx, state)  # cached as well
    view = views.panel_figures(svc, state)
    for key in ("topk", "heatmap", "argmax"):
        title = view[key]["layout"]["title"]["text"]
        assert "no estimate from the sample alone: 1 item of the group" in title, key
        assert not any("error_x" in t for t in view[key]["data"])


def test_the_estimate_within_a_selection_is_over_the_selected_sample_members(digits_ws, svc, meta):
    state = replace(meta.default_state(), sampler="random", fraction=0.3, seed=1, layer="conv2", k=5)
    idx = svc.sample_indices(SampleParams.from_state(state))
    sel = np.arange(0, 300, 2)
    ref = digits_ws.group_estimate(np.intersect1d(idx, sel), "conv2", k=5)
    _same_estimate(svc.group_estimate(idx, state, selection=sel.tolist()), ref)
    assert ref.n == svc.group(idx, state, selection=sel.tolist()).sample.count
    # with the finite-population correction the group is every class and outcome within the
    # selection, so its population is the selection; without one, the whole data set
    corrected = digits_ws.group_estimate(np.intersect1d(idx, sel), "conv2", k=5, fpc=True, population=len(sel))
    assert corrected.shrink == pytest.approx(np.sqrt(1 - ref.n / len(sel)))
    _same_estimate(svc.group_estimate(idx, state, selection=sel.tolist(), fpc=True), corrected)
    whole = svc.group_estimate(idx, state, fpc=True)
    assert whole.shrink == pytest.approx(np.sqrt(1 - whole.n / digits_ws.n_items))
    assert svc.group_estimate(idx, state, selection=[], fpc=True).shrink == whole.shrink
    assert ref.shrink == 1.0
    outside = np.setdiff1d(np.arange(450), idx)[:5]
    assert svc.group_estimate(idx, state, selection=outside.tolist()).n == 0


def test_panels_draw_the_estimate_s_intervals_and_only_around_plain_bars(digits_ws, svc, meta):
    from dldiag.app import views

    state = replace(meta.default_state(), sampler="max-margin", fraction=0.1, layer="fc1", cls=3)
    idx = svc.sample_indices(SampleParams.from_state(state))
    est = svc.group_estimate(idx, state)
    view = views.panel_figures(svc, state)
    bars = [t for t in view["topk"]["data"] if "error_x" in t]
    assert bars and all(t["offsetgroup"] == "sample" for t in bars)
    for t in bars:
        units = t["customdata"]
        np.testing.assert_allclose(np.array(t["x"]) + t["error_x"]["array"], est.mean_high[units], atol=1e-6)
    sample_bin = view["argmax"]["data"][1]
    np.testing.assert_allclose(np.array(sample_bin["x"]) + sample_bin["error_x"]["array"],
                               est.dist_high[sample_bin["customdata"]], atol=1e-12)
    s1 = f"precision ≈ {est.s1.value:.2f} [{est.s1.low:.2f}–{est.s1.high:.2f}]"
    assert f"estimated from the sample alone: {s1}" in view["topk"]["layout"]["title"]["text"]
    assert f"cosine distance ≈ {est.s2.value:.3f}" in view["heatmap"]["layout"]["title"]["text"]
    assert f"JS distance ≈ {est.s3.value:.3f}" in view["argmax"]["layout"]["title"]["text"]
    weighted = views.panel_figures(svc, replace(state, estimator="weighted"))
    for key in ("topk", "heatmap", "argmax"):
        assert "estimated from the sample alone (plain mean)" in weighted[key]["layout"]["title"]["text"]
        assert not any("error_x" in t for t in weighted[key]["data"])


# ------------------------------------------------------------------ the design-weighted estimator

def _weighted_state(meta, **changes):
    return replace(meta.default_state(), sampler="max-margin", fraction=0.1, estimator="weighted", **changes)


@pytest.mark.parametrize("group", [dict(layer="fc1", cls=3, outcome="correct"), dict(layer="conv2", k=5),
                                   dict(layer="conv1", units="channel", cls=8)])
def test_weighted_group_answers_are_the_library_s(digits_ws, svc, meta, group):
    state = _weighted_state(meta, **group)
    idx = svc.sample_indices(SampleParams.from_state(state))
    weights = design_weights(digits_ws, "max-margin", idx).weights
    assert np.array_equal(svc.sample_weights("max-margin", idx), weights)
    _, weighted = weighted_aggregates(digits_ws, idx, weights)
    outcome = None if state.outcome == "all" else state.outcome
    ref = answer(weighted[state.layer, state.units], state.k, state.cls, outcome)
    res = svc.group(idx, state)
    # The store's rows summed in another order than the weighted pass's: equal to float rounding.
    assert res.sample.count == ref.count and np.array_equal(res.sample.top, ref.top)
    np.testing.assert_allclose(res.sample.mean, ref.mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.sample.argmax_dist, ref.argmax_dist, rtol=1e-12)
    ref_scores = compare_group(ref, res.full)
    assert all(res.scores[m] == pytest.approx(ref_scores[m], rel=1e-6, abs=1e-9) for m in ref_scores)
    # the plain answers are those of the plain pass, unchanged by the weighted entries beside them
    plain = svc.group(idx, replace(state, estimator="plain"))
    plain_ref = answer(digits_ws.sample_pass(idx).aggregates[state.layer, state.units], state.k, state.cls, outcome)
    np.testing.assert_allclose(plain.sample.mean, plain_ref.mean, rtol=1e-6, atol=1e-9)
    assert not np.allclose(plain.sample.mean, res.sample.mean)
    assert np.array_equal(plain.full.mean, res.full.mean)


def test_weighted_group_within_a_selection_keeps_each_item_s_weight(digits_ws, svc, meta):
    state = _weighted_state(meta, layer="fc1", k=5)
    idx = svc.sample_indices(SampleParams.from_state(state))
    weights = design_weights(digits_ws, "max-margin", idx).weights
    sel = np.arange(0, 450, 2)
    inside = np.isin(idx, sel)
    _, weighted = weighted_aggregates(digits_ws, idx[inside], weights[inside])
    ref = answer(weighted["fc1", "flat"], 5)
    res = svc.group(idx, state, selection=sel.tolist())
    assert res.sample.count == ref.count == inside.sum() and np.allclose(res.sample.mean, ref.mean, rtol=1e-6)
    assert res.full is None and res.n_full == len(sel)  # the exact answer: not computed yet
    svc.exact_pass(sel)
    assert svc.group(idx, state, selection=sel.tolist()).full.count == len(sel)
    # a selection holding no sample member: an empty answer, not a failed weighted pass
    outside = np.setdiff1d(np.arange(450), idx)[:5]
    assert svc.group(idx, state, selection=outside.tolist()).sample.count == 0


def test_weighted_summary_equals_the_library_evaluation_and_random_stays_plain(digits_ws, svc):
    params = SampleParams("max-margin", 0.1, 0.7, 0)
    idx = svc.sample_indices(params)
    weights = design_weights(digits_ws, "max-margin", idx).weights
    plain = svc.summary(params, 10, "flat")
    for mode in ("flat", "channel"):
        summary = svc.summary(params, 10, mode, estimator="weighted")
        ref = digits_ws.evaluate(idx, k=10, unit_mode=mode, weights=weights)
        assert summary["estimator"] == "weighted"
        # the store's rows and the weighted pass sum in other orders: equal to float rounding
        for m, value in ref.overall.items():
            assert summary["sample"]["overall"][m] == pytest.approx(value, rel=1e-6, abs=1e-9)
    assert summary["random"] == svc.summary(params, 10, "channel")["random"]
    assert plain["estimator"] == "plain"
    assert plain["sample"] != svc.summary(params, 10, "flat", estimator="weighted")["sample"]
    with pytest.raises(ValueError, match=r"estimator must be one of 'plain', 'weighted'; got 'hajek'"):
        svc.summary(params, 10, "flat", estimator="hajek")


def test_uniform_weights_read_the_plain_entries(digits_ws, svc, meta):
    """Random sampling weighs every item alike: its Hájek mean is its plain mean, no second pass."""
    params = SampleParams("random", 0.1, 0.7, 4)
    idx = svc.sample_indices(params)
    assert svc.sample_weights("random", idx) is None
    assert svc.summary(params, 10, "flat", estimator="weighted")["sample"] == svc.summary(params, 10, "flat")["sample"]
    state = replace(meta.default_state(), sampler="random", fraction=0.1, seed=4, estimator="weighted")
    assert svc.group(idx, state).scores == svc.group(idx, replace(state, estimator="plain")).scores


def test_weighted_entries_are_cached_beside_the_plain_ones(digits_ws, svc):
    from dldiag.app.service import APP_CACHE_VERSION
    from dldiag.cache import content_key

    idx = svc.sample_indices(SampleParams("eb-tree", 0.1, 0.7, 0))
    weights = svc.sample_weights("eb-tree", idx)
    plain_id, weighted_id = svc.ensure_pass(idx), svc.ensure_pass(idx, weights)
    digest = plain_id[0]
    # the plain keys are those of the plain pass alone, as before the estimator existed
    assert plain_id == (digest,) and svc._agg_key(plain_id, "fc1", "flat") == content_key(
        "app-agg", APP_CACHE_VERSION, digits_ws.key, "auto", digest, "fc1", "flat")
    assert weighted_id[:2] == (digest, "weighted") and len(weighted_id) == 3
    assert svc.ensure_pass(idx, weights * 2) != weighted_id  # other weights: another pass
    back = svc.layer_aggregates(idx, "fc1", "flat", weights)
    assert isinstance(back, WeightedLayerAggregates)
    _, ref = weighted_aggregates(digits_ws, idx, weights)
    for cls, outcome in ((None, None), (2, "correct")):
        a, b = answer(ref["fc1", "flat"], 10, cls, outcome), answer(back, 10, cls, outcome)
        assert np.array_equal(a.mean, b.mean) and np.array_equal(a.argmax_dist, b.argmax_dist)
    with pytest.raises(ValueError, match="one weight per index"):
        svc.ensure_pass(idx, weights[:-1])


def test_packed_weighted_aggregates_are_exact(digits_ws, svc):
    idx = svc.sample_indices(SampleParams("max-margin", 0.2, 0.7, 0))
    _, agg = weighted_aggregates(digits_ws, idx, svc.sample_weights("max-margin", idx))
    for layer_agg in agg.by_layer.values():
        buf = io.BytesIO()
        np.savez(buf, **pack_aggregates(layer_agg))  # plain arrays: the cache never unpickles
        buf.seek(0)
        back = unpack_aggregates(dict(np.load(buf, allow_pickle=False)))
        assert isinstance(back, WeightedLayerAggregates)
        for name in ("sums", "counts", "argmax_counts", "weight_sums"):
            assert np.array_equal(getattr(back, name), getattr(layer_agg, name))
            assert getattr(back, name).dtype == getattr(layer_agg, name).dtype


def test_the_estimator_reaches_the_panels_and_the_summary(meta, svc, stores):
    state, derived, _ = stores
    weighted = replace(state, sampler="max-margin", fraction=0.1, estimator="weighted")
    w = cb.derived_stores(weighted)
    p = cb.derived_stores(replace(weighted, estimator="plain"))
    topk, heat, argmax, _, _, _, _ = cb.panel_outputs(meta, svc, w["sample-params"], w["panel-params"])
    for fig in (topk, heat, argmax):
        assert "design-weighted sample · " in fig["layout"]["title"]["text"]
    plain_topk = cb.panel_outputs(meta, svc, p["sample-params"], p["panel-params"])[0]
    assert "design-weighted" not in plain_topk["layout"]["title"]["text"]
    fig, table = cb.summary_outputs(meta, svc, w["sample-params"], w["eval-params"])
    plain_fig, plain_table = cb.summary_outputs(meta, svc, p["sample-params"], p["eval-params"])
    assert "design-weighted sample" in fig["layout"]["title"]["text"]
    assert "design-weighted" not in plain_fig["layout"]["title"]["text"]
    assert [t["y"] for t in fig["data"]] != [t["y"] for t in plain_fig["data"]]
    # the random baseline's bars are the same under both estimators
    assert [t["y"] for t in fig["data"] if t["name"] == "random"] == \
        [t["y"] for t in plain_fig["data"] if t["name"] == "random"]
    assert "design-weighted" in str(table.children[0].children)


def test_cache_reads_survive_threads(svc):
    """The server runs callbacks in threads; numpy's header parsing (ast) is not thread-safe on
    CPython 3.11 when the GIL switches inside it (a GC finaliser suffices). Reads take turns."""
    import gc
    import sys

    class Junk:  # garbage with finalisers: makes the GIL switch inside the AST constructor likely
        def __init__(self):
            self.me = self

        def __del__(self):
            sum(range(50))

    idx = svc.sample_indices(SampleParams("random", 0.05, 0.7, 11))
    svc.ensure_pass(idx)
    errors = []

    def work():
        for _ in range(60):
            [Junk() for _ in range(30)]
            try:
                svc.fitted("random")
                svc.scores(idx, "flat")
                svc.layer_aggregates(idx, "fc1", "flat")
            except SystemError as exc:  # pragma: no cover - the bug this guards against
                errors.append(exc)

    old_interval, old_threshold = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(1e-6)
    gc.set_threshold(50, 5, 5)
    try:
        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old_interval)
        gc.set_threshold(*old_threshold)
    assert errors == []


def test_log_ratio_comes_from_a_ratio_sampler(svc, digits_ws):
    ratio, source = svc.log_ratio("random")
    assert source == "max-margin" and ratio.shape == (digits_ws.n_items,)
    assert svc.log_ratio("gmm-spherical")[1] == "gmm-spherical"


# ------------------------------------------------------------------ callback bodies

def test_sample_outputs(meta, svc, stores):
    state, derived, sample_params = stores
    idx = svc.sample_indices(SampleParams.from_state(state))
    text = json.dumps([line.to_plotly_json() for line in cb.sample_outputs(meta, svc, sample_params)], default=str)
    counts = svc.counts(idx)
    assert f"{len(idx):,}" in text and f"{counts['incorrect']:,} incorrect" in text


def test_panel_outputs_show_the_group_and_its_accuracy(meta, svc, stores, digits_ws):
    state, derived, sample_store = stores
    topk, heat, argmax, confusion, label, pending, estimating = cb.panel_outputs(meta, svc, sample_store,
                                                                              derived["panel-params"])
    idx = svc.sample_indices(SampleParams.from_state(state))
    scores = compare_group(answer(digits_ws.sample_pass(idx).aggregates[state.layer, "flat"], state.k),
                           answer(digits_ws.full[state.layer, "flat"], state.k))
    assert f"S1 precision {scores['s1']:.2f}" in topk["layout"]["title"]["text"]
    assert f"S2 cosine distance {scores['s2']:.3f}" in heat["layout"]["title"]["text"]
    assert f"S3 Jensen–Shannon distance {scores['s3']:.3f}" in argmax["layout"]["title"]["text"]
    assert np.asarray(confusion["data"][0]["customdata"]).shape == (10, 10, 2)
    assert label.startswith("all items — 450 items in the data") and pending is False and estimating is False


def test_summary_outputs_have_the_table_iv_row(meta, svc, stores):
    _, derived, sample_store = stores
    fig, table = cb.summary_outputs(meta, svc, sample_store, derived["eval-params"])
    text = json.dumps(table.to_plotly_json(), default=str)
    assert str(svc.counts(svc.sample_indices(SampleParams(**sample_store)))["correct"]) in text
    assert "random" in text and "Table IV" in text
    assert len(fig["data"]) == 6


def test_confusion_update_sends_the_outline_only_while_the_sample_is_the_same(meta, svc, stores):
    state, derived, sample_params = stores
    fig = cb.panel_outputs(meta, svc, sample_params, derived["panel-params"])[3]
    whole, key = cb.confusion_update(fig, meta, sample_params, derived["panel-params"], None)
    assert whole is fig
    group = {**derived["panel-params"], "cls": 3, "outcome": "incorrect"}
    fig3 = cb.panel_outputs(meta, svc, sample_params, group)[3]
    spec, key2 = cb.confusion_update(fig3, meta, sample_params, group, key)
    assert key2 == key and set(spec) == {("layout", "shapes")}
    assert len(spec[("layout", "shapes")]) == 9  # class 3 predicted as any of the 9 others
    other = {**sample_params, "seed": 7}
    whole, key3 = cb.confusion_update(fig3, meta, other, group, key)
    assert key3 != key and whole is fig3
    present = {**group, "present": True}
    assert cb.confusion_update(fig3, meta, sample_params, present, key)[1] != key


def test_latent_outputs_whole_figure_once_then_patches(meta, svc, stores, digits_ws):
    state, derived, sample_store = stores
    kind, fig, key = cb.latent_outputs(meta, svc, derived["latent-params"], sample_store, None, set())
    assert kind == "figure" and key == "pca|0"
    assert len(decode(fig["data"][0]["x"])) == digits_ws.n_items
    kind, spec, key2 = cb.latent_outputs(meta, svc, derived["latent-params"], sample_store, key, {"sample-params"})
    assert kind == "patch" and key2 == key and ("data", 1, "marker", "size") in spec
    members = spec[("data", 1, "customdata")]
    assert members == svc.sample_indices(SampleParams(**sample_store)).tolist()
    assert np.all(decode(spec[("data", 1, "marker", "size")]) > 0)
    neuron = {**derived["latent-params"], "color": "neuron", "neuron": [state.layer, "flat", 3]}
    kind, spec, _ = cb.latent_outputs(meta, svc, neuron, sample_store, key, {"latent-params"})
    idx = svc.sample_indices(SampleParams.from_state(state))
    acts = digits_ws.activations(idx, state.layer, "flat")[:, 3]
    colors = decode(spec[("data", 1, "marker", "color")])
    assert spec[("data", 1, "customdata")] == idx.tolist()
    np.testing.assert_allclose(colors, acts, rtol=1e-6)
    assert spec[("data", 1, "marker", "showscale")] is True
    patch = cb.spec_to_patch(spec).to_plotly_json()
    assert patch["__dash_patch_update"] and len(patch["operations"]) == len(spec)
    kind, _, key3 = cb.latent_outputs(meta, svc, {**derived["latent-params"], "present": True}, sample_store,
                                      key, {"latent-params"})
    assert kind == "figure" and key3 == "pca|1"


def test_tooltip_outputs(meta, svc, digits_ws):
    show, bbox, children = cb.tooltip_outputs(meta, svc, {"points": [{"customdata": 5, "bbox": {"x0": 1}}]},
                                              "random")
    text = json.dumps(children.to_plotly_json(), default=str)
    assert show is True and bbox == {"x0": 1}
    assert "data:image/png;base64," in text and "item 5" in text and "(max-margin)" in text
    assert "true: " in text and meta.class_names[int(digits_ws.y_true[5])] in text
    assert cb.tooltip_outputs(meta, svc, None, "random")[0] is False


def test_a_box_drawn_in_the_latent_view_becomes_the_group_and_travels_in_the_link(meta, svc, stores, digits_ws):
    state, derived, sample_params = stores
    xy = digits_ws.projection("pca")
    x0, x1 = np.quantile(xy[:, 0], [0.2, 0.6])
    y0, y1 = np.quantile(xy[:, 1], [0.1, 0.7])
    event = {"points": [{"customdata": 1}], "range": {"x": [x0, x1], "y": [y0, y1]}}
    new, _ = cb.sync_state(meta, "latent-graph", to_query(state), {}, previous=state.to_dict(), selected=event)
    assert new.sel.startswith("box:pca:")
    inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    items = cb.selected_items(svc, new.sel, meta)
    rounding = np.abs(np.sort(xy[inside, 0])[[0, -1]] - [x0, x1]).min() < 1e-3 * np.ptp(xy[:, 0])
    assert len(items) == inside.sum() or rounding  # the link keeps 5 significant digits
    query = to_query(new)
    assert "sel=box:pca:" in query and len(query) < 400
    parsed, notes = parse_query(query, meta)
    assert parsed.sel == new.sel and notes == []
    label = cb.panel_outputs(meta, svc, sample_params, cb.derived_stores(new)["panel-params"])[4]
    assert label.startswith(f"{len(items):,} selected items")
    cleared, _ = cb.sync_state(meta, "clear-group", query, {}, previous=new.to_dict())
    assert cleared.sel is None
    deselected, _ = cb.sync_state(meta, "latent-graph", query, {}, previous=new.to_dict(), selected=None)
    assert deselected.sel is None


def test_plotly_echoing_a_drawn_selection_changes_nothing(meta, stores):
    """After a reload, plotly reports the selection drawn from the layout (points, no range) and
    then an empty one: neither is the user's, so neither clears the selection from the link."""
    from dash.exceptions import PreventUpdate

    state, _, _ = stores
    sel = replace(state, sel="box:pca:-1,1,-1,1")
    for echo in ({"points": [{"customdata": 3}]}, {"points": []}):
        with pytest.raises(PreventUpdate):
            cb.sync_state(meta, "latent-graph", to_query(sel), {}, previous=sel.to_dict(), selected=echo)
    cleared, _ = cb.sync_state(meta, "latent-graph", to_query(sel), {}, previous=sel.to_dict(), selected=None)
    assert cleared.sel is None  # a double-click (plotly's deselect) does clear it


@pytest.mark.parametrize("text, message", [
    ("box:pca:1,2,3", "sel's coordinates must be numbers (4)"),
    ("box:mds:1,2,3,4", "sel's projection must be one of"),
    ("circle:pca:1,2,3", "sel must start with box: or lasso:"),
    ("lasso:pca:1,2;3,4", "sel's coordinates must be numbers (3 to 120 x,y pairs)"),
    ("box:pca:1,2,inf,4", "sel's coordinates must be finite"),
    ("box:pca:" + "9" * 6000, "sel must be box:PROJECTION"),
])
def test_a_malformed_selection_in_a_link_or_store_is_refused_by_name(meta, text, message):
    from dldiag.app.state import check_field

    with pytest.raises(ValueError) as info:
        check_field("sel", text, meta)
    assert message in str(info.value) and len(str(info.value)) < 300
    state, notes = parse_query("?sel=" + text, meta)
    assert state.sel is None and message in notes[0]


@pytest.mark.parametrize("field, value, message", [
    ("fraction", 0.95, "fraction must be in [0.01, 0.8]; got 0.95"),
    ("fraction", 1.0, "fraction must be in [0.01, 0.8]; got 1.0"),
    ("fraction", "0.05", "fraction must be a real number in [0.01, 0.8]; got '0.05'"),
    ("fraction", float("nan"), "fraction must be a real number in [0.01, 0.8]; got nan"),
    ("seed", 1e30, "seed must be an integer in [0, 2147483647]; got 1e+30"),
    ("seed", 1.5, "seed must be an integer in [0, 2147483647]; got 1.5"),
    ("seed", True, "seed must be an integer in [0, 2147483647]; got True"),
    ("seed", -1, "seed must be an integer in [0, 2147483647]; got -1"),
    ("j", 2, "j must be in [0.0, 1.0]; got 2"),
    ("sampler", "rm -rf", "sampler must be one of 'random'"),
    ("k", 51, "k must be an integer in [1, 50]; got 51"),
    ("cls", -1, "cls must be an integer in [0, 9]; got -1"),
    ("predicted", 10, "predicted must be an integer in [0, 9]; got 10"),
    ("present", "yes", "present must be true or false; got 'yes'"),
    ("layer", "x" * 200_000, "layer must be one of 'conv1', 'conv2', 'fc1', 'logits'; got 'xxx"),
])
def test_every_value_a_client_sends_is_checked(meta, svc, field, value, message):
    """The stores come back from the browser: a value the controls cannot produce is refused."""
    params = {"sampler": "random", "fraction": 0.05, "j": 0.7, "seed": 0, field: value}
    with pytest.raises(ValueError) as info:
        cb.sample_outputs(meta, svc, params)
    text = str(info.value)
    assert message in text and len(text) < 400  # a 200 kB value is not echoed back


def test_a_unit_index_is_checked_against_its_layer(meta, svc, stores):
    state, derived, sample_store = stores
    latent_params = derived["latent-params"]
    bad = {**latent_params, "neuron": ["fc1", "flat", 32]}
    with pytest.raises(ValueError, match=r"neuron \(a unit of fc1, flat mode\) must be an integer in \[0, 31\]; got 32"):
        cb.latent_outputs(meta, svc, bad, sample_store, None, set())
    with pytest.raises(ValueError, match="neuron must be"):
        cb.latent_outputs(meta, svc, {**latent_params, "neuron": ["fc1", "flat", "3"]}, sample_store, None, set())
    state2, notes = parse_query("?layer=fc1&color=neuron&neuron=1000000000", meta)
    assert state2.neuron is None and state2.color == "true"
    assert notes[0] == "neuron (a unit of fc1, flat mode) must be an integer in [0, 31]; got 1000000000; using none"


def test_link_notes_do_not_echo_long_values(meta):
    _, notes = parse_query("?sampler=" + "x" * 200_000 + "&cls=-1", meta)
    assert len(notes) == 2 and all(len(n) < 400 for n in notes)
    assert "(200,002 characters)" in notes[0]
    assert notes[1] == "cls must be an integer in [0, 9]; got -1; using the default"


def test_controls_keep_their_value_and_say_why(meta):
    s = meta.default_state()
    notes = []
    new = apply_event(s, "controls", {"seed": 1.5, "cls": "-1", "k": 3}, meta, notes)
    assert (new.seed, new.cls, new.k) == (s.seed, s.cls, 3)
    assert notes == ["seed must be an integer; got 1.5; kept 0",
                     "cls must be an integer in [0, 9]; got -1; kept None"]
    with pytest.raises(ValueError, match=r"cls must be an integer in \[0, 9\]; got 12"):
        apply_event(s, "confusion", [12, 1], meta)
    with pytest.raises(ValueError, match="neuron"):
        apply_event(s, "neuron", 10**9, meta)


def test_export_outputs_downloads_the_view(meta, svc, stores):
    state, _, _ = stores
    xy = svc.projection("pca")
    box = f"box:pca:{xy[:, 0].min() - 1},{xy[:, 0].max() + 1},{xy[:, 1].min() - 1},{np.median(xy[:, 1])}"
    state = replace(state, sel=cb.parse_selection(box, meta.projections).to_text())
    n = len(cb.selected_items(svc, state.sel, meta))
    out = cb.export_outputs(meta, svc, state.to_dict(), "http://127.0.0.1:8050/?x=1")
    assert out["filename"].endswith(".html") and out["type"] == "text/html"
    html = out["content"]
    assert html.count("Plotly.newPlot") == 6 and "<script src=" not in html
    assert f"{n} items drawn in the latent view" in html and state.sampler in html
    assert "http://127.0.0.1:8050/" + to_query(state).replace("&", "&amp;") in html
    assert "sel=box:pca:" in html  # the link reopens the selection
    assert '"selections":[{"type":"rect"' in html.replace(" ", "")  # and the exported latent view draws it


def test_guarded_turns_an_exception_into_an_inline_alert():
    @cb.guarded("Updating", 3, 2)
    def broken(x):
        raise RuntimeError(f"bad {x}")

    from dash import no_update

    a, b, alert = broken(1)
    assert a is no_update and b is no_update
    assert alert.className == "alert alert-error" and "Updating failed: RuntimeError: bad 1" in alert.children


# ------------------------------------------------------------------ the app over HTTP

@pytest.fixture(scope="module")
def app(digits_ws):
    return create_app(digits_ws, default_projection="pca")


def _post(client, output, outputs, inputs, state=(), changed=()):
    body = {"output": output, "outputs": outputs, "inputs": list(inputs), "state": list(state),
            "changedPropIds": list(changed)}
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def test_create_app_serves_the_layout_and_registers_every_callback(app):
    client = app.server.test_client()
    layout = client.get("/_dash-layout").get_data(as_text=True)
    for gid in GRAPH_IDS:
        assert gid in layout
    deps = client.get("/_dash-dependencies").get_json()
    outputs = " ".join(d["output"] for d in deps)
    for needle in ("sample-info.children", "pending-store.data", "topk-graph.figure", "summary-graph.figure", "latent-graph.figure",
                   "latent-tooltip.show", "download.data", "url.search"):
        assert needle in outputs
    with pytest.raises(ValueError, match="exactly one"):
        create_app()


def test_a_failing_callback_shows_a_message_and_the_server_keeps_serving(app, stores):
    _, derived, sample_store = stores
    client = app.server.test_client()
    output = "..topk-graph.figure...heatmap-graph.figure...argmax-graph.figure...confusion-graph.figure" \
             "...group-label.children...confusion-shown.data...selection-info.children...exact-start.style" \
             "...exact-poll.disabled...panels-error.children.."
    outputs = [{"id": o.split(".")[0], "property": o.split(".")[1]} for o in output.strip(".").split("...")]

    def inputs(panel):
        return [{"id": "sample-params", "property": "data", "value": sample_store},
                {"id": "panel-params", "property": "data", "value": panel},
                {"id": "exact-ready", "property": "data", "value": None}]

    shown = [{"id": "confusion-shown", "property": "data", "value": None}]
    bad = _post(client, output, outputs, inputs({**derived["panel-params"], "layer": "no-such-layer"}), shown,
                changed=["panel-params.data"])
    assert bad.status_code == 200
    response = bad.get_json()["response"]
    assert set(response) == {"panels-error"}  # the figures stay as they were
    assert "Updating the panels failed" in json.dumps(response)
    good = _post(client, output, outputs, inputs(derived["panel-params"]), shown, changed=["panel-params.data"])
    assert good.status_code == 200 and "topk-graph" in good.get_json()["response"]
    assert good.get_json()["response"]["panels-error"]["children"] is None  # the message is cleared


def test_warmup_serves_a_loading_page_until_ready(tmp_path):
    warmup = Warmup("digits", cache_dir=tmp_path, projections=["pca"], samplers=["random", "max-margin"],
                    show_progress=False)
    app = create_app(warmup=warmup, default_projection="pca", samplers=["random", "max-margin"])
    assert "boot-status" in json.dumps(app.layout().to_plotly_json(), default=str)
    assert warmup.status()["ready"] is False
    client = app.server.test_client()
    client.get("/_dash-layout")  # the first request starts the preparation
    assert warmup.join(timeout=120) and warmup.ready, warmup.status()
    assert warmup.status()["message"] == "ready"
    layout = client.get("/_dash-layout").get_data(as_text=True)
    assert "latent-graph" in layout and "boot-status" not in layout
    boot = _post(client, "..boot-status.children...boot-bar.style...boot-ready.data..",
                 [{"id": "boot-status", "property": "children"}, {"id": "boot-bar", "property": "style"},
                  {"id": "boot-ready", "property": "data"}],
                 [{"id": "boot-interval", "property": "n_intervals", "value": 3}])
    assert boot.get_json()["response"]["boot-ready"]["data"] is True


def test_prepare_finds_weights_saved_beside_its_cache_dir(tmp_path):
    """Weights of a user's data set live in CACHE/weights/ (where train puts them), not data/."""
    from sklearn.datasets import load_digits

    from dldiag.app.prepare import prepare_workspace
    from dldiag.models import build_model, default_checkpoint_path, save_checkpoint

    digits = load_digits()
    data, cache = tmp_path / "mine.npz", tmp_path / "cache"
    np.savez(data, x_test=digits.images[:40] / 16, y_test=digits.target[:40])
    name = f"npz:{data}"
    path = default_checkpoint_path(name, cache)
    assert path.parent == cache / "weights"
    save_checkpoint(path, build_model("small-cnn", (1, 8, 8), 10), arch="small-cnn", item_shape=(1, 8, 8),
                    n_classes=10)
    ws = prepare_workspace(name, cache_dir=cache, projections=[], samplers=[], show_progress=False)
    assert ws.n_items == 40 and ws.cache.directory == cache / "core"


def test_warmup_opens_early_and_builds_the_rest_in_the_background(tmp_path):
    """First stage: full pass, PCA, the default and random fits; then the page opens while a
    separate process builds t-SNE and the other fit, and the latent view switches to t-SNE."""
    warmup = Warmup("digits", cache_dir=tmp_path, projections=["pca", "tsne"],
                    samplers=["random", "max-margin", "stratified-cm"], show_progress=False)
    app = create_app(warmup=warmup, default_projection="tsne", samplers=["random", "max-margin", "stratified-cm"])
    warmup.start()
    assert warmup.join(timeout=120) and warmup.ready
    ws = warmup.workspace
    assert ws.has_projection("pca") and ws.has_fit("max-margin") and ws.has_fit("random")
    pending = warmup.pending()
    assert pending["projections"] == ["tsne"] or not ws.has_projection("tsne")  # still running
    layout = json.dumps(app.layout().to_plotly_json(), default=str, ensure_ascii=False)
    assert "t-SNE (computing…)" in layout and "Still computing in the background" in layout

    meta = build_meta(ws, samplers=["random", "max-margin", "stratified-cm"], projections=["tsne", "pca"],
                      default_projection="tsne")
    svc = Diagnosis(ws)
    state = meta.default_state()
    latent = cb.derived_stores(state)["latent-params"]
    kind, fig, key = cb.latent_outputs(meta, svc, latent, state.sample_params, None, set(), ["tsne"])
    assert kind == "figure" and key == "pca|0"  # drawn as PCA, titled as waiting for t-SNE
    assert "t-SNE is still being computed" in fig["layout"]["title"]["text"]
    assert not ws.has_projection("tsne")  # the request did not compute it

    deadline = time.monotonic() + 180
    while warmup.pending() != {"projections": [], "samplers": []} and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ws.has_projection("tsne") and ws.has_fit("stratified-cm")
    assert warmup._build.process.wait(timeout=60) == 0
    kind, fig, key = cb.latent_outputs(meta, svc, latent, state.sample_params, key, {"pending-store"}, [])
    assert kind == "figure" and key == "tsne|0"  # switched in place
    np.testing.assert_array_equal(svc.projection("tsne"), ws.projection("tsne"))
    projections, samplers = pending_options(meta, warmup.pending())
    assert [o["label"] for o in projections] == ["t-SNE", "PCA"]  # nothing marked as computing
    warmup.stop()


def test_an_app_on_a_ready_workspace_can_build_the_rest_in_the_background(tmp_path):
    """create_app(ws, background=True): the child gets the latent matrix, not the data or model."""
    from dldiag.artifacts import load_workspace

    ws = load_workspace("digits", cache_dir=tmp_path, show_progress=False)
    app = create_app(ws, projections=["pca", "tsne"], samplers=["random", "vas"], background=True,
                     default_projection="pca")
    layout = json.dumps(app.layout().to_plotly_json(), default=str, ensure_ascii=False)
    assert "t-SNE (computing…)" in layout and "(fitting…)" in layout
    deadline = time.monotonic() + 180
    while not (ws.has_projection("tsne") and ws.has_fit("vas")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ws.has_projection("tsne") and ws.has_fit("vas") and ws.has_fit("random")
    assert not list(tmp_path.glob("latent-*.npz"))  # the child removed its input
    np.testing.assert_array_equal(ws.projection("tsne").shape, (ws.n_items, 2))


def test_a_background_build_ends_when_its_server_is_killed(tmp_path):
    """A server killed by a signal (no ``atexit``) leaves no build child competing for the cores."""
    import signal
    import subprocess
    import sys

    # The "server": a process that starts a long background build (t-SNE and every slow fit of
    # 1,797 digits take tens of seconds) and then waits to be killed.
    script = (
        "import sys, time\n"
        "from dldiag.artifacts import load_workspace\n"
        "from dldiag.build import BackgroundBuild\n"
        f"ws = load_workspace('digits', cache_dir={str(tmp_path)!r}, show_progress=False)\n"
        "b = BackgroundBuild(ws, ['tsne', 'umap'], ['vas', 'eb-tree', 'gmm-full', 'max-margin'])\n"
        "print(b.process.pid, flush=True)\n"
        "time.sleep(600)\n")
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        child = int(server.stdout.readline())
        time.sleep(1.0)
        assert os.path.exists(f"/proc/{child}")  # the build is under way
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.2)
        assert not _alive(child), "the build outlived its server"
    finally:
        server.kill()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped by init, does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_warmup_failure_is_reported(tmp_path):
    warmup = Warmup("no-such-dataset", cache_dir=tmp_path, show_progress=False)
    warmup.start()
    assert warmup.join(timeout=60) and not warmup.ready
    assert warmup.status()["error"]


def test_the_benchmark_client_drives_the_running_app(app, digits_ws):
    """The renderer of ``python -m dldiag.bench app`` against a real server: patches, not figures."""
    from werkzeug.serving import make_server

    from dldiag.bench._renderer import Renderer

    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        rd = Renderer(f"http://127.0.0.1:{server.server_port}")
        first = rd.change({}, initial=True)
        names = [c["cb"]["outputs"][0][0] for c in first["calls"]]
        assert {"view-state", "sample-info", "topk-graph", "summary-graph", "latent-graph"} <= set(names)
        assert "items" in json.dumps(rd.props[("sample-info", "children")])
        changed = rd.change({("sampler", "value"): "stratified-cm"})
        def latent_call(change):
            return [c for c in change["calls"] if ("latent-graph", "figure") in c["cb"]["outputs"]][0]

        patch = latent_call(changed)
        assert "__dash_patch_update" in patch["response"]["latent-graph"]["figure"]
        assert patch["bytes"] < latent_call(first)["bytes"] / 2
        assert rd.props[("sample-params", "data")]["sampler"] == "stratified-cm"
        # one round trip after the reducer: every sample-dependent callback in the second wave
        assert max(c["wave"] for c in changed["calls"]) == 1
        layer = rd.change({("layer", "value"): "conv1"})
        assert {c["cb"]["outputs"][0][0] for c in layer["calls"]} == {"view-state", "topk-graph"}
        assert "conv1" in rd.props[("topk-graph", "figure")]["layout"]["title"]["text"]
    finally:
        server.shutdown()
        rd.pool.shutdown()


# ------------------------------------------------------------------ a selection's exact answer, in the background

def test_the_exact_job_passes_the_selection_once_and_reports_progress(meta, svc, stores, digits_ws, monkeypatch):
    from dash.exceptions import PreventUpdate

    _, derived, sample_store = stores
    proj = svc.projection("pca")
    lo, hi = np.percentile(proj, [20, 70], axis=0)
    sel = f"box:pca:{lo[0]},{hi[0]},{lo[1]},{hi[1]}"
    items = cb.selected_items(svc, sel, meta)
    assert 50 < len(items) < digits_ws.n_items
    panel = {**derived["panel-params"], "sel": sel}
    *_, pending, _ = cb.panel_outputs(meta, svc, sample_store, panel)
    assert pending is True  # the panels answer from the sample and say the exact answer is coming
    assert not cb.exact_cached(meta, svc, sel) and not cb.exact_cached(meta, svc, None)
    reports = []
    monkeypatch.setattr(cb, "PROGRESS_EVERY_S", 0.0)
    assert cb.exact_job(meta, svc, sel, reports.append) == sel
    assert reports[0] == ("0", str(len(items)), f"0 of {len(items):,} items")
    assert reports[-1][:2] == (str(len(items)), str(len(items)))
    assert [int(r[0]) for r in reports] == sorted(int(r[0]) for r in reports)
    topk, *_, pending, _ = cb.panel_outputs(meta, svc, sample_store, panel)
    assert pending is False and "S1 precision" in topk["layout"]["title"]["text"] and cb.exact_cached(meta, svc, sel)
    ref = answer(digits_ws.sample_pass(items).aggregates[derived["panel-params"]["layer"], "flat"], 10)
    assert svc.exact_aggregates(items, derived["panel-params"]["layer"], "flat").counts.sum() == ref.count

    def no_pass(*args, **kwargs):
        raise AssertionError("the exact answer was computed again")

    monkeypatch.setattr(type(digits_ws), "sample_pass", no_pass)
    again = []
    assert cb.exact_job(meta, svc, sel, again.append) == sel and again == []  # cached: no pass, no progress
    with pytest.raises(PreventUpdate):
        cb.exact_job(meta, svc, None, again.append)
    with pytest.raises(ValueError, match="sel must start with box: or lasso:"):
        cb.exact_job(meta, svc, "circle:pca:1,2,3", again.append)


def test_a_large_bootstrap_runs_beside_the_request_and_the_panels_poll_for_it(meta, stores, digits_ws, tmp_path,
                                                                              monkeypatch):
    """Above ESTIMATE_INLINE_VALUES the panels draw at once; the same estimate follows."""
    from dldiag.app import views
    from dldiag.cache import ArrayCache

    _, derived, sample_store = stores
    inline = Diagnosis(digits_ws, sample_cache=ArrayCache(tmp_path / "inline"))
    want = cb.panel_outputs(meta, inline, sample_store, derived["panel-params"])
    assert want[-1] is False and "estimated from the sample alone" in want[0]["layout"]["title"]["text"]

    monkeypatch.setattr(views, "ESTIMATE_INLINE_VALUES", 0)
    svc = Diagnosis(digits_ws, sample_cache=ArrayCache(tmp_path / "later"))
    started = []
    real_later = Diagnosis.estimate_later
    monkeypatch.setattr(Diagnosis, "estimate_later", lambda self, *a: started.append(real_later(self, *a)))
    topk, heat, argmax, *_, exact_pending, estimating = cb.panel_outputs(meta, svc, sample_store,
                                                                          derived["panel-params"])
    assert estimating is True and exact_pending is False and len(started) == 1
    for fig in (topk, heat, argmax):
        assert "estimate from the sample alone: computing" in fig["layout"]["title"]["text"]
    assert topk["data"][0]["y"] == want[0]["data"][0]["y"]  # the sample's answer itself is drawn at once
    started[0].join(timeout=60)
    assert cb.panels_ready(meta, svc, sample_store, derived["panel-params"])
    got = cb.panel_outputs(meta, svc, sample_store, derived["panel-params"])
    assert got[-1] is False and len(started) == 1  # cached: nothing started again
    for mine, theirs in zip(got[:3], want[:3]):
        assert mine["layout"]["title"]["text"] == theirs["layout"]["title"]["text"]


# ------------------------------------------------------------------ a unit over every item, in the background

def test_a_unit_s_values_over_every_item_come_from_a_background_pass(meta, stores, digits_ws, tmp_path,
                                                                      monkeypatch):
    """The view colours the sample by a unit at once and every item once the job has cached them."""
    from dash.exceptions import PreventUpdate

    from dldiag.cache import ArrayCache

    svc = Diagnosis(digits_ws, sample_cache=ArrayCache(tmp_path / "samples"))  # nothing cached yet
    _, derived, sample_store = stores
    layer, unit = "fc1", 7
    latent = {**derived["latent-params"], "color": "neuron", "neuron": [layer, "flat", unit]}
    target = cb.unit_target(meta, latent)
    assert target == [layer, "flat", unit] and cb.unit_target(meta, derived["latent-params"]) is None
    assert not cb.unit_cached(meta, svc, target)
    _, fig, _ = cb.latent_outputs(meta, svc, latent, sample_store, None, set())
    title = fig["layout"]["title"]["text"]
    assert "on the sample's items" in title
    members = np.flatnonzero(decode(fig["data"][1]["marker"]["size"]))
    assert len(members) < digits_ws.n_items

    reports = []
    monkeypatch.setattr(cb, "PROGRESS_EVERY_S", 0.0)
    assert cb.unit_job(meta, svc, target, reports.append) == target
    n = digits_ws.n_items
    assert reports[0] == ("0", str(n), f"0 of {n:,} items") and reports[-1][:2] == (str(n), str(n))
    assert cb.unit_cached(meta, svc, target)
    # the values are the unit's activations, as the workspace computes them for any items
    everywhere = svc.unit_values_all(layer, "flat", unit)
    np.testing.assert_array_equal(everywhere, digits_ws.activations(np.arange(n), layer, "flat")[:, unit])
    kind, fig, _ = cb.latent_outputs(meta, svc, latent, sample_store, None, set())
    assert f"on all {n:,} items" in fig["layout"]["title"]["text"]
    bg = fig["data"][0]["marker"]
    np.testing.assert_array_equal(decode(bg["color"]), everywhere)  # every item on the unit's scale
    assert (bg["cmin"], bg["cmax"]) == (float(everywhere.min()), float(everywhere.max()))

    def no_pass(*args, **kwargs):
        raise AssertionError("the unit's values were computed again")

    monkeypatch.setattr(type(digits_ws), "unit_values", no_pass)
    again = []
    assert cb.unit_job(meta, svc, target, again.append) == target and again == []  # cached: no pass
    with pytest.raises(PreventUpdate):
        cb.unit_job(meta, svc, None, again.append)
    with pytest.raises(ValueError, match="neuron"):  # the job's argument came through the browser
        cb.unit_job(meta, svc, [layer, "flat", 10**6], again.append)
    with pytest.raises(ValueError, match="layer"):
        cb.unit_target(meta, {"neuron": ["no-such-layer", "flat", 0]})


def test_every_item_by_a_unit_dims_the_items_outside_the_group():
    from dldiag.app import figures as F

    y = np.array([0, 0, 1, 1, 2])
    values = np.array([0.0, 1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    members = np.array([True, False, True, False, False])
    group = np.array([True, True, False, True, False])
    style = F.latent_style(y, y, members, color_by="neuron", class_names=["a", "b", "c"], sampler="random",
                           neuron_values=values, group=group, neuron_everywhere=True)
    assert style.fg_range == (0.0, 4.0)  # the scale spans every item, not only the sample
    floor = style.bg_range[0]
    assert floor < 0.0 and style.bg_range[1] == 4.0
    np.testing.assert_array_equal(style.bg_color, np.where(group, values, floor).astype(np.float32))
    assert style.bg_scale[0][1] == F.DIM_GREY and style.bg_scale[-1][1] == F.VALUE_COLORS[-1]
    np.testing.assert_array_equal(np.isnan(style.bg_values), ~group)  # left out of the density image
    alone = F.latent_style(y, y, members, color_by="neuron", class_names=["a", "b", "c"], sampler="random",
                           neuron_values=np.where(members, values, 0), neuron_everywhere=False)
    assert alone.fg_range == (0.0, 2.0) and alone.bg_values is None  # the sample's values set the scale


def test_a_unit_s_values_check_the_unit(digits_ws):
    with pytest.raises(ValueError, match=r"unit must be an integer in \[0, 32\) for layer 'fc1' in flat mode; got 32"):
        digits_ws.unit_values("fc1", "flat", 32)
    with pytest.raises(ValueError, match="layer"):
        digits_ws.unit_values("nope", "flat", 0)


def test_what_the_sample_saved_is_read_from_its_store(meta, svc, stores, digits_ws):
    from dldiag.info import savings_row

    state, _, sample_store = stores
    idx = svc.sample_indices(SampleParams.from_state(state))
    text = json.dumps([c if isinstance(c, str) else c.to_plotly_json() for c in
                       cb.savings_outputs(meta, svc, sample_store)], default=str)
    store = svc.store(idx)
    assert store.seconds > 0 and store.nbytes() > 0
    row = savings_row(digits_ws, len(idx), store.seconds, stored_bytes=store.nbytes())
    assert row["full_bytes"] == 4 * row["values_per_item"] * digits_ws.n_items
    assert f"for {row['n']:,} of {digits_ws.n_items:,} items" in text
    assert "float32, both unit modes" in text  # a small sample is kept in float32 ("auto")
    assert "(measured)" in text  # the digits workspace timed its full pass when it was built
