"""Pure plotly builders of the report's Figs. 4–7 and Table IV, from a results folder's CSVs.

:func:`build_figures` reads ``run.json`` and the CSVs that :mod:`dldiag.experiments.runner`
wrote and returns plotly figures; it imports neither dash nor torch, so the app can show the
same figures in a tab and :mod:`dldiag.experiments.report` can export them. Every sampler has
one colour (:mod:`dldiag.palette`) in every figure; a weighted variant shares its family's
colour and is drawn dashed; the EB tree's natural sample is a star.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..palette import sampler_color
from .summary import read_csv

__all__ = [
    "build_figures",
    "figures_for_dataset",
    "load_run",
    "results_dir_for",
    "RESULTS_ROOT",
    "FIGURES",
    "REPORT_TABLE_IV",
    "fig4_fraction",
    "fig5_topk",
    "fig6_j",
    "fig7_time",
    "table4",
]

#: File stem and caption of each figure, in display order.
FIGURES = {
    "fig4_fraction": "Fig. 4 — S1, S2, S3 vs sample size",
    "fig5_topk": "Fig. 5 — S1 precision vs k at 5 %",
    "fig6_j": "Fig. 6 — S1, S2, S3 vs j at 5 %",
    "fig7_time": "Fig. 7 — time to create a 5 % sample",
    "table4": "Table IV — correct (incorrect) items per 5 % sample",
}

#: The report's Table IV: correct (incorrect) items of a 5 % sample, MNIST (10k test items)
#: and Galaxy Zoo2 (2118), under our sampler names.
REPORT_TABLE_IV = {
    "all": ("9893(107)", "2097(21)"),
    "random": ("499(1)", "105(1)"),
    "latent-grid": ("487(9)", "108(0)"),
    "stratified-cm": ("494(11)", "105(1)"),
    "gmm-full": ("464(48)", "104(4)"),
    "gmm-spherical": ("500(11)", "108(0)"),
    "max-margin": ("427(85)", "89(18)"),
    "vas": ("492(8)", "492(4)"),
    "eb-tree": ("198(72)", "44(8)"),
}

_Y_TITLES = {
    "s1": "S1 precision@{k} (higher is better)",
    "s2": "S2 cosine distance (lower is better)",
    "s3": "S3 JS distance (lower is better)",
}
_PANEL_TITLES = {
    "s1": "S1: top-{k} most activated units",
    "s2": "S2: mean activation of every unit",
    "s3": "S3: distribution of the arg-max unit",
}
_FONT = dict(family="Arial, Helvetica, sans-serif", size=15, color="#222")
_GRID = "#e5e5e5"
_NATURAL = "eb-tree"


#: ``results/`` of the repository: where the committed runs live and where the app looks.
RESULTS_ROOT = Path(__file__).resolve().parents[2] / "results"


def results_dir_for(dataset: str, root: str | Path = RESULTS_ROOT) -> Path:
    """The default results folder of a data set name: ``root/<name>``, ``idx:DIR`` → ``idx-<dir>``.

    For the app: ``build_figures(results_dir_for(ws.dataset.name))``, after checking that
    ``load_run(...)["weights_hash"]`` is the loaded model's (the results are for one model).
    """
    for prefix in ("idx:", "npz:"):
        if dataset.startswith(prefix):
            stem = Path(dataset[len(prefix):].rstrip("/")).stem or "data"
            return Path(root) / f"{prefix[:-1]}-{stem}"
    return Path(root) / dataset


def load_run(results_dir) -> dict:
    """``run.json`` of a results folder; ``FileNotFoundError`` says how to make one."""
    path = Path(results_dir) / "run.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no experiment results in {str(results_dir)!r} (run.json missing); run "
            f"`python -m dldiag.experiments --dataset NAME --out {results_dir}`"
        )
    return json.loads(path.read_text())


def _pct(f: float) -> str:
    return f"{100 * f:.3g} %"


def _subtitle(meta: dict) -> str:
    n_items = f"{meta['n_items']:,}".replace(",", "\u2009")  # thin space between thousands
    return (f"{meta['dataset_label']}, {meta['model_label']} (N = {n_items}, "
            f"test accuracy {100 * meta['accuracy']:.1f} %, {meta['n_incorrect']} misclassified)")


def _layout(fig: go.Figure, meta: dict, title: str, note: str, *, width: int, height: int) -> go.Figure:
    fig.update_layout(
        title=dict(text=f"<b>{title}</b> · {_subtitle(meta)}<br><span style='font-size:13px;color:#555'>{note}</span>",
                   x=0.01, xanchor="left", y=0.97, yanchor="top", font=dict(size=18)),
        font=_FONT,
        template="plotly_white",
        width=width,
        height=height,
        margin=dict(l=80, r=30, t=105, b=150),
        legend=dict(orientation="h", x=0.5, xanchor="center", y=-0.17, yanchor="top",
                    font=dict(size=14), itemwidth=40),
        hoverlabel=dict(font_size=13),
    )
    fig.update_xaxes(showline=True, linecolor="#888", gridcolor=_GRID, ticks="outside", title_standoff=8)
    fig.update_yaxes(showline=True, linecolor="#888", gridcolor=_GRID, ticks="outside", zeroline=False)
    return fig


def _err(rows, metric):
    """Error-bar arrays (max − mean, mean − min) of a metric; None when no row has spread."""
    if all(r["n_seeds"] <= 1 for r in rows):
        return None
    return dict(type="data", symmetric=False, thickness=1.5, width=5,
                array=[_gap(r[f"{metric}_max"], r[f"{metric}_mean"]) for r in rows],
                arrayminus=[_gap(r[f"{metric}_mean"], r[f"{metric}_min"]) for r in rows])


def _gap(high, low):
    # None where no draw has the metric (S1 when every layer is trivial at that k): no bar
    return None if high is None or low is None else high - low


def _size_err(rows, n_items):
    """Horizontal error bars (in %) of the natural samples' size range; None when sizes agree."""
    if all(r.get("n_sample_min", r["n_sample"]) == r.get("n_sample_max", r["n_sample"]) for r in rows):
        return None
    return dict(type="data", symmetric=False, thickness=1.5, width=5,
                array=[100 * (r["n_sample_max"] / n_items - r["fraction"]) for r in rows],
                arrayminus=[100 * (r["fraction"] - r["n_sample_min"] / n_items) for r in rows])


