"""Pure figure builders of the app: numpy arrays in, plotly figures (or patch specs) out.

Nothing here touches the workspace, the cache or dash; every function can be called from a
test or a notebook. Colours come from :mod:`dldiag.palette`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np

from ..palette import OUTCOME_COLORS, class_colors, sampler_color

#: Display names of the projections.
PROJECTION_NAMES = {"umap": "UMAP", "tsne": "t-SNE", "pca": "PCA"}

__all__ = [
    "typed_array",
    "class_color",
    "fade",
    "unit_labels",
    "LatentStyle",
    "latent_style",
    "latent_figure",
    "latent_patch_spec",
    "topk_figure",
    "heatmap_figure",
    "unit_mosaic",
    "argmax_figure",
    "summary_figure",
    "confusion_figure",
    "message_figure",
    "below_toolbar",
    "GRAPH_CONFIG",
    "graph_config",
    "FULL_COLOR",
    "base_layout",
    "pct",
    "typed_matrix",
]

TOOLBAR_PX = 30  # height kept free at the top of every figure for plotly's toolbar
FULL_COLOR = "#4d4d4d"  # the full data's bars: neutral, so the sampler's colour stands out
BG_GREY = "#d9d9d9"
FONT = "Inter, 'Segoe UI', Helvetica, Arial, sans-serif"
MAX_ARGMAX_BARS = 60
#: sample − full: blue below, white at zero, red above (ColorBrewer RdBu)
DIVERGING = [[0.0, "#2166ac"], [0.25, "#67a9cf"], [0.5, "#f7f7f7"], [0.75, "#ef8a62"], [1.0, "#b2182b"]]

#: dcc.Graph config for every figure: the toolbar's camera saves PNG at twice the size.
GRAPH_CONFIG = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "scale": 2},
    "modeBarButtonsToRemove": ["autoScale2d", "toggleSpikelines", "hoverClosestCartesian",
                               "hoverCompareCartesian"],
}


def graph_config(filename: str) -> dict:
    """:data:`GRAPH_CONFIG` with the file name the toolbar's camera saves under."""
    return {**GRAPH_CONFIG, "toImageButtonOptions": {**GRAPH_CONFIG["toImageButtonOptions"], "filename": filename}}


def typed_array(values: np.ndarray) -> dict:
    """A plotly.js typed-array spec ``{"dtype", "bdata"}``: compact in JSON, decoded by plotly.js.

    Used for the large arrays of the latent view (plotly.py writes figures this way; dash's
    patch encoder would otherwise send numbers as text).
    """
    arr = np.ascontiguousarray(values)
    codes = {"uint8": "u1", "int8": "i1", "uint16": "u2", "int16": "i2", "uint32": "u4",
             "int32": "i4", "float32": "f4", "float64": "f8"}
    if arr.dtype.name not in codes:
        arr = arr.astype(np.float32 if arr.dtype.kind == "f" else np.int32)
    return {"dtype": codes[arr.dtype.name], "bdata": base64.b64encode(arr.tobytes()).decode("ascii")}


def class_color(i: int, n_classes: int = 10) -> str:
    """Colour of class ``i`` of ``n_classes`` (see :func:`dldiag.palette.class_colors`)."""
    return class_colors(max(int(n_classes), int(i) + 1))[int(i)]


#: Most entries of the latent view's legend; beyond, the last entry says how many are left out.
LEGEND_MAX = 20
#: Most classes whose confusion cells carry their counts as text (beyond, hover shows them).
CONFUSION_TEXT_MAX = 20


def fade(color: str, alpha: float = 0.28) -> str:
    """``color`` blended with white (opaque, so WebGL draws it cheaply and predictably)."""
    c = color.lstrip("#")
    r, g, b = (int(c[i:i + 2], 16) for i in (0, 2, 4))
    mix = [round(255 - alpha * (255 - v)) for v in (r, g, b)]
    return "#" + "".join(f"{v:02x}" for v in mix)


def _discrete_scale(colors) -> list:
    """A stepped colorscale: value i (with cmin=-0.5, cmax=n-0.5) gets ``colors[i]``."""
    n = len(colors)
    scale = []
    for i, c in enumerate(colors):
        scale += [[i / n, c], [(i + 1) / n, c]]
    return scale


