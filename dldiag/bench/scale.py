"""``python -m dldiag.bench scale``: issue 13's acceptance table, stage by stage, at growing N.

Two workloads (:mod:`dldiag.workloads`), each written as a chunk store under ``--work`` (kept,
so a rerun reuses it): **wide** (augmented Fashion-MNIST for the shipped LeNet-5) at each N of
``--n`` (default 10,000 and 100,000) and **deep** (augmented galaxies for the galaxy CNN) at
each N of ``--deep-n`` (default none). Each (workload, N) is measured in a child process of
its own, so that its peak RSS is its own and nothing of a smaller N stays in memory:

- **latent pass / plain forward**: the resumable latent pass (:mod:`dldiag.latent_pass`, into a
  fresh folder each time) against a plain ``model(x)`` over the same batches read from the same
  store, ``--repeat`` runs of each interleaved, medians and their ratio;
- **peak RSS** of a latent pass run alone in a grandchild process (``ru_maxrss``), and of the
  whole measurement at that N (the child's ``ru_maxrss``: workspace, fits, projections, paint,
  the app's answers);
- **full aggregate pass**: the workspace's pass over every item in every diagnosed layer (as
  recorded when it was built; reused from ``--work``'s cache when there);
- **sample pass and store**: a random 5 % sample's activations of every diagnosed layer written
  to a sample store (:mod:`dldiag.sample_store`, float16), its time and its size on disk against
  the full activations' (every layer's float32 output for all N items, which nothing keeps);
- **sampler fits**: every sampler family's default fit (:func:`dldiag.bench.fits.families`,
  seed 0, once each);
- **projections**: UMAP (:func:`dldiag.projections.project`: fitted on at most 50,000 items,
  the rest placed by their fitted neighbours) and PCA, once each;
- **first paint** of the latent view drawn as a density (:func:`dldiag.bench.density.first_paint_seconds`,
  server side) on that UMAP projection, coloured by true label, a random 5 % sample on top,
  and its zoom re-render;
- **group change and lasso on the sample**: read straight from the sample store (every layer,
  as before), and as the app answers them, :meth:`dldiag.app.service.Diagnosis.group` on a
  random 5 % sample (the state's layer): the median over every (class, outcome) group, and over
  five selections of 10 % of all items each;
- **exact lasso answer (background)**: :meth:`~dldiag.app.service.Diagnosis.exact_pass` over
  one such selection (what the app's background job runs), once, with its progress reports
  counted.

Each stage's growth exponent is the slope of log(time) against log(N) between the smallest and
the largest N of a workload. Every row is also kept as JSON in ``WORK/scale-<kind>-<N>.json``;
``--reuse`` reads rows from there instead of measuring them again.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ._report import machine, median, write_section

__all__ = ["main", "measure", "GOALS"]

#: Issue 13's goals at 10^6 items (wide).
GOALS = {"latent_over_plain": 1.1, "peak_rss_gib": 6.0, "paint_s": 3.0, "app_group_ms": 300.0,
         "app_lasso_ms": 1000.0}
FRACTION = 0.05
LASSO_FRACTION = 0.10
LASSOS = 5
_ROOT = Path(__file__).resolve().parents[2]

_RSS_CHILD = """
import json, sys
from dldiag.bench.scale import peak_rss_gib
from dldiag.chunks import ChunkedSource
from dldiag.latent_pass import latent_pass
from dldiag.model_spec import load_model
model = load_model(sys.argv[1]).module
src = ChunkedSource(sys.argv[2])
latent_pass(model, src, latent_layer=sys.argv[3], n_classes=int(sys.argv[5]), folder=sys.argv[4], key="rss")
print(json.dumps({"peak_rss_gib": peak_rss_gib()}))
"""


def peak_rss_gib() -> float:
    """This process's peak resident set size in GiB: ``VmHWM`` of ``/proc/self/status`` where there is one.

    ``ru_maxrss`` is no good for a process started by a large one: Linux keeps the high-water
    mark of the parent's memory that a vfork-and-exec'd child starts from, so the child reports
    at least its parent's peak. ``VmHWM`` is the new program's own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _plain_forward(model, src, batch_size: int) -> None:
    import torch

    model.eval()
    with torch.no_grad():
        for b in range(0, len(src), batch_size):
            model(torch.from_numpy(src[b : b + batch_size])).argmax(dim=1)


