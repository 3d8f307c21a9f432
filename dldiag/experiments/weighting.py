"""Design-weighted against plain estimates of S1–S3, for every sampler (issue 12, item 3).

Each draw (sampler, fraction, seed) gets one forward pass over its sample, which yields both
the plain aggregates and the design-weighted ones (:func:`dldiag.weighting.weighted_pass`);
both are scored against the full data. Every sampler with a seed is drawn ``seeds`` times, as in
the report's experiments: a randomised sampler gets a new sample seed, a sampler whose fit takes
a seed (the ratio samplers, VAS, the EB tree and the weighted variants) a new fit with fit seed
``fit_seed + draw``, so the spread over draws is the spread over fits. Random and stratified-cm
keep their one (unseeded) fit; a sampler with neither seed would be drawn once.

Examples
--------
::

    python -m dldiag.experiments.weighting --dataset fashion-mnist --out results/fashion-mnist
    python -m dldiag.experiments.weighting --quick --out /tmp/w      # digits, 2 seeds

Writes ``weighting.csv`` (one row per draw and estimator), ``weighting_summary.csv`` (means,
min and max over draws), ``weighting.md`` (the table), ``weighting.png`` and ``weighting.html``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from .._cli_args import add_workspace_args, float_list, workspace_kwargs
from .._validation import check_fraction, check_int, check_interval

__all__ = ["run_weighting", "summarise", "weighting_figure", "weighting_markdown", "main"]

METRICS = ("s1", "s2", "s3")
#: Higher is better for S1, lower for S2 and S3: the sign that turns a difference into a gain.
_BETTER = {"s1": 1.0, "s2": -1.0, "s3": -1.0}
_OUTCOMES = ("correct", "incorrect")


def _scores(acc) -> dict:
    row = {m: acc.overall[m] for m in METRICS}
    for outcome in _OUTCOMES:
        mine = [g for g in acc.groups if g["outcome"] == outcome]
        for m in METRICS:
            # As the overall figure: no layer whose S1 is 1 by construction enters an S1 mean.
            used = [g[m] for g in mine if not (m == "s1" and g.get("s1_trivial"))]
            row[f"{m}_{outcome}"] = float(np.mean(used)) if used else float("nan")
    return row


def run_weighting(ws, *, fractions=(0.05, 0.1, 0.2), seeds: int = 10, k: int = 10, j: float = 0.7,
                  fit_seed: int = 0, samplers=None, n_bins: int = 5, log=None) -> list[dict]:
    """Plain and weighted scores of every draw.

    Parameters
    ----------
    ws : Workspace
    fractions : sequence of float
        Sample fractions.
    seeds : int
        Draws of each sampler with a seed (draws 0..seeds-1): sample seed ``draw`` for a
        randomised sampler, fit seed ``fit_seed + draw`` for a seeded fit.
    k : int
        Top-k of S1.
    j : float
        Boundary share of the unweighted ratio samplers.
    fit_seed : int
        Fit seed of draw 0 (and of every draw of a sampler whose fit takes no seed).
    samplers : sequence of str, optional
        Default: every registered sampler.
    n_bins : int
        Post-stratification bins per group.
    log : callable, optional
        Receives one line per sampler.

    Returns
    -------
    list of dict
        One row per (sampler, fraction, draw, estimator); ``seed`` is the draw's sample seed and
        ``fit_seed`` its fit's seed.
    """
    from ..queries import evaluate
    from ..sampling import SAMPLER_NAMES, SAMPLERS
    from ..weighting import design_weights, weighted_aggregates

    fractions = tuple(sorted({float(check_fraction(f)) for f in fractions}))
    seeds = check_int("seeds", seeds, 1)
    j = check_interval("j", j, 0.0, 1.0)
    names = list(SAMPLER_NAMES) if samplers is None else list(samplers)
    unknown = [n for n in names if n not in SAMPLER_NAMES]
    if unknown:
        raise ValueError(f"samplers must be among {', '.join(map(repr, SAMPLER_NAMES))}; got {unknown}")
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    rows = []
    for name in names:
        start = time.perf_counter()
        cls = SAMPLERS[name]
        draws = range(seeds) if (cls.randomised or cls.seeded_fit) else (0,)
        for draw in draws:
            # As the main grid (runner.fit_seed_of): a seeded fit is refitted per draw.
            draw_fit_seed = fit_seed + draw if cls.seeded_fit else fit_seed
            sampler = ws.fitted_sampler(name, seed=draw_fit_seed)
            seed = draw if cls.randomised else 0
            for fraction in fractions:
                idx = sampler.sample(fraction, j=j, seed=seed)
                dw = design_weights(ws, sampler, idx, n_bins=n_bins)
                plain, weighted = weighted_aggregates(ws, idx, dw.weights)
                base = {"sampler": name, "fraction": fraction, "seed": seed, "fit_seed": draw_fit_seed,
                        "n_sample": len(idx),
                        "n_incorrect": int(np.sum(ws.y_pred[idx] != ws.y_true[idx])),
                        "method": dw.method, "stratifier": dw.stratifier, "collapsed": dw.collapsed,
                        "max_weight_share": float(dw.weights.max() / dw.weights.sum())}
                for estimator, agg in (("plain", plain), ("weighted", weighted)):
                    rows.append({**base, "estimator": estimator, **_scores(evaluate(agg, ws.full, k=k))})
        log(f"{name}: {len(fractions) * len(draws)} draws in {time.perf_counter() - start:.1f} s")
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean, min and max over draws per (sampler, fraction, estimator), and the weighted gain.

    ``gain_<m>`` is (weighted − plain) for S1 and (plain − weighted) for S2 and S3, averaged
    over draws: positive when the weighted estimator is closer to the full data.
    """
    out = []
    keys = list(dict.fromkeys((r["sampler"], r["fraction"]) for r in rows))
    for sampler, fraction in keys:
        mine = [r for r in rows if r["sampler"] == sampler and r["fraction"] == fraction]
        by_est = {e: [r for r in mine if r["estimator"] == e] for e in ("plain", "weighted")}
        row = {"sampler": sampler, "fraction": fraction, "n_draws": len(by_est["plain"]),
               "n_sample": by_est["plain"][0]["n_sample"], "method": mine[0]["method"],
               "collapsed_mean": float(np.mean([r["collapsed"] for r in by_est["plain"]]))}
        for m in METRICS + tuple(f"{m}_{o}" for m in METRICS for o in _OUTCOMES):
            for e, rs in by_est.items():
                vals = np.array([r[m] for r in rs], dtype=float)
                row[f"{m}_{e}"] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
                if m in METRICS:
                    row[f"{m}_{e}_min"], row[f"{m}_{e}_max"] = float(vals.min()), float(vals.max())
        for m in METRICS:
            diffs = np.array([_BETTER[m] * (w[m] - p[m]) for p, w in zip(by_est["plain"], by_est["weighted"])])
            row[f"gain_{m}"] = float(diffs.mean())
            row[f"gain_{m}_min"], row[f"gain_{m}_max"] = float(diffs.min()), float(diffs.max())
        out.append(row)
    return out


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def weighting_markdown(summary: list[dict], meta: dict) -> str:
    """The table: plain → weighted per sampler and fraction, with the gain's sign in bold."""
    lines = [f"## Weighted vs plain estimates — {meta['dataset']} (N = {meta['n_items']}, k = {meta['k']}, "
             f"j = {meta['j']}, every sampler with a seed over {meta['seeds']} draws: new sample seeds, "
             "or new fits for the samplers whose fit takes a seed)", "",
             "Gain = how much closer to the full data the weighted estimate is (S1: weighted − plain; "
             "S2, S3: plain − weighted); positive favours weighting.", "",
             "| sampler | weights | f | n | S1 plain → weighted | S2 plain → weighted | S3 plain → weighted "
             "| S1 correct groups plain → weighted |",
             "|---|---|---:|---:|---|---|---|---|"]
    for r in summary:
        cells = []
        for m in METRICS:
            g = r[f"gain_{m}"]
            mark = f"**{g:+.4f}**" if abs(g) >= 1e-4 else f"{g:+.4f}"
            cells.append(f"{r[f'{m}_plain']:.4f} → {r[f'{m}_weighted']:.4f} ({mark})")
        cells.append(f"{r['s1_correct_plain']:.3f} → {r['s1_correct_weighted']:.3f}")
        lines.append(f"| {r['sampler']} | {r['method']} | {100 * r['fraction']:g} % | {r['n_sample']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def weighting_figure(summary: list[dict], meta: dict):
    """Gain of the weighted estimator per sampler (bars, one per fraction), S1, S2, S3 side by side."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from ..palette import sampler_color

    titles = {"s1": "S1 precision@{k}: weighted − plain", "s2": "S2 cosine distance: plain − weighted",
              "s3": "S3 JS distance: plain − weighted"}
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.06,
                        subplot_titles=[titles[m].format(k=meta["k"]) for m in METRICS])
    samplers = list(dict.fromkeys(r["sampler"] for r in summary))
    fractions = sorted({r["fraction"] for r in summary})
    opacity = dict(zip(fractions, np.linspace(0.45, 1.0, len(fractions))))
    for fraction in fractions:
        mine = [r for r in summary if r["fraction"] == fraction]
        for col, m in enumerate(METRICS, start=1):
            fig.add_trace(go.Bar(
                x=[r["sampler"] for r in mine], y=[r[f"gain_{m}"] for r in mine],
                marker=dict(color=[sampler_color(r["sampler"]) for r in mine], opacity=float(opacity[fraction]),
                            pattern_shape=["/" if r["sampler"].endswith("-weighted") else "" for r in mine]),
                error_y=dict(type="data", symmetric=False, thickness=1.2, width=3,
                             array=[r[f"gain_{m}_max"] - r[f"gain_{m}"] for r in mine],
                             arrayminus=[r[f"gain_{m}"] - r[f"gain_{m}_min"] for r in mine]),
                name=f"{100 * fraction:g} %", legendgroup=str(fraction), showlegend=col == 1,
                customdata=[[r[f"{m}_plain"], r[f"{m}_weighted"], r["n_draws"], r["method"]] for r in mine],
                hovertemplate=(f"<b>%{{x}}</b> at {100 * fraction:g} %<br>{m.upper()} plain %{{customdata[0]:.4f}}, "
                               "weighted %{customdata[1]:.4f}<br>gain %{y:+.4f} (mean of %{customdata[2]} draw(s))"
                               "<br>weights: %{customdata[3]}<extra></extra>"),
            ), row=1, col=col)
    fig.update_layout(
        title=dict(text=(f"<b>Design-weighted vs plain estimates</b> · {meta['dataset']} (N = {meta['n_items']})"
                         "<br><span style='font-size:13px;color:#555'>bars above 0: the weighted estimate is closer "
                         f"to the full data; one bar per fraction (lighter = smaller); mean of {meta['seeds']} draws "
                         f"(sample seeds or fit seeds), whiskers = min–max; j = {meta['j']}</span>"),
                   x=0.01, xanchor="left", font=dict(size=18)),
        barmode="group", template="plotly_white", width=1500, height=560,
        font=dict(family="Arial, Helvetica, sans-serif", size=14, color="#222"),
        margin=dict(l=70, r=30, t=110, b=170),
        legend=dict(title="fraction", orientation="h", x=0.5, xanchor="center", y=-0.42, yanchor="top"),
    )
    fig.update_xaxes(tickangle=-40, categoryorder="array", categoryarray=samplers)
    fig.update_yaxes(zeroline=True, zerolinecolor="#888", gridcolor="#e5e5e5")
    return fig


def build_parser() -> argparse.ArgumentParser:
    from .report import add_output_args

    p = argparse.ArgumentParser(prog="python -m dldiag.experiments.weighting",
                                description="Design-weighted vs plain estimates of S1-S3 for every sampler.")
    add_workspace_args(p, dataset_default=None)
    add_output_args(p, quick_help="2 seeds (default dataset: digits)")
    p.add_argument("--seeds", type=int, default=None,
                   help="draws per sampler with a sample or fit seed (default 10; 2 with --quick)")
    p.add_argument("--fractions", type=float_list, default=(0.05, 0.1, 0.2),
                   help="comma-separated fractions (default 0.05,0.1,0.2)")
    p.add_argument("--n-bins", type=int, default=5, help="post-stratification bins per group (default 5)")
    return p


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    from ..artifacts import load_workspace
    from .report import PNG_HINT, dataset_and_out, write_figure

    dataset, out = dataset_and_out(args)
    seeds = args.seeds or (2 if args.quick else 10)
    fractions = args.fractions
    start = time.perf_counter()
    try:
        ws = load_workspace(dataset, **workspace_kwargs(args), show_progress=False)
        t_load = time.perf_counter() - start
        rows = run_weighting(ws, fractions=fractions, seeds=seeds, n_bins=args.n_bins)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t_cells = time.perf_counter() - start - t_load
    out.mkdir(parents=True, exist_ok=True)
    meta = {"dataset": ws.dataset.name, "n_items": ws.n_items, "k": 10, "j": 0.7, "seeds": seeds,
            "fractions": list(fractions), "n_bins": args.n_bins, "weights_hash": ws.model_info.get("weights_hash"),
            "load_seconds": t_load, "cells_seconds": t_cells,
            "command": "python -m dldiag.experiments.weighting " + " ".join(sys.argv[1:] if argv is None else argv)}
    summary = summarise(rows)
    _write_csv(out / "weighting.csv", rows)
    _write_csv(out / "weighting_summary.csv", summary)
    (out / "weighting.md").write_text(weighting_markdown(summary, meta))
    problem = write_figure(weighting_figure(summary, meta), out, "weighting", title="Weighted vs plain estimates",
                           plotlyjs=args.plotlyjs, png=not args.no_png)
    meta["total_seconds"] = time.perf_counter() - start
    (out / "weighting.json").write_text(json.dumps(meta, indent=1))
    print(f"{ws.dataset.name}: {len(rows) // 2} draws; load {t_load:.1f} s, draws {t_cells:.1f} s, "
          f"total {meta['total_seconds']:.1f} s; wrote weighting.csv, weighting_summary.csv, weighting.md, "
          f"weighting.html{'' if problem or args.no_png else ', weighting.png'} to {out}/")
    if problem and not args.no_png:
        print(f"PNG export skipped: {problem}; {PNG_HINT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