def _natural_label(name: str, row: dict) -> str:
    """Legend label of a natural sample: its tree's fraction, or the mean over several trees."""
    if row["n_seeds"] > 1:
        return f"{name} (its trees: {_pct(row['fraction'])} on average)"
    return f"{name} (its tree: {_pct(row['fraction'])})"


def _samplers(rows) -> list[str]:
    seen = []
    for r in rows:
        if r["sampler"] not in seen:
            seen.append(r["sampler"])
    return seen


def _fits_repeated(meta: dict) -> bool:
    """Whether the run repeated seeded fits over the seeds (run.json from before did not)."""
    return any(s.get("seeded_fit", False) for s in meta["samplers"].values())


def _seed_note(meta: dict) -> str:
    """What a point averages: draws with new sample seeds, new fits, or a single draw."""
    seeds = meta["config"]["seeds"]
    main = {n: s for n, s in meta["samplers"].items() if not n.endswith("-weighted")}
    # run.json written before fits were repeated lacks "seeded_fit": those fits were drawn once.
    draws = [n for n, s in main.items() if s["randomised"]]
    fits = [n for n, s in main.items() if not s["randomised"] and s.get("seeded_fit", False)]
    once = [n for n in main if n not in draws and n not in fits]
    kinds = [f"new sample seeds for {', '.join(draws)}" if draws else "",
             ("new fits for the others" if draws and not once else f"new fits for {', '.join(fits)}")
             if fits else ""]
    note = f"mean of {seeds} draws (bars: min–max): " + "; ".join(k for k in kinds if k)
    if once:
        note += f"; drawn once: {', '.join(once)}"
    return note


