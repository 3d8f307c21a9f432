"""``python -m dldiag.bench density``: the latent view's density image at 10^4, 10^5, 10^6 items (issue 13).

Time to first paint on the server: what the latent callback does for a new view of N items
drawn as a density (:func:`dldiag.app.figures.latent_figure` above its threshold), from the
projection and labels in memory to the JSON the browser receives:

- **style**: every item's colour code, the sample's marker arrays (:func:`~dldiag.app.figures.latent_style`);
- **figure**: the density image rendered for every item's extent (datashader, per class), its PNG,
  the scatter of the sample's points;
- **JSON**: the figure encoded as dash sends it (plotly's encoder);

and the **zoom** re-render: the density image alone for the middle quarter of the extent (half
of each axis), as a relayout patch sends it. Medians of ``--repeat`` runs, after
:func:`dldiag.density.warm_up` (the numba compilation, once per process, timed apart). The
browser's own decoding and drawing are not included.

The points are a projection and its labels from ``--projection``/``--labels`` (``.npy``), or by
default synthetic: ten Gaussian clusters in 2-d, of different spreads and partly overlapping,
an item's label its cluster (:func:`clustered`). The sample on top is a seeded random 5 % (the
app's default fraction).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ._report import machine, median, write_section

__all__ = ["main", "first_paint_seconds", "clustered", "GOAL_S"]

#: The issue's goal for the first paint at 10^6 items (seconds, on the server).
GOAL_S = 3.0
#: The app's default sample fraction: the points drawn over the density.
SAMPLE_FRACTION = 0.05


def clustered(n: int, n_classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic 2-d points in ``n_classes`` Gaussian clusters and each one's cluster.

    Cluster centres are uniform in [-10, 10]², spreads between 0.6 and 1.8, so some clusters
    overlap as classes of a real projection do. Same ``seed``, same points.
    """
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10.0, 10.0, size=(n_classes, 2))
    spread = rng.uniform(0.6, 1.8, size=n_classes)
    labels = rng.integers(0, n_classes, n)
    xy = centres[labels] + rng.normal(size=(n, 2)) * spread[labels, None]
    return xy.astype(np.float32), labels.astype(np.int64)


def _timed(fn, repeat: int) -> tuple[list[float], object]:
    out, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        out.append(time.perf_counter() - start)
    return out, value


def first_paint_seconds(projection: np.ndarray, categories: np.ndarray, repeat: int = 5, *,
                        n_classes: int | None = None, fraction: float = SAMPLE_FRACTION, seed: int = 0) -> dict:
    """Server-side time to first paint of the latent view drawn as a density, and of a zoom.

    Parameters
    ----------
    projection : ndarray (N, 2)
    categories : ndarray of int (N,)
        Each item's class (the view is coloured by it, one colour per class).
    repeat : int
        Runs of each step; medians are reported.
    n_classes : int, optional
        Default ``categories.max() + 1``.
    fraction : float
        The sample drawn over the density: a seeded random ``fraction`` of the items.

    Returns
    -------
    dict
        ``n``, ``sample``, ``warm_up_s`` (numba compilation, once per process), the medians
        ``style_s``, ``figure_s``, ``json_s`` and ``total_s`` (the median of the runs' sums),
        ``zoom_s`` (the density image alone for the middle quarter, with its JSON),
        ``figure_kb`` and ``image_kb`` (the JSON sent, the PNG in it), ``runs`` (each run's total).
    """
    import plotly.io.json as pjson

    from .. import density
    from ..app import figures as F

    xy = np.asarray(projection, dtype=np.float32)
    labels = np.asarray(categories)
    if xy.ndim != 2 or xy.shape[1] != 2 or labels.shape != (len(xy),):
        raise ValueError(f"projection must be (N, 2) and categories (N,); got {xy.shape} and {labels.shape}")
    n = len(xy)
    n_classes = int(labels.max()) + 1 if n_classes is None else int(n_classes)
    names = [f"class {i}" for i in range(n_classes)]
    members = np.zeros(n, dtype=bool)
    members[np.random.default_rng(seed).choice(n, max(1, round(fraction * n)), replace=False)] = True
    warm = density.warm_up(F.density_category_counts(n_classes))

    style_t, fig_t, json_t, totals = [], [], [], []
    fig = text = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        style = F.latent_style(labels, labels, members, color_by="true", class_names=names, sampler="random")
        t1 = time.perf_counter()
        fig = F.latent_figure(xy, style, title="latent", projection="bench", dense=True)
        t2 = time.perf_counter()
        text = pjson.to_json_plotly(fig)
        t3 = time.perf_counter()
        style_t.append(t1 - t0)
        fig_t.append(t2 - t1)
        json_t.append(t3 - t2)
        totals.append(t3 - t0)
    full = F.density_viewport(xy)
    (x0, x1), (y0, y1) = full.x_range, full.y_range
    zoom = F.density_viewport(xy, x_range=(x0 + (x1 - x0) / 4, x1 - (x1 - x0) / 4),
                              y_range=(y0 + (y1 - y0) / 4, y1 - (y1 - y0) / 4))
    codes, colors = F.latent_background(labels, labels, color_by="true", n_classes=n_classes)
    zoom_t, _ = _timed(lambda: pjson.to_json_plotly([F.density_layer(xy, codes, colors, zoom)]), repeat)
    image = fig["layout"]["images"][0]["source"]
    return {"n": n, "sample": int(members.sum()), "warm_up_s": warm, "style_s": median(style_t),
            "figure_s": median(fig_t), "json_s": median(json_t), "total_s": median(totals),
            "zoom_s": median(zoom_t), "figure_kb": len(text) / 1000, "image_kb": len(image) * 3 / 4 / 1000,
            "runs": totals}


