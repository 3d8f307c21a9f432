"""The app's pure builders: figures, thumbnails, the HTML export, the layout. No server, no browser."""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib

import numpy as np
import plotly.graph_objects as go
import pytest

from dldiag.app import figures as F
from dldiag.app.export import report_filename, report_html
from dldiag.app.layout import GRAPH_IDS, build_layout, control_options, loading_layout
from dldiag.app.state import AppMeta
from dldiag.app.thumbnails import encode_png, thumbnail_uri
from dldiag.palette import CLASS_COLORS, FULL_COLOR, OUTCOME_COLORS, SAMPLER_COLORS, class_colors


def decode(spec):
    """A plotly typed-array spec back to numpy."""
    dtypes = {"u1": np.uint8, "i4": np.int32, "f4": np.float32, "f8": np.float64, "i1": np.int8,
              "u2": np.uint16, "i2": np.int16, "u4": np.uint32}
    arr = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=dtypes[spec["dtype"]])
    if "shape" in spec:
        arr = arr.reshape(tuple(int(v) for v in spec["shape"].split(",")))
    return arr


def valid(fig: dict) -> go.Figure:
    """Plotly's own validation accepts the figure dict (raises otherwise)."""
    return go.Figure(fig)


# ------------------------------------------------------------------ primitives

@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32, np.float64])
def test_typed_array_round_trip(dtype):
    values = np.arange(7).astype(dtype)
    spec = F.typed_array(values)
    assert set(spec) == {"dtype", "bdata"}
    np.testing.assert_array_equal(decode(spec), values)


def test_typed_array_casts_other_dtypes_and_matrix_has_shape():
    np.testing.assert_array_equal(decode(F.typed_array(np.arange(3, dtype=np.int64))), [0, 1, 2])
    m = np.arange(6, dtype=np.float64).reshape(2, 3)
    spec = F.typed_matrix(m)
    assert spec["shape"] == "2,3"
    np.testing.assert_array_equal(decode(spec), m.astype(np.float32))


def test_fade_blends_towards_white():
    assert F.fade("#000000", 0.0) == "#ffffff"
    assert F.fade("#4C78A8", 1.0).lower() == "#4c78a8"
    assert F.fade("#000000", 0.5) == "#808080"


def test_unit_name_one_name_per_unit():
    conv = (4, 16, 28)  # (C, H, W): unit 3 * 16 * 28 + 14 * 28 + 2 is channel 3, y 14, x 2
    u = 3 * 16 * 28 + 14 * 28 + 2
    assert F.unit_name("conv1", u, conv, channel=False) == "conv1 · ch 3 (y 14, x 2)"
    assert F.unit_name("conv1", 3, (4,), channel=True) == "conv1 · ch 3"
    assert F.unit_name("fc2", 17, (84,), channel=False) == "fc2 · 17"
    assert F.unit_name("fc3", 4, (10,), channel=False, class_names=FASHION) == "Coat"
    assert F.unit_name("conv1d", 7, (2, 5), channel=False) == "conv1d · ch 1 (t 2)"
    # class names name a layer only when it has as many units as there are classes
    assert F.unit_name("fc2", 4, (84,), channel=False, class_names=FASHION) == "fc2 · 4"
    with pytest.raises(ValueError, match=r"index must be a unit of 'fc2' \(0..83\); got 84"):
        F.unit_name("fc2", 84, (84,), channel=False)


def test_unit_names_and_neuron_label_agree_with_unit_name():
    names = F.unit_names("conv1", (2, 2, 3), channel=False)
    assert names[:4] == ["conv1 · ch 0 (y 0, x 0)", "conv1 · ch 0 (y 0, x 1)", "conv1 · ch 0 (y 0, x 2)",
                         "conv1 · ch 0 (y 1, x 0)"]
    assert names[6] == "conv1 · ch 1 (y 0, x 0)" and len(set(names)) == 12
    assert F.unit_names("fc3", (10,), channel=False, class_names=FASHION) == list(FASHION)
    # the latent view's colour bar: the unit's name, with the layer before a class name
    assert F.neuron_label("conv1", 6, (2, 2, 3), channel=False) == names[6]
    assert F.neuron_label("fc3", 4, (10,), channel=False, class_names=FASHION) == "fc3 · Coat"


def test_pct():
    assert F.pct(0.05) == "5%" and F.pct(0.025) == "2.5%" and F.pct(0.8) == "80%"


def test_graph_config_saves_png_at_twice_the_size():
    assert F.GRAPH_CONFIG["toImageButtonOptions"] == {"format": "png", "scale": 2}


# ------------------------------------------------------------------ latent view

def _latent_inputs(n=50, c=3):
    rng = np.random.default_rng(0)
    y = rng.integers(0, c, n)
    p = np.where(rng.random(n) < 0.8, y, (y + 1) % c)
    members = np.zeros(n, bool)
    members[::5] = True
    return y, p, members, [f"class {i}" for i in range(c)]


@pytest.mark.parametrize("mode", ["true", "pred", "outcome", "sample"])
def test_latent_style_categorical_modes(mode):
    y, p, members, names = _latent_inputs()
    style = F.latent_style(y, p, members, color_by=mode, class_names=names, sampler="vas")
    assert style.fg_size.dtype == np.uint8
    assert np.all(style.fg_size[members] > 0) and np.all(style.fg_size[~members] == 0)
    if mode in ("true", "pred"):
        np.testing.assert_array_equal(style.fg_color, y if mode == "true" else p)
        assert style.legend == list(zip(names, CLASS_COLORS[:3]))
    elif mode == "outcome":
        np.testing.assert_array_equal(style.fg_color, (y != p).astype(np.uint8))
        assert style.legend == [("correct", OUTCOME_COLORS["correct"]), ("incorrect", OUTCOME_COLORS["incorrect"])]
    else:
        assert style.legend[0] == ("in sample (vas)", SAMPLER_COLORS["vas"])
    assert style.colorbar_title is None


def test_latent_style_neuron_mode_scales_to_the_members():
    y, p, members, names = _latent_inputs()
    values = np.arange(len(y), dtype=np.float32)
    style = F.latent_style(y, p, members, color_by="neuron", class_names=names, sampler="vas",
                           neuron_values=values, neuron_label="fc1 unit 3")
    assert style.fg_range == (float(values[members].min()), float(values[members].max()))
    np.testing.assert_array_equal(style.fg_color[members], values[members])
    assert style.colorbar_title == "fc1 unit 3"
    with pytest.raises(ValueError, match="neuron_values"):
        F.latent_style(y, p, members, color_by="neuron", class_names=names, sampler="vas")
    with pytest.raises(ValueError, match="color_by"):
        F.latent_style(y, p, members, color_by="bogus", class_names=names, sampler="vas")


def test_latent_figure_keeps_every_item_with_its_index():
    y, p, members, names = _latent_inputs(n=1000)
    xy = np.random.default_rng(1).normal(size=(1000, 2))
    style = F.latent_style(y, p, members, color_by="true", class_names=names, sampler="random")
    fig = F.latent_figure(xy, style, title="t", projection="pca")
    valid(fig)
    fg, bg = fig["data"][1], fig["data"][0]
    assert fg["type"] == bg["type"] == "scattergl"
    assert len(decode(bg["x"])) == 1000
    assert bg["customdata"] == list(range(1000))  # a list: dcc.Graph indexes it for its events
    assert bg["hoverinfo"] == "none" and fg["hoverinfo"] == "skip"  # the tooltip shows the thumbnail
    # the foreground holds the members only, at their positions, with their item indices
    assert fg["customdata"] == np.flatnonzero(members).tolist()
    np.testing.assert_allclose(decode(fg["x"]), xy[members, 0].astype(np.float32))
    np.testing.assert_array_equal(decode(fg["marker"]["color"]), y[members])
    assert np.all(decode(fg["marker"]["size"]) > 0)
    legend = [t for t in fig["data"][2:] if t["visible"]]
    assert [t["name"] for t in legend] == names
    assert fig["layout"]["dragmode"] == "lasso" and fig["layout"]["uirevision"] == "pca"