# ---------------------------------------------------------------------------- Fig. 4
#: What a latent grid does with the seats of a cell smaller than its equal share.
_SPILL_WORDS = {"none": "equal per cell, no spill: the report's rule",
                "uniform": "short seats drawn uniformly: the app's default",
                "equal": "short seats re-shared equally"}


def _line_label(name: str, meta: dict) -> str:
    """A sampler's legend label; a latent grid says its spill rule (read from run.json, as
    older runs drew the app's grid under the name latent-grid)."""
    spill = meta["samplers"].get(name, {}).get("params", {}).get("spill")
    return f"{name} ({_SPILL_WORDS[spill]})" if spill in _SPILL_WORDS else name

def fig4_fraction(rows: list[dict], meta: dict) -> go.Figure:
    """S1, S2 and S3 vs sample fraction, one line per sampler; EB tree as its natural point."""
    cfg = meta["config"]
    k = cfg["k"]
    metrics = ("s1", "s2", "s3")
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.075,
                        subplot_titles=[_PANEL_TITLES[m].format(k=k) for m in metrics])
    names = [n for n in _samplers(rows) if not n.endswith("-weighted")]
    fractions = sorted({r["fraction"] for r in rows if r["size_mode"] == "fraction"})
    lines = [n for n in names if n != _NATURAL]
    for i, name in enumerate(names):
        natural = name == _NATURAL
        mine = sorted((r for r in rows if r["sampler"] == name
                       and r["size_mode"] == ("natural" if natural else "fraction")),
                      key=lambda r: r["fraction"])
        if not mine:
            continue
        # Dodge the lines sideways (log axis: a small factor) so that error bars do not overlap.
        dodge = 1.0 if natural else 1.0 + 0.025 * (lines.index(name) - (len(lines) - 1) / 2)
        x = [100 * r["fraction"] * dodge for r in mine]
        spill = name.endswith("-spill")
        label = _natural_label(name, mine[0]) if natural else _line_label(name, meta)
        error_x = _size_err(mine, meta["n_items"]) if natural else None
        for col, metric in enumerate(metrics, start=1):
            custom = [[100 * r["fraction"], r["n_sample"], r["n_seeds"], r[f"{metric}_min"], r[f"{metric}_max"]]
                      for r in mine]
            fig.add_trace(go.Scatter(
                x=x, y=[r[f"{metric}_mean"] for r in mine],
                error_y=_err(mine, metric), error_x=error_x,
                mode="markers" if natural else "lines+markers",
                name=label, legendgroup=name, showlegend=col == 1,
                line=dict(color=sampler_color(name), width=2.5, dash="dash" if spill else "solid"),
                marker=dict(color=sampler_color(name), size=20 if natural else 8,
                            symbol="star" if natural else "circle",
                            line=dict(color="white", width=1)),
                customdata=custom,
                hovertemplate=(f"<b>{label}</b><br>fraction %{{customdata[0]:.3g}} % (n = %{{customdata[1]}})"
                               f"<br>{metric.upper()} mean %{{y:.4f}} over %{{customdata[2]}} draw(s)"
                               f"<br>min %{{customdata[3]:.4f}}, max %{{customdata[4]:.4f}}<extra></extra>"),
            ), row=1, col=col)
            fig.update_yaxes(title_text=_Y_TITLES[metric].format(k=k), row=1, col=col)
    ticks = [100 * f for f in fractions]
    natural_rows = [r for r in rows if r["size_mode"] == "natural"]
    low = min(ticks + [100 * r["fraction"] for r in natural_rows]) if ticks else 1
    high = max(ticks) if ticks else 100
    fig.update_xaxes(type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks],
                     range=[math.log10(low) - 0.12, math.log10(high) + 0.08],
                     title_text="sample fraction (%, log scale)")
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_yaxes(rangemode="tozero", row=1, col=3)
    note = (f"k = {k}, j = {cfg['j']} for the ratio samplers; {_seed_note(meta)}; "
            "★ EB tree: its natural sample (one tree per fit, bars across: its size); S1 leaves out layers of ≤ k units")
    return _layout(fig, meta, "Fig. 4 — query-set accuracy vs sample size", note, width=1650, height=620)