def _secs(value) -> str:
    return "cached" if value is None else f"{value:.3g}"


def _exponent(ns, values) -> float:
    if len(ns) < 2 or any(v is None for v in values) or min(values) <= 0:
        return float("nan")
    return math.log(values[-1] / values[0]) / math.log(ns[-1] / ns[0])


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _passes(ws, store_dir: Path, weights: Path, work: Path, *, repeat: int, chunk_items: int, seed: int,
            log) -> dict:
    """Latent pass against plain forward, the latent pass's peak RSS, the sample pass and store, and
    group and lasso answers read straight from the store."""
    import shutil
    import tempfile

    from ..latent_pass import latent_pass
    from ..sample_store import write_store

    src, model, n, n_classes = ws.dataset.x_test, ws.model, ws.n_items, ws.dataset.n_classes
    lat, plain = [], []
    for _ in range(repeat):  # interleaved, so that drift on a noisy machine hits both alike
        folder = Path(tempfile.mkdtemp(dir=work))
        lat.append(_timed(lambda: latent_pass(model, src, latent_layer=ws.latent_layer, n_classes=n_classes,
                                              folder=folder, key="bench", chunk_items=chunk_items)))
        shutil.rmtree(folder)
        plain.append(_timed(lambda: _plain_forward(model, src, 256)))
    log(f"  latent pass {median(lat):.3g} s, plain forward {median(plain):.3g} s")
    rss_folder = Path(tempfile.mkdtemp(dir=work))
    child = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(weights), str(store_dir), ws.latent_layer,
                            str(rss_folder), str(n_classes)], capture_output=True, text=True, check=True, cwd=_ROOT)
    shutil.rmtree(rss_folder)
    rss_gib = json.loads(child.stdout.strip().splitlines()[-1])["peak_rss_gib"]
    idx = ws.fitted_sampler("random").sample(FRACTION, seed=seed)
    store_folder = Path(tempfile.mkdtemp(dir=work))  # a fresh folder: the pass is run, not reopened
    start = time.perf_counter()
    store = write_store(ws, idx, store_folder)
    t_store = time.perf_counter() - start
    values = sum(math.prod(ws.full[layer, "flat"].unit_shape) for layer in ws.layers)
    group_times = [_timed(lambda: [store.answer(layer, 10, cls=cls, outcome=outcome) for layer in ws.layers])
                   for cls in range(n_classes) for outcome in ("correct", "incorrect")]
    rng = np.random.default_rng(seed)
    lasso_times = []
    for _ in range(LASSOS):
        sel = np.sort(rng.choice(n, max(1, round(LASSO_FRACTION * n)), replace=False))
        lasso_times.append(_timed(lambda: [store.answer(layer, 10, selection=sel) for layer in ws.layers]))
    store_bytes = store.nbytes()
    shutil.rmtree(store_folder)
    log(f"  peak RSS {rss_gib:.2f} GiB, sample pass {t_store:.3g} s, store {store_bytes / 2**20:.1f} MB "
        f"vs {4 * values * n / 2**30:.2f} GiB")
    return {"latent_s": median(lat), "plain_s": median(plain), "latent_over_plain": median(lat) / median(plain),
            "peak_rss_gib": rss_gib, "sample_n": int(len(idx)), "sample_pass_s": t_store,
            "store_bytes": store_bytes, "values_per_item": int(values), "full_bytes": 4 * values * n,
            "group_ms": 1000 * median(group_times), "lasso_ms": 1000 * median(lasso_times)}