def top_margin(present: bool = False, extra: int = 0) -> int:
    """Top margin in px: toolbar row + title line (+ ``extra`` for subplot titles or a legend)."""
    return TOOLBAR_PX + (34 if present else 26) + extra


def base_layout(title: str = "", *, present: bool = False, height: int | None = None, **kwargs) -> dict:
    """Shared layout: one font, white background, light grid, compact margins."""
    size = 17 if present else 12
    layout = dict(
        # The title sits below the toolbar row (yref container, 30 px down), so they never overlap.
        title=dict(text=title, x=0.01, xanchor="left", yref="container", y=1.0, yanchor="top",
                   pad=dict(t=TOOLBAR_PX), font=dict(size=size + 3, color="#1f2933")),
        font=dict(family=FONT, size=size, color="#323f4b"),
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin=dict(l=56, r=16, t=top_margin(present), b=48),
        hoverlabel=dict(font=dict(family=FONT, size=size)),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0,
                    bgcolor="rgba(255,255,255,0.8)", font=dict(size=size)),
        xaxis=_axis(),
        yaxis=_axis(),
    )
    if height is not None:
        layout["height"] = height
    layout.update(kwargs)
    return layout


def message_figure(text: str, *, present: bool = False, title: str = "") -> dict:
    """An empty figure that says why there is nothing to show."""
    layout = base_layout(title, present=present)
    layout["xaxis"] = {"visible": False}
    layout["yaxis"] = {"visible": False}
    layout["annotations"] = [dict(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                                  font=dict(size=15 if present else 13, color="#616e7c"))]
    return {"data": [], "layout": layout}


def below_toolbar(fig):
    """A copy of a report figure (:mod:`dldiag.experiments.figures`) whose title sits below the
    toolbar row, as in every figure of the app; the plot area keeps its height."""
    import plotly.graph_objects as go

    out = go.Figure(fig)
    layout = out.layout
    height = layout.height or 450
    title = layout.title
    # plotly.js lifts a title anchored at its top by ~0.7 em per line after the first.
    extra_lines = (title.text or "").count("<br>")
    pad = TOOLBAR_PX + round(0.7 * (title.font.size or 17)) * extra_lines
    old_top = (1.0 - (title.y if title.y is not None else 1.0)) * height + (title.pad.t or 0)
    shift = max(0, round(pad - old_top))
    out.update_layout(title=dict(yref="container", y=1.0, yanchor="top", pad=dict(t=pad)),
                      height=height + shift, margin=dict(t=(layout.margin.t or 0) + shift))
    return out


def _axis(**kwargs) -> dict:
    # automargin: long or rotated tick labels (class names, presentation type) are never cut
    axis = dict(gridcolor="#eef0f2", zerolinecolor="#d0d5da", linecolor="#bfc5cc", automargin=True)
    axis.update(kwargs)
    return axis


def _row_of_three(layout: dict, *, gap: float = 0.06, titles=None, present: bool = False, **yaxis) -> None:
    """Axes of three side-by-side subplots (what ``make_subplots(1, 3)`` makes, without its cost)."""
    width = (1.0 - 2 * gap) / 3
    annotations = layout.setdefault("annotations", [])
    for i in range(3):
        suffix = "" if i == 0 else str(i + 1)
        x0 = i * (width + gap)
        layout["xaxis" + suffix] = _axis(domain=[x0, x0 + width], anchor="y" + suffix)
        layout["yaxis" + suffix] = _axis(anchor="x" + suffix, **yaxis)
        if titles:
            annotations.append(dict(text=titles[i], x=x0 + width / 2, y=1.0, xref="paper", yref="paper",
                                    xanchor="center", yanchor="bottom", showarrow=False, yshift=4,
                                    font=dict(size=15 if present else 11, color="#52606d")))


def unit_labels(unit_shape: tuple[int, ...], *, class_names=None, channel: bool = False) -> list[str]:
    """Readable names of a layer's units: ``c3 (4,7)`` in conv maps, ``ch 3``, ``u12`` or classes.

    ``class_names`` names the units of a logits layer (as many units as classes); ``channel``
    says that the units are conv channels (the channel unit mode).
    """
    n = int(np.prod(unit_shape)) if unit_shape else 0
    if class_names is not None and n == len(class_names):
        return [str(c) for c in class_names]
    if len(unit_shape) == 3:
        c, h, w = unit_shape
        return [f"c{u // (h * w)} ({(u % (h * w)) // w},{u % w})" for u in range(n)]
    if channel:
        return [f"ch {u}" for u in range(n)]
    return [f"u{u}" for u in range(n)]