def test_latent_patch_spec_sends_the_members_not_every_item():
    y, p, members, names = _latent_inputs(n=1000)
    xy = np.random.default_rng(1).normal(size=(1000, 2))
    style = F.latent_style(y, p, members, color_by="true", class_names=names, sampler="random")
    spec = F.latent_patch_spec(style, xy, title="new", present=False, parts=("sample",))
    paths = set(spec)
    assert ("data", 1, "marker", "size") in paths and ("layout", "title", "text") in paths
    assert not any(path[:2] == ("data", 0) for path in paths)  # the background trace is left alone
    assert spec[("data", 1, "customdata")] == np.flatnonzero(members).tolist()
    assert len(decode(spec[("data", 1, "x")])) == members.sum()
    spec_color = F.latent_patch_spec(style, xy, title="new", present=False, parts=("color",))
    assert ("data", 0, "marker", "color") in spec_color
    full = json.dumps(F.latent_figure(xy, style, title="t"))
    assert len(json.dumps({"/".join(map(str, k)): v for k, v in spec.items()})) < len(full) / 2


# ------------------------------------------------------------------ panels

FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CONTEXT = "Fashion-MNIST · vas sample of 40 items (5%) · group: class Shirt, incorrect"


def title_of(fig) -> str:
    return fig["layout"]["title"]["text"]


def _topk_inputs():
    full_mean = np.array([0.1, 0.9, 0.5, 0.7, 0.3, 0.05])
    sample_mean = np.array([0.8, 0.85, 0.2, 0.6, 0.3, 0.1])
    full_top, sample_top = np.array([1, 3, 2]), np.array([1, 0, 3])  # best first
    return sample_mean, full_mean, sample_top, full_top


def test_topk_figure_shows_the_three_kinds_in_blocks_named_by_the_legend():
    sample_mean, full_mean, sample_top, full_top = _topk_inputs()
    fig = F.topk_figure(sample_mean, full_mean, sample_top, full_top, labels=[f"fc1 · {i}" for i in range(6)],
                        sampler="vas", s1=2 / 3, k=3, n_sample=4, n_full=40, layer="fc1")
    valid(fig)
    full_bar, both, missed, extra = fig["data"]
    # one row per unit of either list: both lists (in the full data's order), missed, sample-only
    assert full_bar["y"] == ["fc1 · 1", "fc1 · 3", "fc1 · 2", "fc1 · 0"] and full_bar["customdata"] == [1, 3, 2, 0]
    assert full_bar["x"] == [0.9, 0.7, 0.5, 0.1] and full_bar["orientation"] == "h"
    assert (both["y"], both["x"], both["customdata"]) == (["fc1 · 1", "fc1 · 3"], [0.85, 0.6], [1, 3])
    assert (missed["y"], missed["x"]) == (["fc1 · 2"], [0.2])
    assert (extra["y"], extra["x"]) == (["fc1 · 0"], [0.8])
    # the legend names and counts each kind; S1 = |both| / k
    assert both["name"] == "sample · in both top-3 lists (2)"
    assert missed["name"] == "sample · missed: in the full data's top-3 only (1)"
    assert extra["name"] == "sample · only in the sample's top-3 (1)"
    assert full_bar["name"] == "full data (40 items)"
    # the kinds differ by hatching, not only by colour; every sample bar is in the sampler's colour
    assert "pattern" not in both["marker"] and both["marker"]["color"] == SAMPLER_COLORS["vas"]
    assert {missed["marker"]["pattern"]["shape"], extra["marker"]["pattern"]["shape"]} == {"/", "x"}
    assert missed["marker"]["pattern"]["fgcolor"] == SAMPLER_COLORS["vas"]
    assert full_bar["marker"]["color"] == FULL_COLOR
    # the sample bars share one slot beside the full data's (not four slots per row)
    assert {t["offsetgroup"] for t in fig["data"][1:]} == {"sample"} and full_bar["offsetgroup"] == "full"
    # dotted rules between the blocks, at rows 2 and 3
    rules = [s for s in fig["layout"]["shapes"] if s["type"] == "line"]
    assert [r["y0"] for r in rules] == [1.5, 2.5]
    # every row labelled, top to bottom in that order
    yaxis = fig["layout"]["yaxis"]
    assert yaxis["tickvals"] == full_bar["y"] and yaxis["autorange"] == "reversed"


def test_topk_figure_marks_the_chosen_unit_and_states_its_score_in_words():
    sample_mean, full_mean, sample_top, full_top = _topk_inputs()
    baseline = {"s1": 0.4, "s2": 0.1, "s3": 0.2, "spread": {"s1": 0.05}, "count": 3}
    fig = F.topk_figure(sample_mean, full_mean, sample_top, full_top, labels=[f"u{i}" for i in range(6)],
                        sampler="vas", s1=2 / 3, k=3, n_sample=4, n_full=40, layer="fc1", chosen=3,
                        baseline=baseline, context=CONTEXT)
    title = title_of(fig)
    assert title.startswith("(a) Top-3 neurons of fc1<br>") and CONTEXT in title.split("<br>")[1]
    assert "S1 precision 0.67 (random 0.40 ± 0.05): share of the full data's top-3 found by the sample" in title
    assert "higher is better" in title and "↑" not in title
    both = fig["data"][1]
    assert both["marker"]["line"]["color"] == [SAMPLER_COLORS["vas"], F.CHOSEN_COLOR]
    assert both["marker"]["line"]["width"] == [1, 3]
    band = [s for s in fig["layout"]["shapes"] if s["type"] == "rect"]
    assert len(band) == 1 and (band[0]["y0"], band[0]["y1"]) == (0.5, 1.5)  # row 1: unit 3
    assert fig["layout"]["yaxis"]["ticktext"][1] == "<b>▸ u3</b>" and fig["layout"]["yaxis"]["ticktext"][0] == "u1"
    # a chosen unit outside both lists marks nothing
    other = F.topk_figure(sample_mean, full_mean, sample_top, full_top, labels=[f"u{i}" for i in range(6)],
                          sampler="vas", s1=2 / 3, k=3, n_sample=4, n_full=40, layer="fc1", chosen=5)
    assert not [s for s in other["layout"]["shapes"] if s["type"] == "rect"]


def test_topk_figure_grows_rather_than_crowd_its_labels():
    n = 100
    mean = np.linspace(1, 0, n)
    top = np.arange(50)
    fig = F.topk_figure(mean, mean, top[::-1].copy(), top, labels=[f"u{i}" for i in range(n)], sampler="vas",
                        s1=1.0, k=50, n_sample=4, n_full=40, layer="fc1", height=360)
    layout = fig["layout"]
    assert layout["height"] >= layout["margin"]["t"] + F.MIN_ROW_PX[0] * 50
    few = F.topk_figure(mean, mean, top[:3], top[:3], labels=[f"u{i}" for i in range(n)], sampler="vas",
                        s1=1.0, k=3, n_sample=4, n_full=40, layer="fc1", height=360)
    assert "height" not in few["layout"]  # the panel's own height


def test_panels_of_an_empty_group_say_so():
    z = np.zeros(3)
    fig = F.topk_figure(z, z, np.empty(0, int), np.empty(0, int), labels=["a", "b", "c"], sampler="vas",
                        s1=None, k=3, n_sample=0, n_full=0, layer="fc1")
    assert fig["data"] == [] and "No item" in fig["layout"]["annotations"][0]["text"]
    assert "S1 precision –" in title_of(fig)


def test_a_group_the_sample_lacks_gets_a_plain_statement_not_bars_of_zeros():
    z = np.zeros(4)
    common = dict(n_sample=0, n_full=37, layer="fc1", sampler="vas", group="class Shirt, incorrect", context=CONTEXT)
    figs = [
        F.topk_figure(z, np.arange(4.0), np.empty(0, int), np.array([3, 2]), labels=list("abcd"), s1=0.0, k=2,
                      **common),
        F.heatmap_figure(z, np.arange(4.0), (4,), s2=1.0, **common),
        F.argmax_figure(z, np.full(4, 0.25), labels=list("abcd"), s3=1.0, **common),
    ]
    for fig in figs:
        valid(fig)
        assert fig["data"] == []
        text = fig["layout"]["annotations"][0]["text"]
        assert "The vas sample holds none of the 37 items of the group “class Shirt, incorrect”" in text
        assert "S1 = 0, S2 = 1, S3 = 1" in text  # why the summary counts the group as missed
        assert CONTEXT in title_of(fig)
    direct = F.absent_figure("(a) x", group="all items", n_full=1234, sampler="", context="")
    assert direct["layout"]["annotations"][0]["text"].startswith("The sample holds none of the 1,234 items")