def _fits(ws, seed: int, log) -> dict:
    """Every sampler family's default fit, once (:mod:`dldiag.bench.fits`)."""
    from .fits import _timed_fit, _warm_up, families, fit_items

    _warm_up()
    out = {}
    for name in families():
        sampler, times, _ = _timed_fit(ws, name, 1, seed=seed)
        out[name] = {"s": times[0], "fit_items": fit_items(sampler)}
        log(f"  fit {name}: {times[0]:.3g} s on {out[name]['fit_items']:,} items")
    return out


def _views(ws, *, repeat: int, seed: int, log) -> dict:
    """UMAP and PCA of the latent, and the density view's first paint on the UMAP."""
    from ..projections import project
    from .density import first_paint_seconds
    from .projection import projection_seconds

    project(np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32), "umap", seed=0)  # numba, untimed
    stages: dict = {}
    start = time.perf_counter()
    xy = project(ws.latent, "umap", seed=seed, timings=stages)
    umap = {"total_s": time.perf_counter() - start, **{f"{k}_s": v for k, v in stages.items()}}
    pca = projection_seconds(ws.latent, "pca", seed=seed)
    paint = first_paint_seconds(xy, ws.y_true, repeat=repeat, n_classes=ws.dataset.n_classes, fraction=FRACTION,
                                seed=seed)
    paint.pop("runs")
    log(f"  UMAP {umap['total_s']:.3g} s, PCA {pca['total_s']:.3g} s, first paint {paint['total_s']:.3g} s")
    return {"umap": umap, "pca": pca, "paint": paint}


def _app(ws, *, seed: int, log) -> dict:
    """Group change, lasso and the exact lasso answer as the app's service gives them."""
    import tempfile

    from ..app.service import Diagnosis, SampleParams, build_meta
    from ..cache import ArrayCache

    n = ws.n_items
    with tempfile.TemporaryDirectory(dir=Path(ws.cache.directory).parent) as tmp, \
            ArrayCache(Path(tmp) / "samples") as fresh:  # nothing of an earlier run answers for this one
        svc = Diagnosis(ws, sample_cache=fresh)
        meta = build_meta(ws, default_projection="pca")
        state = replace(meta.default_state(), sampler="random", fraction=FRACTION, seed=seed)
        indices = svc.sample_indices(SampleParams.from_state(state))
        ready = _timed(lambda: svc.group(indices, state))  # the sample's store and score tables, once
        groups = [replace(state, cls=c, outcome=o) for c in range(ws.dataset.n_classes)
                  for o in ("correct", "incorrect")]
        group_times = [_timed(lambda: svc.group(indices, g)) for g in groups]
        rng = np.random.default_rng(seed + 1)
        selections = [np.sort(rng.choice(n, max(1, round(LASSO_FRACTION * n)), replace=False))
                      for _ in range(LASSOS)]
        results = []
        lasso_times = [_timed(lambda: results.append(svc.group(indices, state, sel))) for sel in selections]
        if any(r.full is not None for r in results):
            raise RuntimeError("a selection had an exact answer before its exact pass ran")
        reports = []
        exact_s = _timed(lambda: svc.exact_pass(selections[0], on_progress=lambda done, total: reports.append(done)))
        if svc.group(indices, state, selections[0]).full is None:
            raise RuntimeError("the exact pass left no exact answer for the selection")
    log(f"  app: group {1000 * median(group_times):.1f} ms, lasso {1000 * median(lasso_times):.1f} ms, "
        f"exact lasso {exact_s:.3g} s ({len(reports)} progress reports)")
    return {"app_ready_s": ready, "app_group_ms": 1000 * median(group_times),
            "app_lasso_ms": 1000 * median(lasso_times), "lasso_items": len(selections[0]),
            "exact_s": exact_s, "exact_reports": len(reports), "app_layer": state.layer}


