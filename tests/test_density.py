"""The density renderer on images small enough to check by hand."""

from __future__ import annotations

import io

import numpy as np
import pytest

from dldiag import density as D

UNIT = D.Viewport((0.0, 1.0), (0.0, 1.0), 4, 4)


def render(*args, **kwargs):
    """A render without spreading: each point lights its own pixel alone."""
    return D.render(*args, spread=0, **kwargs)


def test_points_in_one_corner_light_only_that_corner():
    # two items in the top-left cell of a 4×4 grid over the unit square: row 0 is the top
    rgba = render(np.array([[0.1, 0.9], [0.2, 0.8]]), UNIT, colors=["#102030"])
    lit = rgba[..., 3] > 0
    assert lit[0, 0] and lit.sum() == 1
    assert tuple(rgba[0, 0, :3]) == (0x10, 0x20, 0x30)
    assert rgba[0, 0, 3] == D.DEFAULT_ALPHA
    # the bottom-right corner: the last row and column
    rgba = render(np.array([[0.95, 0.05]]), UNIT)
    assert (rgba[..., 3] > 0).sum() == 1 and rgba[3, 3, 3] > 0


def test_a_pixels_colour_is_its_categorys_and_a_mixed_pixel_mixes_them():
    pts = np.array([[0.1, 0.9], [0.15, 0.85], [0.9, 0.1], [0.9, 0.9]])
    cats = np.array([0, 1, 0, 1])
    rgba = render(pts, UNIT, cats, ["#FF0000", "#0000FF"])
    assert tuple(rgba[3, 3, :3]) == (255, 0, 0)  # bottom-right: a red item
    assert tuple(rgba[0, 3, :3]) == (0, 0, 255)  # top-right: a blue item
    assert tuple(rgba[0, 0, :3]) == (127, 0, 127)  # one of each: their mean
    # eq_hist: the denser pixel is the most opaque, the sparsest ones the least
    assert rgba[0, 0, 3] == D.DEFAULT_ALPHA and rgba[3, 3, 3] == D.DEFAULT_MIN_ALPHA


def test_denser_pixels_are_more_opaque_in_every_mode():
    pts = np.array([[0.1, 0.1]] * 1 + [[0.4, 0.1]] * 10 + [[0.6, 0.1]] * 100)
    for how in D.HOW:
        alpha = render(pts, UNIT, how=how)[3, :3, 3]
        assert alpha[0] < alpha[1] < alpha[2], how


def test_an_empty_viewport_or_no_points_give_a_transparent_image():
    pts = np.array([[0.1, 0.9], [0.2, 0.8]])
    far = D.Viewport((5.0, 6.0), (5.0, 6.0), 8, 3)
    for rgba in (render(pts, far), render(np.zeros((0, 2)), UNIT), render(pts, far, np.array([0, 0]))):
        assert rgba.dtype == np.uint8 and not rgba.any()
    assert render(pts, far).shape == (3, 8, 4)


def test_points_outside_or_not_finite_are_left_out():
    pts = np.array([[0.1, 0.9], [np.nan, 0.5], [2.0, 0.5], [0.5, np.inf]])
    assert (render(pts, UNIT)[..., 3] > 0).sum() == 1


def test_the_same_inputs_give_the_same_bytes():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(5000, 2))
    cats = rng.integers(0, 3, 5000)
    vp = D.full_viewport(pts, 64, 48)
    a = D.data_uri(render(pts, vp, cats, ["#3F90DA", "#FFA90E", "#BD1F01"]))
    b = D.data_uri(render(pts.copy(), vp, cats.copy(), ["#3F90DA", "#FFA90E", "#BD1F01"]))
    assert a == b and a.startswith("data:image/png;base64,")


def test_png_round_trips():
    from PIL import Image

    rgba = render(np.array([[0.1, 0.9]]), UNIT, colors="#00FF00")
    back = np.asarray(Image.open(io.BytesIO(D.png_bytes(rgba))).convert("RGBA"))
    np.testing.assert_array_equal(back, rgba)


def test_full_viewport_holds_every_point_with_a_margin():
    pts = np.array([[0.0, 10.0], [2.0, 20.0], [np.nan, 100.0]])
    vp = D.full_viewport(pts, 10, 20, pad=0.1)
    assert vp.x_range == pytest.approx((-0.2, 2.2)) and vp.y_range == pytest.approx((9.0, 21.0))
    assert (vp.width, vp.height) == (10, 20)
    one = D.full_viewport(np.array([[3.0, 3.0]]), 4, 4, pad=0.0)
    assert one.x_range == (2.5, 3.5)  # a single point: a span of 1 around it
    assert (render(np.array([[3.0, 3.0]]), one)[..., 3] > 0).sum() == 1


