"""``python -m dldiag.bench projection``: the latent view's UMAP at growing N, stage by stage (issue 13).

For each N (``--n``, default 10,000, 100,000 and 1,000,000) the latent of the wide workload
(:mod:`dldiag.workloads`: augmented Fashion-MNIST for the shipped LeNet-5, 84-d) is computed once
by the latent pass and kept under ``--work``; then :func:`dldiag.projections.project` is timed
``--repeat`` times, stage by stage: standardising, the UMAP fit (on all items up to
:data:`~dldiag.projections.UMAP_FIT_MAX`, else on a seeded subsample of that size) and the
placement of every other item. UMAP's first call compiles numba code: a small projection (fit
and both placements) runs first, untimed. Each stage's growth exponent is the slope of
log(time) against log(N) between the smallest and the largest N (for the placement, those N
where items are placed).

Quality, at one N (``--compare-n``, default 100,000 or else the largest N): the same fit with the
rest placed by umap's ``transform`` (the previous method) against the default placement by
fitted neighbours. On up to 5,000 seeded items among the placed ones: the 10-NN accuracy of the
true label in 2-D (neighbours among 20,000 other seeded items; the same in the latent space as
a ceiling), trustworthiness (scikit-learn, 10 neighbours, 3,000 seeded items of all) and the mean
distance between the two placements of an item over the map's RMS radius (both share the fitted
items' positions, so no alignment is needed). ``--before-n`` also times ``transform`` at other N.

:func:`projection_seconds` is the plain function behind the timings (``python -m dldiag.bench
scale`` can call it).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from ._report import machine, median, write_section

__all__ = ["main", "projection_seconds", "placement_quality", "wide_latent"]

_STAGES = ("standardise_s", "fit_s", "place_s", "total_s", "cpu_s")


def _timed(latent, method, seed, **options):
    from ..projections import project

    stages: dict = {}
    wall, cpu = time.perf_counter(), time.process_time()
    xy = project(latent, method, seed=seed, timings=stages, **options)
    times = {f"{k}_s": v for k, v in stages.items()}
    times.update(total_s=time.perf_counter() - wall, cpu_s=time.process_time() - cpu)
    return xy, times


def projection_seconds(latent: np.ndarray, method: str = "umap", *, seed: int = 0, **options) -> dict:
    """Seconds of each stage of ``project(latent, method, seed=seed, **options)``.

    Returns
    -------
    dict
        ``n``; ``fit_items`` (items UMAP is fitted on; N for the other methods);
        ``standardise_s``, ``fit_s``, ``place_s`` (0 where nothing is placed) and ``total_s``,
        wall-clock; ``cpu_s``, the process's CPU seconds over the call (all threads).

    Examples
    --------
    >>> t = projection_seconds(np.random.default_rng(0).normal(size=(200, 5)), "pca")
    >>> sorted(t), t["fit_items"]
    (['cpu_s', 'fit_items', 'fit_s', 'n', 'place_s', 'standardise_s', 'total_s'], 200)
    """
    from ..projections import UMAP_FIT_MAX

    _, times = _timed(latent, method, seed, **options)
    fit_max = options.get("umap_fit_max", UMAP_FIT_MAX)
    return {"n": len(latent), "fit_items": min(len(latent), fit_max) if method == "umap" else len(latent), **times}


def placement_quality(latent: np.ndarray, labels: np.ndarray, xy: np.ndarray, xy_ref: np.ndarray, placed: np.ndarray,
                      *, seed: int = 0) -> dict:
    """How well ``xy`` and the reference ``xy_ref`` (same fit) keep the latent's structure at the
    ``placed`` items (see the module's notes)."""
    from sklearn.manifold import trustworthiness
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(seed)
    n = len(latent)
    z = np.asarray(latent, dtype=np.float64)
    std = z.std(0)
    z = (z - z.mean(0)) / np.where(std > 0, std, 1.0)
    ev = np.sort(rng.choice(placed, min(5000, len(placed)), replace=False))
    ref = np.setdiff1d(np.sort(rng.choice(n, min(20_000, n), replace=False)), ev)
    sub = np.sort(rng.choice(n, min(3000, n), replace=False))

    def acc(points):
        return float(KNeighborsClassifier(10).fit(points[ref], labels[ref]).score(points[ev], labels[ev]))

    radius = float(np.sqrt(((xy_ref - xy_ref.mean(0)) ** 2).sum(1).mean()))
    return {"evaluated": len(ev), "latent_acc": acc(z), "acc": acc(xy), "acc_ref": acc(xy_ref),
            "trust": float(trustworthiness(z[sub], xy[sub], n_neighbors=10)),
            "trust_ref": float(trustworthiness(z[sub], xy_ref[sub], n_neighbors=10)),
            "distance": float(np.linalg.norm(xy[ev] - xy_ref[ev], axis=1).mean() / radius)}


def wide_latent(n: int, work: Path, *, stores: Path | None = None, seed: int = 0, chunk_items: int = 16384):
    """The latent and labels of the wide workload's ``n`` items: the store ``stores/wide-n`` (written
    if it has no manifest; an existing store is only read), the latent pass kept in
    ``work/latent-wide-n``."""
    from ..artifacts import resolve_weights
    from ..chunks import ChunkedSource
    from ..latent_pass import latent_pass
    from ..model_spec import load_model
    from ..models import latent_layer
    from ..workloads import WORKLOADS, make_workload

    store = Path(stores or work) / f"wide-{n}"
    if not (store / "manifest.json").exists():
        make_workload("wide", n, store, seed=seed, chunk_items=chunk_items, show_progress=False, log=lambda line: None)
    loaded = load_model(str(Path(resolve_weights(WORKLOADS["wide"]["base"], None)).resolve()))
    src = ChunkedSource(store)
    result = latent_pass(loaded.module, src, latent_layer=latent_layer(loaded.module), n_classes=10,
                         folder=Path(work) / f"latent-wide-{n}", key=f"wide-{n}:{loaded.info['weights_hash']}",
                         chunk_items=chunk_items)
    return np.asarray(result.latent, dtype=np.float32), np.load(store / src.manifest["labels"])


def _exponent(ns, values) -> float:
    if len(ns) < 2 or min(values) <= 0:
        return float("nan")
    return math.log(values[-1] / values[0]) / math.log(ns[-1] / ns[0])


def measure(latent, *, repeat: int, seed: int = 0, log=print, **options) -> tuple[dict, np.ndarray]:
    """Medians of ``repeat`` timed UMAP projections of ``latent``, and the first one's output."""
    from ..projections import UMAP_FIT_MAX

    runs, xy = [], None
    for _ in range(repeat):
        out, times = _timed(latent, "umap", seed, **options)
        xy = out if xy is None else xy
        runs.append(times)
    row = {"n": len(latent), "fit_items": min(len(latent), options.get("umap_fit_max", UMAP_FIT_MAX)),
           **{k: median([r[k] for r in runs]) for k in _STAGES}}
    log(f"N = {row['n']:,}: fit {row['fit_s']:.1f} s on {row['fit_items']:,}, placement {row['place_s']:.1f} s, "
        f"total {row['total_s']:.1f} s (CPU {row['cpu_s']:.1f} s)")
    return row, xy


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dldiag.bench projection")
    parser.add_argument("--n", default=None,
                        help="comma-separated N (default 10000,100000,1000000; 2000,8000 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="small N, one run each, UMAP fitted on at most 5,000 items (for CI)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per N (default 3; 1 with --quick)")
    parser.add_argument("--compare-n", type=int, default=None,
                        help="N of the quality comparison (default 100000 if measured, else the largest N)")
    parser.add_argument("--before-n", default="",
                        help="comma-separated N at which the previous placement (transform) is also timed, once")
    parser.add_argument("--work", default=None, help="where the latent passes go (default CACHE/bench-scale)")
    parser.add_argument("--stores", default=None, help="where the wide-N stores are (default: --work)")
    parser.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")
    args = parser.parse_args(argv)
    from .._cli_args import float_list
    from ..cache import default_cache_dir
    from ..projections import UMAP_FIT_MAX, UMAP_PLACE_NEIGHBORS

    ns = sorted(int(v) for v in float_list(args.n or ("2000,8000" if args.quick else "10000,100000,1000000")))
    repeat = args.repeat or (1 if args.quick else 3)
    fit_max = 5000 if args.quick else UMAP_FIT_MAX
    compare_n = args.compare_n or (100_000 if 100_000 in ns else ns[-1])
    work = Path(args.work) if args.work else Path(default_cache_dir()) / "bench-scale"
    work.mkdir(parents=True, exist_ok=True)
    chunk_items = 4096 if args.quick else 16384
    before_ns = sorted(int(v) for v in float_list(args.before_n)) if args.before_n else []
    latents = {n: wide_latent(n, work, stores=args.stores and Path(args.stores), chunk_items=chunk_items)
               for n in sorted(set(ns) | {compare_n} | set(before_ns))}
    # compile umap's numba code, untimed: a fit with exact neighbours (under 4,096 items), one with
    # pynndescent's, and both placements
    warm = latents[max(latents)][0]
    _timed(warm[:1000], "umap", 0)
    for placement in ("neighbors", "transform"):
        _timed(warm[: int(fit_max * 1.2)], "umap", 0, umap_fit_max=fit_max, placement=placement)
    rows, outputs = [], {}
    for n in ns:
        row, outputs[n] = measure(latents[n][0], repeat=repeat, umap_fit_max=fit_max)
        rows.append(row)
    latent, labels = latents[compare_n]
    xy = outputs.get(compare_n)
    if xy is None:
        xy = measure(latent, repeat=1, umap_fit_max=fit_max)[1]
    ref_row, xy_ref = measure(latent, repeat=1, umap_fit_max=fit_max, placement="transform")
    before = [measure(latents[n][0], repeat=1, umap_fit_max=fit_max, placement="transform")[0]
              for n in before_ns if n != compare_n] + [ref_row]
    placed = np.setdiff1d(np.arange(compare_n), np.sort(np.random.default_rng(0).choice(
        compare_n, min(compare_n, fit_max), replace=False)))
    quality = placement_quality(latent, labels, xy, xy_ref, placed) if len(placed) else None
    new_row = next((r for r in rows if r["n"] == compare_n), None)
    exp = {}
    for k in ("fit_s", "place_s", "total_s"):  # placement: over the N where something is placed
        kept = [r for r in rows if r[k] > 0]
        exp[k] = _exponent([r["n"] for r in kept], [r[k] for r in kept])
    lines = [
        "## The latent view's UMAP at growing N (`python -m dldiag.bench projection`)",
        "",
        f"Command: `python -m dldiag.bench projection --n {','.join(map(str, ns))} --repeat {repeat}"
        f"{' --before-n ' + args.before_n if args.before_n else ''}{' --quick' if args.quick else ''} --write`  ",
        f"Machine: {machine()}  ",
        f"Wide workload (augmented Fashion-MNIST, LeNet-5's {latent.shape[1]}-d latent). UMAP (seeded, so "
        f"single-threaded) is fitted on all items up to {fit_max:,}, else on a seeded subsample of {fit_max:,}; "
        f"every other item is placed at the membership-weighted mean of its {UMAP_PLACE_NEIGHBORS} nearest fitted "
        "items' positions (the fit's pynndescent index). Wall-clock medians of "
        f"{repeat} run(s) after an untimed warm-up (numba compiles); CPU is the process's CPU time over the call "
        "(the machine was shared with other jobs, so wall > CPU where they competed).",
        "",
        "| N | fitted | standardise (s) | fit (s) | placement (s) | total (s) | total CPU (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *[f"| {r['n']:,} | {r['fit_items']:,} | {r['standardise_s']:.2f} | {r['fit_s']:.3g} | {r['place_s']:.3g} "
          f"| {r['total_s']:.3g} | {r['cpu_s']:.3g} |" for r in rows],
        "",
        "Growth exponent (slope of log time against log N, first to last N where the stage takes time): " + ", ".join(
            f"{k.replace('_s', '')} {v:.2f}" for k, v in exp.items() if not math.isnan(v)),
        "",
        "The previous placement, umap's `transform` (30 epochs over each new item's neighbours), after the same "
        "fit, one run: " + "; ".join(
            f"N = {r['n']:,}: fit {r['fit_s']:.3g} s, placement {r['place_s']:.3g} s, total {r['total_s']:.3g} s "
            f"(CPU {r['cpu_s']:.3g} s)" for r in sorted(before, key=lambda r: r["n"])) + ".",
    ]
    if quality is not None:
        new = new_row or {"total_s": float("nan"), "place_s": float("nan")}
        lines += [
            "",
            f"Quality at N = {compare_n:,} (one run each; the same fit on {min(compare_n, fit_max):,} items, "
            f"{len(placed):,} placed; measured on {quality['evaluated']:,} seeded placed items):",
            "",
            "| placement of the rest | placement (s) | total (s) | 10-NN label accuracy in 2-D | trustworthiness "
            "| mean distance to transform's / RMS radius |",
            "|---|---:|---:|---:|---:|---:|",
            f"| fitted neighbours (now) | {new['place_s']:.3g} | {new['total_s']:.3g} | {quality['acc']:.4f} "
            f"| {quality['trust']:.4f} | {quality['distance']:.4f} |",
            f"| umap `transform` (before) | {ref_row['place_s']:.3g} | {ref_row['total_s']:.3g} "
            f"| {quality['acc_ref']:.4f} | {quality['trust_ref']:.4f} | 0 |",
            "",
            f"10-NN label accuracy in the latent space itself: {quality['latent_acc']:.4f}.",
        ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("projection", text)
    return 0