def measure(kind: str, n: int, work: Path, *, repeat: int = 3, chunk_items: int = 16384, seed: int = 0,
            base: str = "train+test", log=print) -> dict:
    """Every stage for workload ``kind`` at N (see the module's notes); the figures as a dict.

    The peak RSS of the whole measurement is this process's: call it in a fresh process (as
    :func:`main` does) for that figure to be the measurement's own.
    """
    from ..artifacts import load_workspace
    from ..chunks import ChunkedSource
    from ..workloads import WORKLOADS, make_workload

    load_start = os.getloadavg()[0]
    store_dir = work / f"{kind}-{n}"
    write_s = _timed(lambda: make_workload(kind, n, store_dir, seed=seed, chunk_items=chunk_items, base=base,
                                           show_progress=False, log=lambda line: None))
    weights = (_ROOT / WORKLOADS[kind]["weights"]).resolve()
    start = time.perf_counter()
    ws = load_workspace(f"chunks:{store_dir}", weights=str(weights), cache_dir=work / "cache", show_progress=False)
    log(f"{kind} N = {n:,}: workspace {time.perf_counter() - start:.3g} s "
        f"(full pass {_secs(ws.full_pass_seconds)} s{', cached' if ws.cache_hit else ''})")
    row = {"kind": kind, "n": n, "write_s": write_s, "full_pass_s": ws.full_pass_seconds,
           "full_pass_cached": bool(ws.cache_hit), "accuracy": ws.accuracy, "layers": list(ws.layers),
           "chunks": ChunkedSource(store_dir).n_chunks, "repeat": repeat}
    stage_rss = {"workspace": peak_rss_gib()}  # the high-water mark after each stage: where the peak is reached
    row.update(_passes(ws, store_dir, weights, work, repeat=repeat, chunk_items=chunk_items, seed=seed, log=log))
    stage_rss["passes"] = peak_rss_gib()
    row["fits"] = _fits(ws, seed, log)
    stage_rss["fits"] = peak_rss_gib()
    row.update(_views(ws, repeat=repeat, seed=seed, log=log))
    stage_rss["views"] = peak_rss_gib()
    row.update(_app(ws, seed=seed, log=log))
    stage_rss["app"] = row["process_rss_gib"] = peak_rss_gib()
    row["stage_rss_gib"] = stage_rss
    row["load"] = [load_start, os.getloadavg()[0]]  # other work on the machine, for the report
    return row


def _row_path(work: Path, kind: str, n: int) -> Path:
    return work / f"scale-{kind}-{n}.json"


def _measure_in_child(kind: str, n: int, work: Path, *, repeat: int, chunk_items: int, base: str,
                      reuse: bool) -> dict:
    path = _row_path(work, kind, n)
    if not (reuse and path.exists()):
        subprocess.run([sys.executable, "-m", "dldiag.bench", "scale", "--row", f"{kind}:{n}", "--work", str(work),
                        "--repeat", str(repeat), "--chunk-items", str(chunk_items), "--base", base],
                       check=True, cwd=_ROOT)
    return json.loads(path.read_text())


def _load(row: dict) -> str:
    return " / ".join(f"{v:.1f}" for v in row["load"]) if "load" in row else "–"


def _stage_rss(rows: list[dict]) -> list[str]:
    mine = [r for r in rows if "stage_rss_gib" in r]
    if not mine:
        return []
    return ["Peak RSS of the whole run after each stage (GiB, the process's high-water mark; the stage where it "
            "grows is where the peak is reached): " + "; ".join(
                f"{r['kind']} {r['n']:,}: " + ", ".join(f"{k} {v:.2f}" for k, v in r["stage_rss_gib"].items())
                for r in mine) + ".", ""]


def _size(nbytes: float) -> str:
    return f"{nbytes / 2**20:.1f} MB" if nbytes < 2**30 else f"{nbytes / 2**30:.2f} GiB"