# ---------------------------------------------------------------------------- Fig. 5
def fig5_topk(rows: list[dict], meta: dict) -> go.Figure:
    """S1 precision vs k at the fixed fraction, one line per sampler (EB tree: natural, dotted)."""
    cfg = meta["config"]
    fig = go.Figure()
    names = [n for n in _samplers(rows) if not n.endswith("-weighted")]
    ks = sorted({r["k"] for r in rows})
    step = min((b - a for a, b in zip(ks, ks[1:])), default=10)
    for i, name in enumerate(names):
        for mode in ("fraction", "natural"):
            mine = sorted((r for r in rows if r["sampler"] == name and r["size_mode"] == mode),
                          key=lambda r: r["k"])
            if not mine:
                continue
            natural = mode == "natural"
            label = _natural_label(name, mine[0]) if natural else name
            # Dodge sideways so that the error bars of different samplers do not overlap.
            dodge = step * 0.06 * (i - (len(names) - 1) / 2)
            fig.add_trace(go.Scatter(
                x=[r["k"] + dodge for r in mine], y=[r["s1_mean"] for r in mine], error_y=_err(mine, "s1"),
                mode="lines+markers", name=label, legendgroup=name,
                line=dict(color=sampler_color(name), width=2.5, dash="dot" if natural else "solid"),
                marker=dict(color=sampler_color(name), size=14 if natural else 8,
                            symbol="star" if natural else "circle"),
                customdata=[[r["n_sample"], r["n_seeds"], r["s1_min"], r["s1_max"], r["k"]] for r in mine],
                hovertemplate=(f"<b>{label}</b><br>k = %{{customdata[4]}}, n = %{{customdata[0]}}<br>S1 mean %{{y:.4f}} "
                               "over %{customdata[1]} draw(s)<br>min %{customdata[2]:.4f}, "
                               "max %{customdata[3]:.4f}<extra></extra>"),
            ))
    fig.update_xaxes(title_text="k (number of top units in S1)", tickvals=ks)
    fig.update_yaxes(title_text="S1 precision@k (higher is better)")
    note = (f"{_pct(cfg['fixed_fraction'])} samples, j = {cfg['j']}; {_seed_note(meta)}; "
            "★ dotted: EB tree's natural sample; S1 leaves out layers of ≤ k units")
    fig = _layout(fig, meta, f"Fig. 5 — S1 precision vs k at {_pct(cfg['fixed_fraction'])}", note,
                  width=1250, height=640)
    return fig


