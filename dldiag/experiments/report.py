"""Files of a results folder: each figure as PNG (kaleido, scale 2) and interactive HTML,
Table IV as markdown (``table4.md``) and the ranking of the samplers (``summary.md``).

HTML files work offline: plotly.js is not inlined in each file but written once, either into the
results folder (``plotlyjs="directory"``, the default) or into its parent folder, shared by every
results folder beside it (``plotlyjs="shared"``, used for the committed ``results/``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .figures import FIGURES, REPORT_TABLE_IV, build_figures, load_run, results_dir_for
from .summary import read_csv

__all__ = ["write_report", "table4_markdown", "summary_markdown", "png_export_problem", "PNG_HINT"]

PLOTLYJS_MODES = ("directory", "shared", "inline")

#: How to get PNG export where :func:`png_export_problem` finds none.
PNG_HINT = ("for PNGs install Chromium (`apt-get install chromium`) or run `plotly_get_chrome`, then "
            "run the same command again (finished cells are reused)")


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _ensure_shared_plotlyjs(folder: Path) -> None:
    """``folder/plotly.min.js`` of the installed plotly, written if absent or of another version."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    path = folder / "plotly.min.js"
    stamp = f"/* plotly.js v{get_plotlyjs_version()} */"
    if path.is_file():
        with open(path) as fh:
            if fh.readline().strip() == stamp:
                return
    _write_text_atomic(path, stamp + "\n" + get_plotlyjs())


def png_export_problem() -> str | None:
    """Why figures cannot be written as PNG here, or ``None`` when they can.

    A real export of an empty figure through :func:`plotly.io.to_image`, the path that
    :func:`write_report` takes, so that the answer is the export's own. kaleido (>= 1) renders
    in a Chrome or Chromium that choreographer looks up: one downloaded by ``plotly_get_chrome``
    first, else ``$BROWSER_PATH``, else the browser names on ``PATH`` and their usual install
    paths (``/usr/bin/chromium``). Without a browser this fails in about 0.1 s; with one it
    starts it once (1–3 s). Nothing is cached: each call probes again.

    Returns
    -------
    str or None
        One line naming the problem, or ``None`` if the export works.
    """
    import importlib.util

    if importlib.util.find_spec("kaleido") is None:
        return "kaleido is not installed (`pip install 'kaleido>=1'`)"
    import plotly.graph_objects as go
    import plotly.io as pio
    from kaleido.errors import ChromeNotFoundError

    try:
        pio.to_image(go.Figure(), format="png", width=16, height=16)
    except Exception as exc:  # noqa: BLE001 - any failure means no PNGs; the caller says why
        # plotly re-raises kaleido's ChromeNotFoundError as a RuntimeError of several paragraphs.
        if isinstance(exc, ChromeNotFoundError) or isinstance(exc.__context__, ChromeNotFoundError):
            where = os.environ.get("BROWSER_PATH")
            return "kaleido found no Chrome or Chromium" + (
                f" (BROWSER_PATH={where!r} is not a browser)" if where else "")
        text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        return f"kaleido failed to export a test figure: {type(exc).__name__}: {first}"
    return None