def test_unit_mosaic_conv_maps_with_gutters():
    values = np.arange(3 * 2 * 3, dtype=float)
    img, idx = F.unit_mosaic(values, (3, 2, 3))  # 3 maps of 2x3 in a near-square 2x2 grid
    assert img.shape == (2 * 3 - 1, 2 * 4 - 1)  # 1-pixel gutters between maps
    assert np.isnan(img[2]).all() and (idx[2] == -1).all() and np.isnan(img[:, 3]).all()
    np.testing.assert_array_equal(img[:2, :3], values[:6].reshape(2, 3))
    np.testing.assert_array_equal(idx[:2, 4:7], np.arange(6, 12).reshape(2, 3))
    np.testing.assert_array_equal(img[3:5, :3], values[12:].reshape(2, 3))  # 3rd map on the 2nd row
    assert np.isnan(img[3:, 4:]).all() and (idx[3:, 4:] == -1).all()  # the grid's empty slot
    img_dense, idx_dense = F.unit_mosaic(np.arange(10.0), (10,))
    assert img_dense.shape == (3, 4) and np.isnan(img_dense.ravel()[10:]).all()
    assert idx_dense.ravel()[:10].tolist() == list(range(10))


def hover_name(trace, row, col) -> str:
    """What plotly.js shows as the unit's name when hovering pixel (row, col) of a heatmap trace."""
    template = trace["hovertemplate"].split("<br>")[0]
    custom = decode(trace["customdata"])[row, col]
    if "%{text}" in template:
        return template.replace("%{text}", trace["text"][row][col])
    if "%{customdata}" in template:
        return template.replace("%{customdata}", str(int(custom)))
    return re.sub(r"%\{customdata\[(\d)\]\}", lambda m: str(int(custom[int(m.group(1))])), template)


@pytest.mark.parametrize("shape, channel, classes", [
    ((3, 4, 5), False, None),   # a conv map: channel, y, x
    ((6,), True, None),         # channel mode
    ((13,), False, None),       # dense
    ((10,), False, FASHION),    # logits
    ((2, 5), False, None),      # a 1-D conv
])
def test_heatmap_hover_names_each_unit_as_unit_name_does(shape, channel, classes):
    n = int(np.prod(shape))
    values = np.arange(n, dtype=float)
    fig = F.heatmap_figure(values, values, shape, s2=0.0, n_sample=5, n_full=50, layer="L", channel=channel,
                           class_names=classes)
    valid(fig)
    _, idx = F.unit_mosaic(values, shape)
    for trace in fig["data"][:3]:
        assert trace["hoverongaps"] is False  # no hover label on a gutter
        for row, col in zip(*np.nonzero(idx >= 0)):
            assert hover_name(trace, row, col) == F.unit_name("L", idx[row, col], shape, channel=channel,
                                                               class_names=classes)


def test_heatmap_figure_titles_tiles_and_colour_bars_and_marks_the_chosen_unit():
    full = np.linspace(0, 1, 2 * 4 * 4)
    sample = full + 0.1
    fig = F.heatmap_figure(sample, full, (2, 4, 4), s2=0.0123, n_sample=5, n_full=50, layer="conv1", chosen=21,
                           baseline={"s2": 0.02, "s1": 0.5, "s3": 0.3}, context=CONTEXT)
    valid(fig)
    s, f, d = (decode(t["z"]) for t in fig["data"][:3])
    np.testing.assert_allclose(np.nan_to_num(d), np.nan_to_num(s - f), atol=1e-6)
    assert fig["data"][2]["colorscale"] == F.DIVERGING and fig["data"][2]["zmin"] == -fig["data"][2]["zmax"]
    assert fig["data"][1]["colorbar"]["title"]["text"] == "mean activation"
    assert fig["data"][2]["colorbar"]["title"]["text"] == "sample − full"
    assert fig["data"][0]["showscale"] is False  # the two mean maps share one scale and one bar
    assert fig["data"][0]["zmax"] == fig["data"][1]["zmax"]
    title = title_of(fig)
    assert "S2 cosine distance 0.012 (random 0.020) between the sample's and the full data's mean activations" in title
    assert "lower is better" in title and CONTEXT in title
    assert [a["text"] for a in fig["layout"]["annotations"]] == [
        "sample (5 items)", "full data (50 items)", "difference: sample − full"]
    # unit 21 = channel 1, y 1, x 1: the mosaic puts channel 1 to the right of channel 0 (after a gutter)
    _, idx = F.unit_mosaic(full, (2, 4, 4))
    (row,), (col,) = np.nonzero(idx == 21)
    marks = fig["data"][3:]
    assert len(marks) == 6 and {m["xaxis"] for m in marks} == {"x", "x2", "x3"}
    assert all(m["x"] == [col] and m["y"] == [row] for m in marks) and (row, col) == (1, 6)


def test_argmax_figure_keeps_an_honest_scale_without_an_other_bar():
    full = np.zeros(200)
    full[:100] = 0.005  # 100 units of 0.5 % each: half of the items
    full[100] = 0.5
    sample = np.zeros(200)
    sample[0], sample[100] = 0.25, 0.75
    fig = F.argmax_figure(sample, full, labels=[f"u{i}" for i in range(200)], sampler="max-margin",
                          s3=0.5, n_sample=4, n_full=400, layer="fc2", height=360)
    valid(fig)
    full_bar, sample_bar = fig["data"]
    names = full_bar["y"]
    assert not any(n.startswith("other") for n in names) and -1 not in full_bar["customdata"]
    assert 5 <= len(names) < 101  # as many as fit the panel's rows
    assert names[:2] == ["u100", "u0"]  # by the full data's share, then the sample's
    # the bars are shares of all the group's items, as the data gives them (not renormalised)
    assert full_bar["x"][0] == 0.5 and sample_bar["x"][:2] == [0.75, 0.25]
    assert fig["layout"]["xaxis"]["range"][1] == pytest.approx(0.75 * 1.08)
    # what is not shown is said: the shown units' share of each, and how many units hold the rest
    shown = full_bar["customdata"]
    note = fig["layout"]["xaxis"]["title"]["text"]
    assert f"the {len(shown)} units shown are the top unit of {full[shown].sum():.0%} of the full data's items" in note
    assert f"and {sample[shown].sum():.0%} of the sample's" in note and f"{101 - len(shown)} other units" in note
    assert "S3 Jensen–Shannon distance 0.500" in title_of(fig) and "lower is better" in title_of(fig)
    # a taller panel shows more units
    taller = F.argmax_figure(sample, full, labels=[f"u{i}" for i in range(200)], sampler="max-margin",
                             s3=0.5, n_sample=4, n_full=400, layer="fc2", height=900)
    assert len(taller["data"][0]["y"]) == F.MAX_ARGMAX_BARS > len(names)


def test_argmax_figure_adds_and_marks_the_chosen_unit():
    full = np.full(50, 1 / 50)
    sample = np.zeros(50)
    sample[:4] = 0.25
    labels = [f"u{i}" for i in range(50)]
    fig = F.argmax_figure(sample, full, labels=labels, sampler="vas", s3=0.3, n_sample=4, n_full=50,
                          layer="fc2", chosen=49, height=360)
    full_bar, sample_bar = fig["data"]
    assert full_bar["customdata"][-1] == 49 and full_bar["y"][-1] == "u49"
    assert "the chosen unit is added last" in fig["layout"]["xaxis"]["title"]["text"]
    assert sample_bar["marker"]["line"]["width"][-1] == 3 and sample_bar["marker"]["line"]["width"][0] == 0
    row = len(full_bar["y"]) - 1
    assert fig["layout"]["shapes"][0]["y0"] == row - 0.5
    assert fig["layout"]["yaxis"]["ticktext"][-1] == "<b>▸ u49</b>"
    narrow = np.full(20, 1 / 20)
    everything = F.argmax_figure(narrow, narrow, labels=labels, sampler="vas", s3=0.0, n_sample=4, n_full=50,
                                 layer="fc2", height=900)
    assert "every unit that is ever an item's top unit is shown (20)" in everything["layout"]["xaxis"]["title"]["text"]


