"""Parameter validation whose errors name the parameter, the allowed values and the value given.

Modelled on scikit-learn's ``_param_validation``: checks are declared where work starts, and
every message has the same shape so that a user can fix the call from the message alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np

__all__ = [
    "shown",
    "check_option",
    "check_interval",
    "check_int",
    "check_fraction",
    "check_finite_matrix",
]


#: Longest repr of a value that a message quotes in full.
SHOWN_MAX = 60


def shown(value) -> str:
    """``repr(value)``, cut to :data:`SHOWN_MAX` characters with its length said (a link or a
    client may send a value of any size; a message must not echo 200 kB back)."""
    text = repr(value)
    if len(text) <= SHOWN_MAX:
        return text
    return f"{text[:SHOWN_MAX]}… ({len(text):,} characters)"


def check_option(name: str, value, options: Iterable):
    """Return ``value`` if it is one of ``options``, else raise ``ValueError``.

    Parameters
    ----------
    name : str
        Parameter name, used in the message.
    value : object
        The value given.
    options : iterable
        The allowed values.

    Returns
    -------
    object
        ``value`` unchanged.

    Examples
    --------
    >>> check_option("unit_mode", "flat", ("flat", "channel"))
    'flat'
    """
    options = tuple(options)
    if value not in options:
        allowed = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {allowed}; got {shown(value)}")
    return value


def check_interval(
    name: str,
    value,
    low: float | None = None,
    high: float | None = None,
    *,
    closed: str = "both",
) -> float:
    """Return ``value`` as a float if it lies in the interval, else raise ``ValueError``.

    Parameters
    ----------
    name : str
        Parameter name, used in the message.
    value : real
        The value given.
    low, high : float or None
        Bounds; ``None`` means unbounded on that side.
    closed : {"both", "left", "right", "neither"}
        Which bounds belong to the interval.

    Returns
    -------
    float
    """
    check_option("closed", closed, ("both", "left", "right", "neither"))
    left = "[" if closed in ("both", "left") else "("
    right = "]" if closed in ("both", "right") else ")"
    text = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(float(value)):
        raise ValueError(f"{name} must be a real number in {text}; got {shown(value)}")
    v = float(value)
    ok = True
    if low is not None:
        ok &= v >= low if left == "[" else v > low
    if high is not None:
        ok &= v <= high if right == "]" else v < high
    if not ok:
        raise ValueError(f"{name} must be in {text}; got {shown(value)}")
    return v


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer in ``[low, high]``, else raise ``ValueError``."""
    text = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
    if isinstance(value, bool) or not isinstance(value, (Integral, np.integer)):
        raise ValueError(f"{name} must be an integer in {text}; got {shown(value)}")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"{name} must be an integer in {text}; got {shown(value)}")
    return v


def check_fraction(value) -> float:
    """Return a sample fraction in (0, 1], or raise ``ValueError`` naming the value."""
    return check_interval("fraction", value, 0.0, 1.0, closed="right")


def check_finite_matrix(name: str, x, *, ndim: int = 2) -> np.ndarray:
    """Return ``x`` as a float array of ``ndim`` dimensions with only finite values.

    Raises
    ------
    ValueError
        If the shape is wrong or any value is NaN or infinite; the message names the
        parameter and the position of the first bad value.
    """
    arr = np.asarray(x)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array; got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must hold only finite values; found {int(bad.sum())} NaN/inf, "
            f"the first at index {first} ({arr[first]!r})"
        )
    return arr
