"""Pure figure builders of the app: numpy arrays in, plotly figures (or patch specs) out.

Nothing here touches the workspace, the cache or dash; every function can be called from a
test or a notebook. Colours come from :mod:`dldiag.palette`.

Conventions of the panel builders: a unit is named by :func:`unit_name` everywhere; ``context``
is the title's second line (data set, sampler, fraction, group), so that an exported figure
says what it shows; the subtitle says what a score measures and which way is better
(:func:`score_line`); ``for_screen=False`` drops the band kept for plotly's toolbar (an
export); ``chosen`` marks a unit without relying on colour; ``baseline`` puts the random
sample's score beside the sample's.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np

from .. import density
from ..palette import FULL_COLOR, OUTCOME_COLORS, class_colors, sampler_color

#: Display names of the projections.
PROJECTION_NAMES = {"umap": "UMAP", "tsne": "t-SNE", "pca": "PCA"}

__all__ = [
    "typed_array",
    "class_color",
    "fade",
    "unit_name",
    "unit_names",
    "neuron_label",
    "LatentStyle",
    "latent_style",
    "latent_figure",
    "latent_patch_spec",
    "latent_background",
    "DENSITY_THRESHOLD",
    "DENSITY_PIXELS",
    "uses_density",
    "density_viewport",
    "density_layer",
    "density_category_counts",
    "topk_figure",
    "heatmap_figure",
    "unit_mosaic",
    "argmax_figure",
    "summary_figure",
    "s1_text",
    "trivial_s1_note",
    "confusion_figure",
    "top_confusions",
    "absent_figure",
    "message_figure",
    "score_line",
    "estimate_subtitle",
    "export_size",
    "EXPORT_SIZES",
    "below_toolbar",
    "GRAPH_CONFIG",
    "graph_config",
    "FULL_COLOR",
    "base_layout",
    "pct",
    "typed_matrix",
]

TOOLBAR_PX = 30  # height kept free at the top of an on-screen figure for plotly's toolbar
EXPORT_TOP_PX = 12  # above the title of an exported figure (no toolbar there)
BG_GREY = "#d9d9d9"
DIM_GREY = "#eef0f3"  # the latent view's items outside the group
#: Every item in the density image when the sample alone is coloured (sample, neuron): darker
#: than BG_GREY because the image's opacity (at most density.DEFAULT_ALPHA) lightens it, and
#: BG_GREY there left the sparse regions invisible.
DENSITY_GREY = "#7b8794"
FONT = "Inter, 'Segoe UI', Helvetica, Arial, sans-serif"
#: Most units of the arg-max panel (c); fewer when the panel is too short for their labels.
MAX_ARGMAX_BARS = 30
#: The chosen unit: its bars are outlined in this colour and its row is underlaid with
#: CHOSEN_BAND, so that it is found without telling colours apart.
CHOSEN_COLOR = "#111111"
CHOSEN_BAND = "#FFF1B8"
ERROR_COLOR = "#1f2933"  # error bars: dark on every sampler colour and on the hatches
#: The height (px) each panel is drawn at in the app (see assets/style.css), on screen and in
#: presentation mode: the builders fit the number of labelled rows to it.
PANEL_HEIGHTS = {"topk": (440, 440), "argmax": (440, 440), "heatmap": (380, 440), "confusion": (560, 560),
                 "summary": (340, 380), "latent": (600, 760)}
#: Export sizes in CSS px (PNG at scale 2 doubles them): 16:9 for the wide panels, so that a
#: figure fills a slide; square for the confusion matrix, whose cells are square.
EXPORT_SIZES = {"topk": (1600, 900), "argmax": (1600, 900), "heatmap": (1600, 900), "summary": (1600, 900),
                "latent": (1600, 900), "confusion": (1000, 1000)}
#: sample − full: blue below, white at zero, red above (ColorBrewer RdBu)
DIVERGING = [[0.0, "#2166ac"], [0.25, "#67a9cf"], [0.5, "#f7f7f7"], [0.75, "#ef8a62"], [1.0, "#b2182b"]]

#: dcc.Graph config for every figure: the toolbar's camera saves PNG at twice the size.
GRAPH_CONFIG = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "scale": 2},
    # plotly's camera saves the figure as on screen; assets/app.js adds PNG and SVG buttons that
    # save it as an export (no room for the toolbar, export size)
    "modeBarButtonsToRemove": ["toImage", "autoScale2d", "toggleSpikelines", "hoverClosestCartesian",
                               "hoverCompareCartesian"],
}


def export_size(kind: str) -> tuple[int, int]:
    """(width, height) in CSS px of an exported panel: ``kind`` is one of :data:`EXPORT_SIZES`.

    1600×900 for the wide panels (a 16:9 slide), 1000×1000 for the confusion matrix.
    """
    if kind not in EXPORT_SIZES:
        raise ValueError(f"kind must be one of {', '.join(EXPORT_SIZES)}; got {kind!r}")
    return EXPORT_SIZES[kind]


def graph_config(filename: str, kind: str | None = None) -> dict:
    """:data:`GRAPH_CONFIG` with the file name the toolbar's camera saves under.

    With ``kind`` (a key of :data:`EXPORT_SIZES`) the camera saves at :func:`export_size`
    instead of the size on screen.
    """
    options = {**GRAPH_CONFIG["toImageButtonOptions"], "filename": filename}
    if kind is not None:
        options["width"], options["height"] = export_size(kind)
    return {**GRAPH_CONFIG, "toImageButtonOptions": options}


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
#: Above this many items the latent view draws every item as a density image rendered on the
#: server (:mod:`dldiag.density`), with only the sample's points on top, instead of a WebGL
#: scatter of them all: a scatter of 50,000 points is already ~1 MB of JSON and a noticeable
#: redraw for every colour change, and beyond it overlapping points read as a blot. At or below
#: it the view is the scatter of every item, as before. Read when a figure is built (tests
#: lower it).
DENSITY_THRESHOLD = 50_000
#: (width, height) in pixels of the density image, on screen and in presentation mode: about
#: the latent view's plot area (:data:`PANEL_HEIGHTS` less title and margins). The image is
#: stretched onto the axes, so another window size only scales its pixels.
DENSITY_PIXELS = {False: (800, 500), True: (1100, 660)}
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


def _font_size(present: bool) -> int:
    return 17 if present else 12


def _title_size(present: bool) -> int:
    return _font_size(present) + 3


def _lines(title: str) -> int:
    return title.count("<br>") + 1 if title else 0


def _title_pad(present: bool, for_screen: bool, lines: int) -> int:
    # plotly.js places a one-line title's top at the pad; a title of several lines loses the
    # 0.7 em shift that does it (its first line's baseline sits at the pad), so it gets it here.
    top = TOOLBAR_PX if for_screen else EXPORT_TOP_PX
    return top + (round(0.7 * _title_size(present)) if lines > 1 else 0)


def top_margin(present: bool = False, extra: int = 0, *, for_screen: bool = True, lines: int = 1) -> int:
    """Top margin in px: the toolbar row (on screen only), ``lines`` title lines and ``extra``
    (subplot titles), so that nothing drawn in the plot area meets the title.

    Lines after the first are a title's smaller context and subtitle lines; plotly.js spaces
    every line 1.3 em of the title's size apart.
    """
    size = _title_size(present)
    top = TOOLBAR_PX if for_screen else EXPORT_TOP_PX
    if lines <= 0:
        return top + 8 + extra
    return top + round(size * (1.0 + 1.3 * (lines - 1))) + 12 + extra


def _title_text(main: str, *, context: str = "", subtitle: str = "") -> str:
    """A figure title: ``main``, then the ``context`` (data set, sampler, fraction, group) and
    the ``subtitle`` (what is measured, which way is better) in smaller type."""
    parts = [main]
    if context:
        parts.append(f"<span style='font-size:0.8em;color:#3e4c59'>{context}</span>")
    if subtitle:
        parts.append(f"<span style='font-size:0.8em;color:#52606d'>{subtitle}</span>")
    return "<br>".join(parts)


def base_layout(title: str = "", *, present: bool = False, height: int | None = None, for_screen: bool = True,
                **kwargs) -> dict:
    """Shared layout: one font, white background, light grid, compact margins.

    ``for_screen`` keeps a band free for plotly's toolbar above the title; an exported figure
    (``for_screen=False``) has no toolbar and so no blank band at its top.
    """
    size = _font_size(present)
    lines = _lines(title)
    layout = dict(
        # The title sits below the toolbar row (yref container, 30 px down), so they never overlap.
        title=dict(text=title, x=0.01, xanchor="left", yref="container", y=1.0, yanchor="top",
                   pad=dict(t=_title_pad(present, for_screen, lines)),
                   font=dict(size=_title_size(present), color="#1f2933")),
        font=dict(family=FONT, size=size, color="#323f4b"),
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin=dict(l=56, r=16, t=top_margin(present, for_screen=for_screen, lines=lines), b=48),
        hoverlabel=dict(font=dict(family=FONT, size=size)),
        # Below the plot (in the container's coordinates, so the margin grows to hold it): a
        # legend above the plot met long titles at 1280 px.
        legend=dict(orientation="h", yref="container", yanchor="bottom", y=0.0, xanchor="left", x=0.0,
                    bgcolor="rgba(255,255,255,0.8)", font=dict(size=size)),
        xaxis=_axis(),
        yaxis=_axis(),
    )
    if height is not None:
        layout["height"] = height
    layout.update(kwargs)
    return layout


def message_figure(text: str, *, present: bool = False, title: str = "", for_screen: bool = True) -> dict:
    """An empty figure that says why there is nothing to show."""
    layout = base_layout(title, present=present, for_screen=for_screen)
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


def _is_class_layer(unit_shape, class_names) -> bool:
    return class_names is not None and int(np.prod(unit_shape)) == len(class_names)


def unit_name(layer: str, index: int, unit_shape: tuple[int, ...], *, channel: bool, class_names=None) -> str:
    """The one name of a unit, used by every panel, hover and colour bar.

    ``conv1 · ch 3 (y 14, x 2)`` for a unit of a conv map (C, H, W); ``conv1 · ch 3`` in the
    channel unit mode (``channel=True``: a unit is a channel, ``unit_shape`` is (C,));
    ``fc2 · 17`` for a dense unit; the class name for a unit of the logits (``class_names``
    given and as many units as classes).

    Parameters
    ----------
    layer : str
    index : int
        The unit's index in the layer's flattened output (row-major, as the activations are).
    unit_shape : tuple of int
        Shape of one item's output of the layer in this unit mode.
    channel : bool
        Whether the units are conv channels.
    class_names : sequence of str, optional
        Names the units of a logits layer.
    """
    u = int(index)
    n = int(np.prod(unit_shape)) if len(unit_shape) else 0
    if not 0 <= u < max(n, 1):
        raise ValueError(f"index must be a unit of {layer!r} (0..{n - 1}); got {u}")
    if _is_class_layer(unit_shape, class_names):
        return str(class_names[u])
    if channel:
        return f"{layer} · ch {u}"
    if len(unit_shape) == 3:
        _, h, w = unit_shape
        return f"{layer} · ch {u // (h * w)} (y {(u % (h * w)) // w}, x {u % w})"
    if len(unit_shape) == 2:  # a 1-D conv: channel and position
        return f"{layer} · ch {u // unit_shape[1]} (t {u % unit_shape[1]})"
    if len(unit_shape) > 3:
        return f"{layer} · {tuple(int(v) for v in np.unravel_index(u, unit_shape))}"
    return f"{layer} · {u}"


def unit_names(layer: str, unit_shape: tuple[int, ...], *, channel: bool, class_names=None) -> list[str]:
    """:func:`unit_name` of every unit of a layer, by unit index (what the bar panels take)."""
    n = int(np.prod(unit_shape)) if len(unit_shape) else 0
    return [unit_name(layer, u, unit_shape, channel=channel, class_names=class_names) for u in range(n)]


def neuron_label(layer: str, index: int, unit_shape: tuple[int, ...], *, channel: bool, class_names=None) -> str:
    """A unit's name where nothing else names its layer (the latent view's colour bar and title).

    :func:`unit_name`, with the layer before a class name: ``fc3 · Coat``.
    """
    name = unit_name(layer, index, unit_shape, channel=channel, class_names=class_names)
    return f"{layer} · {name}" if _is_class_layer(unit_shape, class_names) else name


def _unit_hover(layer: str, unit_shape: tuple[int, ...], idx: np.ndarray, *, channel: bool,
                class_names=None) -> dict:
    """Heatmap attributes that make a hover name the unit under it as :func:`unit_name` does.

    ``idx`` (the mosaic's unit index per pixel, -1 in gutters) becomes ``customdata``. Conv
    maps carry (unit, channel, y, x) per pixel so that the template spells the name out; a
    text matrix of names would be as large as the layer (a million strings for a wide conv
    layer), and plotly.js reads typed arrays of three dimensions.
    """
    idx = np.asarray(idx, dtype=np.int32)
    if _is_class_layer(unit_shape, class_names):
        text = [[str(class_names[u]) if u >= 0 else "" for u in row] for row in idx.tolist()]
        return {"customdata": typed_matrix(idx, np.int32), "text": text, "name": "%{text}"}
    if len(unit_shape) == 3 and not channel:
        _, h, w = unit_shape
        parts = np.stack([idx, idx // (h * w), (idx % (h * w)) // w, idx % w], axis=-1)
        parts[idx < 0] = -1
        spec = typed_array(np.ascontiguousarray(parts, dtype=np.int32).ravel())
        spec["shape"] = f"{idx.shape[0]},{idx.shape[1]},4"
        return {"customdata": spec,
                "name": f"{layer} · ch %{{customdata[1]}} (y %{{customdata[2]}}, x %{{customdata[3]}})"}
    if len(unit_shape) == 2 and not channel:
        length = unit_shape[1]
        parts = np.stack([idx, idx // length, idx % length], axis=-1)
        parts[idx < 0] = -1
        spec = typed_array(np.ascontiguousarray(parts, dtype=np.int32).ravel())
        spec["shape"] = f"{idx.shape[0]},{idx.shape[1]},3"
        return {"customdata": spec, "name": f"{layer} · ch %{{customdata[1]}} (t %{{customdata[2]}})"}
    if len(unit_shape) > 3 and not channel:  # rare: spelled out per pixel
        text = [[unit_name(layer, u, unit_shape, channel=False) if u >= 0 else "" for u in row]
                for row in idx.tolist()]
        return {"customdata": typed_matrix(idx, np.int32), "text": text, "name": "%{text}"}
    prefix = "ch " if channel else ""
    return {"customdata": typed_matrix(idx, np.int32), "name": f"{layer} · {prefix}%{{customdata}}"}


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
    #: The colour of each code of ``bg_color`` as the density image shades it (not faded: the
    #: image's opacity lightens it), see :func:`latent_background`.
    bg_colors: list = field(default_factory=list)
    #: When every item is coloured by a unit: each item's value (NaN outside the group), which
    #: the density image averages per pixel on :data:`VALUE_COLORS` over ``fg_range``.
    bg_values: np.ndarray | None = None


#: The ramp of a unit's activation (plotly's Viridis), low to high.
VALUE_COLORS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
                "#b5de2b", "#fde725")
#: Share of the colour scale below the ramp that items outside the group take (DIM_GREY).
_DIM_SHARE = 0.02


def _value_scale(dimmed: bool) -> list:
    """A unit's colour scale; ``dimmed``: its bottom :data:`_DIM_SHARE` is DIM_GREY, for the
    items outside the group (given the scale's minimum), the ramp above."""
    ramp = [[i / (len(VALUE_COLORS) - 1), c] for i, c in enumerate(VALUE_COLORS)]
    if not dimmed:
        return ramp
    return [[0.0, DIM_GREY], [_DIM_SHARE, DIM_GREY]] + [[_DIM_SHARE + (1 - _DIM_SHARE) * p, c] for p, c in ramp]


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
    group: np.ndarray | None = None,
    neuron_everywhere: bool = False,
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
    group : ndarray of bool (N,), optional
        The group's items: the others are dimmed.
    neuron_everywhere : bool
        ``neuron_values`` holds every item's value (a pass over all of them): every item is
        coloured on the unit's scale, not only the sample's.
    """
    n = len(y_true)
    members = np.asarray(members, dtype=bool)
    size = 8 if present else 6
    fg_size = np.where(members, size, 0).astype(np.uint8)
    legend: list[tuple[str, str]] = []
    colorbar_title = None
    if color_by == "neuron" and neuron_values is None:
        raise ValueError("color_by='neuron' needs neuron_values")
    bg, bg_colors = latent_background(y_true, y_pred, color_by=color_by, n_classes=len(class_names), group=group)
    n_base = len(bg_colors) - (group is not None)  # the group's "outside" code comes last
    faded = color_by in ("true", "pred", "outcome")
    bg_scale = _discrete_scale(([fade(c) for c in bg_colors[:n_base]] if faded else [BG_GREY]) + bg_colors[n_base:])
    bg_range = (-0.5, len(bg_colors) - 0.5)
    if color_by in ("true", "pred"):
        colors = bg_colors[:n_base]
        fg = np.asarray(y_true if color_by == "true" else y_pred).astype(np.uint8 if len(colors) < 256 else np.int32)
        fg_scale = _discrete_scale(colors)
        fg_range = (-0.5, len(colors) - 0.5)
        legend = list(zip(class_names, colors))
        if len(legend) > LEGEND_MAX:  # a legend of 100 classes reads as noise: hover names them
            rest = len(legend) - (LEGEND_MAX - 1)
            legend = legend[:LEGEND_MAX - 1] + [(f"+ {rest} more classes (hover an item)", BG_GREY)]
    elif color_by == "outcome":
        colors = bg_colors[:n_base]
        fg = (np.asarray(y_true) != np.asarray(y_pred)).astype(np.uint8)
        fg_scale = _discrete_scale(colors)
        fg_range = (-0.5, 1.5)
        legend = [("correct", colors[0]), ("incorrect", colors[1])]
    elif color_by == "sample":
        col = sampler_color(sampler)
        fg = np.zeros(n, dtype=np.uint8)
        fg_scale = _discrete_scale([col])
        fg_range = (-0.5, 0.5)
        legend = [(f"in sample ({sampler})", col), ("not in sample", BG_GREY)]
    else:  # neuron
        values = np.asarray(neuron_values, dtype=np.float32)
        scaled = values if neuron_everywhere else values[members]
        if not len(scaled):
            scaled = np.zeros(1, np.float32)
        lo, hi = float(np.min(scaled)), float(np.max(scaled))
        if hi <= lo:
            hi = lo + 1.0
        fg = np.where(members, values, lo).astype(np.float32)
        fg_scale = _value_scale(False)
        fg_range = (lo, hi)
        colorbar_title = neuron_label or "activation"
        legend = [] if neuron_everywhere else [("not in sample", BG_GREY)]
    if group is not None:
        # The group highlighted, the rest dimmed: items outside it take one pale colour (the
        # background's last code), and sample members outside it shrink.
        group = np.asarray(group, dtype=bool)
        fg_size = np.where(members & ~group, max(size // 2, 2), fg_size).astype(np.uint8)
        legend = legend + [("outside the group (dimmed)", DIM_GREY)]
    bg_values = None
    if color_by == "neuron" and neuron_everywhere:
        # Every item on the unit's scale; the group's outsiders at the scale's floor (DIM_GREY).
        lo, hi = fg_range
        bg = values.copy()
        bg_scale, bg_range = _value_scale(group is not None), fg_range
        if group is not None:
            floor = lo - (hi - lo) * _DIM_SHARE / (1 - _DIM_SHARE)
            bg[~group] = floor
            bg_range = (floor, hi)
        bg_values = np.where(group, values, np.nan).astype(np.float32) if group is not None else values
    return LatentStyle(bg, bg_scale, bg_range, fg, fg_scale, fg_range, fg_size, legend, colorbar_title,
                       slots=max(2, min(len(class_names), LEGEND_MAX) + 1), bg_colors=bg_colors,
                       bg_values=bg_values)


def latent_image(xy: np.ndarray, style: LatentStyle, viewport: density.Viewport) -> dict:
    """The density view's image (a ``layout.images`` entry): each item's colour code shaded
    by count (:func:`density_layer`), or, every item coloured by a unit, their mean value per
    pixel on the unit's scale."""
    if style.bg_values is None:
        return density_layer(xy, style.bg_color, style.bg_colors, viewport)
    rgba = density.render_values(xy, viewport, style.bg_values, style.fg_range, VALUE_COLORS)
    return _image_entry(rgba, viewport)


def latent_background(y_true: np.ndarray, y_pred: np.ndarray, *, color_by: str, n_classes: int,
                      group: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """Each item's colour code in the latent view's background, and the colour of each code.

    The scatter draws the codes faded (:func:`fade`); the density image shades them as
    they are, one category per code, its opacity saying how many items a pixel holds.

    Parameters
    ----------
    y_true, y_pred : ndarray (N,)
    color_by : {"true", "pred", "outcome", "sample", "neuron"}
        The class colours (true or predicted label), the outcome colours, or one grey,
        :data:`DENSITY_GREY` (the sample and a unit's activation colour the sample's points
        only; the scatter draws that code in BG_GREY).
    n_classes : int
    group : ndarray of bool (N,), optional
        Items outside it take one more code, :data:`DIM_GREY`.

    Returns
    -------
    codes : ndarray (N,) of uint8 (int32 beyond 255 codes)
    colors : list of str
    """
    n = len(y_true)
    if color_by in ("true", "pred"):
        colors = class_colors(n_classes)
        codes = np.asarray(y_true if color_by == "true" else y_pred).astype(np.uint8 if len(colors) < 256 else np.int32)
    elif color_by == "outcome":
        colors = [OUTCOME_COLORS["correct"], OUTCOME_COLORS["incorrect"]]
        codes = (np.asarray(y_true) != np.asarray(y_pred)).astype(np.uint8)
    elif color_by in ("sample", "neuron"):
        colors = [DENSITY_GREY]
        codes = np.zeros(n, dtype=np.uint8)
    else:
        raise ValueError(f"color_by must be one of true, pred, outcome, sample, neuron; got {color_by!r}")
    if group is not None:
        k = len(colors)
        codes = np.where(np.asarray(group, dtype=bool), codes, k).astype(np.uint8 if k < 255 else np.int32)
        colors = colors + [DIM_GREY]
    return codes, list(colors)


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


def uses_density(n_items: int) -> bool:
    """Whether a latent view of ``n_items`` items draws them as a density image
    (more than :data:`DENSITY_THRESHOLD`)."""
    return int(n_items) > DENSITY_THRESHOLD


def density_viewport(xy: np.ndarray, present: bool = False, x_range=None, y_range=None) -> density.Viewport:
    """The viewport of the latent view's density image: ``x_range`` and ``y_range`` where
    given (the axes a user zoomed to), else every item's extent; :data:`DENSITY_PIXELS` in size."""
    width, height = DENSITY_PIXELS[bool(present)]
    full = density.full_viewport(xy, width, height)
    return density.Viewport(full.x_range if x_range is None else x_range,
                            full.y_range if y_range is None else y_range, width, height)


def density_category_counts(n_classes: int) -> tuple[int, ...]:
    """The numbers of colour codes :func:`latent_background` gives in each colour mode, with and
    without a group (what :func:`dldiag.density.warm_up` compiles for)."""
    n = int(n_classes)
    return tuple(sorted({1, 2, 3, n, n + 1}))


def density_layer(xy: np.ndarray, codes: np.ndarray, colors, viewport: density.Viewport) -> dict:
    """A ``layout.images`` entry: the density of ``xy`` per code (coloured ``colors``), rendered
    for ``viewport`` and stretched onto exactly that rectangle of the axes, under the traces.

    More codes than :data:`dldiag.density.MAX_CATEGORIES` (a data set of that many classes)
    are shaded as one, in :data:`DENSITY_GREY`: their counts would take too much memory, and
    that many hues do not tell classes apart anyway (the points on top and hover do).
    """
    if len(colors) > density.MAX_CATEGORIES:
        codes, colors = None, [DENSITY_GREY]
    return _image_entry(density.render(xy, viewport, codes, colors), viewport)


def _image_entry(rgba: np.ndarray, viewport: density.Viewport) -> dict:
    """An RGBA image as a ``layout.images`` entry stretched onto ``viewport``, under the traces."""
    (x0, x1), (y0, y1) = viewport.x_range, viewport.y_range
    return dict(source=density.data_uri(rgba), xref="x", yref="y", x=x0, y=y1, sizex=x1 - x0, sizey=y1 - y0,
                xanchor="left", yanchor="top", sizing="stretch", layer="below")


def latent_figure(xy: np.ndarray, style: LatentStyle, *, title: str, present: bool = False,
                  projection: str = "", height: int | None = None, for_screen: bool = True,
                  viewport: density.Viewport | None = None, dense: bool | None = None) -> dict:
    """The latent view: every item of D, with the sample's items (their item index in
    ``customdata``) on top.

    Up to :data:`DENSITY_THRESHOLD` items, trace 0 draws every item small and faded (WebGL,
    carrying the item indices for hover), trace 1 the same positions with only the sample
    members sized. Above it, every item is a density image in ``layout.images`` (rendered for
    ``viewport``, by default every item's extent, and shaded per colour code of
    :func:`latent_background`), trace 0 is empty and trace 1, the members, carries hover. The
    axes start on every item's extent either way. Traces 2.. are legend entries. Hover labels
    are off: the app shows a tooltip with the item's thumbnail instead. Box and lasso
    selections are resolved on the server against every item, whatever is drawn.
    ``for_screen=False`` leaves out the toolbar's band (an export). ``dense`` forces one way
    or the other (the benchmark times the density view at every N).
    """
    xy = np.asarray(xy, dtype=np.float32)
    dense = uses_density(len(xy)) if dense is None else bool(dense)
    if dense:
        background = dict(type="scattergl", x=[], y=[], customdata=[], mode="markers", name="all items",
                          showlegend=False, hoverinfo="none")
    else:
        # customdata as plain lists: dcc.Graph copies it into hover/click/selection events by
        # indexing the figure it was given, which a typed-array spec does not allow.
        background = dict(
            type="scattergl", x=typed_array(xy[:, 0]), y=typed_array(xy[:, 1]), customdata=list(range(len(xy))),
            mode="markers", name="all items", showlegend=False, hoverinfo="none",
            marker=dict(color=typed_array(style.bg_color), colorscale=style.bg_scale,
                        cmin=style.bg_range[0], cmax=style.bg_range[1], size=4.5 if present else 3.5,
                        showscale=False, line=dict(width=0)),
            unselected=dict(marker=dict(opacity=0.35)))
    data = [
        background,
        # The members again, on top: hover comes from trace 0 when it holds every item.
        dict(type="scattergl", mode="markers", name="sample", showlegend=False,
             hoverinfo="none" if dense else "skip",
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
    layout = base_layout(title, present=present, height=height, for_screen=for_screen)
    layout.update(
        dragmode="lasso",
        hovermode="closest",
        uirevision=projection,  # zoom survives in-place updates, resets with a new projection
        legend=dict(orientation="v", yanchor="top", y=1.0, xanchor="left", x=1.01,
                    itemclick=False, itemdoubleclick=False, font=dict(size=15 if present else 11)),
        margin=dict(l=20, r=20, t=top_margin(present, for_screen=for_screen, lines=_lines(title)), b=20),
        xaxis=dict(showticklabels=False, showgrid=False, zeroline=False),
        yaxis=dict(showticklabels=False, showgrid=False, zeroline=False),
    )
    if dense:
        # a layout image takes no part in autorange: the axes are set to every item's extent
        full = density_viewport(xy, present)
        layout["xaxis"]["range"], layout["yaxis"]["range"] = list(full.x_range), list(full.y_range)
        layout["images"] = [latent_image(xy, style, viewport or full)]
    return {"data": data, "layout": layout}


def _foreground(style: LatentStyle, xy: np.ndarray) -> dict:
    """The member-only arrays of the foreground trace, as ``{(key,) or (key, sub): value}``."""
    idx = np.flatnonzero(style.fg_size)
    return {("x",): typed_array(xy[idx, 0]), ("y",): typed_array(xy[idx, 1]), ("customdata",): idx.tolist(),
            ("marker", "size"): typed_array(style.fg_size[idx]), ("marker", "color"): typed_array(style.fg_color[idx])}


def latent_patch_spec(style: LatentStyle, xy: np.ndarray, *, title: str, present: bool,
                      parts=("sample", "color"), viewport: density.Viewport | None = None) -> dict:
    """The in-place update of the latent view as ``{path tuple: value}``.

    ``parts`` says what changed: ``"sample"`` (the members, their positions and colours)
    and/or ``"color"`` (colour arrays, scales and legend). The background trace's N points
    are sent again only when the colouring changes; a new sample sends its n members (a 5 %
    sample of 10k items: ~10 kB), and Plotly recomputes only that small trace. Above
    :data:`DENSITY_THRESHOLD` items a colouring change sends a new density image instead,
    rendered for ``viewport`` (the axes shown; by default every item's extent).
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
    if "color" in parts and uses_density(len(xy)):
        spec[("layout", "images")] = [latent_image(xy, style, viewport or density_viewport(xy, present))]
    elif "color" in parts:
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


#: Per score: its name, digits shown, what it measures and which way is better, in words.
METRICS = {
    "s1": ("S1 precision", 2, "share of the full data's top-{k} found by the sample", "higher is better"),
    "s2": ("S2 cosine distance", 3, "between the sample's and the full data's mean activations", "lower is better"),
    "s3": ("S3 Jensen–Shannon distance", 3, "between the sample's and the full data's arg-max distributions",
           "lower is better"),
}


def _baseline_text(metric: str, baseline: dict, digits: int) -> str:
    name = baseline.get("name", "random")
    if baseline.get("count") == 0:
        return f"a {name} sample of this size holds none of it"
    value = baseline.get(metric)
    if value is None:
        return ""
    text = f"{name} {value:.{digits}f}"
    spread = (baseline.get("spread") or {}).get(metric)
    if spread is not None:
        text += f" ± {spread:.{digits}f}"
    return text


def score_line(metric: str, value: float | None, baseline: dict | None = None, *, k: int | None = None) -> str:
    """A score in words: its value, the baseline's beside it, what it measures, which way is better.

    ``score_line("s1", 0.6, {"s1": 0.4, "spread": {"s1": 0.05}}, k=10)`` reads "S1 precision
    0.60 (random 0.40 ± 0.05): share of the full data's top-10 found by the sample — higher
    is better".

    Parameters
    ----------
    metric : {"s1", "s2", "s3"}
    value : float or None
        None (no score: the group is empty) shows as "–".
    baseline : dict, optional
        The scores of a random sample of the same size on the same group: keys ``"s1"``,
        ``"s2"``, ``"s3"`` (floats), optionally ``"spread"`` ({metric: float}, e.g. the
        standard deviation over seeds, shown as ±), ``"count"`` (the group's items in that
        sample; 0 says that it holds none) and ``"name"`` (default "random").
    k : int, optional
        The k of top-k (S1).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    name, digits, what, better = METRICS[metric]
    text = f"{name} {_fmt(value, digits)}"
    if baseline:
        beside = _baseline_text(metric, baseline, digits)
        if beside:
            text += f" ({beside})"
    sep = ":" if metric == "s1" else ""
    return f"{text}{sep} {what.format(k=k if k is not None else 'k')} — {better}"


#: Display names of the estimators of the sample's answers (the control's labels, the export's).
ESTIMATOR_NAMES = {"plain": "plain mean", "weighted": "design-weighted"}
#: What a subtitle says first for each estimator of the sample's answers (nothing for the default).
ESTIMATE_PREFIX = {"plain": "", "weighted": "design-weighted sample · "}


def estimate_subtitle(subtitle: str, estimator: str = "plain") -> str:
    """``subtitle`` said of the ``estimator``'s answers: "design-weighted sample · …" when the
    sample's answers are design-weighted (:mod:`dldiag.weighting`), unchanged when plain.

    >>> estimate_subtitle("S2 cosine distance 0.010", "weighted")
    'design-weighted sample · S2 cosine distance 0.010'
    """
    if estimator not in ESTIMATE_PREFIX:
        raise ValueError(f"estimator must be one of {', '.join(map(repr, ESTIMATE_PREFIX))}; got {estimator!r}")
    return ESTIMATE_PREFIX[estimator] + subtitle


#: Per score: what the estimate line calls it and its digits.
ESTIMATE_NAMES = {"s1": ("precision", 2), "s2": ("cosine distance", 3), "s3": ("JS distance", 3)}


def estimate_line(metric: str, estimate: dict | None) -> str:
    """The estimate of a score from the sample alone, in one short line (or why there is none).

    ``estimate_line("s1", {"score": (0.8, 0.7, 0.9), "n": 40})`` reads "estimated from the
    sample alone: precision ≈ 0.80 [0.70–0.90]". Labelled as an estimate, because it is the
    bootstrap's spread of the sample's own answer, not its measured distance to the full data
    (see the glossary's entry on it).

    Parameters
    ----------
    metric : {"s1", "s2", "s3"}
    estimate : dict or None
        ``"score"``: (value, low, high), or None when there is no estimate; ``"n"``: the
        group's sample items (says why there is none); ``"plain"``: True when the sample's
        answers shown are design-weighted and the estimate is of the plain mean; ``"pending"``:
        True while the bootstrap runs beside the request. None: no line.
    """
    if metric not in ESTIMATE_NAMES:
        raise ValueError(f"metric must be one of {', '.join(ESTIMATE_NAMES)}; got {metric!r}")
    if not estimate:
        return ""
    name, digits = ESTIMATE_NAMES[metric]
    if estimate.get("pending"):
        return f"estimate from the sample alone: computing (a bootstrap of {int(estimate.get('n') or 0):,} items)…"
    who = "estimated from the sample alone" + (" (plain mean)" if estimate.get("plain") else "")
    score = estimate.get("score")
    if score is None:
        n = int(estimate.get("n") or 0)
        if n == 0:
            return "no estimate from the sample alone: it holds no item of the group"
        return (f"no estimate from the sample alone: {n} item of the group, and every resample would be "
                "that item" if n == 1 else f"no estimate from the sample alone ({n} items of the group)")
    value, low, high = (float(v) for v in score)
    return f"{who}: {name} ≈ {value:.{digits}f} [{low:.{digits}f}–{high:.{digits}f}]"


def _with_estimate(subtitle: str, metric: str, estimate: dict | None) -> str:
    line = estimate_line(metric, estimate)
    return f"{subtitle}<br>{line}" if line else subtitle


def _error_bars(values, low, high, color: str) -> dict:
    """Plotly's ``error_x`` of bars at ``values`` with the intervals ``[low, high]``.

    The interval is clipped to hold the bar: the bar's mean and the bootstrap's are computed
    in a different order, so they can differ in the last bits.
    """
    values, low, high = (np.asarray(v, dtype=np.float64) for v in (values, low, high))
    return dict(type="data", symmetric=False, visible=True, color=color, thickness=1.5, width=3,
                array=np.maximum(high - values, 0.0).tolist(), arrayminus=np.maximum(values - low, 0.0).tolist())


def absent_figure(title: str, *, group: str, n_full: int, sampler: str, context: str = "",
                  present: bool = False, for_screen: bool = True) -> dict:
    """The panel of a group that the sample holds none of: says so, instead of bars of zeros.

    Parameters
    ----------
    title : str
        The panel's title, e.g. "(a) Top-10 neurons of conv1".
    group : str
        The group's name, e.g. "class Shirt, incorrect".
    n_full : int
        The group's items in the full data.
    sampler : str
    context : str
        The title's second line (data set, sampler, fraction, group).
    """
    who = f"The {sampler} sample" if sampler else "The sample"
    text = (f"{who} holds none of the {n_full:,} items of the group “{group}”.<br>"
            "There is nothing to compare with the full data; the summary (d) counts this group<br>"
            "as missed by the sample (S1 = 0, S2 = 1, S3 = 1).")
    return message_figure(text, present=present, title=_title_text(title, context=context), for_screen=for_screen)


ROW_PX = (17, 24)  # comfortable height of a row of horizontal bars (screen, presentation)
MIN_ROW_PX = (11, 15)  # least height at which a row's label still reads


def _panel_height(kind: str, height: int | None, present: bool, for_screen: bool) -> int:
    if height is not None:
        return int(height)
    return PANEL_HEIGHTS[kind][int(present)] if for_screen else EXPORT_SIZES[kind][1]


def _bottom_px(present: bool, legend_rows: int = 1, axis_lines: int = 1) -> int:
    """Room below a bar chart's plot area: tick labels, axis title lines and the legend."""
    size = _font_size(present)
    return round(size * (2.6 + 1.4 * axis_lines + 1.6 * legend_rows)) + 8


def _chosen_band(row: int) -> dict:
    """A light band behind the chosen unit's row (category position ``row``)."""
    return dict(type="rect", xref="paper", x0=0, x1=1, yref="y", y0=row - 0.5, y1=row + 0.5,
                fillcolor=CHOSEN_BAND, line=dict(width=0), layer="below")


def _row_ticks(names: list[str], chosen_row: int | None, font_size: int) -> dict:
    """Every row labelled (an array of ticks: plotly.js would thin crowded ones), the chosen one bold."""
    text = [f"<b>▸ {n}</b>" if i == chosen_row else n for i, n in enumerate(names)]
    return dict(tickmode="array", tickvals=list(names), ticktext=text, tickfont=dict(size=font_size))


#: Shown in place of a measured score while a selection's exact answer is computed in the background.
PENDING_LINE = "exact answer over the selection: computing in the background (progress under the latent view)"


def _pending(subtitle: str, full) -> str:
    """``subtitle`` with :data:`PENDING_LINE` under it when the full data's answer ``full`` is not known yet."""
    return subtitle if full is not None else f"{subtitle}<br>{PENDING_LINE}"


def topk_figure(sample_mean: np.ndarray, full_mean: np.ndarray, sample_top: np.ndarray,
                full_top: np.ndarray, *, labels, sampler: str, s1: float | None, k: int,
                n_sample: int, n_full: int, layer: str, chosen: int | None = None,
                baseline: dict | None = None, group: str = "this group", context: str = "",
                present: bool = False, for_screen: bool = True, height: int | None = None,
                estimator: str = "plain", estimate: dict | None = None) -> dict:
    """(a) The top-k neurons of the group: mean activation on the full data and on the sample.

    One row per unit of either top-k list, in three blocks that the legend names and counts:
    units in both lists (solid), units of the full data's top-k that the sample's top-k misses
    (hatched), units only the sample's top-k holds (cross-hatched), each block in the order of
    its list. S1 precision is the first block's size over k. Horizontal bars, so that every
    unit's name reads without turning the head. ``customdata`` holds the unit index (a click
    colours the latent view by it).

    Parameters
    ----------
    sample_mean, full_mean : ndarray (units,)
        Mean activation of every unit over the group's items in the sample and in the data.
        ``full_mean`` (and ``full_top``) None: the data's answer is still being computed (a
        selection's exact answer); the sample's list is drawn alone and the subtitle says so.
    sample_top, full_top : ndarray of int
        The two top-k lists, best first.
    labels : sequence of str
        Unit names by unit index (:func:`unit_names`).
    sampler : str
    s1 : float or None
    k, n_sample, n_full : int
        k of top-k; the group's items in the sample and in the full data.
    layer : str
    chosen : int, optional
        The chosen unit (the one that colours the latent view): its row is underlaid, its
        label bold and its sample bar outlined.
    baseline : dict, optional
        The random baseline's scores on this group (see :func:`score_line`).
    group : str
        The group's name (for the empty state).
    context : str
        The title's second line: data set, sampler, fraction and group, so that an exported
        figure stands alone.
    present : bool
        Presentation type sizes.
    for_screen : bool
        Keep room for plotly's toolbar above the title (False for an export).
    height : int, optional
        Height the figure is drawn at; default the app's panel height (or the export's). The
        figure grows (``layout.height``) when its rows do not fit at a readable size.
    estimator : {"plain", "weighted"}
        How the sample's means were estimated; the subtitle says so when design-weighted
        (:func:`estimate_subtitle`).
    estimate : dict, optional
        The group's estimate from the sample alone (a bootstrap over its sample items):
        ``"score"`` and ``"n"`` as for :func:`estimate_line` (S1's line under the measured
        one); ``"low"``, ``"high"`` (units,): every unit's interval of its sample mean, drawn
        as error bars on the sample's bars (left out: no error bars); ``"stay"``: each unit of
        ``sample_top``'s probability of staying in the top-k, in its bar's hover.
    """
    main = f"(a) Top-{k} neurons of {layer}"
    subtitle = estimate_subtitle(score_line("s1", s1, baseline, k=k), estimator)
    if len(labels) <= k:
        subtitle += (f"<br>S1 is trivial here: {layer} has {len(labels)} ≤ k units, so every unit is in both "
                     "top-k lists (the summary (d) leaves it out of S1)")
    subtitle = _pending(_with_estimate(subtitle, "s1", estimate), full_mean)
    title = _title_text(main, context=context, subtitle=subtitle)
    if n_full == 0:
        return message_figure("No item of the data falls in this group.", present=present, title=title,
                              for_screen=for_screen)
    if n_sample == 0:
        return absent_figure(main, group=group, n_full=n_full, sampler=sampler, context=context, present=present,
                             for_screen=for_screen)
    sample_list = [int(u) for u in sample_top]
    color = sampler_color(sampler)
    if full_mean is None:  # the exact answer is not known yet: the sample's list alone
        blocks = [(sample_list, f"sample · top-{k}", "")]
    else:
        full_list = [int(u) for u in full_top]
        in_sample, in_full = set(sample_list), set(full_list)
        blocks = [  # (units, legend name, hatch pattern)
            ([u for u in full_list if u in in_sample], f"sample · in both top-{k} lists", ""),
            ([u for u in full_list if u not in in_sample], f"sample · missed: in the full data's top-{k} only", "/"),
            ([u for u in sample_list if u not in in_full], f"sample · only in the sample's top-{k}", "x"),
        ]
    units = [u for block, _, _ in blocks for u in block]
    names = [str(labels[u]) for u in units]
    chosen = None if chosen is None else int(chosen)
    chosen_row = units.index(chosen) if chosen in units else None

    data = [] if full_mean is None else [
        dict(type="bar", orientation="h", y=names, x=[float(full_mean[u]) for u in units], offsetgroup="full",
             name=f"full data ({n_full:,} items)", marker=dict(color=FULL_COLOR), customdata=units,
             hovertemplate="%{y}<br>full data: mean %{x:.3f}<extra></extra>")]
    estimate = estimate or {}
    low, high = estimate.get("low"), estimate.get("high")
    bars = low is not None and high is not None
    stay = {}
    if estimate.get("stay") is not None:
        stay = {int(u): float(p) for u, p in zip(sample_top, estimate["stay"])}
    for block, name, shape in blocks:
        if not block:
            continue
        marker = dict(color=color, line=dict(color=[CHOSEN_COLOR if u == chosen else color for u in block],
                                             width=[3 if u == chosen else 1 for u in block]))
        if shape:  # hatched: the kind reads without telling colours apart
            marker.update(color=fade(color, 0.3), pattern=dict(shape=shape, fgcolor=color, size=7, solidity=0.4))
        what = name.removeprefix("sample · ")
        hover = []
        for u in block:  # one template per bar: customdata must stay the unit index (a click picks it)
            text = "%{y}<br>sample: mean %{x:.3f}"
            if bars:
                text += f" [{float(low[u]):.3f}–{float(high[u]):.3f}]"
            text += f" · {what}"
            if u in stay:
                text += f"<br>stays in the top-{k} in {stay[u]:.0%} of the resamples"
            hover.append(text + "<extra></extra>")
        values = [float(sample_mean[u]) for u in block]
        trace = dict(type="bar", orientation="h", y=[str(labels[u]) for u in block], x=values,
                     offsetgroup="sample", name=f"{name} ({len(block)})", marker=marker, customdata=block,
                     hovertemplate=hover)
        if bars:
            trace["error_x"] = _error_bars(values, [low[u] for u in block], [high[u] for u in block], ERROR_COLOR)
        data.append(trace)

    size = _font_size(present)
    layout = base_layout(title, present=present, for_screen=for_screen)
    top = layout["margin"]["t"]
    bottom = _bottom_px(present, legend_rows=2)
    total = _panel_height("topk", height, present, for_screen)
    plot_px = max(total - top - bottom, 1)
    row_px = plot_px / max(len(units), 1)
    if row_px < MIN_ROW_PX[int(present)]:  # grow rather than let labels overlap
        layout["height"] = top + bottom + MIN_ROW_PX[int(present)] * len(units)
        row_px = MIN_ROW_PX[int(present)]
    shapes = []
    start = 0
    for block, _, _ in blocks[:-1]:  # a rule between blocks
        start += len(block)
        if 0 < start < len(units):
            shapes.append(dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=start - 0.5, y1=start - 0.5,
                               line=dict(color="#9aa5b1", width=1, dash="dot")))
    if chosen_row is not None:
        shapes.append(_chosen_band(chosen_row))
    layout.update(barmode="group", bargap=0.2, bargroupgap=0.05, clickmode="event", shapes=shapes,
                  margin=dict(l=56, r=16, t=top, b=48),
                  xaxis=_axis(title=dict(text="mean activation over the group's items"), rangemode="tozero"),
                  yaxis=_axis(type="category", autorange="reversed", showgrid=False,
                              **_row_ticks(names, chosen_row, int(min(size, max(9, row_px - 2))))))
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


def _chosen_marks(idx: np.ndarray, chosen: int | None, axes) -> list:
    """Two nested open squares (black, white inside) on the chosen unit's pixel of each tile:
    seen on every colour of the maps."""
    if chosen is None:
        return []
    rows, cols = np.nonzero(np.asarray(idx) == int(chosen))
    if not len(rows):
        return []
    traces = []
    for suffix in axes:
        for color, size, width in (("#000000", 15, 3), ("#ffffff", 10, 1.5)):
            traces.append(dict(type="scatter", mode="markers", x=[int(cols[0])], y=[int(rows[0])],
                               xaxis="x" + suffix, yaxis="y" + suffix, showlegend=False, hoverinfo="skip",
                               marker=dict(symbol="square-open", color=color, size=size, line=dict(width=width))))
    return traces


def heatmap_figure(sample_mean: np.ndarray, full_mean: np.ndarray, unit_shape: tuple[int, ...], *,
                   s2: float | None, n_sample: int, n_full: int, layer: str, sampler: str = "",
                   channel: bool = False, class_names=None, chosen: int | None = None, baseline: dict | None = None,
                   group: str = "this group", context: str = "", present: bool = False,
                   for_screen: bool = True, estimator: str = "plain", estimate: dict | None = None) -> dict:
    """(b) Mean activation of every unit as maps: sample, full data, and sample − full.

    Each tile is titled; the two mean maps share a colour bar ("mean activation"), the
    difference has its own, symmetric around zero ("sample − full"). A hover names the unit
    as :func:`unit_name` does.

    Parameters
    ----------
    sample_mean, full_mean : ndarray (units,)
        ``full_mean`` None: not computed yet (the full-data and difference maps stay empty).
    unit_shape : tuple of int
        The layer's unit shape in this unit mode: (C, H, W) maps are drawn as a grid of maps.
    s2 : float or None
    n_sample, n_full : int
    layer : str
    sampler : str
        Names the sample in the empty state.
    channel : bool
        Whether the units are conv channels (names ``conv1 · ch 3``).
    class_names : sequence of str, optional
        Names the units of the logits.
    chosen : int, optional
        The chosen unit, marked on each tile by a black-and-white square.
    baseline, group, context, present, for_screen, estimator
        As in :func:`topk_figure`.
    estimate : dict, optional
        The group's estimate from the sample alone: ``"score"`` (S2's) and ``"n"`` as for
        :func:`estimate_line`, shown under the measured S2 (the maps get no error bars).
    """
    main = f"(b) Mean activation of {layer}"
    subtitle = _with_estimate(estimate_subtitle(score_line("s2", s2, baseline), estimator), "s2", estimate)
    title = _title_text(main, context=context, subtitle=_pending(subtitle, full_mean))
    if n_full == 0:
        return message_figure("No item of the data falls in this group.", present=present, title=title,
                              for_screen=for_screen)
    if n_sample == 0:
        return absent_figure(main, group=group, n_full=n_full, sampler=sampler, context=context, present=present,
                             for_screen=for_screen)
    s_img, idx = unit_mosaic(sample_mean, unit_shape)
    # Without the exact answer yet, the full-data and difference maps stay empty (not zero).
    f_img = unit_mosaic(full_mean, unit_shape)[0] if full_mean is not None else np.full_like(s_img, np.nan)
    d_img = s_img - f_img
    known = np.concatenate([v[~np.isnan(v)] for v in (s_img, f_img)])
    vmax = float(max(np.abs(known).max(initial=0.0), 1e-12))
    vmin = 0.0 if known.min(initial=0.0) >= 0 else -vmax
    dmax = float(max(np.abs(d_img[~np.isnan(d_img)]).max(initial=0.0), 1e-12))
    hover = _unit_hover(layer, unit_shape, idx, channel=channel, class_names=class_names)
    name = hover.pop("name")
    gap = 0.1
    width = (1.0 - 2 * gap) / 3
    cb = dict(thickness=10, len=0.85, outlinewidth=0, xanchor="left", tickfont=dict(size=14 if present else 10))
    cb_title = dict(side="right", font=dict(size=15 if present else 11))
    common = dict(type="heatmap", xgap=0, ygap=0, hoverongaps=False, **hover)
    data = [
        dict(z=typed_matrix(s_img), zmin=vmin, zmax=vmax, colorscale="Viridis", showscale=False,
             xaxis="x", yaxis="y", hovertemplate=f"{name}<br>sample mean %{{z:.3f}}<extra></extra>", **common),
        dict(z=typed_matrix(f_img), zmin=vmin, zmax=vmax, colorscale="Viridis",
             colorbar=dict(x=2 * width + gap + 0.008, title=dict(text="mean activation", **cb_title), **cb),
             xaxis="x2", yaxis="y2", hovertemplate=f"{name}<br>full-data mean %{{z:.3f}}<extra></extra>",
             **common),
        dict(z=typed_matrix(d_img), zmin=-dmax, zmax=dmax, colorscale=DIVERGING,
             colorbar=dict(x=1.008, title=dict(text="sample − full", **cb_title), **cb),
             xaxis="x3", yaxis="y3", hovertemplate=f"{name}<br>sample − full %{{z:+.3f}}<extra></extra>",
             **common),
    ]
    data += _chosen_marks(idx, chosen, ("", "2", "3"))
    layout = base_layout(title, present=present, for_screen=for_screen)
    layout["margin"] = dict(l=16, r=80 if present else 64, t=layout["margin"]["t"] + (24 if present else 18), b=16)
    _row_of_three(layout, gap=gap, present=present,
                  titles=(f"sample ({n_sample:,} items)",
                          f"full data ({n_full:,} items)" + (" — computing" if full_mean is None else ""),
                          "difference: sample − full"))
    for suffix in ("", "2", "3"):
        layout["xaxis" + suffix].update(visible=False, constrain="domain")
        layout["yaxis" + suffix].update(visible=False, autorange="reversed", constrain="domain",
                                        scaleanchor="x" + suffix)
    layout["showlegend"] = False
    return {"data": data, "layout": layout}


def argmax_figure(sample_dist: np.ndarray, full_dist: np.ndarray, *, labels, sampler: str,
                  s3: float | None, n_sample: int, n_full: int, layer: str, chosen: int | None = None,
                  baseline: dict | None = None, group: str = "this group", context: str = "",
                  present: bool = False, for_screen: bool = True, height: int | None = None,
                  estimator: str = "plain", estimate: dict | None = None) -> dict:
    """(c) Distribution of the maximally activated unit: sample vs full data.

    Shows the units that are most often an item's most active unit, by the larger of their
    sample and full-data shares (so that a unit the sample over-represents shows too), as
    horizontal bars ordered by the full data's share: every unit's name reads, at any width.
    As many units as have rows of readable height (at most :data:`MAX_ARGMAX_BARS`).

    Why not an "other" bar: in a wide layer (conv2 flat: 1,000+ units) the units left out
    hold most of the items, so an "other" bar was the tallest, set the scale and squashed the
    bars that can be read. Why not shares among the shown units: that would inflate them.
    So each bar is its unit's share of *all* the group's items (the axis says so), and the
    share the shown units hold — in the full data and in the sample — is written under the
    axis with the number of units not shown. S3 compares the whole distributions, shown or not.

    Parameters
    ----------
    sample_dist, full_dist : ndarray (units,)
        Share of the group's items whose most active unit is each unit (each sums to 1).
        ``full_dist`` None: not computed yet (units ordered by the sample's shares alone).
    labels : sequence of str
        Unit names by unit index (:func:`unit_names`).
    sampler : str
    s3 : float or None
    n_sample, n_full : int
    layer : str
    chosen : int, optional
        The chosen unit: outlined, its row underlaid and its label bold; shown (last) even
        when it is not among the most frequent units.
    baseline, group, context, present, for_screen, height, estimator
        As in :func:`topk_figure`.
    estimate : dict, optional
        The group's estimate from the sample alone: ``"score"`` (S3's) and ``"n"`` as for
        :func:`estimate_line`; ``"low"``, ``"high"`` (units,): each bin's interval of its
        sample share, drawn as error bars on the sample's bars (left out: none).
    """
    main = f"(c) Most active unit of {layer}: how often each unit is an item's top unit"
    subtitle = _with_estimate(estimate_subtitle(score_line("s3", s3, baseline), estimator), "s3", estimate)
    title = _title_text(main, context=context, subtitle=_pending(subtitle, full_dist))
    pending = full_dist is None
    if n_full == 0:
        return message_figure("No item of the data falls in this group.", present=present, title=title,
                              for_screen=for_screen)
    if n_sample == 0:
        return absent_figure(main, group=group, n_full=n_full, sampler=sampler, context=context, present=present,
                             for_screen=for_screen)
    sample_dist = np.asarray(sample_dist, dtype=np.float64)
    # Without the exact answer yet, units are ordered by the sample's shares and no full bar is drawn.
    full_dist = np.zeros_like(sample_dist) if pending else np.asarray(full_dist, dtype=np.float64)
    used = np.flatnonzero((sample_dist > 0) | (full_dist > 0))
    by_max = used[np.lexsort((used, -np.maximum(full_dist[used], sample_dist[used])))]

    layout = base_layout(title, present=present, for_screen=for_screen)
    top = layout["margin"]["t"]
    bottom = _bottom_px(present, legend_rows=1, axis_lines=3)
    plot_px = _panel_height("argmax", height, present, for_screen) - top - bottom
    fit = int(np.clip(plot_px // ROW_PX[int(present)], 5, MAX_ARGMAX_BARS))
    picked = by_max[:fit]
    shown = [int(u) for u in picked[np.lexsort((picked, -sample_dist[picked], -full_dist[picked]))]]
    chosen = None if chosen is None else int(chosen)
    extra_chosen = chosen is not None and 0 <= chosen < len(full_dist) and chosen not in shown
    rows = shown + ([chosen] if extra_chosen else [])
    names = [str(labels[u]) for u in rows]
    chosen_row = rows.index(chosen) if chosen in rows else None
    color = sampler_color(sampler)
    estimate = estimate or {}
    bin_low, bin_high = estimate.get("low"), estimate.get("high")
    bars = bin_low is not None and bin_high is not None

    sample_values = [float(sample_dist[u]) for u in rows]
    sample_bars = dict(type="bar", orientation="h", y=names, x=sample_values,
                       name=f"sample ({n_sample:,} items)", customdata=rows,
                       marker=dict(color=color, line=dict(color=[CHOSEN_COLOR if u == chosen else color for u in rows],
                                                          width=[3 if u == chosen else 0 for u in rows])),
                       hovertemplate="%{y}<br>most active for %{x:.1%} of the sample's items<extra></extra>")
    if bars:
        sample_bars["error_x"] = _error_bars(sample_values, [bin_low[u] for u in rows], [bin_high[u] for u in rows],
                                             ERROR_COLOR)
        sample_bars["hovertemplate"] = [f"%{{y}}<br>most active for %{{x:.1%}} [{float(bin_low[u]):.1%}–"
                                        f"{float(bin_high[u]):.1%}] of the sample's items<extra></extra>" for u in rows]
    data = [
        dict(type="bar", orientation="h", y=names, x=[float(full_dist[u]) for u in rows],
             name=f"full data ({n_full:,} items)", marker=dict(color=FULL_COLOR), customdata=rows,
             hovertemplate="%{y}<br>most active for %{x:.1%} of the full data's items<extra></extra>"),
        sample_bars,
    ][int(pending):]
    rest = len(used) - len(shown)
    if pending:
        note = (f"the {len(shown)} units shown are the top unit of {sample_dist[shown].sum():.0%} of the sample's "
                "items<br>the full data's shares follow when the exact answer is computed")
    elif rest > 0:  # two short lines: an axis title does not wrap, and a long line is cut
        note = (f"the {len(shown)} units shown are the top unit of {full_dist[shown].sum():.0%} of the full data's "
                f"items and {sample_dist[shown].sum():.0%} of the sample's<br>{rest:,} other units share the rest")
    else:
        note = f"every unit that is ever an item's top unit is shown ({len(shown)})"
    if extra_chosen:
        note += " · the chosen unit is added last"
    high = max(float(full_dist[rows].max()), float(sample_dist[rows].max()), 1e-9)
    if bars:  # the range is set by hand, so it must hold the error bars too
        high = max(high, float(np.asarray(bin_high, dtype=np.float64)[rows].max()))
    size = _font_size(present)
    row_px = plot_px / max(len(rows), 1)
    layout.update(
        barmode="group", bargap=0.2, bargroupgap=0.05, showlegend=True,
        shapes=[_chosen_band(chosen_row)] if chosen_row is not None else [],
        margin=dict(l=56, r=16, t=top, b=48),
        xaxis=_axis(title=dict(text="share of the group's items whose most active unit it is<br>"
                                    + "<br>".join(f"<span style='font-size:0.85em;color:#616e7c'>{line}</span>"
                                                  for line in note.split("<br>"))),
                    range=[0, high * 1.08], tickformat=".1%" if high < 0.05 else ".0%"),
        yaxis=_axis(type="category", autorange="reversed", showgrid=False,
                    **_row_ticks(names, chosen_row, int(min(size, max(9, row_px - 2))))),
    )
    return {"data": data, "layout": layout}


#: The three scores of (d): subplot title lines (what, which way is better).
METRIC_TITLES = {
    "s1": "S1 precision: share of each group's<br>top-k found — higher is better",
    "s2": "S2 cosine distance of mean<br>activations — lower is better",
    "s3": "S3 Jensen–Shannon distance of arg-max<br>distributions — lower is better",
}


def s1_text(value: float | None, digits: int = 2) -> str:
    """An S1 mean, or "trivial" where it is None: every layer averaged has at most k units."""
    return "trivial (≤ k units)" if value is None else f"{value:.{digits}f}"


def trivial_s1_note(layers, k: int | None = None) -> str:
    """The note of (d) on layers whose S1 bar is left out: with at most k units S1 is 1 whatever the sample."""
    at = "k" if k is None else f"k = {k}"
    return (f"no S1 bar for {', '.join(layers)}: at most {at} units, so S1 is 1 whatever the sample "
            "(left out of S1's mean over all layers)")


def summary_figure(summary: dict, *, sampler: str, fraction: float, context: str = "", present: bool = False,
                   for_screen: bool = True) -> dict:
    """(d) Query-set accuracy over all groups: the sample vs a random sample of the same size.

    ``summary`` is :meth:`dldiag.app.service.Diagnosis.summary`'s dict: ``layers``, and for
    ``"sample"`` and ``"random"`` the ``overall`` and ``per_layer`` scores, plus ``n_groups``.
    With the random sampler the sample *is* the baseline: one set of bars, and the title says so.
    ``context`` (data set, sampler, fraction) is the title's second line. When
    ``summary["estimator"]`` is ``"weighted"`` the subtitle says that the sample's scores are
    those of its design-weighted estimates (the random baseline's are plain: its weights are
    uniform, which gives the same means).
    """
    s, r = summary["sample"], summary["random"]
    own = sampler == "random"
    n_groups = summary["n_groups"]
    if own:
        main = f"(d) Query-set accuracy of a {_swatch(sampler)} sample at {pct(fraction)}, over {n_groups} groups"
        explain = "the random sampler is the baseline itself; choose another sampler to compare it with random"
    else:
        main = (f"(d) Query-set accuracy: {_swatch(sampler)} vs {_swatch('random')} at {pct(fraction)}, "
                f"over {n_groups} groups")
        explain = (f"S1 {s1_text(s['overall']['s1'])} vs {s1_text(r['overall']['s1'])}; "
                   "a group = layer × true class × outcome with items in the data; bars: means over its groups")
    explain = estimate_subtitle(explain, summary.get("estimator", "plain"))
    trivial = [layer for layer in summary["layers"] if s["per_layer"][layer]["s1"] is None]
    if trivial:
        explain += "<br>" + trivial_s1_note(trivial, summary.get("k"))
    title = _title_text(main, context=context, subtitle=explain)
    cats = ["all layers", *summary["layers"]]
    data = []
    for col, metric in enumerate(("s1", "s2", "s3")):
        suffix = "" if col == 0 else str(col + 1)
        for name, scores in ((sampler, s),) + (() if own else (("random", r),)):
            values = [scores["overall"][metric]] + [scores["per_layer"][layer][metric] for layer in summary["layers"]]
            data.append(dict(type="bar", x=cats, y=values, name=name, marker=dict(color=sampler_color(name)),
                             showlegend=False, xaxis="x" + suffix, yaxis="y" + suffix,
                             hovertemplate=f"{name} · %{{x}}<br>{METRICS[metric][0]} %{{y:.3f}}<extra></extra>"))
    layout = base_layout(title, present=present, for_screen=for_screen)
    layout.update(barmode="group", bargap=0.2, showlegend=False,
                  margin=dict(l=48, r=16, t=layout["margin"]["t"] + (46 if present else 34), b=40))
    _row_of_three(layout, gap=0.07, present=present, rangemode="tozero",
                  titles=[METRIC_TITLES[m] for m in ("s1", "s2", "s3")])
    layout["yaxis"]["range"] = [0, 1.05]
    layout["yaxis"]["title"] = dict(text="mean over groups")
    if present:  # upright layer names on a slide: plotly's slanted labels overlap each other's boxes
        for axis in ("xaxis", "xaxis2", "xaxis3"):
            layout[axis]["tickangle"] = -90
    return {"data": data, "layout": layout}


def _thinned_ticks(names: list[str], most: int = CONFUSION_TEXT_MAX) -> dict:
    """Tick settings showing at most ``most`` class labels, evenly spread (all if they fit)."""
    if len(names) <= most:
        return {}
    step = -(-len(names) // most)
    return {"tickmode": "array", "tickvals": names[::step], "ticktext": names[::step],
            "tickfont": dict(size=9)}


def _accuracy_text(accuracy: float | None, sample_accuracy: float | None) -> str:
    """The model's accuracy, and the sample's phrased so that a low one is not read as the model failing."""
    if accuracy is None:
        return ""
    text = f"model accuracy {accuracy:.1%} on all items"
    if sample_accuracy is not None:
        text += f"; {sample_accuracy:.1%} on the sample"
        if sample_accuracy < accuracy - 0.005:
            text += ", which over-represents the decision boundary"
    return text


#: Shares of a true class at which the row-normalised view's colour bar has ticks.
RATE_TICKS = (0.0, 0.01, 0.05, 0.1, 0.5, 1.0)


def _rate_colour(rate):
    # log-like, so that a 2 % confusion is not as white as an empty cell, yet 100 % is the top
    return np.log10(1.0 + 1000.0 * np.asarray(rate, dtype=np.float64)) / np.log10(1001.0)


def confusion_figure(full_cm: np.ndarray, sample_cm: np.ndarray, class_names, *,
                     highlight: np.ndarray | None = None, accuracy: float | None = None,
                     sample_accuracy: float | None = None, normalise: str | None = None, context: str = "",
                     present: bool = False, for_screen: bool = True, height: int | None = None) -> dict:
    """(e) Confusion matrix of the full data with the sample's counts.

    Parameters
    ----------
    full_cm, sample_cm : ndarray (C, C)
        Counts, true class × predicted class, of all items and of the sample's.
    class_names : sequence of str
    highlight : ndarray of bool (C, C), optional
        Outlines the cells of the current group.
    accuracy, sample_accuracy : float, optional
        The model's accuracy on all items and on the sample (in the subtitle).
    normalise : {None, "rows"}
        None: colour by count (log scale), each cell "full count" over "sample count".
        "rows": each true class's share predicted as each class (percent in the cells,
        colour on a log-like scale whose bar is labelled in percent).
    context : str
        The title's second line (data set, sampler, fraction).
    present, for_screen, height
        As in :func:`topk_figure`: the cells' text shrinks to fit the cells at that height,
        drops the sample's count (still in the hover) and then the text altogether.

    Notes
    -----
    Cells are square (``scaleanchor``), so that an export of any size keeps the matrix
    square. ``customdata`` holds (true, predicted) so that a click makes the cell a group.
    Beyond :data:`CONFUSION_TEXT_MAX` classes the cells carry no text (hover gives the counts)
    and the class labels thin out, so that 100 classes stay a readable picture of where the
    errors are.
    """
    if normalise not in (None, "rows"):
        raise ValueError(f"normalise must be None or 'rows'; got {normalise!r}")
    full_cm = np.asarray(full_cm)
    sample_cm = np.asarray(sample_cm)
    c = full_cm.shape[0]
    names = [str(n) for n in class_names]
    row_totals = full_cm.sum(axis=1, keepdims=True)
    rates = np.divide(full_cm, row_totals, out=np.zeros(full_cm.shape, dtype=np.float64), where=row_totals > 0)
    if normalise == "rows":
        main = "(e) Confusion matrix: share of each true class predicted as each class"
        z = _rate_colour(rates)
        text = [[f"{rates[i, j]:.0%}" if full_cm[i, j] else "" for j in range(c)] for i in range(c)]
        two_lines = False
        colorbar = dict(title=dict(text="share of the true class", side="right"),
                        tickvals=[float(v) for v in _rate_colour(RATE_TICKS)],
                        ticktext=[f"{v:.0%}" for v in RATE_TICKS])
        cell = "each cell: the share of its row's true class predicted as its column's class"
    else:
        main = "(e) Confusion matrix"
        z = np.log10(full_cm + 1.0)
        text = [[f"{full_cm[i, j]:,}" if full_cm[i, j] else "" for j in range(c)] for i in range(c)]
        two_lines = True
        top = max(int(full_cm.max()), 1)
        ticks = [v for v in (0, 1, 10, 100, 1_000, 10_000, 100_000, 1_000_000) if v <= top] + [top]
        ticks = sorted(set(ticks))
        colorbar = dict(title=dict(text="items (log scale)", side="right"),
                        tickvals=[float(np.log10(v + 1.0)) for v in ticks], ticktext=[f"{v:,}" for v in ticks])
        cell = "each cell: items in the data, and below, in the sample"
    title = _title_text(main, context=context, subtitle=_accuracy_text(accuracy, sample_accuracy))
    layout = base_layout(title, present=present, for_screen=for_screen)
    # The cells' text fits the cells: square cells of a matrix as tall as the plot area.
    base = 15 if present else 11
    # below the matrix: the axis title, the note and the class names (upright on a slide, so as
    # long as the longest name)
    below = 120 if not present else 70 + 0.62 * _font_size(present) * max((len(n) for n in names), default=1)
    cell_px = (_panel_height("confusion", height, present, for_screen) - layout["margin"]["t"] - below) / max(c, 1)
    widest = max((len(t) for row in text for t in row), default=1)
    font = min(base, cell_px / 3.0, cell_px / (0.62 * max(widest, 1)))
    if two_lines and font >= 9:  # the sample's count under the full data's
        text = [[f"{t}<br><span style='font-size:0.85em'>{sample_cm[i, j]:,}</span>" if t else ""
                 for j, t in enumerate(row)] for i, row in enumerate(text)]
    else:
        font = min(base, cell_px / 1.4, cell_px / (0.62 * max(widest, 1)))
        if two_lines:
            cell = "each cell: items in the data (hover for the sample's)"
    show_text = c <= CONFUSION_TEXT_MAX and font >= 8
    custom = [[[i, j] for j in range(c)] for i in range(c)]  # (true, predicted): a click makes the group
    hover = [[f"true {names[i]} → predicted {names[j]}<br>{full_cm[i, j]:,} items ({rates[i, j]:.1%} of the "
              f"true class), {sample_cm[i, j]:,} in the sample" for j in range(c)] for i in range(c)]
    many = c > CONFUSION_TEXT_MAX
    size = _font_size(present)
    colorbar.update(thickness=12, outlinewidth=0, len=0.9, tickfont=dict(size=size - 1))
    colorbar["title"]["font"] = dict(size=size)
    data = [dict(
        type="heatmap", z=np.round(z, 4).tolist(), x=names, y=names, text=text if show_text else None,
        texttemplate="%{text}" if show_text else "", customdata=custom, showscale=True, colorbar=colorbar,
        zmin=0.0, zmax=max(float(np.max(z)), 1e-6) if normalise is None else 1.0,
        colorscale=[[0, "#f7fbff"], [0.5, "#9ecae1"], [1, "#08519c"]],
        textfont=dict(size=round(font, 1) if show_text else base), xgap=0 if many else 1, ygap=0 if many else 1,
        hovertext=hover, hoverinfo="text",
    )]
    shapes = []
    if highlight is not None:
        for i, j in zip(*np.nonzero(np.asarray(highlight, dtype=bool))):
            shapes.append(dict(type="rect", x0=int(j) - 0.5, x1=int(j) + 0.5, y0=int(i) - 0.5, y1=int(i) + 0.5,
                               line=dict(color="#e8590c", width=2.5)))
    layout.update(shapes=shapes, margin=dict(l=90, r=16, t=layout["margin"]["t"], b=80),
                  # category axes: class names such as "0".."9" must not become numbers
                  xaxis=_axis(title=dict(text=f"predicted class<br><span style='font-size:0.85em;color:#616e7c'>"
                                              f"{cell}</span>"),
                              # upright names on a slide: a slanted label's box covers its neighbours'
                              tickangle=-90 if present else -35, showgrid=False, type="category",
                              constrain="domain", **_thinned_ticks(names)),
                  # square cells: the y unit is the x unit, whatever the figure's size
                  yaxis=_axis(title=dict(text="true class"), autorange="reversed", showgrid=False, type="category",
                              scaleanchor="x", scaleratio=1, constrain="domain", **_thinned_ticks(names)))
    return {"data": data, "layout": layout}


def top_confusions(full_cm: np.ndarray, sample_cm: np.ndarray, class_names, n: int = 10) -> list[dict]:
    """The ``n`` largest off-diagonal cells of a confusion matrix, largest first.

    Ranked by count in the full data, ties by rate (share of the true class), then by
    (true, predicted). Empty cells are left out, so the list can be shorter than ``n``.

    Returns
    -------
    list of dict
        ``true``, ``predicted`` (class indices: the group the app makes of a clicked row),
        ``true_name``, ``predicted_name``, ``count`` (items in the data), ``rate`` (count over
        the true class's items) and ``sample_count`` (items in the sample).
    """
    full_cm = np.asarray(full_cm)
    sample_cm = np.asarray(sample_cm)
    if full_cm.ndim != 2 or full_cm.shape[0] != full_cm.shape[1] or sample_cm.shape != full_cm.shape:
        raise ValueError(f"full_cm and sample_cm must be square and of one shape; got {full_cm.shape} and "
                         f"{sample_cm.shape}")
    if int(n) < 0:
        raise ValueError(f"n must be >= 0; got {n}")
    totals = full_cm.sum(axis=1)
    cells = []
    for i, j in zip(*np.nonzero(full_cm)):
        if i == j:
            continue
        count = int(full_cm[i, j])
        cells.append({"true": int(i), "predicted": int(j), "true_name": str(class_names[i]),
                      "predicted_name": str(class_names[j]), "count": count, "rate": count / int(totals[i]),
                      "sample_count": int(sample_cm[i, j])})
    cells.sort(key=lambda d: (-d["count"], -d["rate"], d["true"], d["predicted"]))
    return cells[:int(n)]