# ---------------------------------------------------------------------------- Fig. 6
def fig6_j(rows: list[dict], meta: dict) -> go.Figure:
    """S1, S2, S3 vs j for the ratio samplers; weighted variants (which ignore j) dashed."""
    cfg = meta["config"]
    k = cfg["k"]
    metrics = ("s1", "s2", "s3")
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.075,
                        subplot_titles=[_PANEL_TITLES[m].format(k=k) for m in metrics])
    js = sorted({r["j"] for r in rows if r["j"] is not None}) or list(cfg["js"])
    for name in _samplers(rows):
        weighted = name.endswith("-weighted")
        mine = sorted((r for r in rows if r["sampler"] == name), key=lambda r: (r["j"] is None, r["j"] or 0))
        flat = all(r["j"] is None for r in mine)
        label = f"{name} (ignores j)" if weighted and flat else name
        for col, metric in enumerate(metrics, start=1):
            style = dict(color=sampler_color(name), width=2.5, dash="dash" if weighted else "solid")
            if flat:  # one value for every j: a horizontal line; its spread over draws as a bar at the end
                r = mine[0]
                fig.add_trace(go.Scatter(
                    x=[js[0], js[-1]], y=[r[f"{metric}_mean"]] * 2, mode="lines", name=label, legendgroup=name,
                    showlegend=col == 1, line=style,
                    hovertemplate=(f"<b>{label}</b><br>{metric.upper()} mean {r[f'{metric}_mean']:.4f} over "
                                   f"{r['n_seeds']} draws (min {r[f'{metric}_min']:.4f}, "
                                   f"max {r[f'{metric}_max']:.4f})<extra></extra>"),
                ), row=1, col=col)
                if r["n_seeds"] > 1:
                    slot = [n for n in _samplers(rows) if n.endswith("-weighted")].index(name)
                    fig.add_trace(go.Scatter(
                        x=[js[-1] + (js[-1] - js[0]) * (0.025 + 0.02 * slot)], y=[r[f"{metric}_mean"]],
                        error_y=_err([r], metric), mode="markers", legendgroup=name, showlegend=False,
                        marker=dict(color=sampler_color(name), size=7, symbol="line-ew-open",
                                    line=dict(color=sampler_color(name), width=2)),
                        hoverinfo="skip"), row=1, col=col)
                continue
            fig.add_trace(go.Scatter(
                x=[r["j"] for r in mine], y=[r[f"{metric}_mean"] for r in mine], error_y=_err(mine, metric),
                mode="lines+markers", name=label, legendgroup=name, showlegend=col == 1, line=style,
                marker=dict(color=sampler_color(name), size=8),
                customdata=[[r["n_sample"], r["n_seeds"]] for r in mine],
                hovertemplate=(f"<b>{label}</b><br>j = %{{x}}, n = %{{customdata[0]}}<br>{metric.upper()} "
                               "%{y:.4f} (%{customdata[1]} draw(s))<extra></extra>"),
            ), row=1, col=col)
        for col, metric in enumerate(metrics, start=1):
            fig.update_yaxes(title_text=_Y_TITLES[metric].format(k=k), row=1, col=col)
    span = js[-1] - js[0] or 1.0
    fig.update_xaxes(title_text="j (share of boundary items; 0 = exemplars only)", tickvals=js,
                     range=[js[0] - 0.04 * span, js[-1] + 0.1 * span])
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_yaxes(rangemode="tozero", row=1, col=3)
    draw = "a new fit and a new sample seed" if _fits_repeated(meta) else "a new sample seed"
    note = (f"{_pct(cfg['fixed_fraction'])} samples, k = {k}; mean of {cfg['seeds']} draws, bars = min–max; "
            f"dashed: weighted variants (probability ∝ 1/likelihood ratio, j not used; a draw is {draw}), "
            "bar at the right; S1 leaves out layers of ≤ k units")
    return _layout(fig, meta, "Fig. 6 — effect of the tuning factor j", note, width=1650, height=620)


# ---------------------------------------------------------------------------- Fig. 7
def _fmt_seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{1e3 * s:.3g} ms"
    return f"{1e6 * s:.3g} µs"


