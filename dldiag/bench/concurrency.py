"""``python -m dldiag.bench concurrency``: throughput of passes from several threads at once.

Every pass holds its model alone (hooks and mode live on the module). This measures what that
costs and how replicas buy it back: clients (threads) each run the sample pass of a 5 % random sample
of Fashion-MNIST again and again (what the app does for a new sample), against one workspace whose :class:`~dldiag.replicas.ModelPool` has 1 replica
(every pass waits for the one before: a lock on the model) or more (passes side by side),
with torch on 1 or 2 threads per pass. Configurations are interleaved round by round; the
figure is completed requests per second, median over rounds. Each answer is checked against
the sequential answer for the same sample.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from ._report import machine, median, run_together, write_section

__all__ = ["main", "throughput"]


def _same(got, want) -> bool:
    return all(np.allclose(got.by_layer[key].sums, agg.sums, rtol=0, atol=1e-9)
               and np.array_equal(got.by_layer[key].argmax_counts, agg.argmax_counts)
               for key, agg in want.by_layer.items())


def throughput(ws, samples: list[np.ndarray], expected: list[dict], clients: int, seconds: float) -> tuple[float, int]:
    """(requests/s, wrong answers) of ``clients`` threads passing over ``samples`` round-robin."""
    stop = time.perf_counter() + seconds
    done = [0] * clients
    wrong = [0] * clients

    def client(c: int, barrier) -> None:
        i = c
        barrier.wait()
        while time.perf_counter() < stop:
            s = i % len(samples)
            got = ws.sample_pass(samples[s]).aggregates
            if not _same(got, expected[s]):
                wrong[c] += 1
            done[c] += 1
            i += clients

    elapsed = run_together(client, clients)
    return sum(done) / elapsed, sum(wrong)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dldiag.bench concurrency")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--clients", default="1,4,16", help="comma-separated client counts (default 1,4,16)")
    parser.add_argument("--pools", default="1,2,4", help="comma-separated replica counts (default 1,2,4)")
    parser.add_argument("--threads", default="1,2", help="torch threads per pass (default 1,2)")
    parser.add_argument("--seconds", type=float, default=6.0, help="per measurement (default 6)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")
    args = parser.parse_args(argv)

    from ..artifacts import load_workspace
    from ..replicas import ModelPool

    clients = [int(v) for v in args.clients.split(",")]
    pools = [int(v) for v in args.pools.split(",")]
    threads = [int(v) for v in args.threads.split(",")]
    ws = load_workspace(args.dataset, cache_dir=args.cache_dir, show_progress=False)
    rng = np.random.default_rng(0)
    n = int(round(0.05 * ws.n_items))
    samples = [np.sort(rng.choice(ws.n_items, n, replace=False)) for _ in range(32)]
    expected = [ws.sample_pass(s).aggregates for s in samples]
    configs = [(p, t, c) for p in pools for t in threads for c in clients]
    rates: dict = {cfg: [] for cfg in configs}
    wrong_total = 0
    load_before = os.getloadavg()[0]
    for r in range(args.rounds):
        for p, t, c in configs:
            torch.set_num_threads(t)
            ws.pool = ModelPool(ws.model, size=p)
            rate, wrong = throughput(ws, samples, expected, c, args.seconds)
            rates[(p, t, c)].append(rate)
            wrong_total += wrong
            print(f"round {r + 1}: pool {p}, torch threads {t}, clients {c}: {rate:.1f} req/s, wrong {wrong}",
                  flush=True)
    load_after = os.getloadavg()[0]

    lines = [
        "## Passes from several threads (`python -m dldiag.bench concurrency`)",
        "",
        f"Command: `python -m dldiag.bench concurrency --seconds {args.seconds:g} --rounds {args.rounds} --write`  ",
        f"Machine: {machine()}  ",
        f"Data: {ws.dataset.name}, N = {ws.n_items}; each request is the sample pass of a 5 % random sample ({n} items, "
        "every diagnosed layer) from a set of 32, every answer's aggregates checked against the sequential pass's (1e-9). "
        f"Requests per second, median of {args.rounds} interleaved rounds of {args.seconds:g} s. "
        f"1-minute load average before / after: {load_before:.2f} / {load_after:.2f}.",
        "",
        "| replicas | torch threads per pass | " + " | ".join(f"{c} client{'s' if c > 1 else ''}" for c in clients) + " |",
        "|---:|---:|" + "---:|" * len(clients),
    ]
    for p in pools:
        for t in threads:
            cells = " | ".join(f"{median(rates[(p, t, c)]):.1f}" for c in clients)
            lines.append(f"| {p}{' (a lock on the model)' if p == 1 else ''} | {t} | {cells} |")
    lines += ["", f"Wrong answers over all runs: {wrong_total}."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("concurrency", text)
    return 1 if wrong_total else 0