def test_topk_figure_draws_the_estimate_s_intervals_and_stay_probabilities():
    sample_mean, full_mean, sample_top, full_top = _topk_inputs()
    low, high = sample_mean - np.arange(6) * 0.01, sample_mean + 0.02 + np.arange(6) * 0.001
    estimate = {"score": (0.8, 0.7, 0.9), "n": 4, "low": low, "high": high, "stay": np.array([1.0, 0.55, 0.875])}
    fig = F.topk_figure(sample_mean, full_mean, sample_top, full_top, labels=[f"u{i}" for i in range(6)],
                        sampler="vas", s1=2 / 3, k=3, n_sample=4, n_full=40, layer="fc1", estimate=estimate)
    valid(fig)
    full_bar, *sample_bars = fig["data"]
    assert "error_x" not in full_bar  # the full data's means are measured, not estimated
    for trace in sample_bars:  # each sample bar's error bar spans its unit's interval, whatever the block
        units = trace["customdata"]
        err = trace["error_x"]
        assert err["visible"] and not err["symmetric"]
        np.testing.assert_allclose(np.array(trace["x"]) + err["array"], high[units])
        np.testing.assert_allclose(np.array(trace["x"]) - err["arrayminus"], low[units])
    both, missed, extra = sample_bars
    # the sample's top-k units say how often they stay in the top-k; a unit outside it has no such number
    assert both["customdata"] == [1, 3] and "stays in the top-3 in 100% of the resamples" in both["hovertemplate"][0]
    assert "stays in the top-3 in 88% of the resamples" in both["hovertemplate"][1]
    assert "stays in the top-3 in 55% of the resamples" in extra["hovertemplate"][0]
    assert "stays in" not in missed["hovertemplate"][0] and "[0.180–0.222]" in missed["hovertemplate"][0]
    assert "estimated from the sample alone: precision ≈ 0.80 [0.70–0.90]" in title_of(fig)
    # without intervals (the design-weighted bars), the line only
    line_only = F.topk_figure(sample_mean, full_mean, sample_top, full_top, labels=[f"u{i}" for i in range(6)],
                              sampler="vas", s1=2 / 3, k=3, n_sample=4, n_full=40, layer="fc1",
                              estimate={"score": (0.8, 0.7, 0.9), "n": 4, "plain": True})
    assert not any("error_x" in t for t in line_only["data"])
    assert "estimated from the sample alone (plain mean): precision ≈ 0.80" in title_of(line_only)


def test_argmax_figure_draws_per_bin_intervals_and_keeps_them_in_range():
    full = np.array([0.5, 0.3, 0.2, 0.0])
    sample = np.array([0.25, 0.5, 0.0, 0.25])
    low, high = np.array([0.1, 0.3, 0.0, 0.05]), np.array([0.4, 0.9, 0.0, 0.5])
    fig = F.argmax_figure(sample, full, labels=[f"u{i}" for i in range(4)], sampler="vas", s3=0.3, n_sample=4,
                          n_full=40, layer="fc2",
                          estimate={"score": (0.31, 0.12, 0.5), "n": 4, "low": low, "high": high})
    valid(fig)
    full_bar, sample_bar = fig["data"]
    rows = sample_bar["customdata"]
    err = sample_bar["error_x"]
    np.testing.assert_allclose(np.array(sample_bar["x"]) + err["array"], high[rows])
    np.testing.assert_allclose(np.array(sample_bar["x"]) - err["arrayminus"], low[rows])
    assert "error_x" not in full_bar
    assert fig["layout"]["xaxis"]["range"][1] >= 0.9  # the widest error bar is not cut
    assert "estimated from the sample alone: JS distance ≈ 0.310 [0.120–0.500]" in title_of(fig)


def test_heatmap_figure_carries_the_estimate_line_only():
    mean = np.linspace(0, 1, 16)
    fig = F.heatmap_figure(mean, mean, (16,), s2=0.01, n_sample=4, n_full=40, layer="fc1",
                           estimate={"score": (0.02, 0.005, 0.04), "n": 4})
    assert "estimated from the sample alone: cosine distance ≈ 0.020 [0.005–0.040]" in title_of(fig)
    assert not any("error_x" in t or "error_y" in t for t in fig["data"])


def test_estimate_line_says_why_a_group_has_no_estimate():
    assert F.estimate_line("s1", None) == ""
    one = F.estimate_line("s2", {"score": None, "n": 1})
    assert one.startswith("no estimate from the sample alone: 1 item of the group") and "that item" in one
    assert "no item" in F.estimate_line("s3", {"score": None, "n": 0})
    with pytest.raises(ValueError, match="metric must be one of"):
        F.estimate_line("s4", {"score": (1, 1, 1)})
    sample_mean, full_mean, sample_top, full_top = _topk_inputs()
    fig = F.topk_figure(sample_mean, full_mean, sample_top, full_top, labels=[f"u{i}" for i in range(6)],
                        sampler="vas", s1=1 / 3, k=3, n_sample=1, n_full=40, layer="fc1",
                        estimate={"score": None, "n": 1})
    assert one in title_of(fig)
    assert not any("error_x" in t for t in fig["data"])


def _summary(sampler_scores, random_scores):
    return {"layers": ["a", "b"], "n_groups": 12,
            "sample": {"overall": sampler_scores, "per_layer": {"a": sampler_scores, "b": sampler_scores}},
            "random": {"overall": random_scores, "per_layer": {"a": random_scores, "b": random_scores}}}


def test_summary_figure_compares_with_random_per_metric_and_layer():
    scores = {"s1": 0.8, "s2": 0.1, "s3": 0.2}
    rnd = {"s1": 0.6, "s2": 0.2, "s3": 0.3}
    fig = F.summary_figure(_summary(scores, rnd), sampler="vas", fraction=0.05, context="toy · vas sample")
    valid(fig)
    assert len(fig["data"]) == 6
    assert fig["data"][0]["x"] == ["all layers", "a", "b"] and fig["data"][0]["y"] == [0.8, 0.8, 0.8]
    assert fig["data"][1]["marker"]["color"] == SAMPLER_COLORS["random"]
    title = title_of(fig)
    assert "vas" in title and "random" in title and "5%" in title and "12 groups" in title
    assert "a group = layer × true class × outcome" in title and "toy · vas sample" in title
    assert {fig["data"][i]["yaxis"] for i in (0, 2, 4)} == {"y", "y2", "y3"}
    subplot_titles = " ".join(a["text"] for a in fig["layout"]["annotations"])
    assert "↑" not in subplot_titles and "↓" not in subplot_titles
    assert subplot_titles.count("higher is better") == 1 and subplot_titles.count("lower is better") == 2


def test_summary_figure_leaves_out_the_s1_bar_of_a_trivial_layer_and_says_why():
    scores = {"s1": 0.8, "s2": 0.1, "s3": 0.2}
    trivial = {"s1": None, "s2": 0.3, "s3": 0.4, "s1_trivial": True}
    summary = _summary(scores, scores)
    summary["k"] = 10
    for name in ("sample", "random"):
        summary[name]["per_layer"]["b"] = trivial
    fig = F.summary_figure(summary, sampler="vas", fraction=0.05)
    valid(fig)
    s1_bars = [t for t in fig["data"] if t["yaxis"] == "y"]
    assert all(t["y"] == [0.8, 0.8, None] for t in s1_bars)
    assert [t["y"][2] for t in fig["data"] if t["yaxis"] == "y2"] == [0.3, 0.3]  # S2 keeps the layer
    assert "no S1 bar for b: at most k = 10 units" in title_of(fig)