# ------------------------------------------------------------------ latent view

@dataclass
class LatentStyle:
    """Marker arrays and scales of the two traces of the latent view, and its legend.

    The view draws a faded background trace of every item (small) and a foreground trace of
    the sample's members on top. ``fg_*`` arrays are per item of D (a member's size is > 0);
    the foreground trace holds the members' entries only, so that a new sample replaces a
    trace of n points and the N-point background is left as it was.
    """

    bg_color: np.ndarray
    bg_scale: list
    bg_range: tuple[float, float]
    fg_color: np.ndarray
    fg_scale: list
    fg_range: tuple[float, float]
    fg_size: np.ndarray
    legend: list[tuple[str, str]] = field(default_factory=list)  # (name, colour)
    colorbar_title: str | None = None
    slots: int = 2  # legend-only traces of the view: one per class (unused ones hidden)
    title: str = ""


def latent_style(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    members: np.ndarray,
    *,
    color_by: str,
    class_names,
    sampler: str,
    neuron_values: np.ndarray | None = None,
    neuron_label: str = "",
    present: bool = False,
) -> LatentStyle:
    """Colours and sizes of the latent view.

    Parameters
    ----------
    y_true, y_pred : ndarray (N,)
    members : ndarray of bool (N,)
        Sample membership.
    color_by : {"true", "pred", "outcome", "sample", "neuron"}
    class_names : sequence of str
    sampler : str
        Colours the members when ``color_by == "sample"``.
    neuron_values : ndarray (N,), optional
        Activation of the chosen unit on the sample members (ignored elsewhere); needed for
        ``color_by == "neuron"``.
    neuron_label : str
        Names the unit on the colour bar.
    present : bool
        Larger markers for presentation mode.
    """
    n = len(y_true)
    members = np.asarray(members, dtype=bool)
    size = 8 if present else 6
    fg_size = np.where(members, size, 0).astype(np.uint8)
    legend: list[tuple[str, str]] = []
    colorbar_title = None
    if color_by in ("true", "pred"):
        labels = np.asarray(y_true if color_by == "true" else y_pred)
        colors = class_colors(len(class_names))
        codes = labels.astype(np.uint8 if len(colors) < 256 else np.int32)
        bg = codes
        fg = codes
        bg_scale, fg_scale = _discrete_scale([fade(c) for c in colors]), _discrete_scale(colors)
        rng = (-0.5, len(colors) - 0.5)
        bg_range = fg_range = rng
        legend = list(zip(class_names, colors))
        if len(legend) > LEGEND_MAX:  # a legend of 100 classes reads as noise: hover names them
            rest = len(legend) - (LEGEND_MAX - 1)
            legend = legend[:LEGEND_MAX - 1] + [(f"+ {rest} more classes (hover an item)", BG_GREY)]
    elif color_by == "outcome":
        codes = (np.asarray(y_true) != np.asarray(y_pred)).astype(np.uint8)
        colors = [OUTCOME_COLORS["correct"], OUTCOME_COLORS["incorrect"]]
        bg, fg = codes, codes
        bg_scale, fg_scale = _discrete_scale([fade(c) for c in colors]), _discrete_scale(colors)
        bg_range = fg_range = (-0.5, 1.5)
        legend = [("correct", colors[0]), ("incorrect", colors[1])]
    elif color_by == "sample":
        col = sampler_color(sampler)
        bg = np.zeros(n, dtype=np.uint8)
        fg = np.zeros(n, dtype=np.uint8)
        bg_scale, fg_scale = _discrete_scale([BG_GREY]), _discrete_scale([col])
        bg_range = fg_range = (-0.5, 0.5)
        legend = [(f"in sample ({sampler})", col), ("not in sample", BG_GREY)]
    elif color_by == "neuron":
        if neuron_values is None:
            raise ValueError("color_by='neuron' needs neuron_values")
        values = np.asarray(neuron_values, dtype=np.float32)
        member_vals = values[members] if members.any() else np.zeros(1, np.float32)
        lo, hi = float(np.min(member_vals)), float(np.max(member_vals))
        if hi <= lo:
            hi = lo + 1.0
        fg = np.where(members, values, lo).astype(np.float32)
        bg = np.zeros(n, dtype=np.uint8)
        bg_scale = _discrete_scale([BG_GREY])
        bg_range = (-0.5, 0.5)
        fg_scale = "Viridis"
        fg_range = (lo, hi)
        colorbar_title = neuron_label or "activation"
        legend = [("not in sample", BG_GREY)]
    else:
        raise ValueError(f"color_by must be one of true, pred, outcome, sample, neuron; got {color_by!r}")
    return LatentStyle(bg, bg_scale, bg_range, fg, fg_scale, fg_range, fg_size, legend, colorbar_title,
                       slots=max(2, min(len(class_names), LEGEND_MAX)))


