"""``python -m dldiag.bench load``: many clients at once against the shared app, every answer checked.

The app is served as the README says to share it (gunicorn, ``app:server``, its
``gunicorn.conf.py``) over a prepared workspace with an empty samples tier. Each client is a
:class:`~dldiag.bench._renderer.Renderer` that makes one user change after another, chosen at
random — a new sampler, fraction, j or seed; a layer, class, outcome, k or unit mode; a box
selection in the latent view and clearing it; a click on a top-k bar or a confusion cell —
and drives every callback that change sets off, as a browser does. Every request and its
answer are recorded; afterwards each one is replayed, one at a time, against the same app
built in this process over the same workspace with an empty samples tier of its own, and the
two answers must agree (numbers to 1e-9). A wrong answer is one that does not; an error is an
HTTP error or an answer that carries an inline error message.

Phases: the main run (``--clients``, default 20, for ``--seconds``, default 60), then the
throughput runs at 1, 4 and 16 clients. Latency per kind of change is the wall time of its
whole chain (first request to last answer), p50 and p95.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ._renderer import Renderer, error_message, first_difference, same_answer
from ._report import machine, run_together, write_section
from .serve import served

__all__ = ["main", "run_clients", "replay"]

KINDS = {  # kind of change: weight in the mix
    "sampler": 3, "fraction": 3, "j": 2, "seed": 2,
    "layer": 3, "cls": 3, "outcome": 3, "k": 2, "units": 1,
    "box": 2, "clear": 1, "neuron": 1, "cell": 1,
}


class Plan:
    """What a client may ask: names and ranges of the workspace, the default projection's points."""

    def __init__(self, ws, meta):
        self.samplers = list(meta.samplers)
        self.layers = list(ws.layers)
        self.n_classes = ws.dataset.n_classes
        self.unit_counts = dict(meta.unit_counts)
        self.xy = ws.projection(meta.default_projection)

    def change(self, kind: str, rd: Renderer, rng: random.Random) -> dict:
        """The props a user's change of ``kind`` sets (given the client's current page)."""
        if kind == "sampler":
            return {("sampler", "value"): rng.choice(self.samplers)}
        if kind == "fraction":
            return {("fraction", "value"): rng.choice(range(2, 41)) / 2}  # the slider: 1–20 % in 0.5 steps
        if kind == "j":
            return {("j", "value"): round(rng.randrange(0, 21) * 0.05, 2)}
        if kind == "seed":
            return {("seed", "value"): rng.randrange(0, 50)}
        if kind == "layer":
            return {("layer", "value"): rng.choice(self.layers)}
        if kind == "cls":
            return {("cls", "value"): rng.choice(["all"] + [str(c) for c in range(self.n_classes)])}
        if kind == "outcome":
            return {("outcome", "value"): rng.choice(["all", "correct", "incorrect"])}
        if kind == "k":
            return {("k", "value"): rng.randrange(1, 51)}
        if kind == "units":
            return {("units", "value"): rng.choice(["flat", "channel"])}
        if kind == "box":
            lo, hi = self.xy.min(0), self.xy.max(0)
            a, b = (lo + (hi - lo) * np.array([rng.random(), rng.random()]) for _ in range(2))
            x0, x1 = sorted((a[0], b[0]))
            y0, y1 = sorted((a[1], b[1]))
            inside = np.flatnonzero((self.xy[:, 0] >= x0) & (self.xy[:, 0] <= x1) &
                                    (self.xy[:, 1] >= y0) & (self.xy[:, 1] <= y1))
            points = [{"curveNumber": 0, "pointIndex": int(i), "customdata": int(i)} for i in inside]
            return {("latent-graph", "selectedData"): {"points": points, "range": {"x": [x0, x1], "y": [y0, y1]}}}
        if kind == "clear":
            return {("clear-group", "n_clicks"): int(rd.props.get(("clear-group", "n_clicks")) or 0) + 1}
        if kind == "neuron":
            panel = rd.props.get(("panel-params", "data")) or {}
            count = self.unit_counts.get((panel.get("layer"), panel.get("units")), 1)
            return {("topk-graph", "clickData"): {"points": [{"customdata": rng.randrange(count)}]}}
        if kind == "cell":
            cell = [rng.randrange(self.n_classes), rng.randrange(self.n_classes)]
            return {("confusion-graph", "clickData"): {"points": [{"customdata": cell}]}}
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")