def fig7_time(rows: list[dict], meta: dict) -> go.Figure:
    """Median time to create a sample per sampler (log scale): from scratch, and sample() only."""
    cfg = meta["config"]
    names = _samplers(rows)
    fig = go.Figure()
    styles = {
        "create": dict(symbol="circle", size=16, label="fit + sample(), from scratch (as the report's Fig. 7)"),
        "sample": dict(symbol="diamond-open", size=14, label="sample() only, on a cached fit"),
    }
    for mode, st in styles.items():
        mine = {r["sampler"]: r for r in rows if r["mode"] == mode}
        present = [n for n in names if n in mine]
        if not present:
            continue
        colors = [sampler_color(n) for n in present]
        fig.add_trace(go.Scatter(
            x=present, y=[mine[n]["median_s"] for n in present], mode="markers+text" if mode == "create" else "markers",
            text=[_fmt_seconds(mine[n]["median_s"]) for n in present] if mode == "create" else None,
            textposition="middle right", textfont=dict(size=13),
            error_y=dict(type="data", symmetric=False, thickness=1.2, width=4, color="#666",
                         array=[mine[n]["max_s"] - mine[n]["median_s"] for n in present],
                         arrayminus=[mine[n]["median_s"] - mine[n]["min_s"] for n in present]),
            marker=dict(color=colors, symbol=st["symbol"], size=st["size"],
                        line=dict(color=colors if mode == "sample" else "white", width=2.5 if mode == "sample" else 1)),
            name=st["label"], showlegend=False,
            customdata=[[mine[n]["n_runs"], mine[n]["min_s"], mine[n]["max_s"], _fmt_seconds(mine[n]["median_s"])]
                        for n in present],
            hovertemplate=("<b>%{x}</b><br>" + st["label"] + "<br>median %{customdata[3]} of %{customdata[0]} run(s)"
                           "<br>min %{customdata[1]:.3g} s, max %{customdata[2]:.3g} s<extra></extra>"),
        ))
        # A grey legend entry per mode (the markers themselves carry the samplers' colours).
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=st["label"],
                                 marker=dict(color="#555", symbol=st["symbol"], size=12,
                                             line=dict(color="#555", width=2))))
    fig.update_yaxes(type="log", title_text=f"time to create a {_pct(cfg['fixed_fraction'])} sample (s, log scale)",
                     exponentformat="power", dtick=1)
    fig.update_xaxes(title_text="sampler", tickangle=-30,
                     tickfont=dict(size=14))
    note = (f"median of runs (bars: min–max); up to {cfg['time_create_repeats']} creations from scratch, "
            f"{cfg['time_sample_repeats']} sample() calls; {meta.get('machine', '')}")
    fig = _layout(fig, meta, "Fig. 7 — sample creation time", note, width=1250, height=680)
    fig.update_layout(margin=dict(b=190), legend=dict(y=-0.32))
    # Tick labels in the samplers' colours.
    fig.update_xaxes(tickmode="array", tickvals=names,
                     ticktext=[f"<span style='color:{sampler_color(n)}'><b>{n}</b></span>" for n in names])
    return fig