def _goals(rows: list[dict]) -> list[str]:
    big = [r for r in rows if r["kind"] == "wide" and r["n"] >= 10**6]
    if not big:
        return ["Goals at 10^6 (wide): not checked, no wide N of 10^6 was run."]
    r = big[-1]
    peak = max(r["peak_rss_gib"], r["process_rss_gib"])
    checks = [
        ("latent pass ≤ 1.1× a plain forward", f"{r['latent_over_plain']:.2f}×",
         r["latent_over_plain"] <= GOALS["latent_over_plain"]),
        ("peak RSS ≤ 6 GiB", f"{r['peak_rss_gib']:.2f} GiB (latent pass), {r['process_rss_gib']:.2f} GiB (whole run)",
         peak <= GOALS["peak_rss_gib"]),
        ("first paint ≤ 3 s once built", f"{r['paint']['total_s']:.2f} s", r["paint"]["total_s"] <= GOALS["paint_s"]),
        ("group change ≤ 300 ms", f"{r['app_group_ms']:.0f} ms", r["app_group_ms"] <= GOALS["app_group_ms"]),
        ("lasso's sample answer ≤ 1 s", f"{r['app_lasso_ms']:.0f} ms", r["app_lasso_ms"] <= GOALS["app_lasso_ms"]),
        ("exact lasso answer in the background with progress",
         f"{r['exact_s']:.1f} s, {r['exact_reports']} progress reports", r["exact_reports"] > 0),
    ]
    # A ratio of two times measured while other work competed for the cores says nothing about
    # the code: the ratio's goal is not judged then (the others are bounds far from their values).
    busy = max(r.get("load", [0.0])) > (os.cpu_count() or 1)
    judged = ["not judged: load " + _load(r) + f" on {os.cpu_count()} cores" if busy and i == 0
              else ("met" if ok else "NOT met") for i, (_, _, ok) in enumerate(checks)]
    return [f"Goals at {r['n']:,} (wide): " + "; ".join(
        f"{name}: {value} ({verdict})" for (name, value, _), verdict in zip(checks, judged)) + "."]


def _exponents(rows: list[dict]) -> list[str]:
    stages = {"latent pass": lambda r: r["latent_s"], "plain forward": lambda r: r["plain_s"],
              "sample pass": lambda r: r["sample_pass_s"], "group (store)": lambda r: r["group_ms"],
              "lasso (store)": lambda r: r["lasso_ms"], "group (app)": lambda r: r["app_group_ms"],
              "lasso (app)": lambda r: r["app_lasso_ms"], "exact lasso": lambda r: r["exact_s"],
              "UMAP": lambda r: r["umap"]["total_s"], "PCA": lambda r: r["pca"]["total_s"],
              "first paint": lambda r: r["paint"]["total_s"], "peak RSS (latent pass)": lambda r: r["peak_rss_gib"],
              "peak RSS (whole run)": lambda r: r["process_rss_gib"]}
    out = []
    for kind in ("wide", "deep"):
        mine = [r for r in rows if r["kind"] == kind]
        if len(mine) < 2:
            continue
        ns = [r["n"] for r in mine]
        out.append(f"Growth exponent, {kind} ({ns[0]:,} to {ns[-1]:,}; slope of log time against log N): " + ", ".join(
            f"{name} {_exponent(ns, [f(r) for r in mine]):.2f}" for name, f in stages.items()) + ".")
    return out