def run_clients(base: str, plan: Plan, clients: int, seconds: float, seed: int = 0, search: str = "") -> dict:
    """``clients`` threads, each a renderer making random changes for ``seconds``.

    Returns
    -------
    dict
        ``records`` (every request and answer), ``chains`` ([(kind, seconds)]), ``requests``
        (count), ``errors`` ([message]), ``elapsed`` (s).
    """
    records: list = []
    chains: list = []
    errors: list = []
    lock = threading.Lock()
    kinds, weights = list(KINDS), list(KINDS.values())

    def client(c: int, barrier) -> None:
        rng = random.Random(seed * 1000 + c)
        mine: list = []
        rd = Renderer(base, search, record=mine, workers=4)
        try:
            rd.change({}, initial=True)
            barrier.wait()
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                kind = rng.choices(kinds, weights)[0]
                try:
                    out = rd.change(plan.change(kind, rd, rng))
                except Exception as exc:  # noqa: BLE001 - an HTTP error is a finding, not a crash
                    with lock:
                        errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                    continue
                with lock:
                    chains.append((kind, out["seconds"]))
                    errors.extend(f"{kind}: {m}" for m in
                                  (error_message(call["response"]) for call in out["calls"]) if m)
        finally:
            rd.pool.shutdown()
            with lock:
                records.extend(mine)

    elapsed = run_together(client, clients)
    return {"records": records, "chains": chains, "errors": errors, "elapsed": elapsed, "requests": len(records)}


def replay(records: list, app, dump: list | None = None) -> list[str]:
    """Post each recorded request to ``app`` (in this process), one at a time; the mismatches.

    With ``dump`` each mismatch's request and both answers are appended to it.
    """
    client = app.server.test_client()
    wrong = []
    for rec in records:
        r = client.post("/_dash-update-component", data=rec["body"], content_type="application/json")
        if r.status_code != rec["status"]:
            wrong.append(f"status {rec['status']} served, {r.status_code} sequentially: {rec['body'][:200]}")
            continue
        if r.status_code == 200 and not same_answer(json.loads(rec["answer"]), r.get_json()):
            where = first_difference(json.loads(rec["answer"]), r.get_json())
            wrong.append(f"different answer to {json.loads(rec['body'])['output'][:60]}: {where}")
            if dump is not None:
                dump.append({"body": json.loads(rec["body"]), "served": json.loads(rec["answer"]),
                             "sequential": r.get_json()})
    return wrong