@pytest.mark.parametrize("kwargs, name", [
    (dict(x_range=(1.0, 1.0)), "x_range"),
    (dict(x_range=(2.0, 1.0)), "x_range"),
    (dict(y_range=(0.0, float("nan"))), "y_range"),
    (dict(y_range=(0.0, float("inf"))), "y_range"),
    (dict(y_range="0,1"), "y_range"),
    (dict(x_range=(0.0, True)), "x_range"),
    (dict(width=0), "width"),
    (dict(width=1.5), "width"),
    (dict(height=D.MAX_PIXELS + 1), "height"),
    (dict(height=True), "height"),
])
def test_a_bad_viewport_names_the_parameter(kwargs, name):
    args = {"x_range": (0.0, 1.0), "y_range": (0.0, 1.0), "width": 4, "height": 4, **kwargs}
    with pytest.raises(ValueError, match=f"^{name} must be"):
        D.Viewport(**args)


def test_bad_arguments_name_the_parameter():
    pts = np.array([[0.1, 0.9], [0.2, 0.8]])
    with pytest.raises(ValueError, match="^points must be"):
        render(np.zeros((3, 3)), UNIT)
    with pytest.raises(ValueError, match="^viewport must be"):
        render(pts, ((0, 1), (0, 1)))
    with pytest.raises(ValueError, match="^categories must be integers of shape"):
        render(pts, UNIT, np.array([0]), ["#000000"])
    with pytest.raises(ValueError, match=r"^categories must be in \[0, 1\].*got 2"):
        render(pts, UNIT, np.array([0, 2]), ["#000000", "#FFFFFF"])
    with pytest.raises(ValueError, match="^colors must be hex"):
        render(pts, UNIT, colors=["red"])
    with pytest.raises(ValueError, match="^how must be one of eq_hist, log, linear"):
        render(pts, UNIT, how="cbrt")
    with pytest.raises(ValueError, match="^min_alpha must be at most alpha"):
        render(pts, UNIT, alpha=10, min_alpha=20)


def test_a_lone_point_is_spread_to_its_neighbours_a_crowd_is_not():
    lone = D.render(np.array([[0.6, 0.6]]), D.Viewport((0.0, 1.0), (0.0, 1.0), 5, 5), spread=1)
    assert (lone[..., 3] > 0).sum() == 9  # its pixel and the 8 around it
    xs, ys = np.meshgrid(np.arange(5) + 0.5, np.arange(5) + 0.5)
    crowd = np.column_stack([xs.ravel(), ys.ravel()]) / 5
    full = D.render(crowd, D.Viewport((0.0, 1.0), (0.0, 1.0), 5, 5), spread=1)
    np.testing.assert_array_equal(full, render(crowd, D.Viewport((0.0, 1.0), (0.0, 1.0), 5, 5)))
    with pytest.raises(ValueError, match=r"^spread must be an integer number of pixels in \[0, 8\]"):
        D.render(crowd, UNIT, spread=-1)


def test_a_values_image_shades_each_pixel_by_its_points_mean_and_leaves_out_nan():
    pts = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.5, 0.5]])
    vp = D.Viewport((-0.1, 1.1), (-0.1, 1.1), 12, 12)
    img = D.render_values(pts, vp, np.array([0.0, 1.0, 1.0, np.nan]), (0, 1), ["#000000", "#ffffff"], spread=0)
    lit = {tuple(p) for p in np.argwhere(img[..., 3] > 0)}
    assert lit == {(11, 0), (1, 10)}  # bottom left (two points), top right; the NaN point is left out
    assert tuple(img[11, 0, :3]) == (127, 127, 127)  # mean 0.5 of 0 and 1: halfway up the ramp
    assert tuple(img[1, 10, :3]) == (255, 255, 255)
    assert not D.render_values(pts, vp, np.full(4, np.nan), (0, 1), ["#000000", "#ffffff"]).any()


@pytest.mark.parametrize("kwargs, match", [
    (dict(values=np.zeros(3)), r"values must have shape \(4,\)"),
    (dict(value_range=(1, 1)), "value_range must be a pair"),
    (dict(colors=["red"]), "colors"),
    (dict(alpha=300), r"alpha must be an integer in \[0, 255\]; got 300"),
])
def test_a_values_image_refuses_bad_arguments_naming_them(kwargs, match):
    args = dict(values=np.zeros(4), value_range=(0, 1), colors=["#000000", "#ffffff"])
    args.update({k: v for k, v in kwargs.items() if k in args})
    extra = {k: v for k, v in kwargs.items() if k not in args}
    with pytest.raises(ValueError, match=match):
        D.render_values(np.zeros((4, 2)), D.Viewport((0, 1), (0, 1), 4, 4), args["values"], args["value_range"],
                        args["colors"], **extra)