def _deep_notes(rows: list[dict]) -> list[str]:
    deep = [r for r in rows if r["kind"] == "deep"]
    if not deep:
        return []
    r = deep[-1]
    per_item = min(v for v in (r["latent_s"], r["plain_s"], r["full_pass_s"]) if v) / r["n"]
    gib = 4 * r["values_per_item"] / 2**30
    return ["", f"Deep: the galaxy CNN's diagnosed layers hold {r['values_per_item']:,} values per item, "
                f"{4 * r['values_per_item'] / 2**20:.2f} MB in float32: the full activations of 10^5 galaxies "
                f"would take {gib * 1e5:,.0f} GiB and of 10^6 {gib * 1e6 / 1024:,.1f} TiB, against "
                f"{_memory_gib():.0f} GiB of memory here; the 5 % sample's float16 store at {r['n']:,} is "
                f"{_size(r['store_bytes'])}. A pass takes {1000 * per_item:.1f} ms per galaxy here (the fastest "
                f"of the row's passes) "
                f"(LeNet-5: {_wide_ms(rows)} ms per item), so one pass over 10^5 galaxies takes about "
                f"{per_item * 1e5 / 60:.0f} min and a row measures five such passes or more (full aggregate, "
                "latent, plain, the latent pass again for its RSS, the sample's and the exact lasso's)."]


def _wide_ms(rows: list[dict]) -> str:
    wide = [r for r in rows if r["kind"] == "wide"]
    if not wide:
        return "not measured"
    r = wide[-1]
    return f"{1000 * min(v for v in (r['latent_s'], r['plain_s'], r['full_pass_s']) if v) / r['n']:.3f}"


def _memory_gib() -> float:
    try:
        return int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")