def _percentiles(values) -> tuple[float, float]:
    values = sorted(values)
    if not values:
        return float("nan"), float("nan")
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return statistics.median(values), p95


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dldiag.bench load")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--cache-dir", default=None, help="prepared cache (default: the default cache)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--throughput", default="1,4,16", help="client counts of the throughput runs ('' for none)")
    parser.add_argument("--throughput-seconds", type=float, default=20.0)
    parser.add_argument("--configs", default="2x4,1x8",
                        help="gunicorn WORKERSxTHREADS to compare in the throughput runs; the first also serves "
                             "the main run (default 2x4,1x8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dump", default=None, help="write the mismatches (requests and both answers) to this JSON file")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)

    from ..app import create_app
    from ..app.service import build_meta
    from ..artifacts import load_workspace
    from ..build import prepare_workspace

    ws = prepare_workspace(args.dataset, cache_dir=args.cache_dir, show_progress=False)
    meta = build_meta(ws)
    plan = Plan(ws, meta)
    root = Path(tempfile.mkdtemp(prefix="dldiag-load-"))
    phases = {}
    try:
        shutil.copytree(ws.cache.directory, root / "core")
        load_before = os.getloadavg()[0]
        configs = [tuple(int(v) for v in c.split("x")) for c in args.configs.split(",") if c.strip()]
        counts = [int(v) for v in args.throughput.split(",") if v.strip()]
        for i, (workers, threads) in enumerate(configs):
            with served(args.dataset, root, workers=workers, threads=threads,
                        log_path=root / "gunicorn.log") as base:
                if i == 0:
                    phases["main"] = run_clients(base, plan, args.clients, args.seconds, args.seed)
                    print(f"main: {len(phases['main']['chains'])} chains, {phases['main']['requests']} requests",
                          flush=True)
                for n in counts:
                    p = phases[(workers, threads, n)] = run_clients(base, plan, n, args.throughput_seconds,
                                                                   args.seed + n)
                    print(f"{workers}x{threads}, {n} clients: {p['requests'] / p['elapsed']:.1f} requests/s", flush=True)
        load_after = os.getloadavg()[0]
        # The sequential reference: the same workspace, an app of its own, an empty samples tier,
        # and torch on as many threads per pass as the workers (gunicorn.conf.py): float32 matrix
        # products split over another number of threads can differ in the last bits (~1e-7
        # relative, seen for passes over a few items), which is arithmetic, not a wrong answer.
        import torch

        torch.set_num_threads(int(os.environ.get("DLDIAG_TORCH_THREADS", "1")))
        reference = load_workspace(args.dataset, cache_dir=root, show_progress=False)
        app = create_app(reference, sample_cache_dir=root / "replay-samples")
        start = time.perf_counter()
        dumped: list = []
        wrong = {name: replay(phase["records"], app, dumped) for name, phase in phases.items()}
        if args.dump:
            Path(args.dump).write_text(json.dumps(dumped))
        replay_s = time.perf_counter() - start
    finally:
        shutil.rmtree(root, ignore_errors=True)

    main_phase = phases["main"]
    errors = sum(len(p["errors"]) for p in phases.values())
    n_wrong = sum(len(w) for w in wrong.values())
    n_checked = sum(len(p["records"]) for p in phases.values())
    by_kind: dict = {}
    for kind, seconds in main_phase["chains"]:
        by_kind.setdefault(kind, []).append(seconds * 1000)
    lines = [
        "## Many clients at once (`python -m dldiag.bench load`)",
        "",
        f"Command: `python -m dldiag.bench load --clients {args.clients} --seconds {args.seconds:g} --write`  ",
        f"Machine: {machine()}  ",
        f"The app under gunicorn (`gunicorn app:server`, {configs[0][0]} workers × {configs[0][1]} threads) on "
        f"{args.dataset} ({ws.n_items:,} items), every fit and projection cached, an empty samples tier. "
        f"{args.clients} clients, each a renderer that posts real `/_dash-update-component` requests as a browser "
        f"does, make random changes for {args.seconds:g} s (mix: {', '.join(f'{k} {w}' for k, w in KINDS.items())}). "
        f"Every answer is then replayed one at a time against the same app built in-process with its own empty "
        f"samples tier, torch on the workers' one thread per pass, and compared (numbers to 1e-9): {n_checked:,} "
        f"answers checked in {replay_s:.0f} s. "
        f"1-minute load average before / after: {load_before:.2f} / {load_after:.2f}.",
        "",
        f"**Errors: {errors}. Wrong answers: {n_wrong}** (of {n_checked:,}).",
        "",
        f"Main run: {len(main_phase['chains']):,} changes, {main_phase['requests']:,} requests in "
        f"{main_phase['elapsed']:.0f} s ({main_phase['requests'] / main_phase['elapsed']:.1f} requests/s).",
        "",
        "| change | chains | p50 ms | p95 ms |",
        "|---|---:|---:|---:|",
    ]
    for kind in KINDS:
        if kind in by_kind:
            p50, p95 = _percentiles(by_kind[kind])
            lines.append(f"| {kind} | {len(by_kind[kind])} | {p50:.0f} | {p95:.0f} |")
    throughput = [key for key in phases if key != "main"]
    if throughput:
        lines += ["", f"Throughput ({args.throughput_seconds:g} s each, same mix, answers checked the same way), "
                  "by gunicorn configuration:", "",
                  "| workers × threads | clients | requests/s | changes/s | p50 ms (any change) | p95 ms |",
                  "|---|---:|---:|---:|---:|---:|"]
        for key in throughput:
            workers, threads, n = key
            p = phases[key]
            p50, p95 = _percentiles([s * 1000 for _, s in p["chains"]])
            lines.append(f"| {workers} × {threads} | {n} | {p['requests'] / p['elapsed']:.1f} | "
                         f"{len(p['chains']) / p['elapsed']:.1f} | {p50:.0f} | {p95:.0f} |")
    if errors or n_wrong:
        shown = [e for p in phases.values() for e in p["errors"]][:5] + [w for ws_ in wrong.values() for w in ws_][:5]
        lines += ["", "First problems:", ""] + [f"- {s}" for s in shown]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("load", text)
    return 1 if errors or n_wrong else 0