def test_summary_figure_and_table_accept_an_overall_s1_of_none():
    nothing = {"s1": None, "s2": 0.1, "s3": 0.2}
    summary = _summary(nothing, nothing)
    fig = F.summary_figure(summary, sampler="vas", fraction=0.05)
    valid(fig)
    assert "S1 trivial (≤ k units) vs trivial (≤ k units)" in title_of(fig)
    assert "no S1 bar for a, b" in title_of(fig)
    assert F.s1_text(None) == "trivial (≤ k units)" and F.s1_text(0.8123, 3) == "0.812"


def test_topk_figure_says_when_s1_is_trivial_in_the_layer():
    sample_mean, full_mean, sample_top, full_top = _topk_inputs()
    labels = [f"u{i}" for i in range(6)]
    args = dict(labels=labels, sampler="vas", s1=1.0, n_sample=4, n_full=40, layer="fc1")
    at = F.topk_figure(sample_mean, full_mean, sample_top, full_top, k=6, **args)
    assert "S1 is trivial here: fc1 has 6 ≤ k units" in title_of(at)
    below = F.topk_figure(sample_mean, full_mean, sample_top, full_top, k=5, **args)
    assert "trivial" not in title_of(below)


def test_summary_figure_of_the_random_sampler_does_not_compare_it_with_itself():
    scores = {"s1": 0.6, "s2": 0.2, "s3": 0.3}
    fig = F.summary_figure(_summary(scores, scores), sampler="random", fraction=0.1)
    assert len(fig["data"]) == 3 and {t["name"] for t in fig["data"]} == {"random"}
    assert " vs " not in title_of(fig) and "the random sampler is the baseline itself" in title_of(fig)


def test_the_subtitles_say_when_the_sample_s_answers_are_design_weighted():
    from dldiag.weighting import ESTIMATORS

    assert tuple(F.ESTIMATOR_NAMES) == tuple(F.ESTIMATE_PREFIX) == ESTIMATORS
    assert F.estimate_subtitle("S2 cosine distance 0.1") == "S2 cosine distance 0.1"
    weighted_line = F.estimate_subtitle("S2 cosine distance 0.1", "weighted")
    assert weighted_line == "design-weighted sample · S2 cosine distance 0.1"
    with pytest.raises(ValueError, match=r"estimator must be one of 'plain', 'weighted'; got 'hajek'"):
        F.estimate_subtitle("x", "hajek")
    mean = np.linspace(0, 1, 12)
    labels = [f"u{i}" for i in range(12)]
    common = dict(sampler="vas", n_sample=5, n_full=40, layer="fc2")
    for estimator in ESTIMATORS:
        figs = (F.topk_figure(mean, mean, np.arange(3), np.arange(3), labels=labels, s1=1.0, k=3,
                              estimator=estimator, **common),
                F.heatmap_figure(mean, mean, (12,), s2=0.0, estimator=estimator, **common),
                F.argmax_figure(mean / mean.sum(), mean / mean.sum(), labels=labels, s3=0.0, estimator=estimator,
                                **common))
        for fig in figs:
            valid(fig)
            assert ("design-weighted sample · " in title_of(fig)) == (estimator == "weighted")
    scores = {"s1": 0.8, "s2": 0.1, "s3": 0.2}
    weighted = F.summary_figure({**_summary(scores, scores), "estimator": "weighted"}, sampler="vas", fraction=0.05)
    assert "design-weighted sample · S1 0.80 vs 0.80" in title_of(weighted)
    assert "design-weighted" not in title_of(F.summary_figure(_summary(scores, scores), sampler="vas", fraction=0.05))


def test_score_line_names_the_score_its_baseline_and_the_better_direction():
    assert F.score_line("s2", 0.1234) == ("S2 cosine distance 0.123 between the sample's and the full data's mean "
                                          "activations — lower is better")
    line = F.score_line("s1", 0.6, {"s1": 0.4, "spread": {"s1": 0.05}}, k=10)
    assert line == "S1 precision 0.60 (random 0.40 ± 0.05): share of the full data's top-10 found by the sample — " \
                   "higher is better"
    assert "(random 0.400)" in F.score_line("s3", 0.5, {"s3": 0.4})
    assert "holds none of it" in F.score_line("s3", 0.5, {"s3": 1.0, "count": 0})
    assert F.score_line("s1", None, k=5).startswith("S1 precision –:")
    with pytest.raises(ValueError, match="metric must be one of s1, s2, s3; got 's4'"):
        F.score_line("s4", 0.1)


def test_confusion_figure_counts_colour_bar_and_square_cells():
    cm = np.array([[5, 1], [2, 7]])
    fig = F.confusion_figure(cm, cm // 2, ["a", "b"], highlight=np.array([[False, True], [False, False]]),
                             accuracy=0.8, sample_accuracy=0.75, context="toy · vas sample", height=800)
    valid(fig)
    trace = fig["data"][0]
    assert trace["customdata"][0][1] == [0, 1]  # (true, predicted): a click makes the cell a group
    assert trace["text"][1][0].startswith("2<br>") and trace["text"][1][0].endswith(">1</span>")
    assert "2 items (22.2% of the true class), 1 in the sample" in trace["hovertext"][1][0]
    rect = fig["layout"]["shapes"][0]
    assert (rect["x0"], rect["y0"]) == (0.5, -0.5)
    # log colours with a titled bar whose ticks read as counts
    assert trace["showscale"] is True and trace["colorbar"]["title"]["text"] == "items (log scale)"
    assert trace["z"][1][1] == pytest.approx(np.log10(8), abs=1e-4)
    ticks = dict(zip(trace["colorbar"]["ticktext"], trace["colorbar"]["tickvals"]))
    assert ticks["1"] == pytest.approx(np.log10(2)) and ticks["7"] == pytest.approx(np.log10(8))
    assert trace["z"][1][1] == pytest.approx(ticks["7"], abs=1e-4)
    # square cells in any export
    assert fig["layout"]["yaxis"]["scaleanchor"] == "x" and fig["layout"]["yaxis"]["scaleratio"] == 1
    title = title_of(fig)
    assert "model accuracy 80.0% on all items; 75.0% on the sample, which over-represents the decision boundary" \
        in title and "toy · vas sample" in title


def test_confusion_figure_row_normalised_rates():
    cm = np.array([[90, 10, 0], [5, 45, 0], [0, 0, 0]])
    fig = F.confusion_figure(cm, cm // 5, ["a", "b", "c"], normalise="rows", accuracy=0.9, sample_accuracy=0.9,
                             height=800)
    valid(fig)
    trace = fig["data"][0]
    assert trace["text"][0][:2] == ["90%", "10%"] and trace["text"][1][:2] == ["10%", "90%"]
    assert trace["text"][2] == ["", "", ""]  # an empty class has no rates, not 0 %
    assert "over-represents" not in title_of(fig)  # the sample is not harder than the data
    # a rate's colour and the colour bar's tick of that rate agree
    ticks = dict(zip(trace["colorbar"]["ticktext"], trace["colorbar"]["tickvals"]))
    assert trace["z"][1][0] == pytest.approx(ticks["10%"], abs=1e-4) and ticks["100%"] == 1.0
    assert (trace["zmin"], trace["zmax"]) == (0.0, 1.0)
    assert "share of the true class" in trace["colorbar"]["title"]["text"]
    with pytest.raises(ValueError, match="normalise must be None or 'rows'; got 'columns'"):
        F.confusion_figure(cm, cm, ["a", "b", "c"], normalise="columns")


