"""Density images of many 2-d points, rendered on the server with datashader.

A scatter of a million points is too much for a browser (tens of megabytes of JSON, seconds
of WebGL work per redraw) and reads as a solid blot anyway. Instead the points are counted
into the pixels of the viewport shown, per category, and the counts become one RGBA image
(:func:`render`): the colour of a pixel mixes the colours of the categories in it by their
counts, its opacity says how many points it holds. The image is a pure function of
(points, categories, colours, viewport), so equal inputs give equal bytes and a render can be
cached by content.

No dash here: the app's figures place the image (:func:`data_uri`) under the sample's points.

Examples
--------
>>> import numpy as np
>>> pts = np.array([[0.1, 0.9], [0.2, 0.8]])
>>> vp = Viewport((0.0, 1.0), (0.0, 1.0), 4, 4)
>>> rgba = render(pts, vp, spread=0)  # no spreading: one lit pixel
>>> rgba.shape, int((rgba[..., 3] > 0).sum())
((4, 4, 4), 1)
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from ._validation import shown

__all__ = [
    "Viewport",
    "full_viewport",
    "render",
    "render_values",
    "png_bytes",
    "data_uri",
    "warm_up",
    "padded_categories",
    "HOW",
    "MAX_PIXELS",
    "MAX_CATEGORIES",
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_ALPHA",
    "DEFAULT_SPREAD",
]

#: How counts become opacity (datashader's ``how``), the first the default.
HOW = ("eq_hist", "log", "linear")
#: Most pixels along either side of an image.
MAX_PIXELS = 4096
#: Most categories of a per-category render: the counts take width × height × categories
#: × 4 bytes (64 at 800×500 px: 102 MB), so more than this is refused.
MAX_CATEGORIES = 64
#: Opacity (0-255) of the densest pixel and of the sparsest non-empty one. The image is a
#: background for the sample's points, drawn in the same colours: kept below opaque so that
#: a point stays visible on the densest pixels. The sparsest at 90 (35 %), not datashader's
#: 40: zoomed in, most pixels hold one item, all at the least opacity, and at 45 a zoomed
#: view of 200,000 items looked empty (checked on screenshots).
DEFAULT_ALPHA = 170
DEFAULT_MIN_ALPHA = 90
#: Most pixels a lone point is grown by (see :func:`render`), and the share of lit pixels
#: with a lit neighbour below which datashader's ``dynspread`` keeps growing them.
DEFAULT_SPREAD = 1
SPREAD_THRESHOLD = 0.5
#: datashader compiles its per-category counting (numba) anew for every number of categories,
#: about 1 s each; the categories are padded with unused ones to a multiple of this, so that
#: the few counts one data set's colour modes need (1, 2, 3, C, C + 1) share compilations.
CATEGORY_STEP = 4


def padded_categories(n: int) -> int:
    """How many categories a render of ``n`` categories counts into (see :data:`CATEGORY_STEP`)."""
    return max(CATEGORY_STEP, -(-int(n) // CATEGORY_STEP) * CATEGORY_STEP)


def _check_range(name: str, value) -> tuple[float, float]:
    """``value`` as an increasing pair of finite floats, or ``ValueError`` naming ``name``."""
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of finite numbers with low < high; "
                         f"got {shown(value)}") from None
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, (Real, np.floating, np.integer)) or not math.isfinite(float(v)):
            raise ValueError(f"{name} must be a pair (low, high) of finite numbers with low < high; "
                             f"got {shown(value)}")
    lo, hi = float(lo), float(hi)
    # a span below float precision at this magnitude would map every point to one pixel
    if not hi > lo or (hi - lo) <= 1e-9 * max(abs(lo), abs(hi), 1e-300) or not math.isfinite(hi - lo):
        raise ValueError(f"{name} must be a pair (low, high) of finite numbers with low < high; "
                         f"got {shown(value)}")
    return lo, hi


def _check_pixels(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (Integral, np.integer)) or not 1 <= int(value) <= MAX_PIXELS:
        raise ValueError(f"{name} must be an integer number of pixels in [1, {MAX_PIXELS}]; got {shown(value)}")
    return int(value)


@dataclass(frozen=True)
class Viewport:
    """The rectangle of data coordinates an image covers, and its size in pixels.

    Parameters
    ----------
    x_range, y_range : (float, float)
        Data coordinates of the image's left/right and bottom/top edges; finite, low < high.
    width, height : int
        Pixels, each in [1, :data:`MAX_PIXELS`].

    Raises
    ------
    ValueError
        Naming the parameter, what is allowed and the value given.
    """

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    width: int
    height: int

    def __post_init__(self):
        object.__setattr__(self, "x_range", _check_range("x_range", self.x_range))
        object.__setattr__(self, "y_range", _check_range("y_range", self.y_range))
        object.__setattr__(self, "width", _check_pixels("width", self.width))
        object.__setattr__(self, "height", _check_pixels("height", self.height))


def full_viewport(points: np.ndarray, width: int, height: int, *, pad: float = 0.02) -> Viewport:
    """The viewport of every finite point of ``points`` (N, 2), widened by ``pad`` of each span.

    A degenerate extent (no points, or all on one line) gets a span of 1 around its centre.
    """
    pts = _check_points(points)
    finite = pts[np.isfinite(pts).all(axis=1)]
    ranges = []
    for axis in (0, 1):
        if len(finite):
            lo, hi = float(finite[:, axis].min()), float(finite[:, axis].max())
        else:
            lo = hi = 0.0
        span = hi - lo
        if span <= 1e-9 * max(abs(lo), abs(hi), 1.0):
            lo, hi, span = lo - 0.5, hi + 0.5, 1.0
        ranges.append((lo - pad * span, hi + pad * span))
    return Viewport(ranges[0], ranges[1], width, height)


def _check_points(points) -> np.ndarray:
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.issubdtype(pts.dtype, np.number):
        raise ValueError(f"points must be a numeric array of shape (N, 2); got {pts.dtype} of shape {pts.shape}")
    return pts


def _check_colors(colors) -> list[str]:
    colors = [colors] if isinstance(colors, str) else list(colors)
    for c in colors:
        ok = isinstance(c, str) and len(c) == 7 and c[0] == "#"
        try:
            ok = ok and int(c[1:], 16) >= 0
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"colors must be hex strings '#RRGGBB'; got {shown(c)}")
    if not colors:
        raise ValueError("colors must hold at least one colour; got none")
    return colors


def render(points: np.ndarray, viewport: Viewport, categories: np.ndarray | None = None,
           colors=("#262626",), *, how: str = "eq_hist", alpha: int = DEFAULT_ALPHA,
           min_alpha: int = DEFAULT_MIN_ALPHA, spread: int = DEFAULT_SPREAD) -> np.ndarray:
    """The density of ``points`` in ``viewport`` as an RGBA image, row 0 at the top.

    Parameters
    ----------
    points : ndarray (N, 2)
        x, y in data coordinates; points outside the viewport, or not finite, are left out.
    viewport : Viewport
    categories : ndarray of int (N,), optional
        Each point's category, an index into ``colors``. Without it, one colour (count mode).
    colors : sequence of str
        ``"#RRGGBB"`` per category (count mode: the first). A pixel's colour is the mean of its
        categories' colours weighted by their counts there.
    how : {"eq_hist", "log", "linear"}
        How a pixel's count becomes its opacity between ``min_alpha`` and ``alpha``.
        ``eq_hist`` (histogram equalisation, datashader's default) ranks the counts: in a
        projection of 10^6 items they run from 1 to thousands per pixel, and a linear or even
        log scale leaves the sparse regions between clusters, where the boundary items and
        the mistakes lie, at the faintest opacity next to saturated cores; ranked, both read.
        The price: opacity is an order, not a count, and it is equalised anew for each
        viewport.
    alpha, min_alpha : int
        Opacity (0-255) of the densest and the sparsest non-empty pixel.
    spread : int
        Most pixels a lone point grows by on each side (datashader's ``dynspread``, which
        grows them only while few pixels are lit): zoomed in, a million points are single
        faint pixels apart, and a point one pixel wide is lost on a screen. 0: no spreading.

    Returns
    -------
    ndarray of uint8 (viewport.height, viewport.width, 4)
        Straight (not premultiplied) RGBA; empty pixels are (0, 0, 0, 0).

    Raises
    ------
    ValueError
        If an argument is malformed; the message names it.
    """
    import datashader as ds
    import datashader.transfer_functions as tf
    import pandas as pd

    pts = _check_points(points)
    _check_image(viewport, spread, alpha=alpha, min_alpha=min_alpha)
    if how not in HOW:
        raise ValueError(f"how must be one of {', '.join(HOW)}; got {shown(how)}")
    if min_alpha > alpha:
        raise ValueError(f"min_alpha must be at most alpha ({alpha}); got {min_alpha}")
    colors = _check_colors(colors)
    vp = viewport
    frame = {"x": np.ascontiguousarray(pts[:, 0], dtype=np.float64),
             "y": np.ascontiguousarray(pts[:, 1], dtype=np.float64)}
    if categories is not None:
        codes = np.asarray(categories)
        if codes.shape != (len(pts),) or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"categories must be integers of shape ({len(pts)},); "
                             f"got {codes.dtype} of shape {codes.shape}")
        if len(colors) > MAX_CATEGORIES:
            raise ValueError(f"colors must hold at most {MAX_CATEGORIES} categories' colours; got {len(colors)}")
        if len(codes) and (codes.min() < 0 or codes.max() >= len(colors)):
            bad = int(codes.min()) if codes.min() < 0 else int(codes.max())
            raise ValueError(f"categories must be in [0, {len(colors) - 1}] (one colour each); got {bad}")
        n_cat = padded_categories(len(colors))
        dtype = np.int8 if n_cat <= 127 else np.int16
        frame["c"] = pd.Categorical.from_codes(codes.astype(dtype, copy=False), categories=range(n_cat))
    empty = np.zeros((vp.height, vp.width, 4), dtype=np.uint8)
    if not len(pts):
        return empty
    canvas = ds.Canvas(plot_width=vp.width, plot_height=vp.height, x_range=vp.x_range, y_range=vp.y_range)
    agg = canvas.points(pd.DataFrame(frame), "x", "y",
                        agg=ds.count_cat("c") if categories is not None else ds.count())
    total = agg.sum(dim=agg.dims[2]) if categories is not None else agg
    if not int(total.max()):
        return empty  # shade would equalise a histogram of zeros (and warn)
    if categories is not None:
        padding = ["#000000"] * (agg.shape[2] - len(colors))  # counts 0 everywhere: no colour shows
        img = tf.shade(agg, color_key=colors + padding, how=how, alpha=alpha, min_alpha=min_alpha)
    else:
        img = tf.shade(agg, cmap=colors[0], how=how, alpha=alpha, min_alpha=min_alpha)
    return _rgba(img, vp, spread)


def render_values(points: np.ndarray, viewport: Viewport, values: np.ndarray, value_range, colors, *,
                  alpha: int = DEFAULT_ALPHA, spread: int = DEFAULT_SPREAD) -> np.ndarray:
    """The mean of ``values`` per pixel of ``viewport`` as an RGBA image, row 0 at the top.

    What the latent view shows when every item is coloured by a unit's activation: a pixel
    holding many items takes their mean, on the colour ramp ``colors`` stretched linearly over
    ``value_range`` (the same scale as the points drawn on top and the colour bar).

    Parameters
    ----------
    points : ndarray (N, 2)
        As for :func:`render`.
    viewport : Viewport
    values : ndarray (N,)
        One value per point; NaN leaves the point out (an item outside the group shown).
    value_range : (float, float)
        Low and high end of the ramp, low < high.
    colors : sequence of str
        The ramp, ``"#RRGGBB"`` from low to high.
    alpha : int
        Opacity (0-255) of every non-empty pixel.
    spread : int
        As for :func:`render`.

    Returns
    -------
    ndarray of uint8 (viewport.height, viewport.width, 4)
    """
    import datashader as ds
    import datashader.transfer_functions as tf
    import pandas as pd

    pts = _check_points(points)
    _check_image(viewport, spread, alpha=alpha)
    vals = np.asarray(values, dtype=np.float64)
    if vals.shape != (len(pts),):
        raise ValueError(f"values must have shape ({len(pts)},); got {vals.shape}")
    lo, hi = _check_range("value_range", value_range)
    colors = _check_colors(colors)
    vp = viewport
    empty = np.zeros((vp.height, vp.width, 4), dtype=np.uint8)
    keep = np.isfinite(vals)
    if not keep.any():
        return empty
    frame = pd.DataFrame({"x": np.ascontiguousarray(pts[keep, 0], dtype=np.float64),
                          "y": np.ascontiguousarray(pts[keep, 1], dtype=np.float64), "v": vals[keep]})
    canvas = ds.Canvas(plot_width=vp.width, plot_height=vp.height, x_range=vp.x_range, y_range=vp.y_range)
    agg = canvas.points(frame, "x", "y", agg=ds.mean("v"))
    if not np.isfinite(agg.values).any():
        return empty  # every point outside the viewport
    img = tf.shade(agg, cmap=colors, how="linear", span=[lo, hi], alpha=alpha, min_alpha=alpha)
    return _rgba(img, vp, spread)


def _check_image(viewport, spread, **alphas) -> None:
    """The arguments :func:`render` and :func:`render_values` share; ``ValueError`` naming a bad one."""
    if not isinstance(viewport, Viewport):
        raise ValueError(f"viewport must be a Viewport; got {shown(viewport)}")
    for name, value in alphas.items():
        if isinstance(value, bool) or not isinstance(value, (Integral, np.integer)) or not 0 <= value <= 255:
            raise ValueError(f"{name} must be an integer in [0, 255]; got {shown(value)}")
    if isinstance(spread, bool) or not isinstance(spread, (Integral, np.integer)) or not 0 <= spread <= 8:
        raise ValueError(f"spread must be an integer number of pixels in [0, 8]; got {shown(spread)}")


def _rgba(img, viewport, spread: int) -> np.ndarray:
    """A shaded datashader image, spread by up to ``spread`` pixels, as RGBA rows from the top."""
    import datashader.transfer_functions as tf

    if spread:
        img = tf.dynspread(img, threshold=SPREAD_THRESHOLD, max_px=spread)
    # datashader packs RGBA little-endian into uint32, row 0 at the bottom (low y)
    rgba = np.ascontiguousarray(img.data, dtype="<u4").view(np.uint8).reshape(viewport.height, viewport.width, 4)
    return np.ascontiguousarray(rgba[::-1])


def png_bytes(rgba: np.ndarray, *, compress_level: int = 6) -> bytes:
    """PNG of an RGBA image (H, W, 4) of uint8; the same image gives the same bytes."""
    from PIL import Image

    arr = np.asarray(rgba)
    if arr.ndim != 3 or arr.shape[2] != 4 or arr.dtype != np.uint8:
        raise ValueError(f"rgba must be uint8 of shape (H, W, 4); got {arr.dtype} of shape {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def data_uri(rgba: np.ndarray) -> str:
    """``data:image/png;base64,…`` of an RGBA image: what a plotly layout image's ``source`` takes."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgba)).decode("ascii")


def warm_up(category_counts=(1,)) -> float:
    """Compile datashader's kernels (numba, per process) on a 2×2 image; returns the seconds taken.

    Parameters
    ----------
    category_counts : iterable of int
        The numbers of categories to compile the counting for (each padded, see
        :data:`CATEGORY_STEP`); the plain count mode is compiled too.

    Notes
    -----
    The first render of a process otherwise spends 1-3 s compiling, and each new (padded)
    number of categories about 1 s more (measured on 2 busy cores): the app calls this before
    its first density view, so that every colour mode is drawn at the warm speed.
    """
    import time

    start = time.perf_counter()
    pts = np.array([[0.0, 0.0], [0.5, 0.5]])
    vp = Viewport((-1.0, 1.0), (-1.0, 1.0), 2, 2)
    render(pts, vp)
    for n in sorted({padded_categories(n) for n in category_counts}):
        render(pts, vp, np.array([0, 0]), ["#000000"] * n)
    return time.perf_counter() - start