def _legend_slots(style):
    """Marker settings for the fixed legend-only traces (unused slots hidden)."""
    legend = style.legend
    slots = []
    for i in range(max(style.slots, len(legend))):
        if i < len(legend):
            name, color = legend[i]
            slots.append({"name": name, "marker.color": color, "visible": True})
        else:
            slots.append({"name": "", "marker.color": BG_GREY, "visible": False})
    return slots


def _colorbar(style: LatentStyle, present: bool) -> dict:
    return dict(title=dict(text=style.colorbar_title or "", side="right"), thickness=12, len=0.6,
                x=1.0, xanchor="left", y=0.5, outlinewidth=0,
                tickfont=dict(size=15 if present else 11))


def latent_figure(xy: np.ndarray, style: LatentStyle, *, title: str, present: bool = False,
                  projection: str = "", height: int | None = None) -> dict:
    """The latent view: every item of D, WebGL, with its item index in ``customdata``.

    Trace 0 draws every item small and faded (and carries the item indices for hover and
    selections), trace 1 the same positions with only the sample members sized; traces 2..
    are legend entries. Hover labels are off: the app shows a tooltip with the item's
    thumbnail instead.
    """
    xy = np.asarray(xy, dtype=np.float32)
    # customdata as plain lists: dcc.Graph copies it into hover/click/selection events by
    # indexing the figure it was given, which a typed-array spec does not allow.
    data = [
        dict(type="scattergl", x=typed_array(xy[:, 0]), y=typed_array(xy[:, 1]), customdata=list(range(len(xy))),
             mode="markers", name="all items", showlegend=False, hoverinfo="none",
             marker=dict(color=typed_array(style.bg_color), colorscale=style.bg_scale,
                         cmin=style.bg_range[0], cmax=style.bg_range[1], size=4.5 if present else 3.5,
                         showscale=False, line=dict(width=0)),
             unselected=dict(marker=dict(opacity=0.35))),
        # The members again, on top: hover comes from trace 0, which holds every item.
        dict(type="scattergl", mode="markers", name="sample", showlegend=False, hoverinfo="skip",
             marker=dict(colorscale=style.fg_scale, cmin=style.fg_range[0], cmax=style.fg_range[1],
                         showscale=style.colorbar_title is not None, colorbar=_colorbar(style, present),
                         line=dict(width=0.5, color="white")),
             unselected=dict(marker=dict(opacity=0.35))),
    ]
    for path, value in _foreground(style, xy).items():
        target = data[1]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    for slot in _legend_slots(style):
        data.append(dict(type="scattergl", x=[None], y=[None], mode="markers", name=slot["name"],
                         visible=slot["visible"], marker=dict(color=slot["marker.color"], size=10),
                         hoverinfo="skip", showlegend=True))
    layout = base_layout(title, present=present, height=height)
    layout.update(
        dragmode="lasso",
        hovermode="closest",
        uirevision=projection,  # zoom survives in-place updates, resets with a new projection
        legend=dict(orientation="v", yanchor="top", y=1.0, xanchor="left", x=1.01,
                    itemclick=False, itemdoubleclick=False, font=dict(size=15 if present else 11)),
        margin=dict(l=20, r=20, t=top_margin(present, 26), b=20),
        xaxis=dict(showticklabels=False, showgrid=False, zeroline=False),
        yaxis=dict(showticklabels=False, showgrid=False, zeroline=False),
    )
    return {"data": data, "layout": layout}