def test_confusion_figure_text_fits_its_cells():
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 99, (10, 10))
    cm[np.diag_indices(10)] = 950
    roomy = F.confusion_figure(cm, cm // 10, FASHION, height=1000)["data"][0]
    tight = F.confusion_figure(cm, cm // 10, FASHION, height=380)["data"][0]
    assert "<br>" in roomy["text"][0][0] and roomy["textfont"]["size"] == 11
    assert "<br>" not in tight["text"][0][0] and tight["textfont"]["size"] < 11  # the sample's count in hover only
    assert "1 in the sample" in tight["hovertext"][0][1] or "in the sample" in tight["hovertext"][0][1]


def test_top_confusions_rank_the_off_diagonal_cells():
    full = np.array([[50, 7, 3], [7, 40, 0], [1, 9, 30]])
    sample = np.array([[5, 2, 1], [0, 4, 0], [0, 3, 3]])
    top = F.top_confusions(full, sample, ["a", "b", "c"], n=3)
    assert [(d["true"], d["predicted"]) for d in top] == [(2, 1), (1, 0), (0, 1)]  # 9, then 7 at 7/47 > 7/60
    assert top[0] == {"true": 2, "predicted": 1, "true_name": "c", "predicted_name": "b", "count": 9,
                      "rate": pytest.approx(9 / 40), "sample_count": 3}
    assert len(F.top_confusions(full, sample, ["a", "b", "c"], n=10)) == 5  # empty cells left out
    assert F.top_confusions(np.eye(3, dtype=int), np.eye(3, dtype=int), "abc") == []
    with pytest.raises(ValueError, match="square and of one shape"):
        F.top_confusions(full, sample[:2], "abc")


def test_titles_never_share_the_toolbar_row():
    fig = F.message_figure("x", title="t")
    assert fig["layout"]["title"]["pad"]["t"] == F.TOOLBAR_PX
    assert fig["layout"]["margin"]["t"] > F.TOOLBAR_PX


def test_exported_figures_have_no_blank_band_and_fit_a_slide():
    sample_mean, full_mean, sample_top, full_top = _topk_inputs()
    args = (sample_mean, full_mean, sample_top, full_top)
    kw = dict(labels=[f"u{i}" for i in range(6)], sampler="vas", s1=0.5, k=3, n_sample=4, n_full=40, layer="fc1",
              context=CONTEXT)
    screen, export = F.topk_figure(*args, **kw), F.topk_figure(*args, **kw, for_screen=False)
    band = F.TOOLBAR_PX - F.EXPORT_TOP_PX
    assert screen["layout"]["title"]["pad"]["t"] - export["layout"]["title"]["pad"]["t"] == band
    assert screen["layout"]["margin"]["t"] - export["layout"]["margin"]["t"] == band
    assert export["layout"]["title"]["pad"]["t"] < F.TOOLBAR_PX
    # a title of three lines keeps them all inside the top margin: 1.3 em apart
    size = export["layout"]["title"]["font"]["size"]
    assert export["layout"]["margin"]["t"] >= F.EXPORT_TOP_PX + size * (1 + 2 * 1.3)
    assert F.export_size("topk") == (1600, 900) and F.export_size("heatmap")[0] / F.export_size("heatmap")[1] == 16 / 9
    width, height = F.export_size("confusion")
    assert width == height <= 1080
    with pytest.raises(ValueError, match="kind must be one of"):
        F.export_size("table")
    config = F.graph_config("dldiag-confusion", "confusion")
    assert (config["toImageButtonOptions"]["width"], config["toImageButtonOptions"]["height"]) == (width, height)
    assert "width" not in F.graph_config("dldiag-topk")["toImageButtonOptions"]


def test_presentation_mode_enlarges_type():
    small, big = F.base_layout("t"), F.base_layout("t", present=True)
    assert big["font"]["size"] > small["font"]["size"] + 3


# ------------------------------------------------------------------ thumbnails

def _read_png(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = body
        pos += 12 + length
    w, h, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    raw = zlib.decompress(chunks[b"IDAT"])
    channels = 1 if color == 0 else 3
    rows = np.frombuffer(raw, np.uint8).reshape(h, 1 + w * channels)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(h, w, channels).squeeze()


def test_encode_png_round_trip():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(_read_png(encode_png(img)), img)
    rgb = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    np.testing.assert_array_equal(_read_png(encode_png(rgb)), rgb)
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="shape"):
        encode_png(np.zeros((2, 2, 2), np.uint8))


def _thumb(item, **kw):
    uri = thumbnail_uri(item, **kw)
    assert uri.startswith("data:image/png;base64,")
    return _read_png(base64.b64decode(uri.split(",", 1)[1]))


def test_thumbnail_uri_scales_an_item():
    item = np.zeros((1, 4, 4), np.float32)
    item[0, 1, 2] = 1.0
    img = _thumb(item, side=12)
    assert img.shape == (12, 12) and img[3:6, 6:9].min() == 255 and img.sum() == 255 * 9


def test_thumbnails_of_rgb_and_large_images_are_reduced_by_block_means():
    rgb = np.zeros((3, 224, 160), np.float32)
    rgb[0] = 1.0  # red
    rgb[2, :112] = 1.0  # blue in the top half
    img = _thumb(rgb, side=84)
    assert img.shape == (75, 54, 3)  # 224 and 160 over 3 (blocks of 3x3, edges padded)
    assert tuple(img[0, 0]) == (255, 0, 255) and tuple(img[-1, -1]) == (255, 0, 0)
    grey = np.linspace(0, 1, 200 * 200, dtype=np.float32).reshape(200, 200)  # (H, W) without channels
    small = _thumb(grey, side=84)
    assert small.shape == (67, 67) and small[0, 0] < small[-1, -1]
    with pytest.raises(ValueError, match="item must be an image"):
        thumbnail_uri(np.zeros(30, np.float32))


def test_unusual_features_rank_by_distance_from_the_mean():
    from dldiag.app.thumbnails import unusual_features

    mean, std = np.zeros(5), np.array([1.0, 2.0, 1.0, 0.0, 4.0])
    item = np.array([0.5, -6.0, 2.0, 9.0, 4.0])
    rows = unusual_features(item, mean, std, names=list("abcde"), k=3)
    assert rows == [("b", -6.0, -3.0), ("c", 2.0, 2.0), ("e", 4.0, 1.0)]  # d has no spread: z = 0


# ------------------------------------------------------------------ export

def test_report_html_is_self_contained():
    fig = F.message_figure("hello", title="A title")
    text = report_html({"one": fig, "two": fig}, [("sampler", "vas"), ("fraction", "5%")], title="Report <x>",
                       link="http://127.0.0.1:8050/?sampler=vas")
    assert text.startswith("<!DOCTYPE html>")
    assert "<script src=" not in text  # plotly.js inline, opens offline
    assert text.count("Plotly.newPlot") == 2 and "A title" in text
    assert "<td>sampler</td><td>vas</td>" in text and "Report &lt;x&gt;" in text
    assert 'href="http://127.0.0.1:8050/?sampler=vas"' in text
    assert report_filename("npz:/a b.npz", "vas", 0.05).startswith("dldiag-npz--a-b-npz-vas-5pct-")


# ------------------------------------------------------------------ layout

META = AppMeta(dataset="toy", n_items=100, class_names=("a", "b", "c"), layers=("conv", "fc"), latent_layer="fc",
               samplers=("random", "vas", "max-margin"), uses_j={"max-margin": True}, randomised={"vas": False},
               accuracy=0.9, default_sampler="vas", default_layer="fc", default_projection="pca")


def _ids(component, found=None):
    found = {} if found is None else found
    cid = getattr(component, "id", None)
    if cid is not None:
        found[json.dumps(cid, sort_keys=True) if isinstance(cid, dict) else cid] = component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if hasattr(child, "to_plotly_json"):
            _ids(child, found)
    return found


def test_layout_has_every_panel_control_and_store():
    ids = _ids(build_layout(META))
    for gid in GRAPH_IDS:
        options = ids[gid].config["toImageButtonOptions"]
        assert options["scale"] >= 2 and options["format"] == "png"
        assert options["filename"] == "dldiag-" + gid.removesuffix("-graph")
    for cid in ("sampler", "fraction", "j", "seed", "layer", "cls", "outcome", "k", "units", "projection", "color",
                "url", "view-state", "download", "export-btn", "present-btn", "latent-tooltip",
                "group-label", "table-iv"):
        assert cid in ids, cid
    for gid in GRAPH_IDS:  # every figure has PNG and SVG buttons
        for fmt in ("png", "svg"):
            assert json.dumps({"fmt": fmt, "graph": gid, "type": "save"}, sort_keys=True) in ids
    assert ids["sampler"].value == "vas" and ids["projection"].value == "pca"


def test_control_options_follow_the_workspace():
    opts = control_options(META)
    assert [o["value"] for o in opts["sampler"]] == ["random", "vas", "max-margin"]
    assert [o["value"] for o in opts["cls"]] == ["all", "0", "1", "2"]
    assert opts["layer"][1]["label"] == "fc (latent)"
    assert [o for o in opts["color"] if o["value"] == "neuron"][0]["disabled"] is True


def test_presentation_layout_and_loading_page():
    assert build_layout(META, META.default_state().__class__(present=True, layer="fc")).className == \
        "app present slide-latent"
    page = loading_layout({"step": 2, "total": 4, "message": "projection umap (2/3)…", "error": None})
    ids = _ids(page)
    assert ids["boot-status"].children == "projection umap (2/3)…"
    assert ids["boot-bar"].style == {"width": "50%"}
    failed = loading_layout({"step": 1, "total": 4, "message": "x", "error": "boom"})
    assert "boom" in json.dumps(failed.to_plotly_json(), default=str)


def test_many_classes_get_distinct_colours_a_short_legend_and_a_readable_confusion_view():
    names = [f"c{i}" for i in range(100)]
    colors = class_colors(100)
    assert len(set(colors)) == 100 and colors[:3] != list(CLASS_COLORS[:3])
    assert class_colors(10) == list(CLASS_COLORS)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 100, 3000)
    p = np.where(rng.random(3000) < 0.7, y, rng.integers(0, 100, 3000))
    members = rng.random(3000) < 0.1
    style = F.latent_style(y, p, members, color_by="true", class_names=names, sampler="random")
    assert len(style.legend) == F.LEGEND_MAX and style.legend[-1][0] == "+ 81 more classes (hover an item)"
    fig = F.latent_figure(rng.normal(size=(3000, 2)), style, title="t")
    assert len([t for t in fig["data"][2:] if t["visible"]]) == F.LEGEND_MAX  # not 100 legend traces
    cm = np.bincount(y * 100 + p, minlength=100 * 100).reshape(100, 100)
    conf = F.confusion_figure(cm, cm // 10, names)
    valid(conf)
    assert conf["data"][0]["texttemplate"] == ""  # no 10,000 cell labels; hover has the counts
    assert len(conf["layout"]["xaxis"]["tickvals"]) <= 20 and conf["layout"]["xaxis"]["tickvals"][0] == "c0"
    small = F.confusion_figure(cm[:10, :10], cm[:10, :10], names[:10])
    assert small["data"][0]["texttemplate"] == "%{text}" and "tickvals" not in small["layout"]["xaxis"]


# ------------------------------------------------------------------ views (state to figures)

@pytest.fixture(scope="module")
def svc(digits_ws):
    from dldiag.app.service import Diagnosis

    return Diagnosis(digits_ws)


def test_panel_figures_name_units_one_way_and_mark_the_chosen_one(svc, digits_ws):
    from dldiag.app import views
    from dldiag.app.state import ViewState

    state = ViewState(sampler="stratified-cm", fraction=0.2, layer="conv1", k=5, color="neuron", neuron=0)
    view = views.panel_figures(svc, state)
    topk = view["topk"]
    shape = digits_ws.full["conv1", "flat"].unit_shape
    names = F.unit_names("conv1", shape, channel=False)
    for trace in topk["data"]:
        assert trace["y"] == [names[u] for u in trace["customdata"]]
    # the chosen unit: marked where it is drawn, and named alike on the latent view's colour bar
    marks = [t for t in view["heatmap"]["data"] if t["type"] == "scatter"]
    assert len(marks) == 6
    label = views.latent_view_style(svc, state, svc.sample_indices(views.SampleParams.from_state(state)))
    assert label.colorbar_title == names[0] == "conv1 · ch 0 (y 0, x 0)"
    assert "colour: unit conv1 · ch 0 (y 0, x 0)" in views.latent_title(
        state, 450, 90, "fc1", neuron_name=views.latent_neuron_name(svc, state))
    logits = views.latent_neuron_name(svc, ViewState(layer="logits", color="neuron", neuron=3))
    assert logits == f"logits · {digits_ws.dataset.class_names[3]}"


def test_panel_figures_carry_the_context_and_the_random_baseline(svc, digits_ws):
    from dldiag.app import views
    from dldiag.app.state import ViewState

    state = ViewState(sampler="stratified-cm", fraction=0.2, seed=1, layer="fc1", cls=3)
    view = views.panel_figures(svc, state)
    ridx = svc.random_indices(0.2, 1)
    expected = svc.group(ridx, state).scores
    assert view["baseline"]["s1"] == expected["s1"] and view["baseline"]["count"] > 0
    title = view["topk"]["layout"]["title"]["text"]
    assert f"(random {expected['s1']:.2f})" in title
    assert f"(random {expected['s2']:.3f})" in view["heatmap"]["layout"]["title"]["text"]
    assert f"(random {expected['s3']:.3f})" in view["argmax"]["layout"]["title"]["text"]
    n = len(svc.sample_indices(views.SampleParams.from_state(state)))
    context = f"digits · stratified-cm sample of {n:,} items (20%) · group: class 3"
    assert context in title and "digits · stratified-cm sample" in view["confusion"]["layout"]["title"]["text"]
    # the random sampler is its own baseline: nothing to put beside it
    own = views.panel_figures(svc, ViewState(sampler="random", fraction=0.2, layer="fc1", cls=3))
    assert own["baseline"] is None and "(random" not in own["topk"]["layout"]["title"]["text"]


def test_panel_figures_of_a_group_the_sample_lacks_say_so(svc, digits_ws):
    from dldiag.app import views
    from dldiag.app.state import ViewState

    for cls in range(10):  # a class with errors that a tiny random sample misses
        state = ViewState(sampler="random", fraction=0.01, layer="fc1", cls=cls, outcome="incorrect")
        view = views.panel_figures(svc, state)
        if view["counts"]["full"] and not view["counts"]["sample"]:
            break
    else:
        pytest.skip("every class's errors are in the sample")
    for key in ("topk", "heatmap", "argmax"):
        fig = view[key]
        assert fig["data"] == []
        assert f"holds none of the {view['counts']['full']:,} items of the group “{view['group']}”" in \
            fig["layout"]["annotations"][0]["text"]


def test_panel_figures_fit_the_heights_they_are_drawn_at(svc):
    from dldiag.app import views
    from dldiag.app.state import ViewState

    state = ViewState(sampler="vas", fraction=0.2, layer="conv1")  # 512 units: many are some item's top unit
    panel = views.panel_figures(svc, state)["argmax"]
    slide = views.panel_figures(svc, state, heights={"argmax": 1000})["argmax"]
    assert len(panel["data"][0]["y"]) < len(slide["data"][0]["y"]) <= F.MAX_ARGMAX_BARS


def test_full_view_for_export_has_no_toolbar_band(svc):
    from dldiag.app import views
    from dldiag.app.state import ViewState

    state = ViewState(sampler="vas", fraction=0.1, layer="conv2", projection="pca")
    view = views.full_view(svc, state, for_screen=False)
    for key in ("latent", "summary", "topk", "heatmap", "argmax", "confusion"):
        assert view[key]["layout"]["title"]["pad"]["t"] < F.TOOLBAR_PX, key


def test_the_latent_view_highlights_the_group_and_dims_the_rest():
    y, p, members, names = _latent_inputs(n=300)
    group = y == 1
    plain = F.latent_style(y, p, members, color_by="true", class_names=names, sampler="vas")
    style = F.latent_style(y, p, members, color_by="true", class_names=names, sampler="vas", group=group)
    dim = len(names)  # one code past the classes': the pale colour
    assert np.all(style.bg_color[~group] == dim) and np.array_equal(style.bg_color[group], plain.bg_color[group])
    assert style.bg_scale[-1][1] == F.DIM_GREY and style.bg_range == (-0.5, dim + 0.5)
    assert np.all(style.fg_size[members & ~group] < plain.fg_size[members & ~group])
    assert np.array_equal(style.fg_size[members & group], plain.fg_size[members & group])
    assert style.legend[-1] == ("outside the group (dimmed)", F.DIM_GREY)
    assert style.slots == plain.slots  # the legend's traces stay the same, so a group change is a patch
    for mode in ("outcome", "sample", "neuron"):
        kw = {"neuron_values": np.arange(300, dtype=np.float32)} if mode == "neuron" else {}
        s = F.latent_style(y, p, members, color_by=mode, class_names=names, sampler="vas", group=group, **kw)
        assert np.all(s.bg_color[~group] == len(s.bg_scale) // 2 - 1)


# ------------------------------------------------------------------ the density view (N > DENSITY_THRESHOLD)

def _png_rgba(uri: str) -> np.ndarray:
    import io

    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGBA"))


def test_below_the_threshold_the_latent_view_is_the_scatter_of_every_item(monkeypatch):
    monkeypatch.setattr(F, "DENSITY_THRESHOLD", 1000)
    y, p, members, names = _latent_inputs(n=1000)
    xy = np.random.default_rng(1).normal(size=(1000, 2))
    style = F.latent_style(y, p, members, color_by="true", class_names=names, sampler="random")
    fig = F.latent_figure(xy, style, title="t", projection="pca")
    assert "images" not in fig["layout"] and len(decode(fig["data"][0]["x"])) == 1000


def test_above_the_threshold_every_item_is_a_density_image_under_the_samples_points(monkeypatch):
    monkeypatch.setattr(F, "DENSITY_THRESHOLD", 999)
    y, p, members, names = _latent_inputs(n=1000)
    xy = np.random.default_rng(1).normal(size=(1000, 2))
    style = F.latent_style(y, p, members, color_by="true", class_names=names, sampler="random")
    fig = F.latent_figure(xy, style, title="t", projection="pca")
    valid(fig)
    bg, fg = fig["data"][0], fig["data"][1]
    assert bg["x"] == [] and bg["customdata"] == []  # no item of D travels as a point
    # only the sample's points, with their item indices, and they carry the hover now
    assert fg["customdata"] == np.flatnonzero(members).tolist() and fg["hoverinfo"] == "none"
    np.testing.assert_allclose(decode(fg["x"]), xy[members, 0].astype(np.float32))
    (image,) = fig["layout"]["images"]
    full = F.density_viewport(xy.astype(np.float32))  # the figure's positions are float32
    assert (image["xref"], image["yref"], image["sizing"], image["layer"]) == ("x", "y", "stretch", "below")
    assert (image["x"], image["y"]) == (full.x_range[0], full.y_range[1])  # left, top
    assert image["sizex"] == pytest.approx(np.ptp(full.x_range))
    assert image["sizey"] == pytest.approx(np.ptp(full.y_range))
    assert fig["layout"]["xaxis"]["range"] == list(full.x_range)  # an image takes no part in autorange
    rgba = _png_rgba(image["source"])
    assert rgba.shape == (F.DENSITY_PIXELS[False][1], F.DENSITY_PIXELS[False][0], 4)
    assert rgba[..., 3].any()
    assert [t["name"] for t in fig["data"][2:] if t["visible"]] == names  # the legend explains the colours


def test_the_density_is_shaded_in_the_colour_modes_colours(monkeypatch):
    monkeypatch.setattr(F, "DENSITY_THRESHOLD", 10)
    # class 0 in the left half, class 1 in the right; half of them mistaken
    n = 400
    y = np.repeat([0, 1], n // 2)
    p = np.where(np.arange(n) % 2 == 0, y, 1 - y)
    rng = np.random.default_rng(0)
    xy = np.column_stack([np.where(y == 0, rng.uniform(0, 1, n), rng.uniform(3, 4, n)), rng.uniform(0, 1, n)])
    members = np.zeros(n, bool)
    names = ["a", "b"]
    vp = F.density_viewport(xy)
    left, right = slice(0, vp.width // 4), slice(3 * vp.width // 4, vp.width)

    def colours(region, mode):
        style = F.latent_style(y, p, members, color_by=mode, class_names=names, sampler="vas")
        rgba = _png_rgba(F.latent_figure(xy, style, title="t")["layout"]["images"][0]["source"])[:, region]
        return rgba[rgba[..., 3] > 0][:, :3].astype(int)

    def near(lit, color):  # lone points are spread over their neighbours: compositing rounds by 1
        return np.abs(lit - [int(color[i:i + 2], 16) for i in (1, 3, 5)]).max(axis=1) <= 2

    assert near(colours(left, "true"), F.class_color(0, 2)).all()
    assert near(colours(right, "true"), F.class_color(1, 2)).all()
    from dldiag.palette import OUTCOME_COLORS

    outcome = colours(left, "outcome")
    assert near(outcome, OUTCOME_COLORS["correct"]).any() and near(outcome, OUTCOME_COLORS["incorrect"]).any()
    assert near(colours(left, "sample"), F.DENSITY_GREY).all()


def test_the_latent_patch_sends_a_new_density_image_for_the_viewport_not_every_item(monkeypatch):
    monkeypatch.setattr(F, "DENSITY_THRESHOLD", 999)
    y, p, members, names = _latent_inputs(n=1000)
    xy = np.random.default_rng(1).normal(size=(1000, 2))
    style = F.latent_style(y, p, members, color_by="outcome", class_names=names, sampler="random")
    zoom = F.density_viewport(xy, x_range=(0.0, 1.0), y_range=(-1.0, 0.5))
    spec = F.latent_patch_spec(style, xy, title="t", present=False, parts=("color",), viewport=zoom)
    assert not any(path[:2] == ("data", 0) for path in spec)
    (image,) = spec[("layout", "images")]
    assert (image["x"], image["y"], image["sizex"], image["sizey"]) == (0.0, 0.5, 1.0, 1.5)
    sample_only = F.latent_patch_spec(style, xy, title="t", present=False, parts=("sample",))
    assert ("layout", "images") not in sample_only  # a new sample leaves the density as it is


def test_a_density_of_more_classes_than_it_can_shade_is_one_grey():
    from dldiag import density
    from dldiag.palette import class_colors

    n_classes = density.MAX_CATEGORIES + 1
    xy = np.random.default_rng(0).normal(size=(2000, 2))
    codes = np.arange(2000) % n_classes
    layer = F.density_layer(xy, codes, class_colors(n_classes), F.density_viewport(xy))
    rgba = _png_rgba(layer["source"])
    lit = rgba[rgba[..., 3] > 0][:, :3].astype(int)
    grey = [int(F.DENSITY_GREY[i:i + 2], 16) for i in (1, 3, 5)]
    assert np.abs(lit - grey).max() <= 2  # one grey (spread pixels composited round by 1)


def test_panels_without_the_full_answer_yet_draw_the_sample_alone_and_say_so():
    rng = np.random.default_rng(0)
    mean = rng.random(12)
    dist = np.bincount(rng.integers(0, 12, 40), minlength=12) / 40
    common = dict(sampler="random", n_sample=40, n_full=400, layer="fc1")
    labels = [f"u{i}" for i in range(12)]
    top = F.topk_figure(mean, None, np.argsort(-mean)[:5], None, labels=labels, s1=None, k=5, **common)
    assert [t.get("offsetgroup") for t in top["data"]] == ["sample"]  # no full-data bars
    assert F.PENDING_LINE in top["layout"]["title"]["text"]
    assert sorted(int(u) for u in top["data"][0]["customdata"]) == sorted(np.argsort(-mean)[:5].tolist())
    heat = F.heatmap_figure(mean, None, (12,), s2=None, **common)
    assert np.isnan(np.asarray(decode(heat["data"][1]["z"]), dtype=float)).all()  # the full map: empty, not 0
    assert not np.isnan(np.asarray(decode(heat["data"][0]["z"]), dtype=float)).all()
    assert "computing" in json.dumps(heat["layout"]) and F.PENDING_LINE in heat["layout"]["title"]["text"]
    arg = F.argmax_figure(dist, None, labels=labels, s3=None, **common)
    assert len(arg["data"]) == 1 and arg["data"][0]["name"].startswith("sample")
    assert F.PENDING_LINE in arg["layout"]["title"]["text"]
