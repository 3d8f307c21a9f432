"""``python -m dldiag.bench app``: server time of the app's callbacks, as a browser drives them.

The app runs in a subprocess on 127.0.0.1 (a free port) over Fashion-MNIST's 10k evaluation
items, with every projection and sampler fit already cached (they are prepared first). A small
client then does what the Dash renderer does: it reads ``/_dash-layout`` and
``/_dash-dependencies``, and for each user change posts real ``/_dash-update-component``
requests wave by wave — the reducer first, then every callback whose inputs changed, callbacks
that wait on another's output after it, independent ones concurrently — until nothing is left
to update. The time of a change is the wall time from its first request to its last response.

Kinds of change, each repeated (median of ``--repeat``, at least 7):

- layer, class, outcome, k: every panel of the group updates (threshold 150 ms);
- sampler, fraction, j, seed at 5 %: a new sample and its forward pass (threshold 400 ms).
  The server caches sample passes in a fresh temporary folder, so every sample asked for is new.

It also checks that the latent view is updated in place: a sample change must answer with a
``Patch`` of marker arrays, not the 10k-point figure. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import shutil
from pathlib import Path

from ._renderer import Renderer, error_message
from ._report import machine, median, write_section
from .serve import free_port, stop

THRESHOLDS_MS = {"group": 150.0, "sample": 400.0}
GROUP_KINDS = ("layer", "class", "outcome", "k")
SAMPLE_KINDS = ("sampler", "fraction", "j", "seed")


# ---------------------------------------------------------------- server

def _serve(dataset: str, cache_dir: str | None, port: int, sample_cache_dir: str) -> None:
    """Run the app (in the subprocess): torch on one thread per request, as ``app.py`` does."""
    import logging

    import torch

    from dldiag.app import create_app
    from dldiag.artifacts import load_workspace

    torch.set_num_threads(1)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    ws = load_workspace(dataset, cache_dir=cache_dir, show_progress=False)
    app = create_app(ws, sample_cache_dir=sample_cache_dir)
    app.run(host="127.0.0.1", port=port, debug=False, use_reloader=False)


def _wait_ready(base: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app server exited with status {proc.returncode}")
        try:
            r = requests.get(base + "/_dash-layout", timeout=5)
            if r.ok and "latent-graph" in r.text:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the app at {base} was not ready after {timeout:.0f} s")


# ---------------------------------------------------------------- a minimal renderer

def _name(cb: dict) -> str:
    first = cb["outputs"][0]
    return f"{first[0]}.{first[1]}" + ("" if len(cb["outputs"]) == 1 else f" (+{len(cb['outputs']) - 1})")


# ---------------------------------------------------------------- the measurement

def _plan(layers, n_classes, samplers, repeat: int) -> dict:
    """The successive control values of each kind of change (each sample-changing one new)."""
    classes = ["all"] + [str(c) for c in range(n_classes)]
    ratio = [s for s in samplers if s != "max-margin"]
    return {
        "layer": [("layer", layers[(i + 1) % len(layers)]) for i in range(repeat)],
        "class": [("cls", classes[(i + 1) % len(classes)]) for i in range(repeat)],
        "outcome": [("outcome", ("correct", "incorrect", "all")[i % 3]) for i in range(repeat)],
        "k": [("k", (5, 15, 20, 25, 30, 35, 40, 45, 50, 12)[i % 10]) for i in range(repeat)],
        "sampler": [("sampler", ratio[i % len(ratio)]) for i in range(repeat)],
        "fraction": [("fraction", v) for v in [5.5, 4.5, 6, 4, 6.5, 3.5, 7, 3, 7.5, 2.5, 8, 2][:repeat]],
        "j": [("j", round(0.65 - 0.05 * i, 2) if i < 13 else round(0.75 + 0.05 * (i - 13), 2))
              for i in range(repeat)],
        "seed": [("seed", 100 + i) for i in range(repeat)],
    }


def _setup_for(kind: str) -> dict:
    """Controls set (unmeasured) before a kind of change: a sample at 5 % its controls matter to."""
    base = {("fraction", "value"): 5, ("j", "value"): 0.7, ("seed", "value"): 0}
    if kind == "seed":
        base[("sampler", "value")] = "stratified-cm"
    else:
        base[("sampler", "value")] = "max-margin"
    return base


def run(dataset: str, cache_dir: str | None, repeat: int) -> dict:
    from dldiag.build import prepare_workspace

    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    ws = prepare_workspace(dataset, cache_dir=cache_dir, show_progress=sys.stderr.isatty())
    prep_s = time.perf_counter() - start
    layers, n_classes = list(ws.layers), ws.dataset.n_classes
    from dldiag.sampling import SAMPLER_NAMES

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    scratch = tempfile.mkdtemp(prefix="dldiag-bench-app-samples-")
    code = (f"from dldiag.bench.app import _serve; _serve({dataset!r}, {cache_dir!r}, {port}, {scratch!r})")
    log = tempfile.NamedTemporaryFile("w+", prefix="dldiag-bench-app-", suffix=".log", delete=False)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_ready(base, proc)
        rd = Renderer(base)
        first = rd.change({}, initial=True)
        full_latent = [c for c in first["calls"] if ("latent-graph", "figure") in c["cb"]["outputs"]]
        full_latent_bytes = full_latent[0]["bytes"] if full_latent else 0
        latent_fig = rd.props.get(("latent-graph", "figure")) or {}
        n_points = [len(_decode_len(t.get("x"))) for t in latent_fig.get("data", [])[:2]]
        n_sample = len(rd.props.get(("latent-graph", "figure"), {}).get("data", [{}, {}])[1].get("customdata") or [])
        plan = _plan(layers, n_classes, list(SAMPLER_NAMES), repeat)
        results = {}
        for kind in (*GROUP_KINDS, *SAMPLE_KINDS):
            rd.change(_setup_for(kind))
            rd.change({("layer", "value"): ws.latent_layer, ("cls", "value"): "all", ("outcome", "value"): "all",
                       ("k", "value"): 10})
            rows = []
            for prop, value in plan[kind]:
                out = rd.change({(prop, "value"): value})
                rows.append(out)
            results[kind] = rows
    finally:
        stop(proc, timeout=10)
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return {"prep_s": prep_s, "results": results, "full_latent_bytes": full_latent_bytes,
            "load": (load_before, os.getloadavg()[0]),
            "n_points": n_points, "n_sample": n_sample, "n_items": int(ws.n_items), "log": log.name, "first": first}


def _decode_len(value) -> list:
    """Length of a trace's x: a list, or a plotly typed array {dtype, bdata}."""
    import base64

    if isinstance(value, dict) and "bdata" in value:
        size = {"f4": 4, "f8": 8, "i4": 4, "u1": 1, "i1": 1, "u2": 2, "i2": 2, "u4": 4}[value["dtype"]]
        return [0] * (len(base64.b64decode(value["bdata"])) // size)
    return list(value or [])


def summarise(data: dict) -> tuple[str, bool]:
    """The BENCHMARKS.md section and whether every check passed."""
    ok = True
    lines = [
        "## App: callback server time (`python -m dldiag.bench app`)",
        "",
        f"Machine: {machine()}.",
        f"Fashion-MNIST evaluation split ({data['n_items']:,} items), shipped LeNet-5, every projection and "
        "sampler fit cached beforehand; the app in its own process (torch 1 thread per request) on "
        "127.0.0.1. Each change is driven like the browser does: real `/_dash-update-component` posts, "
        "wave by wave (reducer, then every callback whose inputs changed), until nothing is left to "
        "update; time = first request to last response, median of "
        f"{len(next(iter(data['results'].values())))} changes. Sample changes at 5 % each draw a new "
        "sample (the server caches sample passes in a fresh temporary folder).",
        "",
        "| change | median ms | min–max ms | threshold ms | requests | bytes sent back (median) | ok |",
        "|---|---:|---:|---:|---:|---:|:-:|",
    ]
    per_cb: dict = {}
    latent_patch_bytes = []
    latent_is_patch = True
    for kind, rows in data["results"].items():
        ms = [r["seconds"] * 1000 for r in rows]
        limit = THRESHOLDS_MS["group" if kind in GROUP_KINDS else "sample"]
        passed = median(ms) <= limit
        ok &= passed
        nbytes = [sum(c["bytes"] for c in r["calls"]) for r in rows]
        nreq = [len(r["calls"]) for r in rows]
        lines.append(f"| {kind} | {median(ms):.0f} | {min(ms):.0f}–{max(ms):.0f} | {limit:.0f} | "
                     f"{median(nreq):.0f} | {median(nbytes) / 1024:.1f} kB | {'yes' if passed else '**no**'} |")
        for r in rows:
            for c in r["calls"]:
                per_cb.setdefault((kind, _name(c["cb"])), []).append(c)
                if kind in SAMPLE_KINDS and ("latent-graph", "figure") in c["cb"]["outputs"]:
                    fig = c["response"].get("latent-graph", {}).get("figure")
                    latent_is_patch &= isinstance(fig, dict) and "__dash_patch_update" in fig
                    latent_patch_bytes.append(c["bytes"])
    lines += ["", "Per callback (median ms, response size):", "",
              "| change | callback | median ms | response |", "|---|---|---:|---:|"]
    for (kind, name), calls in per_cb.items():
        lines.append(f"| {kind} | `{name}` | {median([c['seconds'] * 1000 for c in calls]):.0f} | "
                     f"{median([c['bytes'] for c in calls]) / 1024:.1f} kB |")
    failed_calls = [(kind, _name(c["cb"])) for kind, rows in data["results"].items() for r in rows
                    for c in r["calls"] if error_message(c["response"])]
    ok &= not failed_calls
    n_points = data["n_points"]
    # the background trace holds every item, the foreground the sample's members
    points_ok = len(n_points) == 2 and n_points[0] == data["n_items"] and n_points[1] == data["n_sample"] > 0
    patch_ok = latent_is_patch and bool(latent_patch_bytes) and median(latent_patch_bytes) < data["full_latent_bytes"] / 4
    ok &= points_ok and patch_ok
    lines += [
        "",
        f"Latent view: the first load sends the whole figure ({data['full_latent_bytes'] / 1024:.0f} kB; "
        f"a background trace of {n_points[0]:,} points, every item, and the sample's {n_points[-1]:,} members on "
        f"top). A sample change answers with a `Patch` of the members' trace: median "
        f"{median(latent_patch_bytes or [0]) / 1024:.1f} kB "
        f"({'in place' if patch_ok else '**not in place**'}); all points kept: {'yes' if points_ok else '**no**'}.",
        f"Callbacks that answered with an error message: {len(failed_calls)}"
        + (f" (**{', '.join(sorted({f'{k}: {n}' for k, n in failed_calls}))}**)." if failed_calls else "."),
        f"Preparing the workspace (everything from the cache): {data['prep_s']:.1f} s. "
        f"1-minute load average before / after the run: {data['load'][0]:.2f} / {data['load'][1]:.2f} "
        "(other work on the machine inflates the times).",
    ]
    return "\n".join(lines), ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dldiag.bench app")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--cache-dir", default=None, help="cache folder (default: $DLDIAG_CACHE or ./cache)")
    parser.add_argument("--repeat", type=int, default=9, help="changes per kind (at least 7)")
    parser.add_argument("--write", action="store_true", help="record the figures in BENCHMARKS.md")
    parser.add_argument("--json", default=None, help="also write the raw timings to this file")
    args = parser.parse_args(argv)
    if args.repeat < 7:
        parser.error("--repeat must be at least 7")
    data = run(args.dataset, args.cache_dir, args.repeat)
    text, ok = summarise(data)
    print(text)
    if args.json:
        raw = {kind: [{"ms": r["seconds"] * 1000,
                       "calls": [{"callback": _name(c["cb"]), "ms": c["seconds"] * 1000, "bytes": c["bytes"]}
                                 for c in r["calls"]]} for r in rows]
               for kind, rows in data["results"].items()}
        Path(args.json).write_text(json.dumps(raw, indent=1))
    if args.write:
        write_section("app", text)
    if not ok:
        print(f"FAILED: a threshold or a check did not hold (server log: {data['log']})", file=sys.stderr)
        return 1
    Path(data["log"]).unlink(missing_ok=True)  # kept only when something failed
    return 0


if __name__ == "__main__":
    sys.exit(main())