def _foreground(style: LatentStyle, xy: np.ndarray) -> dict:
    """The member-only arrays of the foreground trace, as ``{(key,) or (key, sub): value}``."""
    idx = np.flatnonzero(style.fg_size)
    return {("x",): typed_array(xy[idx, 0]), ("y",): typed_array(xy[idx, 1]), ("customdata",): idx.tolist(),
            ("marker", "size"): typed_array(style.fg_size[idx]), ("marker", "color"): typed_array(style.fg_color[idx])}


def latent_patch_spec(style: LatentStyle, xy: np.ndarray, *, title: str, present: bool,
                      parts=("sample", "color")) -> dict:
    """The in-place update of the latent view as ``{path tuple: value}``.

    ``parts`` says what changed: ``"sample"`` (the members, their positions and colours)
    and/or ``"color"`` (colour arrays, scales and legend). The background trace's N points
    are sent again only when the colouring changes; a new sample sends its n members (a 5 %
    sample of 10k items: ~10 kB), and Plotly recomputes only that small trace.
    """
    xy = np.asarray(xy, dtype=np.float32)
    spec: dict = {("layout", "title", "text"): title}
    fg = ("data", 1, "marker")
    bg = ("data", 0, "marker")
    # The members' colours depend on membership in neuron mode and their scale on the sampler
    # in sample mode: the foreground goes whole with any change.
    spec.update({("data", 1) + path: value for path, value in _foreground(style, xy).items()})
    spec[fg + ("colorscale",)] = style.fg_scale
    spec[fg + ("cmin",)] = style.fg_range[0]
    spec[fg + ("cmax",)] = style.fg_range[1]
    spec[fg + ("showscale",)] = style.colorbar_title is not None
    spec[fg + ("colorbar",)] = _colorbar(style, present)
    if "color" in parts:
        spec[bg + ("color",)] = typed_array(style.bg_color)
        spec[bg + ("colorscale",)] = style.bg_scale
        spec[bg + ("cmin",)] = style.bg_range[0]
        spec[bg + ("cmax",)] = style.bg_range[1]
    if "color" in parts or "sample" in parts:
        for i, slot in enumerate(_legend_slots(style)):
            trace = ("data", 2 + i)
            spec[trace + ("name",)] = slot["name"]
            spec[trace + ("visible",)] = slot["visible"]
            spec[trace + ("marker", "color")] = slot["marker.color"]
    return spec


# ------------------------------------------------------------------ panels

def pct(fraction: float) -> str:
    """A fraction as a short percentage: 0.05 -> "5%", 0.025 -> "2.5%"."""
    return f"{fraction * 100:.3g}%"


def _swatch(name: str) -> str:
    """A sampler's name after a square of its colour (plotly titles take this HTML)."""
    return f"<span style='color:{sampler_color(name)}'>■</span> {name}"


def _fmt(value, digits=3):
    return "–" if value is None else f"{value:.{digits}f}"


def topk_figure(sample_mean: np.ndarray, full_mean: np.ndarray, sample_top: np.ndarray,
                full_top: np.ndarray, *, labels, sampler: str, s1: float | None, k: int,
                n_sample: int, n_full: int, layer: str, present: bool = False) -> dict:
    """(a) The top-k neurons of the group: mean activation on the full data and on the sample.

    Bars cover the union of both top-k sets, ordered by the full data's mean; units the
    sample's top-k misses are outlined in red. ``customdata`` holds the unit index (a click
    colours the latent view by it).
    """
    title = f"(a) Top-{k} neurons of {layer} — S1 precision {_fmt(s1, 2)}"
    if n_full == 0:
        return message_figure("No item of the data falls in this group.", present=present, title=title)
    units = list(dict.fromkeys([*map(int, full_top), *map(int, sample_top)]))
    units.sort(key=lambda u: (-full_mean[u], u))
    names = [labels[u] for u in units]
    in_sample_top = set(map(int, sample_top))
    in_full_top = set(map(int, full_top))
    missed = [u in in_full_top and u not in in_sample_top for u in units]
    data = [
        dict(type="bar", x=names, y=[float(full_mean[u]) for u in units], name=f"full data (n={n_full:,})",
             marker=dict(color=FULL_COLOR), customdata=units,
             hovertemplate="%{x}<br>full mean %{y:.3f}<extra></extra>"),
        dict(type="bar", x=names, y=[float(sample_mean[u]) for u in units], name=f"sample (n={n_sample:,})",
             marker=dict(color=sampler_color(sampler),
                         line=dict(color=["#c62828" if m else "rgba(0,0,0,0)" for m in missed], width=2)),
             customdata=units, hovertemplate="%{x}<br>sample mean %{y:.3f}<extra></extra>"),
    ]
    if any(missed):
        data.append(dict(type="scatter", x=[None], y=[None], mode="markers", name="missed by the sample's top-k",
                         marker=dict(symbol="square-open", color="#c62828", size=11, line=dict(width=2)),
                         hoverinfo="skip"))
    layout = base_layout(title, present=present)
    layout.update(barmode="group", bargap=0.25, clickmode="event",
                  margin=dict(l=56, r=16, t=top_margin(present, 24), b=48),
                  xaxis=_axis(tickangle=-40 if len(units) > 8 else 0, type="category"),
                  yaxis=_axis(title=dict(text="mean activation")))
    return {"data": data, "layout": layout}


