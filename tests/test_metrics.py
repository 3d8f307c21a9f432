import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from dldiag.metrics import MISSING_SCORES, cosine_distance, js_distance, precision_at_k


def test_precision_at_k():
    assert precision_at_k(np.array([1, 2, 3, 4]), np.array([4, 3, 9, 8])) == 0.5
    assert precision_at_k(np.array([5]), np.array([5])) == 1.0
    with pytest.raises(ValueError, match="same size; got 2 and 3"):
        precision_at_k(np.array([1, 2]), np.array([1, 2, 3]))


def test_cosine_distance():
    assert cosine_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert cosine_distance([1, 2], [2, 4]) == pytest.approx(0.0, abs=1e-12)
    v = np.random.default_rng(0).random(1000)
    assert cosine_distance(v, v) == 0.0  # exactly, not 1e-16
    assert cosine_distance([0, 0], [0, 0]) == 0.0
    assert cosine_distance([0, 0], [1, 0]) == 1.0
    with pytest.raises(ValueError, match="same shape"):
        cosine_distance([1, 2], [1, 2, 3])


@pytest.mark.parametrize("seed", range(5))
def test_js_distance_agrees_with_scipy(seed):
    rng = np.random.default_rng(seed)
    p = rng.random(50) * (rng.random(50) > 0.4)  # sparse, like arg-max histograms
    q = rng.random(50) * (rng.random(50) > 0.4)
    assert js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)


def test_js_distance_bounds():
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert js_distance([3, 1], [3, 1]) == 0.0
    assert js_distance([6, 2], [3, 1]) == 0.0  # counts are normalised
    with pytest.raises(ValueError, match="non-negative"):
        js_distance([-1, 2], [1, 1])
    with pytest.raises(ValueError, match="positive total"):
        js_distance([0, 0], [1, 1])


def test_missing_scores():
    assert MISSING_SCORES == {"s1": 0.0, "s2": 1.0, "s3": 1.0}
