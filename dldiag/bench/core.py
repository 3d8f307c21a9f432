"""``python -m dldiag.bench core``: costs of the full pass, the sample pass, the cache, memory.

Measured on the Fashion-MNIST evaluation split (10k items) with the shipped LeNet-5:

1. the full pass with every aggregate vs a plain forward pass over the same batches;
2. a 5 % sample pass vs the full pass;
3. a second ``build`` (everything from the cache) vs the first (into an empty cache);
4. peak RSS of a full pass over N = 10k vs N = 2k items (and over two batch sizes), each in
   a fresh process, to show that memory grows with the batch size and not with N.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

import numpy as np
import torch

from ._report import machine, median, timed, write_section

# VmHWM (peak RSS of this process image), not ru_maxrss: Linux carries ru_maxrss over exec,
# so a child started from a big parent would report the parent's peak.
_RSS_CHILD = r"""
import json, sys
def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
import numpy as np
from dldiag.activations import run_pass
from dldiag.artifacts import resolve_weights
from dldiag.datasets import load_dataset
from dldiag.models import default_layers, latent_layer, load_checkpoint
n, batch = int(sys.argv[1]), int(sys.argv[2])
ds = load_dataset("fashion-mnist", splits=("test",))
x, y = np.ascontiguousarray(ds.x_test[:n]), ds.y_test[:n].copy()
del ds
model, _ = load_checkpoint(resolve_weights("fashion-mnist", None))
before = peak_kib()
run_pass(model, x, y, default_layers(model), n_classes=10, latent_layer=latent_layer(model), batch_size=batch)
after = peak_kib()
print(json.dumps({"peak_kib": after, "before_pass_kib": before}))
"""


def _peak_rss(n: int, batch: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(n), str(batch)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dldiag.bench core")
    parser.add_argument("--repeat", type=int, default=5, help="builds into a fresh cache (default 5)")
    parser.add_argument("--pass-repeat", type=int, default=11,
                        help="interleaved runs of the plain, full and sample passes (default 11)")
    parser.add_argument("--write", action="store_true", help="record the figures in BENCHMARKS.md")
    args = parser.parse_args(argv)

    from dldiag.activations import run_pass
    from dldiag.artifacts import load_workspace
    from dldiag.sampling import make_sampler

    ws = load_workspace("fashion-mnist", show_progress=False, cache_dir=tempfile.mkdtemp())
    x, y, model, layers = ws.dataset.x_test, ws.dataset.y_test, ws.model, ws.layers
    n, batch = len(x), ws.batch_size

    def plain():
        with torch.no_grad():
            for start in range(0, n, batch):
                model(torch.from_numpy(np.ascontiguousarray(x[start:start + batch], dtype=np.float32)))

    def full():
        run_pass(model, x, y, layers, n_classes=10, latent_layer=ws.latent_layer, batch_size=batch)

    sample = make_sampler("random").fit(ws.latent, ws.y_true, ws.y_pred, seed=0).sample(0.05, seed=0)

    def sample_pass():
        ws.sample_pass(sample)

    plain(), full()  # warm up allocator and kernels
    t_plain, t_full, t_sample = [], [], []
    for _ in range(args.pass_repeat):  # interleaved, so that machine noise hits all three alike
        t_plain += timed(plain, 1)
        t_full += timed(full, 1)
        t_sample += timed(sample_pass, 1)

    builds = {"all": [], "pass": []}  # kind -> [(first, second), ...]
    for _ in range(args.repeat):
        for kind, extra in (("all", []), ("pass", ["--projections", "", "--samplers", ""])):
            cmd = ["build", "--dataset", "fashion-mnist", "--cache-dir", tempfile.mkdtemp(), *extra]
            builds[kind].append((timed(lambda: _run_cli(cmd), 1)[0], timed(lambda: _run_cli(cmd), 1)[0]))
    t_first, t_second = [f for f, _ in builds["all"]], [s for _, s in builds["all"]]
    p_first, p_second = [f for f, _ in builds["pass"]], [s for _, s in builds["pass"]]

    rss = {(m, b): _peak_rss(m, b) for m, b in ((10000, 256), (2000, 256), (10000, 2048))}

    rows = [
        ("full pass with all aggregates / plain forward", median(t_full), median(t_plain), "≤ 1.3"),
        ("5 % sample pass / full pass", median(t_sample), median(t_full), "≤ 0.15"),
        ("second build / first build", median(t_second), median(t_first), "≤ 0.1"),
        ("second / first build of the full pass alone (`--projections '' --samplers ''`)",
         median(p_second), median(p_first), "(for information)"),
    ]
    keys = ((10000, 256), (2000, 256), (10000, 2048))
    peak10, peak2, peak_big = (rss[k]["peak_kib"] / 1024 for k in keys)
    grow10, grow2, grow_big = ((rss[k]["peak_kib"] - rss[k]["before_pass_kib"]) / 1024 for k in keys)
    lines = [
        "## Core engine",
        "",
        f"Command: `python -m dldiag.bench core --repeat {args.repeat} --pass-repeat {args.pass_repeat} --write`  ",
        f"Machine: {machine()}  ",
        f"Data: Fashion-MNIST evaluation split, N = {n}, LeNet-5, layers {', '.join(layers)}, "
        f"batch {batch}. Pass times are medians of {args.pass_repeat} interleaved runs, build times "
        f"medians of {args.repeat}; ratios are of medians measured in the same run.",
        "",
        "| measure | median (s) | reference median (s) | ratio | required |",
        "|---|---|---|---|---|",
    ]
    for name, a, b, need in rows:
        lines.append(f"| {name} | {a:.4f} | {b:.4f} | {a / b:.3f} | {need} |")
    lines += [
        f"| peak RSS, full pass N = 10k / N = 2k (batch {batch}) | {peak10:.0f} MiB | {peak2:.0f} MiB "
        f"| {peak10 / peak2:.3f} | ≤ 1.2 |",
        f"| peak RSS, full pass batch 2048 / batch {batch} (N = 10k) | {peak_big:.0f} MiB | {peak10:.0f} MiB "
        f"| {peak_big / peak10:.3f} | grows with the batch |",
        "",
        f"Memory the pass itself adds above the loaded data and model (peak minus the peak before "
        f"the pass): N = 2k, batch {batch}: {grow2:.0f} MiB; N = 10k, batch {batch}: {grow10:.0f} MiB; "
        f"N = 10k, batch 2048: {grow_big:.0f} MiB. Peak RSS is the process's VmHWM, each in a fresh "
        "process.",
        "",
        "The first build runs the full pass, the default projections (UMAP, t-SNE, PCA) and every "
        "sampler fit into an empty cache; the second finds all of it in the cache (each in-process, "
        "via `dldiag.cli.main`, so that interpreter start-up is not counted).",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("core", text)
    ok = (rows[0][1] / rows[0][2] <= 1.3 and rows[1][1] / rows[1][2] <= 0.15
          and rows[2][1] / rows[2][2] <= 0.1 and peak10 / peak2 <= 1.2)
    return 0 if ok else 1


def _run_cli(argv) -> None:
    from dldiag.cli import main as cli_main

    status = cli_main(list(argv))
    if status:
        raise RuntimeError(f"python -m dldiag {' '.join(argv)} exited with {status}")
