"""``python -m dldiag.bench cachecap``: a stream of new samples against a capped samples tier.

The app is served under gunicorn with ``DLDIAG_SAMPLE_CACHE_MB`` set (default 128 MiB here,
far below what the stream would need), over a prepared workspace. One client asks for
``--samples`` distinct samples (sampler, fraction and seed changes, each a sample never asked
for before), as the browser does. After each, the samples tier's size on disk is read (as
diskcache counts it for the cap). At the end the core tier must hold exactly the entries it
held before — the full pass, every projection and fit — each still readable and unaltered.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from ._renderer import Renderer, error_message
from ._report import machine, write_section
from .serve import served

__all__ = ["main"]


def _core_digests(core) -> dict:
    """sha256 of every core entry's stored bytes, by key (read without the cache's own logic)."""
    out = {}
    for key in core._cache.iterkeys():
        value = core._cache.get(key)
        out[key] = hashlib.sha256(value).hexdigest()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dldiag.bench cachecap")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--cache-dir", default=None, help="prepared cache (default: the default cache)")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--cap-mb", type=float, default=128.0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)

    from ..build import prepare_workspace
    from ..cache import ArrayCache
    from ..sampling import SAMPLER_NAMES

    ws = prepare_workspace(args.dataset, cache_dir=args.cache_dir, show_progress=False)
    root = Path(tempfile.mkdtemp(prefix="dldiag-cachecap-"))
    volumes, seen, errors = [], set(), []
    try:
        shutil.copytree(ws.cache.directory, root / "core")
        with ArrayCache(root / "core") as core:
            before = _core_digests(core)
        samplers = [s for s in SAMPLER_NAMES]
        start = time.perf_counter()
        with served(args.dataset, root, workers=2, threads=4,
                    extra_env={"DLDIAG_SAMPLE_CACHE_MB": str(args.cap_mb)}) as base:
            rd = Renderer(base, "?sampler=random")
            rd.change({}, initial=True)
            samples_tier = ArrayCache(root / "samples", size_limit_mb=args.cap_mb)
            i = 0
            while len(seen) < args.samples:
                sampler = samplers[i % len(samplers)]
                fraction = 1 + (i // len(samplers)) % 39 * 0.5  # 1–20 % in the slider's steps
                seed = i // (len(samplers) * 39)
                i += 1
                # randomised samplers change with the seed; the others only with sampler and fraction
                key = (sampler, fraction, seed) if sampler in ("random", "stratified-cm", "latent-grid",
                                                               "gmm-full-weighted", "gmm-spherical-weighted",
                                                               "max-margin-weighted") else (sampler, fraction)
                if key in seen:
                    continue
                seen.add(key)
                out = rd.change({("sampler", "value"): sampler, ("fraction", "value"): fraction,
                                 ("seed", "value"): seed})
                errors += [m for m in (error_message(c["response"]) for c in out["calls"]) if m]
                volumes.append(samples_tier.volume_mb())
            rd.pool.shutdown()
            entries = len(samples_tier)
            samples_tier.close()
        elapsed = time.perf_counter() - start
        with ArrayCache(root / "core") as core:
            after = _core_digests(core)
            readable = all(core.get(k) is not None for k in before)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    intact = before == after and readable
    over = max(volumes) - args.cap_mb
    lines = [
        "## Samples tier under a stream of new samples (`python -m dldiag.bench cachecap`)",
        "",
        f"Command: `python -m dldiag.bench cachecap --samples {args.samples} --cap-mb {args.cap_mb:g} --write`  ",
        f"Machine: {machine()}  ",
        f"The app under gunicorn (2 workers × 4 threads) on {args.dataset} with `DLDIAG_SAMPLE_CACHE_MB="
        f"{args.cap_mb:g}`; one client asks for {len(seen)} distinct samples (every sampler, fractions 1–20 %, "
        f"seeds), each with its random baseline, in {elapsed:.0f} s.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| samples tier, largest size after a request | {max(volumes):.1f} MiB (cap {args.cap_mb:g} MiB; "
        f"{'within it' if over <= 0 else f'{over:.1f} MiB over, before the next write culls'}) |",
        f"| samples tier at the end | {volumes[-1]:.1f} MiB, {entries} entries |",
        f"| core entries (full pass, projections, fits) | {len(before)} before, {len(after)} after; bytes "
        f"{'identical' if before == after else 'CHANGED'}, all {'readable' if readable else 'NOT readable'} |",
        f"| inline errors in the answers | {len(errors)} |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("cachecap", text)
    return 0 if intact and not errors and over <= 2.0 else 1