# ---------------------------------------------------------------------------- Table IV
def table4(rows: list[dict], meta: dict) -> go.Figure:
    """Table IV as a plotly table: our counts beside the report's."""
    cfg = meta["config"]
    seeds = cfg["seeds"]
    names, name_colors, sizes, counts, spread, mnist, gz = [], [], [], [], [], [], []
    for r in rows:
        name = r["sampler"]
        natural = r["size_mode"] == "natural"
        shown = f"{name} (natural tree)" if natural else name
        names.append(f"<b>{shown}</b>")
        name_colors.append(sampler_color(name) if name != "all" else "#222")
        low, high = r.get("n_sample_min", r["n_sample"]), r.get("n_sample_max", r["n_sample"])
        size = f"{r['n_sample']:g}" if low == high else f"{r['n_sample']:.4g} ({low:g}–{high:g})"
        sizes.append(f"{size} ({_pct(r['fraction'])})")
        counts.append(f"{r['n_correct_mean']:.4g} ({r['n_incorrect_mean']:.3g})")
        spread.append("" if r["n_seeds"] <= 1 else f"{r['n_incorrect_min']:g}–{r['n_incorrect_max']:g} over {r['n_seeds']}")
        report_key = name if (name != "eb-tree" or natural) else None
        ref = REPORT_TABLE_IV.get(report_key, ("", ""))
        mnist.append(ref[0])
        gz.append(ref[1])
    header = ["sampler", "items (fraction)", "correct (incorrect), ours", "incorrect: range over draws",
              "report: MNIST", "report: Galaxy Zoo2"]
    fig = go.Figure(go.Table(
        columnwidth=[230, 150, 200, 210, 140, 160],
        header=dict(values=[f"<b>{h}</b>" for h in header], fill_color="#f0f0f0", align="left",
                    font=dict(size=14), height=34),
        cells=dict(values=[names, sizes, counts, spread, mnist, gz], align="left", height=30,
                   font=dict(size=14, color=[name_colors] + [["#222"] * len(rows)] * 5),
                   fill_color=[["white", "#f6f6f6"] * (len(rows) // 2 + 1)]),
    ))
    draws = (f"mean of {seeds} draws (new sample seeds or new fits)" if _fits_repeated(meta)
             else f"randomised samplers: mean of {seeds} draws")
    note = (f"{_pct(cfg['fixed_fraction'])} samples (j = {cfg['j']}); {draws}; the report's counts are for its own models and data (its VAS Galaxy Zoo2 entry "
            "492(4) is as printed)")
    fig = _layout(fig, meta, "Table IV — correctly (incorrectly) classified items per sample", note,
                  width=1250, height=105 + 34 + 31 * len(rows) + 45)
    fig.update_layout(margin=dict(b=20, t=105))
    return fig


# ---------------------------------------------------------------------------- all
def build_figures(results_dir, *, fixed_width: bool = True) -> dict[str, go.Figure]:
    """Every figure of a results folder, keyed by file stem (see :data:`FIGURES`).

    Figures whose CSV is missing are left out. Pure: reads files, builds figures, no side effects.
    ``fixed_width=False`` lets a figure take the width of its container (for the app); the
    height stays.

    Raises
    ------
    FileNotFoundError
        If the folder has no ``run.json`` (no experiment has finished there).
    """
    results_dir = Path(results_dir)
    meta = load_run(results_dir)
    builders = {"fig4_fraction": fig4_fraction, "fig5_topk": fig5_topk, "fig6_j": fig6_j,
                "fig7_time": fig7_time, "table4": table4}
    figures = {}
    for stem, builder in builders.items():
        path = results_dir / f"{stem}.csv"
        if path.is_file():
            rows = read_csv(path)
            if rows:
                fig = builder(rows, meta)
                if not fixed_width:
                    fig.update_layout(width=None, autosize=True)
                figures[stem] = fig
    return figures


def figures_for_dataset(dataset: str, weights_hash: str | None = None,
                        root: str | Path = RESULTS_ROOT) -> tuple[dict[str, go.Figure], str | None]:
    """The figures of a data set's results folder for the app, and a note to show with them.

    Parameters
    ----------
    dataset : str
        The loaded data set's name (``ws.dataset.name``).
    weights_hash : str, optional
        The loaded model's ``ws.model_info["weights_hash"]``; when the results were computed for
        other weights the figures are still returned, with a note saying so.
    root : path
        Folder of results folders (default: the repository's ``results/``).

    Returns
    -------
    figures : dict
        Empty when there are no results; the note then says which command makes them.
    note : str or None
    """
    folder = results_dir_for(dataset, root)
    try:
        meta = load_run(folder)
    except FileNotFoundError:
        return {}, (f"No experiment results for {dataset!r} in {folder}. Make them with "
                    f"`python -m dldiag.experiments --dataset {dataset} --out {folder}`.")
    note = None
    if weights_hash and meta.get("weights_hash") and meta["weights_hash"] != weights_hash:
        note = (f"These results were computed for other weights of {dataset!r} "
                f"(hash {meta['weights_hash'][:12]}, loaded {weights_hash[:12]}); re-run "
                f"`python -m dldiag.experiments --dataset {dataset} --out {folder}` for this model.")
    return build_figures(folder, fixed_width=False), note
