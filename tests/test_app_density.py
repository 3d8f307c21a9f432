"""The latent view as a density image (above figures.DENSITY_THRESHOLD items): its callbacks as
plain functions, on the digits workspace (450 items) with the threshold lowered below it."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from dldiag.app import callbacks as cb
from dldiag.app import figures as F
from dldiag.app.service import Diagnosis, SampleParams, build_meta


@pytest.fixture(scope="module")
def meta(digits_ws):
    return build_meta(digits_ws, default_projection="pca")


@pytest.fixture(scope="module")
def svc(digits_ws):
    return Diagnosis(digits_ws)


@pytest.fixture
def dense(monkeypatch):
    monkeypatch.setattr(F, "DENSITY_THRESHOLD", 100)


@pytest.fixture(scope="module")
def stores(meta):
    state, _ = cb.sync_state(meta, None, "", {})
    derived = cb.derived_stores(state)
    return derived["latent-params"], derived["sample-params"]


def _rgba(image: dict) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(image["source"].split(",", 1)[1]))).convert("RGBA"))


def test_the_first_figure_is_a_density_under_the_samples_points(dense, meta, svc, stores):
    latent, sample = stores
    kind, fig, key = cb.latent_outputs(meta, svc, latent, sample, None, set())
    assert kind == "figure" and "images" in fig["layout"]
    idx = svc.sample_indices(SampleParams(**sample))
    assert fig["data"][0]["x"] == [] and fig["data"][1]["customdata"] == idx.tolist()
    assert cb.latent_range_after(kind, None, key) is None
    # a colour change patches the image, not N points
    kind, spec, _ = cb.latent_outputs(meta, svc, {**latent, "color": "outcome"}, sample, key, {"latent-params"})
    assert kind == "patch" and ("layout", "images") in spec
    assert not any(path[:2] == ("data", 0) and path[-1] == "color" for path in spec)


def test_a_zoom_renders_the_density_for_the_new_ranges_and_patches_only_the_image(dense, meta, svc, stores):
    latent, sample = stores
    xy = svc.projection("pca")
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    mid = (lo + hi) / 2
    event = {"xaxis.range[0]": float(lo[0]), "xaxis.range[1]": float(mid[0]),
             "yaxis.range[0]": float(mid[1]), "yaxis.range[1]": float(hi[1])}
    spec, new_range = cb.relayout_outputs(meta, svc, event, latent, sample, None)
    assert list(spec) == [("layout", "images")]  # the points and the selection stay
    (image,) = spec[("layout", "images")]
    assert (image["x"], image["y"]) == (float(lo[0]), float(hi[1]))
    assert image["sizex"] == pytest.approx(mid[0] - lo[0]) and image["sizey"] == pytest.approx(hi[1] - mid[1])
    assert new_range == {"projection": "pca", "x": [float(lo[0]), float(mid[0])],
                         "y": [float(mid[1]), float(hi[1])]}
    # the zoomed image holds the items of the top-left quarter only, drawn over its whole area
    inside = (xy[:, 0] <= mid[0]) & (xy[:, 1] >= mid[1])
    assert inside.any() and _rgba(image)[..., 3].any()
    # the same ranges again: nothing to redraw; a pan of one axis keeps the other
    assert cb.relayout_outputs(meta, svc, event, latent, sample, new_range) is None
    pan = {"xaxis.range[0]": float(lo[0]) + 0.1, "xaxis.range[1]": float(mid[0]) + 0.1}
    _, panned = cb.relayout_outputs(meta, svc, pan, latent, sample, new_range)
    assert panned["y"] == new_range["y"] and panned["x"][0] == pytest.approx(float(lo[0]) + 0.1)
    # a reset: every item's extent
    spec, reset = cb.relayout_outputs(meta, svc, {"xaxis.autorange": True, "yaxis.autorange": True}, latent,
                                      sample, new_range)
    full = F.density_viewport(xy)
    assert reset["x"] is None and spec[("layout", "images")][0]["sizex"] == pytest.approx(np.ptp(full.x_range))
    # the latent view redrawn after a zoom keeps rendering for the zoomed axes
    kind, spec, _ = cb.latent_outputs(meta, svc, {**latent, "color": "pred"}, sample, "pca|0", {"latent-params"},
                                      view_range=new_range)
    assert spec[("layout", "images")][0]["sizex"] == pytest.approx(mid[0] - lo[0])


def test_events_about_something_else_or_small_views_redraw_nothing(monkeypatch, meta, svc, stores):
    latent, sample = stores
    zoom = {"xaxis.range[0]": 0.0, "xaxis.range[1]": 1.0, "yaxis.range[0]": 0.0, "yaxis.range[1]": 1.0}
    assert cb.relayout_outputs(meta, svc, zoom, latent, sample, None) is None  # 450 items: a scatter
    monkeypatch.setattr(F, "DENSITY_THRESHOLD", 100)
    for event in ({"autosize": True}, {"dragmode": "pan"}, {"selections": [{"type": "rect"}]}):
        assert cb.relayout_outputs(meta, svc, event, latent, sample, None) is None


@pytest.mark.parametrize("event, match", [
    ({"xaxis.range[0]": "a", "xaxis.range[1]": 1.0}, r"xaxis\.range\[0\] must be a finite number; got 'a'"),
    ({"xaxis.range[0]": 0.0, "xaxis.range[1]": float("nan")}, r"xaxis\.range\[1\] must be a finite number"),
    ({"yaxis.range[0]": 1e308, "yaxis.range[1]": float("inf")}, r"yaxis\.range\[1\] must be a finite number"),
    ({"xaxis.range[0]": True, "xaxis.range[1]": 1.0}, r"xaxis\.range\[0\] must be a finite number; got True"),
    ({"xaxis.range[0]": 2.0, "xaxis.range[1]": 1.0}, r"xaxis\.range must be increasing"),
    ({"yaxis.range": [0.0, 1.0, 2.0]}, r"yaxis\.range must be \[low, high\]"),
    ({"xaxis.range[0]": 0.5}, r"must give both xaxis\.range\[0\] and xaxis\.range\[1\]"),
    (["xaxis.range[0]", 1], r"relayoutData must be a plotly relayout event"),
    ({f"k{i}": 0 for i in range(100)}, r"relayoutData must be a plotly relayout event"),
])
def test_bad_ranges_from_the_browser_are_refused_naming_them(dense, meta, svc, stores, event, match):
    latent, sample = stores
    with pytest.raises(ValueError, match=match):
        cb.relayout_outputs(meta, svc, event, latent, sample, None)


def test_a_range_too_narrow_to_draw_and_a_bad_store_are_refused(dense, meta, svc, stores):
    latent, sample = stores
    with pytest.raises(ValueError, match="^x_range must be"):
        cb.relayout_outputs(meta, svc, {"xaxis.range": [1.0, 1.0 + 1e-14]}, latent, sample, None)
    with pytest.raises(ValueError, match="latent-range's x must be"):
        cb.relayout_outputs(meta, svc, {"yaxis.range": [0.0, 1.0]}, latent, sample,
                            {"projection": "pca", "x": "everything", "y": None})


def test_the_range_is_kept_through_patches_and_a_redraw_of_the_same_projection_only():
    zoomed = {"projection": "pca", "x": [0.0, 1.0], "y": None}
    assert cb.latent_range_after("patch", zoomed, "pca|0") is zoomed
    assert cb.latent_range_after("figure", zoomed, "pca|1") is zoomed  # presentation mode: zoom kept
    assert cb.latent_range_after("figure", zoomed, "umap|0") is None


def test_every_item_coloured_by_a_unit_is_a_mean_image_in_the_density_view(dense, meta, digits_ws, stores,
                                                                            tmp_path):
    from dldiag.cache import ArrayCache

    svc = Diagnosis(digits_ws, sample_cache=ArrayCache(tmp_path / "samples"))
    latent, sample = stores
    neuron = {**latent, "color": "neuron", "neuron": ["fc1", "flat", 3]}
    _, before, _ = cb.latent_outputs(meta, svc, neuron, sample, None, set())
    grey = _rgba(before["layout"]["images"][0])  # every item one grey until the values are there
    assert len({tuple(p) for p in grey[grey[..., 3] > 0][:, :3]}) == 1
    svc.unit_pass("fc1", "flat", 3)
    _, after, key = cb.latent_outputs(meta, svc, neuron, sample, None, set())
    shaded = _rgba(after["layout"]["images"][0])
    assert len({tuple(p) for p in shaded[shaded[..., 3] > 0][:, :3]}) > 20  # a ramp of colours, not one grey
    # a zoom renders the same colouring for the new ranges
    xy = svc.projection("pca")
    lo, hi = np.percentile(xy, [25, 75], axis=0)
    event = {"xaxis.range[0]": lo[0], "xaxis.range[1]": hi[0], "yaxis.range[0]": lo[1], "yaxis.range[1]": hi[1]}
    spec, _ = cb.relayout_outputs(meta, svc, event, neuron, sample, None)
    zoomed = _rgba(spec[("layout", "images")][0])
    assert len({tuple(p) for p in zoomed[zoomed[..., 3] > 0][:, :3]}) > 20