def table4_markdown(results_dir) -> str:
    """Table IV of a results folder as a markdown table, with the report's counts beside ours."""
    results_dir = Path(results_dir)
    meta = load_run(results_dir)
    rows = read_csv(results_dir / "table4.csv")
    cfg = meta["config"]
    lines = [
        f"Table IV — correctly (incorrectly) classified items in each {100 * cfg['fixed_fraction']:g} % "
        f"sample, {meta['dataset_label']}, {meta['model_label']} (j = {cfg['j']}; {_draws_text(meta)}, "
        "with the range of incorrect items over the draws).",
        "",
        "| sampler | items | ours: correct (incorrect) | incorrect, range | report MNIST | report Galaxy Zoo2 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        natural = r["size_mode"] == "natural"
        name = f"{r['sampler']} (natural tree)" if natural else r["sampler"]
        ref = REPORT_TABLE_IV.get(r["sampler"] if (r["sampler"] != "eb-tree" or natural) else None, ("", ""))
        spread = "" if r["n_seeds"] <= 1 else f"{r['n_incorrect_min']:g}–{r['n_incorrect_max']:g}"
        low, high = r.get("n_sample_min", r["n_sample"]), r.get("n_sample_max", r["n_sample"])
        size = f"{r['n_sample']:g}" if low == high else f"{r['n_sample']:.4g} ({low:g}–{high:g})"
        lines.append(f"| {name} | {size} ({100 * r['fraction']:.3g} %) | "
                     f"{r['n_correct_mean']:.4g} ({r['n_incorrect_mean']:.3g}) | {spread} | {ref[0]} | {ref[1]} |")
    return "\n".join(lines) + "\n"


def _draws_text(meta: dict) -> str:
    seeds = meta["config"]["seeds"]
    if any(s.get("seeded_fit", False) for s in meta["samplers"].values()):
        return (f"every sampler: mean of {seeds} draws, a draw being a new sample seed or, for a sampler "
                "whose fit takes a seed, a new fit")
    return f"randomised samplers: mean of {seeds} draws"


def _apart(better: dict, worse: dict, metric: str) -> bool:
    """Whether ``better`` beats ``worse`` on every pair of draws: their min–max ranges do not meet."""
    if _BETTER[metric] is max:
        return better[f"{metric}_min"] > worse[f"{metric}_max"]
    return better[f"{metric}_max"] < worse[f"{metric}_min"]


_BETTER = {"s1": max, "s2": min, "s3": min}
_METRIC_NAMES = {"s1": "S1 precision@{k} ↑", "s2": "S2 cosine distance ↓", "s3": "S3 JS distance ↓"}


def summary_markdown(results_dir) -> str:
    """Which sampler ranks first on each query set at each fraction, and its gap to random.

    Only samplers with a line in Fig. 4 compete (the EB tree's natural sample has no fixed
    fraction); ranks are by the mean over draws. "apart" says whether the first's min–max
    range over draws is clear of the second's; in the ranks at the fixed fraction, ``≈``
    marks a sampler whose range meets that of the one ranked just above it (the order of the
    two may not survive other seeds).
    """
    results_dir = Path(results_dir)
    meta = load_run(results_dir)
    cfg = meta["config"]
    rows = [r for r in read_csv(results_dir / "fig4_fraction.csv") if r["size_mode"] == "fraction"]
    lines = [
        f"Best sampler per query set and fraction, {meta['dataset_label']}, {meta['model_label']} "
        f"(k = {cfg['k']}, j = {cfg['j']}; mean over draws; gap = best − random, in the metric's unit; "
        "apart = the first's min–max range over draws is clear of the second's).",
        "",
        "| fraction | query set | first | second | apart | random | gap to random |",
        "|---:|---|---|---|---|---:|---:|",
    ]
    for f in sorted({r["fraction"] for r in rows}):
        at = [r for r in rows if r["fraction"] == f]
        rand = next((r for r in at if r["sampler"] == "random"), None)
        for m in ("s1", "s2", "s3"):
            ranked = sorted(at, key=lambda r: r[f"{m}_mean"], reverse=_BETTER[m] is max)
            best, second = ranked[0], ranked[1] if len(ranked) > 1 else None
            gap = "" if rand is None else f"{best[f'{m}_mean'] - rand[f'{m}_mean']:+.4f}"
            apart = "" if second is None else ("yes" if _apart(best, second, m) else "no")
            lines.append(
                f"| {100 * f:g} % | {_METRIC_NAMES[m].format(k=cfg['k'])} | {best['sampler']} "
                f"{best[f'{m}_mean']:.4f} | "
                + (f"{second['sampler']} {second[f'{m}_mean']:.4f}" if second else "")
                + f" | {apart} | {'' if rand is None else format(rand[f'{m}_mean'], '.4f')} | {gap} |")
    ranks = {}
    f5 = cfg["fixed_fraction"]
    at5 = [r for r in rows if abs(r["fraction"] - f5) < 1e-12]
    if at5:
        lines += ["", f"Rank of every sampler at {100 * f5:g} % (1 = best; ≈: its min–max range over draws "
                  "meets that of the sampler ranked just above):", "",
                  "| sampler | S1 | S2 | S3 |", "|---|---:|---:|---:|"]
        for m in ("s1", "s2", "s3"):
            ordered = sorted(at5, key=lambda r: r[f"{m}_mean"], reverse=_BETTER[m] is max)
            for i, r in enumerate(ordered, start=1):
                tied = i > 1 and not _apart(ordered[i - 2], r, m)
                ranks.setdefault(r["sampler"], {})[m] = f"≈{i}" if tied else str(i)
        for name, rk in ranks.items():
            lines.append(f"| {name} | {rk['s1']} | {rk['s2']} | {rk['s3']} |")
    return "\n".join(lines) + "\n"


def _write_html(fig, folder: Path, stem: str, title: str, plotlyjs: str, scale: float) -> Path:
    """``folder/stem.html`` of ``fig``, finding plotly.js as ``plotlyjs`` says (and providing it)."""
    include = {"directory": "directory", "inline": True, "shared": "../plotly.min.js"}[plotlyjs]
    if plotlyjs != "inline":
        # plotly writes the script tag only; the file itself is ours to provide.
        _ensure_shared_plotlyjs(folder.resolve().parent if plotlyjs == "shared" else folder)
    path = folder / f"{stem}.html"
    html_text = fig.to_html(include_plotlyjs=include, full_html=True,
                            config={"displaylogo": False, "responsive": True,
                                    "toImageButtonOptions": {"format": "png", "scale": scale}})
    _write_text_atomic(path, html_text.replace("<head>", f"<head><title>{title}</title>", 1))
    return path


def add_output_args(p, *, quick_help: str) -> None:
    """``--out --quick --no-png --plotlyjs`` of the experiments beside the grid (calibration, weighting)."""
    p.add_argument("--out", default=None, help="results folder (default: results/<dataset>)")
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--no-png", action="store_true", help="skip the PNG (kaleido)")
    p.add_argument("--plotlyjs", default="directory", choices=("directory", "shared", "inline"),
                   help="where the HTML finds plotly.js (as python -m dldiag.experiments)")


def dataset_and_out(args) -> tuple[str, Path]:
    """The data set (fashion-mnist; digits with ``--quick``) and the results folder of an experiment's options."""
    dataset = args.dataset or ("digits" if args.quick else "fashion-mnist")
    return dataset, Path(args.out) if args.out else results_dir_for(dataset, "results")


def write_figure(fig, folder, stem: str, *, title: str, plotlyjs: str = "directory", png: bool = True,
                 scale: float = 2.0) -> str | None:
    """Write one figure as ``folder/stem.html`` and, if ``png``, ``folder/stem.png``.

    The HTML finds plotly.js as :func:`write_report`'s do. Returns why the PNG could not be
    written (no Chrome/Chromium for kaleido), or None.
    """
    if plotlyjs not in PLOTLYJS_MODES:
        raise ValueError(f"plotlyjs must be one of {', '.join(map(repr, PLOTLYJS_MODES))}; got {plotlyjs!r}")
    folder = Path(folder)
    _write_html(fig, folder, stem, title, plotlyjs, scale)
    problem = png_export_problem() if png else None
    if png and problem is None:
        # kaleido does not read the layout's size; pass it, so that PNG and HTML look alike.
        fig.write_image(folder / f"{stem}.png", scale=scale, width=fig.layout.width, height=fig.layout.height)
    return problem


def write_report(results_dir, *, png: bool = True, html: bool = True, plotlyjs: str = "directory",
                 scale: float = 2.0) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.html`` of every figure and ``table4.md``.

    Parameters
    ----------
    results_dir : path
        A folder written by :func:`~dldiag.experiments.runner.run_experiments`.
    png, html : bool
        Which formats to write.
    plotlyjs : {"directory", "shared", "inline"}
        Where the HTML files find plotly.js: one ``plotly.min.js`` in the folder, one in its
        parent folder, or inlined in every file.
    scale : float
        PNG scale factor over the figure's layout size.

    Returns
    -------
    list of Path
        The files written.
    """
    if plotlyjs not in PLOTLYJS_MODES:
        raise ValueError(f"plotlyjs must be one of {', '.join(map(repr, PLOTLYJS_MODES))}; got {plotlyjs!r}")
    results_dir = Path(results_dir)
    figures = build_figures(results_dir)
    written = []
    if html:
        for stem, fig in figures.items():
            written.append(_write_html(fig, results_dir, stem, FIGURES.get(stem, stem), plotlyjs, scale))
    if png and figures:
        import plotly.io as pio

        stems = list(figures)
        paths = [results_dir / f"{s}.png" for s in stems]
        figs = [figures[s] for s in stems]
        # kaleido does not read the layout's size; pass it, so that PNG and HTML look alike.
        pio.write_images(figs, paths, scale=scale, width=[f.layout.width for f in figs],
                         height=[f.layout.height for f in figs])
        written += paths
    if (results_dir / "table4.csv").is_file():
        path = results_dir / "table4.md"
        _write_text_atomic(path, table4_markdown(results_dir))
        written.append(path)
    if (results_dir / "fig4_fraction.csv").is_file():
        path = results_dir / "summary.md"
        _write_text_atomic(path, summary_markdown(results_dir))
        written.append(path)
    return written
