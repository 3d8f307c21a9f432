"""``python -m dldiag.bench streaming``: memory of a pass over data read from disk, batch by batch.

Evaluation data given as ``h5:FILE`` or ``folder:DIR`` (or a torch ``Dataset``) is never held in
memory whole: a pass reads one batch at a time. This measures it: Fashion-MNIST's test images
(repeated to reach N) written as an HDF5 file and as a folder of PNGs, then one full pass of the
shipped LeNet-5 over them (every diagnosed layer, the latent), each in a fresh process, its peak
resident memory (VmHWM) read before and after. Held items would show as memory growing by at
least an item's size (as float32) per item from N = ``--small`` to N = ``--large``; what does grow
with N is the pass's own output per item (its latent vector, logits, prediction, one arg-max index
per layer and unit mode: about half a kilobyte for LeNet-5) and, for a folder, its list of files.
The batch size is varied to show what memory grows with instead.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ._report import machine, write_section

__all__ = ["main"]

_CHILD = r"""
import json, sys, time
def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
from dldiag.activations import run_pass
from dldiag.artifacts import resolve_weights
from dldiag.datasets import load_dataset
from dldiag.models import load_checkpoint
spec, batch = sys.argv[1], int(sys.argv[2])
ds = load_dataset(spec, splits=("test",))
model, _ = load_checkpoint(resolve_weights("fashion-mnist", None))
before = peak_kib()
start = time.perf_counter()
res = run_pass(model, ds.x_test, ds.y_test, model.diagnosed_layers, n_classes=10, latent_layer=model.latent_layer,
               batch_size=batch)
seconds = time.perf_counter() - start
print(json.dumps({"peak_kib": peak_kib(), "before_kib": before, "seconds": seconds, "n": len(ds.y_test),
                  "source": type(ds.x_test).__name__}))
"""


def _write_data(images: np.ndarray, labels: np.ndarray, n: int, folder: Path) -> dict:
    """h5 and folder copies of the first ``n`` items of ``images`` repeated (uint8 pixels)."""
    import h5py
    from PIL import Image

    reps = -(-n // len(images))
    x = np.concatenate([images] * reps)[:n]
    y = np.concatenate([labels] * reps)[:n]
    h5 = folder / f"fmnist-{n}.h5"
    with h5py.File(h5, "w") as f:
        f["x_test"] = x
        f["y_test"] = y
    pngs = folder / f"fmnist-{n}"
    for i in range(n):
        cls = pngs / f"class-{y[i]}"
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i, 0]).save(cls / f"{i:07d}.png")
    return {"h5": f"h5:{h5}", "folder": f"folder:{pngs}"}


def _measure(spec: str, batch: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, spec, str(batch)], check=True, capture_output=True,
                         text=True, cwd=Path(__file__).resolve().parents[2])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dldiag.bench streaming")
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("--batches", default="256,2048", help="batch sizes (default 256,2048)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)

    from ..datasets import load_dataset

    ds = load_dataset("fashion-mnist", splits=("test",))
    images = np.rint(ds.x_test * 255).astype(np.uint8)
    batches = [int(b) for b in args.batches.split(",")]
    work = Path(tempfile.mkdtemp(prefix="dldiag-streaming-"))
    rows = []
    try:
        start = time.perf_counter()
        specs = {n: _write_data(images, ds.y_test, n, work) for n in (args.small, args.large)}
        write_s = time.perf_counter() - start
        for kind in ("h5", "folder"):
            for n in (args.small, args.large):
                for batch in batches:
                    r = _measure(specs[n][kind], batch)
                    rows.append({"kind": kind, "n": n, "batch": batch, **r})
                    print(f"{kind} N={n} batch={batch}: peak {r['peak_kib'] / 1024:.0f} MiB "
                          f"({(r['peak_kib'] - r['before_kib']) / 1024:.0f} MiB in the pass), {r['seconds']:.1f} s",
                          flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def peak(kind, n, batch):
        return next(r["peak_kib"] for r in rows if (r["kind"], r["n"], r["batch"]) == (kind, n, batch)) / 1024

    lines = [
        "## A pass over data read from disk (`python -m dldiag.bench streaming`)",
        "",
        f"Command: `python -m dldiag.bench streaming --small {args.small} --large {args.large} --write`  ",
        f"Machine: {machine()}  ",
        f"Fashion-MNIST test images repeated to N items, as `h5:` (one uint8 array) and as `folder:` (one PNG "
        f"per item), written in {write_s:.0f} s; one full pass of the shipped LeNet-5 (every diagnosed layer and "
        "the latent) over each, in a fresh process; peak RSS is the process's VmHWM. An in-memory N of "
        f"{args.large:,} items would take {args.large * 784 * 4 / 2**20:.0f} MiB as float32.",
        "",
        "| data | N | batch | peak RSS (MiB) | added by the pass (MiB) | pass (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['kind']}: | {r['n']:,} | {r['batch']} | {r['peak_kib'] / 1024:.0f} | "
                     f"{(r['peak_kib'] - r['before_kib']) / 1024:.0f} | {r['seconds']:.1f} |")
    b0, b1 = batches[0], batches[-1]
    item_kb = 784 * 4 / 1024
    per_item = []
    lines += ["", f"| data | peak RSS, N = {args.large:,} / {args.small:,} (batch {b0}) | memory per added item "
              f"(item as float32: {item_kb:.2f} KB) | batch {b1} / {b0} (N = {args.large:,}) |", "|---|---:|---:|---:|"]
    for kind in ("h5", "folder"):
        grow_n = peak(kind, args.large, b0) / peak(kind, args.small, b0)
        kb = (peak(kind, args.large, b0) - peak(kind, args.small, b0)) * 1024 / (args.large - args.small)
        grow_b = peak(kind, args.large, b1) / peak(kind, args.large, b0)
        per_item.append(kb)
        lines.append(f"| {kind}: | {grow_n:.3f} | {kb:.2f} KB | {grow_b:.3f} |")
    lines += ["", "Memory per added item is well below an item's size: the items are read a batch at a time and "
              "never held. What it is: the pass's output per item (latent 84 floats, 10 logits, the prediction and "
              "an arg-max index per layer and unit mode, about 0.5 KB) and, for a folder, its file list."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("streaming", text)
    return 0 if all(kb < 0.5 * item_kb for kb in per_item) else 1
