"""What each sampler promises, on a scaled-down stand-in for the Fashion-MNIST latent.

The 10k checks run in ``python -m dldiag.bench samplers``; here the same properties are
checked on 1500 synthetic items: ten overlapping Gaussian classes in 24 dimensions whose
"model" is a logistic regression on that latent (like the network's last, linear layer), so
that its mistakes sit near the decision boundaries as a real model's do.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression

from dldiag.sampling import allocate, make_sampler, sample_size
from dldiag.sampling._base import standardize
from dldiag.sampling._ratio import log_ratio
from dldiag.sampling._vas import kernel_objective

N = 1500


@pytest.fixture(scope="module")
def data():
    x, y = make_blobs(n_samples=N, n_features=24, centers=10, cluster_std=7.0, random_state=7)
    x = np.maximum(x, 0.0)  # ReLU-like, as the LeNet latent
    z = standardize(x)
    y_pred = LogisticRegression(max_iter=1000).fit(z[::3], y[::3]).predict(z)
    wrong = y != y_pred
    assert 0.05 < wrong.mean() < 0.2  # a plausible error rate for the checks below
    return x, y, y_pred, wrong


_FITS: dict = {}


@pytest.fixture()
def fit(data):
    x, y, y_pred, _ = data

    def get(name, **params):
        key = (name, tuple(sorted(params.items())))
        if key not in _FITS:
            _FITS[key] = make_sampler(name, **params).fit(x, y, y_pred, seed=0)
        return _FITS[key]

    return get


def misclassified_share(sampler, wrong, j=0.7, seed=0, fraction=0.05):
    return wrong[sampler.sample(fraction, j=j, seed=seed)].mean()


# ---------------------------------------------------------------------- allocation helper
def test_allocate_is_exact_capped_and_seeded():
    rng = np.random.default_rng
    caps = np.array([50, 3, 0, 20, 7])
    for n in range(0, caps.sum() + 1):
        a = allocate(caps, n, caps, rng(0))
        assert a.sum() == n and np.all(a <= caps) and a[2] == 0
    # Equal allocation: the small stratum is taken whole, the rest spills to the others.
    assert allocate(caps, 40, np.ones(5), rng(0)).tolist() == [15, 3, 0, 15, 7]
    # Ties are broken by the seeded key: 3 seats over 2 equal strata.
    picks = {tuple(allocate([5, 5], 3, [1, 1], rng(s)).tolist()) for s in range(20)}
    assert picks == {(2, 1), (1, 2)}
    # Without spill the seats of a full stratum are dropped.
    assert allocate([10, 1, 10], 9, [1, 1, 1], rng(0), spill=False).tolist() == [3, 1, 3]
    with pytest.raises(ValueError, match="cannot place 8 seats in strata holding 7 items"):
        allocate([3, 4], 8, [1, 1], rng(0))


# ---------------------------------------------------------------------------- baselines
@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.2, 0.5, 0.9])
def test_stratified_cm_counts_are_proportional(fit, fraction):
    s = fit("stratified-cm")
    n = sample_size(fraction, N)
    got = np.bincount(s.strata_[s.sample(fraction, seed=3)], minlength=len(s.strata_sizes_))
    assert np.all(np.abs(got - n * s.strata_sizes_ / N) < 1.0)


def grid_counts(s, fraction, seed=0):
    return np.bincount(s.strata_[s.sample(fraction, seed=seed)], minlength=len(s.strata_sizes_))


def test_latent_grid_has_32_cells_split_at_the_median(fit, data):
    s = fit("latent-grid")
    assert len(s.strata_sizes_) <= 32 and s.cell_.max() < 32
    # Each PCA dimension is cut at its median: each bit of the cell id is 1 for half the items.
    for bit in range(5):
        assert abs(((s.cell_ >> bit) & 1).mean() - 0.5) < 0.01


@pytest.mark.parametrize("spill", ["uniform", "equal", "none"])
def test_latent_grid_equal_counts_until_a_cell_runs_out(fit, spill):
    s = fit("latent-grid", spill=spill)
    sizes = s.strata_sizes_
    for fraction in (0.02, 0.1, 0.3, 0.6):
        n = sample_size(fraction, N)
        got = grid_counts(s, fraction)
        info = s.sample_info(fraction)
        quota = n / len(sizes)
        if sizes.min() >= np.ceil(quota):  # no cell runs out: equal counts +-1 in every mode
            assert got.max() - got.min() <= 1 and got.sum() == n
            continue
        if spill == "equal":
            open_ = got < sizes
            assert got.sum() == n and got[open_].max() - got[open_].min() <= 1
            assert np.all(got[~open_] <= got[open_].max())
        elif spill == "none":  # the report: equal shares, a cell too small is taken whole
            open_ = got < sizes
            assert np.all(got <= sizes)
            assert np.all((got[open_] == np.floor(quota)) | (got[open_] == np.ceil(quota)))
            assert got.sum() == n - info["shortfall"]
        else:  # uniform: the seats small cells cannot take are filled uniformly; size exact
            assert got.sum() == n and info["filled"] >= 0


def test_random_share_matches_the_data(fit, data):
    wrong = data[3]
    shares = [misclassified_share(fit("random"), wrong, seed=s, fraction=0.2) for s in range(10)]
    assert abs(np.mean(shares) - wrong.mean()) < 0.02


# -------------------------------------------------------------------------------- VAS
def test_kernel_objective_sums_each_pair_once():
    z = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    expect = np.exp(-1 / 2) + np.exp(-4 / 2) + np.exp(-5 / 2)
    assert np.isclose(kernel_objective(z, [0, 1, 2], 1.0), expect)


def test_vas_objective_beats_random(fit, data):
    x = data[0]
    z = standardize(x)
    vas = fit("vas")
    for fraction in (0.05, 0.1):
        eps = vas.sample_info(fraction)["epsilon"]
        ours = kernel_objective(z, vas.sample(fraction), eps)
        rnd = np.mean([kernel_objective(z, fit("random").sample(fraction, seed=s), eps) for s in range(10)])
        assert ours <= 0.6 * rnd


def test_vas_between_rungs_is_a_subset_of_the_upper_rung(fit):
    vas = fit("vas")
    rung = vas.sample(0.1)  # a rung: the interchange sample itself
    between = vas.sample(0.08)
    assert vas.sample_info(0.08) == {"rung_size": len(rung), "evicted": len(rung) - len(between),
                                     "epsilon": vas.sample_info(0.1)["epsilon"]}
    assert np.all(np.isin(between, rung))


# ---------------------------------------------------------------------------- EB tree
def test_eb_tree_edges_join_different_predicted_labels(fit, data):
    y_pred, wrong = data[2], data[3]
    tree = fit("eb-tree")
    nodes = tree.nodes_
    parent = tree.parent_[nodes]
    assert parent[0] == -1 and np.all(parent[1:] >= 0)
    assert np.all(y_pred[nodes[1:]] != y_pred[parent[1:]])
    assert np.all(tree.parent_[np.setdiff1d(np.arange(N), nodes)] == -1)
    # The natural sample is heavy in misclassified items (the report's Table IV; 3.2x the base
    # rate on Fashion-MNIST, less on these overlapping blobs).
    assert wrong[tree.natural_sample()].mean() > 1.2 * wrong.mean()


def test_eb_tree_fraction_prefix_and_saturation(fit):
    tree = fit("eb-tree")
    small = tree.sample(0.02)
    # A prefix of the insertion order is a tree: every sampled node's parent is sampled.
    par = tree.parent_[small]
    assert np.all(np.isin(par[par >= 0], small)) and (par == -1).sum() == 1
    assert not tree.sample_info(0.02)["saturated"]
    info = tree.sample_info(0.95)
    assert info["saturated"] and info["filled"] == sample_size(0.95, N) - int(tree.n_nodes_)
    assert tree.n_nodes_ >= tree.natural_size_ and tree.pass_sizes_[0] == tree.natural_size_


def test_eb_tree_true_labels_option(fit, data):
    y = data[1]
    tree = fit("eb-tree", labels="true")
    nodes = tree.nodes_
    assert np.all(y[nodes[1:]] != y[tree.parent_[nodes[1:]]])


# ---------------------------------------------------------------------- ratio samplers
def test_max_margin_oversamples_the_misclassified(fit, data):
    wrong = data[3]
    mm = fit("max-margin")
    rnd = np.mean([misclassified_share(fit("random"), wrong, seed=s) for s in range(10)])
    assert misclassified_share(mm, wrong, j=1.0) >= 5 * rnd
    assert misclassified_share(mm, wrong, j=0.7) >= 3 * rnd


@pytest.mark.parametrize("name", ["max-margin", "gmm-full"])
def test_share_rises_with_j(fit, data, name):
    wrong = data[3]
    s = fit(name)
    shares = [misclassified_share(s, wrong, j=j) for j in (0.0, 0.5, 1.0)]
    assert shares[0] < shares[1] < shares[2]


@pytest.mark.parametrize("name", ["max-margin", "gmm-full", "gmm-spherical"])
def test_j_splits_each_cluster_between_its_two_ends(fit, name):
    s = fit(name)
    idx = s.sample(0.1, j=0.7)
    info = s.sample_info(0.1, j=0.7)
    assert info["boundary"] + info["exemplars"] == len(idx)
    n_low = int(np.floor(0.7 * len(idx) + 0.5))
    total_low, whole = 0, False
    for c in np.unique(s.cluster_):
        members = np.flatnonzero(s.cluster_ == c)
        ranked = members[np.lexsort((s.log_ratio_[members],))]
        picked = np.isin(ranked, idx)
        k = picked.sum()
        if 0 < k < len(members):
            # the lo lowest ratios and the k - lo highest ratios, nothing in between, with lo
            # the cluster's share of round(j n) rounded down or up (largest remainder)
            lo = int(np.argmin(picked))
            quota = n_low * k / len(idx)
            assert np.floor(quota) <= lo <= np.floor(quota) + 1
            expect = np.zeros(len(members), bool)
            expect[:lo] = True
            expect[len(members) - (k - lo):] = True
            assert np.array_equal(picked, expect)
            total_low += lo
        whole |= bool(k == len(members))  # a whole cluster: its split cannot be read off
    assert info["boundary"] == n_low
    if not whole:
        assert total_low == n_low
    # j = 0 takes only exemplars, j = 1 only boundary items.
    lo_only = s.sample(0.1, j=1.0)
    hi_only = s.sample(0.1, j=0.0)
    assert s.log_ratio_[lo_only].mean() < s.log_ratio_[hi_only].mean()


@pytest.mark.parametrize("name", ["gmm-full", "gmm-spherical"])
@pytest.mark.parametrize("prior", ["dirichlet_process", "dirichlet_distribution"])
def test_gmm_keeps_its_components_alive(name, prior):
    # Clusters as distinct as the LeNet latent's (the benchmark checks that one: 10 of 10
    # alive). On heavily overlapping blobs, like the data of the other tests, the variational
    # spherical mixture legitimately merges components (3 of 10 live, with either prior).
    x, y = make_blobs(n_samples=N, n_features=24, centers=10, cluster_std=3.0, random_state=7)
    g = make_sampler(name, weight_concentration_prior_type=prior).fit(np.maximum(x, 0), y, y)
    assert len(g.component_weights_) == 10
    assert g.live_components_ > 5


def test_log_ratio_is_exact_in_log_space():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=30, size=(50, 4))  # probabilities that saturate in float64
    cluster, ratio = log_ratio(logits)
    assert np.array_equal(cluster, logits.argmax(1))
    for i in range(50):
        others = np.delete(logits[i], cluster[i])
        expect = logits[i, cluster[i]] - np.log(np.exp(others - others.max()).sum()) - others.max()
        assert np.isclose(ratio[i], expect)
    assert np.all(ratio >= -np.log(3) - 1e-12)  # the arg-max is at least a third of the rest


def test_max_margin_log_proba_matches_predict_proba(data):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import LinearSVC

    from dldiag.sampling._ratio import calibrated_log_proba

    x, y = standardize(data[0][:600]), data[1][:600]
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(x, y))
    model = CalibratedClassifierCV(LinearSVC(dual=False), method="sigmoid", cv=folds).fit(x, y)
    log_prob, _ = calibrated_log_proba(model, x)
    proba = model.predict_proba(x)
    ok = proba > 1e-12
    assert np.allclose(np.exp(log_prob[ok]), proba[ok], rtol=1e-6, atol=1e-12)
    assert np.array_equal(log_prob.argmax(1), proba.argmax(1))
    # binary case
    yb = (y > 4).astype(int)
    mb = CalibratedClassifierCV(LinearSVC(dual=False), method="sigmoid", cv=3).fit(x, yb)
    lb, _ = calibrated_log_proba(mb, x)
    assert np.allclose(np.exp(lb), mb.predict_proba(x), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name", ["max-margin", "gmm-full"])
def test_weighted_variant_prefers_low_ratios_and_varies_with_seed(fit, data, name):
    x, y, y_pred, wrong = data
    weighted = make_sampler(f"{name}-weighted").set_state(fit(name).get_state())
    draws = [weighted.sample(0.05, seed=s) for s in range(5)]
    assert len({tuple(d) for d in draws}) == 5
    rnd = fit("random").sample(0.05, seed=0)
    assert np.mean([weighted.log_ratio_[d].mean() for d in draws]) < weighted.log_ratio_[rnd].mean()
    # j has no effect on the weighted draw
    assert np.array_equal(weighted.sample(0.05, j=0.0, seed=1), weighted.sample(0.05, j=1.0, seed=1))
    # the clip bounds the weights: with L = 0 the draw is uniform inside each cluster
    flat = make_sampler(f"{name}-weighted", log_ratio_clip=1e-9).set_state(fit(name).get_state())
    mean_flat = np.mean([flat.log_ratio_[flat.sample(0.2, seed=s)].mean() for s in range(5)])
    assert mean_flat > np.mean([weighted.log_ratio_[weighted.sample(0.2, seed=s)].mean() for s in range(5)])


# ------------------------------------------------------------- j on small samples (digits)
RATIO_SAMPLERS = ("gmm-full", "gmm-spherical", "max-margin")


@pytest.mark.parametrize("name", RATIO_SAMPLERS)
def test_boundary_seats_total_round_j_n_on_digits(digits_ws, name):
    s = digits_ws.fitted_sampler(name, seed=0)
    n_items = digits_ws.n_items
    for n in (5, 23, 90, 360):
        fraction = n / n_items
        assert sample_size(fraction, n_items) == n
        for j in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0):
            info = s.sample_info(fraction, j=j)
            idx = s.sample(fraction, j=j)
            assert len(idx) == n and len(np.unique(idx)) == n
            assert info["boundary"] == int(np.floor(j * n + 0.5))
            assert info["boundary"] + info["exemplars"] == n


@pytest.mark.parametrize("name", RATIO_SAMPLERS)
def test_j_keeps_its_meaning_on_a_small_digits_sample(digits_ws, name):
    # 23 items over 10 clusters: two or three seats each, where rounding j per cluster made
    # j = 0.5 and j = 0.7 the same sample
    s = digits_ws.fitted_sampler(name, seed=0)
    fraction = 23 / digits_ws.n_items
    half, more = s.sample(fraction, j=0.5), s.sample(fraction, j=0.7)
    assert set(half.tolist()) != set(more.tolist())
    assert (s.sample_info(fraction, j=0.5)["boundary"], s.sample_info(fraction, j=0.7)["boundary"]) == (12, 16)
    # the four seats moved to the boundary end take lower ratios than the exemplars they replace
    assert s.log_ratio_[more].mean() < s.log_ratio_[half].mean()