def report(rows: list[dict], command: str) -> str:
    """The ``scale`` section of BENCHMARKS.md from the measured rows."""
    label = {r["kind"] + str(r["n"]): f"{r['kind']} {r['n']:,}" for r in rows}
    names = list(dict.fromkeys(name for r in rows for name in r["fits"]))
    wide = [r for r in rows if r["kind"] == "wide"]
    lines = [
        "## Issue 13's acceptance table: the wide and deep workloads at growing N (`python -m dldiag.bench scale`)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        "Wide: augmented Fashion-MNIST for LeNet-5; deep: augmented galaxies (3×69×69) for the galaxy CNN; chunk "
        f"stores of uint8 `.npy`. Each (workload, N) measured in a process of its own; the passes' "
        "times are medians of interleaved runs (how many: the first table's last column); a random 5 % sample for the sample stages; the app's answers through "
        "`Diagnosis.group` (server side, the default layer), the lasso a selection of 10 % of all items.",
        "",
        "### Passes and memory",
        "",
        "| workload | N | accuracy | latent pass (s) | plain forward (s) | latent / plain | peak RSS, latent pass (GiB) "
        "| peak RSS, whole run (GiB) | full aggregate pass (s) | sample pass + store (s) | store, float16 "
        "| full activations, float32 | load, start / end | runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[f"| {r['kind']} | {r['n']:,} | {r['accuracy']:.3f} | {r['latent_s']:.3g} | {r['plain_s']:.3g} "
          f"| {r['latent_over_plain']:.2f} | {r['peak_rss_gib']:.2f} | {r['process_rss_gib']:.2f} "
          f"| {_secs(r['full_pass_s'])} | {r['sample_pass_s']:.3g} | {_size(r['store_bytes'])} "
          f"| {_size(r['full_bytes'])} | {_load(r)} | {r['repeat']} |" for r in rows],
        "",
        "### The app's views and answers",
        "",
        "| workload | N | UMAP (s) | PCA (s) | first paint (s) | zoom (s) | group change, store (ms) "
        "| group change, app (ms) | lasso, store (ms) | lasso, app sample answer (ms) "
        "| exact lasso, background (s) | progress reports |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[f"| {r['kind']} | {r['n']:,} | {r['umap']['total_s']:.3g} | {r['pca']['total_s']:.3g} "
          f"| {r['paint']['total_s']:.3g} | {r['paint']['zoom_s']:.3g} | {r['group_ms']:.1f} | {r['app_group_ms']:.1f} "
          f"| {r['lasso_ms']:.1f} | {r['app_lasso_ms']:.1f} | {r['exact_s']:.3g} | {r['exact_reports']} |"
          for r in rows],
        "",
        "### Sampler fits (s, default fit, seed 0, once)",
        "",
        "\"(on M)\": the fit approximates above its `max_fit_items` and one fit saw at most M items (a subsample "
        "for `gmm-full` and `max-margin`, a k-d cell for `vas`; see the `fits` section).",
        "",
        "| sampler | " + " | ".join(label[r["kind"] + str(r["n"])] for r in rows) + " | exponent, wide |",
        "|---|" + "---:|" * (len(rows) + 1),
        *[f"| {name} | " + " | ".join(
            f"{r['fits'][name]['s']:.3g}" + (f" (on {r['fits'][name]['fit_items']:,})"
                                             if r["fits"][name]["fit_items"] < r["n"] else "")
            if name in r["fits"] else "–" for r in rows)
          + f" | {_exponent([r['n'] for r in wide], [r['fits'][name]['s'] for r in wide]):.2f} |" for name in names],
        "",
        *_exponents(rows),
        "",
        *_stage_rss(rows),
        *_goals(rows),
        *_deep_notes(rows),
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dldiag.bench scale")
    parser.add_argument("--n", default=None, help="comma-separated N of the wide workload "
                                                  "(default 10000,100000; 2000,6000 with --quick)")
    parser.add_argument("--deep-n", default=None, help="comma-separated N of the deep workload (default none; "
                                                       "500 with --quick)")
    parser.add_argument("--quick", action="store_true", help="small N, one run each, the galaxies' test split as "
                                                             "the deep base (for CI)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per timing (default 3; 1 with --quick)")
    parser.add_argument("--deep-repeat", type=int, default=1, help="runs per timing of the deep workload (default 1: "
                                                                 "a galaxy CNN pass is slow)")
    parser.add_argument("--work", default=None, help="where the stores and caches go (default CACHE/bench-scale)")
    parser.add_argument("--reuse", action="store_true", help="read rows measured before from WORK/scale-*.json")
    parser.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")
    parser.add_argument("--note", default=None, help="a paragraph for the section (how the rows were run)")
    parser.add_argument("--row", default=None, help=argparse.SUPPRESS)  # KIND:N, measured in this process
    parser.add_argument("--chunk-items", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--base", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from .._cli_args import float_list
    from ..cache import default_cache_dir

    repeat = args.repeat or (1 if args.quick else 3)
    work = Path(args.work) if args.work else Path(default_cache_dir()) / "bench-scale"
    work.mkdir(parents=True, exist_ok=True)
    chunk_items = args.chunk_items or (4096 if args.quick else 16384)
    base = args.base or ("test" if args.quick else "train+test")
    if args.row:
        kind, n = args.row.split(":")
        row = measure(kind, int(n), work, repeat=repeat, chunk_items=chunk_items, base=base,
                      log=lambda line: print(line, file=sys.stderr, flush=True))
        _row_path(work, kind, int(n)).write_text(json.dumps(row, indent=1))
        return 0
    ns = [int(v) for v in float_list(args.n or ("2000,6000" if args.quick else "10000,100000"))]
    deep_ns = [int(v) for v in float_list(args.deep_n or ("500" if args.quick else ""))]
    rows = [_measure_in_child(kind, n, work, repeat=r, chunk_items=chunk_items, base=base, reuse=args.reuse)
            for kind, group, r in (("wide", ns, repeat), ("deep", deep_ns, args.deep_repeat)) for n in group]
    command = (f"python -m dldiag.bench scale {'--quick ' if args.quick else ''}--n {','.join(map(str, ns))}"
               + (f" --deep-n {','.join(map(str, deep_ns))} --deep-repeat {args.deep_repeat}" if deep_ns else "")
               + f" --repeat {repeat} --work WORK{' --reuse' if args.reuse else ''} --write")
    text = report(rows, command) + (f"\n\n{args.note}" if args.note else "")
    print(text)
    if args.write:
        write_section("scale", text)
    return 0
