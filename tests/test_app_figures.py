"""The app's pure builders: figures, thumbnails, the HTML export, the layout. No server, no browser."""

from __future__ import annotations

import base64
import json
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
from dldiag.palette import CLASS_COLORS, OUTCOME_COLORS, SAMPLER_COLORS, class_colors


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


def test_unit_labels():
    assert F.unit_labels((2, 2, 3))[:4] == ["c0 (0,0)", "c0 (0,1)", "c0 (0,2)", "c0 (1,0)"]
    assert F.unit_labels((2, 2, 3))[6] == "c1 (0,0)"
    assert F.unit_labels((3,), channel=True) == ["ch 0", "ch 1", "ch 2"]
    assert F.unit_labels((4,)) == ["u0", "u1", "u2", "u3"]
    assert F.unit_labels((2,), class_names=("cat", "dog")) == ["cat", "dog"]


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

def test_topk_figure_bars_union_in_full_order_with_missed_units_outlined():
    full_mean = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
    sample_mean = np.array([0.8, 0.85, 0.2, 0.6, 0.3])
    full_top, sample_top = np.array([1, 3, 2]), np.array([1, 0, 3])
    fig = F.topk_figure(sample_mean, full_mean, sample_top, full_top, labels=[f"u{i}" for i in range(5)],
                        sampler="vas", s1=2 / 3, k=3, n_sample=4, n_full=40, layer="fc1")
    valid(fig)
    full_bar, sample_bar = fig["data"][0], fig["data"][1]
    assert full_bar["x"] == ["u1", "u3", "u2", "u0"]  # union, ordered by the full data's mean
    assert full_bar["customdata"] == [1, 3, 2, 0]
    assert sample_bar["y"] == [0.85, 0.6, 0.2, 0.8]
    outline = sample_bar["marker"]["line"]["color"]
    assert outline[2] == "#c62828" and outline[0] != "#c62828"  # u2: in the full top-3 only
    assert sample_bar["marker"]["color"] == SAMPLER_COLORS["vas"]
    assert "S1 precision 0.67" in fig["layout"]["title"]["text"]
    assert fig["data"][2]["name"].startswith("missed")


def test_topk_figure_of_an_empty_group_says_so():
    z = np.zeros(3)
    fig = F.topk_figure(z, z, np.empty(0, int), np.empty(0, int), labels=["a", "b", "c"], sampler="vas",
                        s1=None, k=3, n_sample=0, n_full=0, layer="fc1")
    assert fig["data"] == [] and "No item" in fig["layout"]["annotations"][0]["text"]
    assert "S1 precision –" in fig["layout"]["title"]["text"]


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


def test_heatmap_figure_sample_full_and_difference():
    full = np.linspace(0, 1, 2 * 4 * 4)
    sample = full + 0.1
    fig = F.heatmap_figure(sample, full, (2, 4, 4), s2=0.0123, n_sample=5, n_full=50, layer="conv1")
    valid(fig)
    s, f, d = (decode(t["z"]) for t in fig["data"])
    np.testing.assert_allclose(np.nan_to_num(d), np.nan_to_num(s - f), atol=1e-6)
    assert fig["data"][2]["colorscale"] == F.DIVERGING and fig["data"][2]["zmin"] == -fig["data"][2]["zmax"]
    assert "S2 cosine distance 0.012" in fig["layout"]["title"]["text"]
    assert [a["text"] for a in fig["layout"]["annotations"]] == ["sample (n=5)", "full data (n=50)", "sample − full"]


def test_argmax_figure_keeps_used_units_and_sums_the_rest():
    full = np.zeros(200)
    full[:F.MAX_ARGMAX_BARS + 10] = 1 / (F.MAX_ARGMAX_BARS + 10)
    sample = np.zeros(200)
    sample[0] = 1.0
    fig = F.argmax_figure(sample, full, labels=[f"u{i}" for i in range(200)], sampler="max-margin",
                          s3=0.5, n_sample=3, n_full=40, layer="fc2")
    valid(fig)
    names = fig["data"][0]["x"]
    assert len(names) == F.MAX_ARGMAX_BARS + 1 and names[-1] == "other (10)"
    assert names[0] == "u0"  # the sample's only unit first (largest share of either), then by unit
    assert sum(fig["data"][0]["y"]) == pytest.approx(1.0) and sum(fig["data"][1]["y"]) == pytest.approx(1.0)
    assert fig["data"][0]["customdata"][-1] == -1
    assert "S3 JS distance 0.500" in fig["layout"]["title"]["text"]


def test_summary_figure_compares_with_random_per_metric_and_layer():
    scores = {"s1": 0.8, "s2": 0.1, "s3": 0.2}
    rnd = {"s1": 0.6, "s2": 0.2, "s3": 0.3}
    summary = {"layers": ["a", "b"], "n_groups": 12,
               "sample": {"overall": scores, "per_layer": {"a": scores, "b": scores}},
               "random": {"overall": rnd, "per_layer": {"a": rnd, "b": rnd}}}
    fig = F.summary_figure(summary, sampler="vas", fraction=0.05)
    valid(fig)
    assert len(fig["data"]) == 6
    assert fig["data"][0]["x"] == ["all", "a", "b"] and fig["data"][0]["y"] == [0.8, 0.8, 0.8]
    assert fig["data"][1]["marker"]["color"] == SAMPLER_COLORS["random"]
    title = fig["layout"]["title"]["text"]
    assert "vas" in title and "random" in title and "5%" in title and "12 groups" in title
    assert {fig["data"][i]["yaxis"] for i in (0, 2, 4)} == {"y", "y2", "y3"}


def test_confusion_figure_cells_carry_their_coordinates():
    cm = np.array([[5, 1], [2, 7]])
    fig = F.confusion_figure(cm, cm // 2, ["a", "b"], highlight=np.array([[False, True], [False, False]]),
                             accuracy=0.8, sample_accuracy=0.75)
    valid(fig)
    assert fig["data"][0]["customdata"][0][1] == [0, 1]
    assert fig["data"][0]["text"][1][0].startswith("2<br>")
    rect = fig["layout"]["shapes"][0]
    assert (rect["x0"], rect["y0"]) == (0.5, -0.5)
    assert "80.0%" in fig["layout"]["title"]["text"] and "75.0%" in fig["layout"]["title"]["text"]


def test_titles_never_share_the_toolbar_row():
    fig = F.message_figure("x", title="t")
    assert fig["layout"]["title"]["pad"]["t"] == F.TOOLBAR_PX
    assert fig["layout"]["margin"]["t"] > F.TOOLBAR_PX


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