def _parse_ns(text: str) -> list[int]:
    try:
        ns = [int(float(v)) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--n must be comma-separated item counts; got {text!r}") from None
    if not ns or min(ns) < 2:
        raise argparse.ArgumentTypeError(f"--n must be item counts of at least 2; got {text!r}")
    return ns


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dldiag.bench density")
    parser.add_argument("--n", type=_parse_ns, default=[10_000, 100_000, 1_000_000],
                        help="item counts, comma-separated (default 1e4,1e5,1e6)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--projection", help="a projection (N, 2) as .npy; its first N rows are used per N")
    parser.add_argument("--labels", help="its items' classes (N,) as .npy (with --projection)")
    parser.add_argument("--quick", action="store_true", help="two small N, one run each, nothing written")
    parser.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.repeat, args.write = [2_000, 20_000], 1, False
    if (args.projection is None) != (args.labels is None):
        parser.error("--projection and --labels go together")
    if args.projection:
        xy_all, y_all = np.load(args.projection), np.load(args.labels)
        if max(args.n) > len(xy_all):
            parser.error(f"--n asks for {max(args.n):,} items; the projection has {len(xy_all):,}")
        source = f"the projection {args.projection} (first N rows) and its labels {args.labels}"
    else:
        xy_all, y_all = clustered(max(args.n))
        source = ("synthetic: ten Gaussian clusters in 2-d, partly overlapping, labelled by cluster "
                  "(`dldiag.bench.density.clustered`, seed 0; first N rows)")
    results = []
    for n in args.n:
        r = first_paint_seconds(xy_all[:n], y_all[:n], args.repeat)
        results.append(r)
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items() if k != "runs"}),
              flush=True)

    import datashader

    from ..app import figures as F

    width, height = F.DENSITY_PIXELS[False]
    rows = [f"| {r['n']:,} | {r['sample']:,} | {r['style_s']:.3f} | {r['figure_s']:.3f} | {r['json_s']:.3f} | "
            f"**{r['total_s']:.2f}** | {r['zoom_s']:.3f} | {r['figure_kb']:,.0f} | {r['image_kb']:,.0f} |"
            for r in results]
    biggest = results[-1]
    verdict = ("meets" if biggest["total_s"] <= GOAL_S else "misses") + f" the goal of {GOAL_S:g} s"
    command = "python -m dldiag.bench density" + ("" if args.n == [10_000, 100_000, 1_000_000] else
                                                  " --n " + ",".join(str(n) for n in args.n))
    command += f" --repeat {args.repeat}" + (f" --projection {args.projection} --labels {args.labels}"
                                             if args.projection else "") + " --write"
    lines = [
        "## The latent view as a density image (`python -m dldiag.bench density`)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}; datashader {datashader.__version__}  ",
        f"Points: {source}. The view coloured by class, a density image of {width}×{height} px (datashader "
        f"count_cat per class, eq_hist) under a random {SAMPLE_FRACTION:.0%} sample's points. Medians of "
        f"{args.repeat} runs after the numba compilation (warm-up, once per process: "
        f"{results[0]['warm_up_s']:.1f} s at the app's start, not in a request). Server side only: the browser's "
        "decoding and drawing are not in these times.",
        "",
        "| items | sample points | style (s) | figure: density + PNG + scatter (s) | JSON (s) | first paint (s) "
        "| zoom re-render (s) | figure JSON (kB) | PNG (kB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"At {biggest['n']:,} items the first paint takes {biggest['total_s']:.2f} s: it {verdict}. A zoom or pan "
        "re-renders the image for the axes shown (the middle quarter here) and patches it alone.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("density", text)
    return 0