def unit_mosaic(values: np.ndarray, unit_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Lay a layer's units out as a 2-D image, with NaN gutters between conv channels.

    Conv maps (C, H, W) become a grid of C maps; other layers a near-square grid of units.
    Returns the image and, per pixel, the unit index (-1 in gutters and padding).
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if len(unit_shape) == 3:
        c, h, w = unit_shape
        cols = max(1, min(c, int(np.ceil(np.sqrt(c * h / w))))) if c > 1 else 1
        rows = int(np.ceil(c / cols))
        img = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
        idx = np.full(img.shape, -1, dtype=np.int32)
        maps = values.reshape(c, h, w)
        unit = np.arange(c * h * w, dtype=np.int32).reshape(c, h, w)
        for ch in range(c):
            r, q = divmod(ch, cols)
            img[r * (h + 1): r * (h + 1) + h, q * (w + 1): q * (w + 1) + w] = maps[ch]
            idx[r * (h + 1): r * (h + 1) + h, q * (w + 1): q * (w + 1) + w] = unit[ch]
        return img, idx
    n = values.size
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    img = np.full(rows * cols, np.nan)
    img[:n] = values
    idx = np.full(rows * cols, -1, dtype=np.int32)
    idx[:n] = np.arange(n)
    return img.reshape(rows, cols), idx.reshape(rows, cols)


def typed_matrix(values: np.ndarray, dtype=np.float32) -> dict:
    """A 2-D typed array (``shape`` added), as plotly.js reads heatmap ``z``."""
    arr = np.ascontiguousarray(values, dtype=dtype)
    spec = typed_array(arr.ravel())
    spec["shape"] = f"{arr.shape[0]},{arr.shape[1]}"
    return spec


def heatmap_figure(sample_mean: np.ndarray, full_mean: np.ndarray, unit_shape: tuple[int, ...], *,
                   s2: float | None, n_sample: int, n_full: int, layer: str,
                   present: bool = False) -> dict:
    """(b) Mean activation of every unit as maps: sample, full data, and sample − full."""
    title = f"(b) Mean activation of {layer} — S2 cosine distance {_fmt(s2)}"
    if n_full == 0:
        return message_figure("No item of the data falls in this group.", present=present, title=title)
    s_img, idx = unit_mosaic(sample_mean, unit_shape)
    f_img, _ = unit_mosaic(full_mean, unit_shape)
    d_img = s_img - f_img
    vmax = float(np.nanmax([np.nanmax(np.abs(f_img)), np.nanmax(np.abs(s_img)), 1e-12]))
    vmin = 0.0 if np.nanmin(f_img) >= 0 and np.nanmin(s_img) >= 0 else -vmax
    dmax = float(max(np.nanmax(np.abs(d_img)), 1e-12))
    custom = typed_matrix(idx, np.int32)
    cb = dict(thickness=10, len=0.9, outlinewidth=0, tickfont=dict(size=14 if present else 10))
    common = dict(type="heatmap", customdata=custom, xgap=0, ygap=0,
                  hovertemplate="unit %{customdata}: %{z:.3f}<extra></extra>")
    data = [
        dict(z=typed_matrix(s_img), zmin=vmin, zmax=vmax, colorscale="Viridis", showscale=False,
             xaxis="x", yaxis="y", **common),
        dict(z=typed_matrix(f_img), zmin=vmin, zmax=vmax, colorscale="Viridis",
             colorbar=dict(x=0.645, **cb), xaxis="x2", yaxis="y2", **common),
        dict(z=typed_matrix(d_img), zmin=-dmax, zmax=dmax, colorscale=DIVERGING,
             colorbar=dict(x=1.0, **cb), xaxis="x3", yaxis="y3", **common),
    ]
    layout = base_layout(title, present=present)
    layout["margin"] = dict(l=16, r=16, t=top_margin(present, 24), b=16)
    _row_of_three(layout, gap=0.07, present=present,
                  titles=(f"sample (n={n_sample:,})", f"full data (n={n_full:,})", "sample − full"))
    for suffix in ("", "2", "3"):
        layout["xaxis" + suffix].update(visible=False, constrain="domain")
        layout["yaxis" + suffix].update(visible=False, autorange="reversed", constrain="domain",
                                        scaleanchor="x" + suffix)
    return {"data": data, "layout": layout}


def argmax_figure(sample_dist: np.ndarray, full_dist: np.ndarray, *, labels, sampler: str,
                  s3: float | None, n_sample: int, n_full: int, layer: str,
                  present: bool = False) -> dict:
    """(c) Distribution of the maximally activated unit: sample vs full data.

    Units that are never the arg-max are left out; beyond :data:`MAX_ARGMAX_BARS` the rest are
    summed into "other".
    """
    title = f"(c) Max-neuron distribution of {layer} — S3 JS distance {_fmt(s3)}"
    if n_full == 0:
        return message_figure("No item of the data falls in this group.", present=present, title=title)
    sample_dist = np.asarray(sample_dist, dtype=np.float64)
    full_dist = np.asarray(full_dist, dtype=np.float64)
    used = np.flatnonzero((sample_dist > 0) | (full_dist > 0))
    order = used[np.lexsort((used, -np.maximum(full_dist[used], sample_dist[used])))]
    shown = order[:MAX_ARGMAX_BARS]
    names = [labels[u] for u in shown]
    f_vals = [float(v) for v in full_dist[shown]]
    s_vals = [float(v) for v in sample_dist[shown]]
    custom = [int(u) for u in shown]
    if len(order) > MAX_ARGMAX_BARS:
        rest = order[MAX_ARGMAX_BARS:]
        names.append(f"other ({len(rest)})")
        f_vals.append(float(full_dist[rest].sum()))
        s_vals.append(float(sample_dist[rest].sum()))
        custom.append(-1)
    data = [
        dict(type="bar", x=names, y=f_vals, name=f"full data (n={n_full:,})", marker=dict(color=FULL_COLOR),
             customdata=custom, hovertemplate="%{x}<br>full %{y:.1%}<extra></extra>"),
        dict(type="bar", x=names, y=s_vals, name=f"sample (n={n_sample:,})",
             marker=dict(color=sampler_color(sampler)), customdata=custom,
             hovertemplate="%{x}<br>sample %{y:.1%}<extra></extra>"),
    ]
    layout = base_layout(title, present=present)
    layout.update(barmode="group", bargap=0.25, margin=dict(l=56, r=16, t=top_margin(present, 24), b=48),
                  xaxis=_axis(tickangle=-40 if len(names) > 8 else 0, type="category"),
                  yaxis=_axis(title=dict(text="share of items"), tickformat=".0%"))
    return {"data": data, "layout": layout}


METRIC_TITLES = {"s1": "S1 precision ↑", "s2": "S2 cosine distance ↓", "s3": "S3 JS distance ↓"}


def summary_figure(summary: dict, *, sampler: str, fraction: float, present: bool = False) -> dict:
    """(d) Query-set accuracy over all groups: the sample vs a random sample of the same size.

    ``summary`` is :meth:`dldiag.app.service.Diagnosis.summary`'s dict: ``layers``, and for
    ``"sample"`` and ``"random"`` the ``overall`` and ``per_layer`` scores, plus ``n_groups``.
    """
    s, r = summary["sample"], summary["random"]
    # The title is the legend: the two names in their bar colours.
    title = (f"(d) {_swatch(sampler)} vs {_swatch('random')} at {pct(fraction)}, "
             f"{summary['n_groups']} groups — S1 {s['overall']['s1']:.2f} vs {r['overall']['s1']:.2f}")
    cats = ["all", *summary["layers"]]
    data = []
    for col, metric in enumerate(("s1", "s2", "s3")):
        suffix = "" if col == 0 else str(col + 1)
        for name, scores in ((sampler, s), ("random", r)):
            values = [scores["overall"][metric]] + [scores["per_layer"][layer][metric] for layer in summary["layers"]]
            data.append(dict(type="bar", x=cats, y=values, name=name, marker=dict(color=sampler_color(name)),
                             showlegend=False, xaxis="x" + suffix, yaxis="y" + suffix,
                             hovertemplate=f"{name} · %{{x}}<br>{metric.upper()} %{{y:.3f}}<extra></extra>"))
    layout = base_layout(title, present=present)
    layout.update(barmode="group", bargap=0.2, showlegend=False,
                  margin=dict(l=48, r=16, t=top_margin(present, 24), b=40))
    _row_of_three(layout, gap=0.07, present=present, rangemode="tozero",
                  titles=[METRIC_TITLES[m] for m in ("s1", "s2", "s3")])
    layout["yaxis"]["range"] = [0, 1.05]
    return {"data": data, "layout": layout}


def _thinned_ticks(names: list[str], most: int = CONFUSION_TEXT_MAX) -> dict:
    """Tick settings showing at most ``most`` class labels, evenly spread (all if they fit)."""
    if len(names) <= most:
        return {}
    step = -(-len(names) // most)
    return {"tickmode": "array", "tickvals": names[::step], "ticktext": names[::step],
            "tickfont": dict(size=9)}


def confusion_figure(full_cm: np.ndarray, sample_cm: np.ndarray, class_names, *,
                     highlight: np.ndarray | None = None, accuracy: float | None = None,
                     sample_accuracy: float | None = None, present: bool = False) -> dict:
    """(e) Confusion matrix of the full data (colour, log scale) with the sample's counts.

    Each cell reads "full / sample"; ``customdata`` holds (true, predicted) so that a click
    makes the cell a group. ``highlight`` (C, C) bool outlines the cells of the current group.
    Beyond :data:`CONFUSION_TEXT_MAX` classes the cells carry no text (hover gives the counts)
    and the class labels thin out, so that 100 classes stay a readable picture of where the
    errors are.
    """
    full_cm = np.asarray(full_cm)
    sample_cm = np.asarray(sample_cm)
    c = full_cm.shape[0]
    acc = "" if accuracy is None else f" — accuracy {accuracy:.1%}"
    if sample_accuracy is not None:
        acc += f" (sample {sample_accuracy:.1%})"
    title = f"(e) Confusion matrix{acc}"
    names = [str(n) for n in class_names]
    text = [[f"{full_cm[i, j]}<br><span style='font-size:0.8em'>{sample_cm[i, j]}</span>"
             if full_cm[i, j] else "" for j in range(c)] for i in range(c)]
    custom = [[[i, j] for j in range(c)] for i in range(c)]
    many = c > CONFUSION_TEXT_MAX
    data = [dict(
        type="heatmap", z=np.log10(full_cm + 1.0).round(4).tolist(), x=names, y=names, text=text,
        texttemplate="" if many else "%{text}", customdata=custom, showscale=False,
        colorscale=[[0, "#f7fbff"], [0.5, "#9ecae1"], [1, "#08519c"]],
        textfont=dict(size=13 if present else 9), xgap=0 if many else 1, ygap=0 if many else 1,
        hovertemplate="true %{y} → predicted %{x}<br>%{text}<extra>full / sample</extra>",
    )]
    layout = base_layout(title, present=present)
    shapes = []
    if highlight is not None:
        for i, j in zip(*np.nonzero(np.asarray(highlight, dtype=bool))):
            shapes.append(dict(type="rect", x0=int(j) - 0.5, x1=int(j) + 0.5, y0=int(i) - 0.5, y1=int(i) + 0.5,
                               line=dict(color="#e8590c", width=2.5)))
    layout.update(shapes=shapes, margin=dict(l=90, r=16, t=top_margin(present, 4), b=80),
                  # category axes: class names such as "0".."9" must not become numbers
                  xaxis=_axis(title=dict(text="predicted"), tickangle=-35, showgrid=False, type="category",
                              **_thinned_ticks(names)),
                  yaxis=_axis(title=dict(text="true"), autorange="reversed", showgrid=False, type="category",
                              **_thinned_ticks(names)))
    return {"data": data, "layout": layout}
