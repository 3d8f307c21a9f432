"""The accuracy metrics of the report's Section V-A, one per query set.

- S1 (top-k units): precision, ``|top-k(sample) ∩ top-k(full)| / k``.
- S2 (mean activation): cosine distance ``1 − A·B / (‖A‖‖B‖)``.
- S3 (arg-max unit distribution): Jensen–Shannon distance with base-2 logs, in [0, 1].

Each is 0-worst/1-best for S1 and 0-best/1-worst for S2 and S3; a group missing from the
sample scores :data:`MISSING_SCORES`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["precision_at_k", "cosine_distance", "js_distance", "MISSING_SCORES"]

#: Scores of a group that the sample does not contain: S1 = 0, S2 = 1, S3 = 1.
MISSING_SCORES = {"s1": 0.0, "s2": 1.0, "s3": 1.0}


def precision_at_k(sample_top: np.ndarray, full_top: np.ndarray) -> float:
    """Share of the full data's top-k units that the sample's top-k also holds.

    Parameters
    ----------
    sample_top, full_top : ndarray of int
        Unit indices of the two top-k sets; both of length k.

    Examples
    --------
    >>> precision_at_k(np.array([1, 2, 3]), np.array([3, 2, 9]))
    0.6666666666666666
    """
    k = len(full_top)
    if len(sample_top) != k:
        raise ValueError(f"top-k sets must have the same size; got {len(sample_top)} and {k}")
    if k == 0:
        raise ValueError("top-k sets must not be empty")
    return len(np.intersect1d(sample_top, full_top)) / k


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``1 − a·b / (‖a‖‖b‖)``, clipped to [0, 2].

    Identical vectors score exactly 0 (floating point would otherwise leave ~1e-16), two zero
    vectors 0, and a zero vector against a non-zero one 1 (nothing in common).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"vectors must have the same shape; got {a.shape} and {b.shape}")
    if np.array_equal(a, b):
        return 0.0
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 or nb == 0.0:
        return 1.0
    return float(np.clip(1.0 - np.dot(a, b) / (na * nb), 0.0, 2.0))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance with base-2 logarithms, in [0, 1].

    ``p`` and ``q`` are non-negative weights (counts or probabilities); each is normalised
    to sum to 1. Agrees with ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"distributions must have the same shape; got {p.shape} and {q.shape}")
    if (p < 0).any() or (q < 0).any():
        raise ValueError("distributions must be non-negative")
    sp, sq = p.sum(), q.sum()
    if sp == 0 or sq == 0:
        raise ValueError("distributions must have a positive total")
    p, q = p / sp, q / sq
    m = 0.5 * (p + q)

    def kl(a):
        nz = a > 0  # 0·log 0 = 0, and m > 0 wherever a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    divergence = 0.5 * (kl(p) + kl(q))
    return float(np.sqrt(np.clip(divergence, 0.0, 1.0)))
