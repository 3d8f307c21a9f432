"""One contract, checked over every registered sampler (like scikit-learn's estimator checks).

Small synthetic latent spaces (a few hundred rows) keep each fit in milliseconds; the fits
are shared through a cache keyed by (sampler, data set).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from dldiag.sampling import SAMPLER_NAMES, NotFittedError, Sampler, make_sampler, sample_size

RATIO = ("gmm-full", "gmm-spherical", "max-margin")


def make_data(n=300, d=8, classes=10, noise=0.1, seed=0):
    """Blobs with a share ``noise`` of predictions replaced at random (the misclassified)."""
    x, y = make_blobs(n_samples=n, n_features=d, centers=classes, cluster_std=2.5, random_state=seed)
    rng = np.random.default_rng(seed)
    y_pred = y.copy()
    flip = rng.random(n) < noise
    y_pred[flip] = rng.integers(0, classes, int(flip.sum()))
    return x.astype(np.float32), y.astype(np.int64), y_pred.astype(np.int64)


def _single_item_class():
    x, y, p = make_data(n=200, classes=3, seed=3)
    y[0] = p[0] = 3  # class 3 has exactly one item
    return x, y, p


def _duplicated_rows():
    x, y, p = make_data(n=150, classes=4, seed=4)
    return np.concatenate([x, x]), np.concatenate([y, y]), np.concatenate([p, p])


DATASETS = {
    "10 classes": lambda: make_data(),
    "2 classes": lambda: make_data(n=200, classes=2, seed=1),
    "single-item class": _single_item_class,
    "duplicated rows": _duplicated_rows,
}

_FITS: dict = {}


def fitted(name: str, data: str = "10 classes") -> Sampler:
    """A fitted sampler, shared across tests (tests only call sample-side methods on it)."""
    if (name, data) not in _FITS:
        x, y, p = DATASETS[data]()
        _FITS[name, data] = make_sampler(name).fit(x, y, p, seed=0)
    return _FITS[name, data]


def check_indices(idx, n_items, size):
    assert isinstance(idx, np.ndarray) and idx.dtype == np.int64
    assert idx.shape == (size,)
    assert np.all(np.diff(idx) > 0), "sorted and unique"
    if size:
        assert idx[0] >= 0 and idx[-1] < n_items


# -------------------------------------------------------------------------------- registry
def test_registry_names():
    assert SAMPLER_NAMES == (
        "random", "stratified-cm", "vas", "eb-tree", "latent-grid", "gmm-full", "gmm-spherical",
        "max-margin", "gmm-full-weighted", "gmm-spherical-weighted", "max-margin-weighted",
    )
    for name in SAMPLER_NAMES:
        s = make_sampler(name)
        assert s.name == name and isinstance(s, Sampler)
        assert s.uses_j == (name in RATIO)
        json.dumps(s.fit_key())


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match=r"sampler must be one of 'random', .*'max-margin-weighted'; got 'kmeans'"):
        make_sampler("kmeans")


def test_params_are_keyword_only_and_validated_at_fit():
    with pytest.raises(TypeError):
        make_sampler("latent-grid", 5)
    with pytest.raises(TypeError):
        make_sampler("random", colour="red")
    bad = make_sampler("latent-grid", spill="sideways")  # accepted here, refused when work starts
    x, y, p = make_data()
    with pytest.raises(ValueError, match=r"spill must be one of 'uniform', 'equal', 'none'; got 'sideways'"):
        bad.fit(x, y, p)
    with pytest.raises(ValueError, match=r"n_pca must be an integer in \[1, inf\]; got 0"):
        make_sampler("gmm-full", n_pca=0).fit(x, y, p)


# -------------------------------------------------------------------------------- contract
@pytest.mark.parametrize("name", SAMPLER_NAMES)
@pytest.mark.parametrize("data", list(DATASETS))
def test_exact_size_sorted_unique_in_range(name, data):
    s = fitted(name, data)
    n_items = int(s.n_items_)
    for fraction in (0.01, 0.05, 0.29, 0.5, 0.9, 1.0):
        idx = s.sample(fraction, j=0.7, seed=0)
        check_indices(idx, n_items, sample_size(fraction, n_items))
    assert np.array_equal(s.sample(1.0), np.arange(n_items))


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_seeds(name):
    s = fitted(name)
    a, b = s.sample(0.2, seed=1), s.sample(0.2, seed=1)
    assert np.array_equal(a, b)
    other = s.sample(0.2, seed=2)
    if s.randomised:
        assert not np.array_equal(a, other)
    else:
        assert np.array_equal(a, other)  # every random choice was fixed by fit's seed
    # The fit's own seed is honoured: a refit with the same seed samples the same.
    x, y, p = make_data()
    again = make_sampler(name).fit(x, y, p, seed=0)
    assert np.array_equal(again.sample(0.2, seed=1), a)


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_seeded_fit_says_whether_the_fit_seed_changes_the_sample(name):
    """The experiments repeat a fit over seeds only where the seed changes it (no fake spread)."""
    x, y, p = make_data()
    fits = [make_sampler(name).fit(x, y, p, seed=s) for s in range(3)]
    states = [{k: v for k, v in f.get_state().items() if k != "seed_"} for f in fits]
    same_state = all(all(np.array_equal(states[0][k], st[k]) for k in states[0]) for st in states[1:])
    samples = {tuple(np.concatenate([f.sample(q, j=0.7, seed=0) for q in (0.05, 0.2)])) for f in fits}
    if make_sampler(name).seeded_fit:
        assert not same_state and len(samples) > 1
    else:
        assert same_state and len(samples) == 1


@pytest.mark.parametrize("name", SAMPLER_NAMES)
@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, float("nan"), "0.1", None])
def test_fraction_outside_interval_names_the_value(name, fraction):
    s = fitted(name)
    with pytest.raises(ValueError, match="fraction") as err:
        s.sample(fraction)
    assert repr(fraction) in str(err.value)


@pytest.mark.parametrize("name", SAMPLER_NAMES)
@pytest.mark.parametrize("fraction", [1e-9, 0.0016])  # floor(0.0016 * 300 + 0.5) = 0
def test_fraction_selecting_no_item_gives_the_smallest_that_does(name, fraction):
    s = fitted(name)
    with pytest.raises(ValueError, match=rf"^fraction must be at least 0\.5/300 ≈ 0\.00166667, the smallest "
                                         rf"that selects one of the 300 items; got {fraction!r}, which "
                                         rf"selects 0 of 300 items$"):
        s.sample(fraction)
    with pytest.raises(ValueError, match="selects 0 of 300"):
        s.sample_info(fraction)
    check_indices(s.sample(0.00166667, j=0.7, seed=0), 300, 1)  # the fraction the message names works


@pytest.mark.parametrize("name", SAMPLER_NAMES)
@pytest.mark.parametrize("j", [-0.01, 1.5, float("inf")])
def test_j_outside_interval_names_the_value(name, j):
    with pytest.raises(ValueError, match=r"^j must be") as err:
        fitted(name).sample(0.1, j=j)
    assert repr(j) in str(err.value)


@pytest.mark.parametrize("name", SAMPLER_NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_latent_is_refused(name, bad):
    x, y, p = make_data()
    x[7, 3] = bad
    message = r"latent must hold only finite values; found 1 NaN/inf, the first at index \(7, 3\)"
    with pytest.raises(ValueError, match=message):
        make_sampler(name).fit(x, y, p)


@pytest.mark.parametrize("name", ["random", "max-margin", "eb-tree"])
def test_bad_labels_and_seed_are_refused(name):
    x, y, p = make_data()
    with pytest.raises(ValueError, match=r"y_true must be a 1-d array of 300 labels"):
        make_sampler(name).fit(x, y[:-1], p)
    with pytest.raises(ValueError, match=r"y_pred must hold integer class labels"):
        make_sampler(name).fit(x, y, p + 0.5)
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, inf\]; got -1"):
        make_sampler(name).fit(x, y, p, seed=-1)
    with pytest.raises(ValueError, match=r"latent must be a 2-d array"):
        make_sampler(name).fit(x[0], y, p)


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_unfitted_sampler_raises_a_clear_error(name):
    s = make_sampler(name)
    with pytest.raises(NotFittedError, match=rf"this '{name}' sampler is not fitted yet; call fit"):
        s.sample(0.1)
    with pytest.raises(NotFittedError):
        s.get_state()


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_state_round_trip(name):
    s = fitted(name)
    state = s.get_state()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    fresh = make_sampler(name).set_state({k: v.copy() for k, v in state.items()})
    for fraction, j, seed in ((0.05, 0.7, 0), (0.33, 0.0, 3), (0.8, 1.0, 5)):
        assert np.array_equal(fresh.sample(fraction, j=j, seed=seed), s.sample(fraction, j=j, seed=seed))
        assert fresh.sample_info(fraction, j=j, seed=seed) == s.sample_info(fraction, j=j, seed=seed)
    with pytest.raises(ValueError, match="lacks"):
        make_sampler(name).set_state({})


@pytest.mark.parametrize("name", RATIO)
def test_weighted_twin_shares_the_fit(name):
    plain, weighted = make_sampler(name), make_sampler(f"{name}-weighted", log_ratio_clip=3.0)
    assert weighted.fit_key() == plain.fit_key()
    params = weighted.get_params()
    assert params["log_ratio_clip"] == 3.0 and set(plain.get_params()) < set(params)
    weighted.set_state(fitted(name).get_state())
    check_indices(weighted.sample(0.1, seed=0), 300, 30)
    assert weighted.uses_j is False and weighted.randomised is True
    # Fit parameters still separate fits; weighting parameters do not.
    assert make_sampler(f"{name}-weighted", log_ratio_clip=1.0).fit_key() == weighted.fit_key()
    other = {"max-margin": {"C": 2.0}}.get(name, {"max_iter": 7})
    assert make_sampler(name, **other).fit_key() != plain.fit_key()


def test_ratio_samplers_expose_hover_arrays():
    for name in RATIO:
        s = fitted(name)
        assert s.log_ratio_.shape == (300,) and s.log_ratio_.dtype == np.float64
        assert s.cluster_.shape == (300,) and s.cluster_.dtype == np.int64


def test_state_survives_a_second_process(tmp_path):
    """The fitted state is plain arrays: another process restores it from the disk cache."""
    from dldiag.cache import ArrayCache

    names = ["vas", "eb-tree", "max-margin", "latent-grid"]
    expected = {}
    with ArrayCache(tmp_path) as cache:
        for name in names:
            cache.put(name, fitted(name).get_state())
            expected[name] = fitted(name).sample(0.1, seed=3).tolist()
    code = textwrap.dedent(f"""
        import json
        from dldiag.cache import ArrayCache
        from dldiag.sampling import make_sampler
        out = {{}}
        with ArrayCache({str(tmp_path)!r}) as cache:
            for name in {names!r}:
                out[name] = make_sampler(name).set_state(cache.get(name)).sample(0.1, seed=3).tolist()
        print(json.dumps(out))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(run.stdout.strip().splitlines()[-1]) == expected


def test_size_rule_rounds_halves_up():
    assert sample_size(0.29, 100) == 29  # int(0.29 * 100) would give 28
    assert sample_size(0.025, 100) == 3  # round() would give 2 (half to even)
    assert sample_size(0.004, 100) == 0  # the rule itself allows 0; samplers refuse it
    s = make_sampler("random").fit(*make_data(n=100))
    assert s.sample(0.005).shape == (1,)  # 0.5 / 100 is the smallest fraction of one item


def test_eb_tree_natural_sample():
    s = fitted("eb-tree")
    nat = s.natural_sample()
    check_indices(nat, 300, int(s.natural_size_))
    frac = int(s.natural_size_) / 300
    assert np.array_equal(s.sample(frac), nat)
    info = s.sample_info(frac)
    assert info["natural_size"] == s.natural_size_ and info["saturated"] is False
