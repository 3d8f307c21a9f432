"""The two large workloads where sampling pays, written as chunk stores (:mod:`dldiag.chunks`).

- **wide**: Fashion-MNIST's 70,000 images (train and test) augmented to N items for LeNet-5:
  each item is a random base image shifted by up to 1 pixel in each direction (zero fill) and
  given Gaussian pixel noise of standard deviation 8 grey levels, rounded and clipped to uint8.
  Labels are the base image's: a shift and faint noise do not change what a garment is. Not
  mirrored: every Fashion-MNIST shoe and bag faces one way and LeNet-5 was trained so, and
  mirroring half the items alone drops its accuracy on the test split from 0.907 to 0.790,
  which would make the workload a study of mirrored shoes (shift 1 and noise 8 without mirror:
  about 0.87; measured with :func:`augment` on the test split).
- **deep**: simulated galaxies (:mod:`dldiag.galaxies`) augmented to N items for the galaxy CNN:
  a random base galaxy turned by a multiple of 90°, possibly mirrored, with Gaussian noise.
  A galaxy's inclination, hence its label, does not change under a turn or a mirror, and
  rendering 10^5 new galaxies would take about 20 min on 2 cores against seconds for this.
  The base is the test split (2,118 galaxies) or, with ``base="train+test"``, the training
  split too (54,000 more; drawn on first use, ~3 min on 2 cores).

Every chunk is made from its own generator, seeded by (``seed``, chunk index), so a store is
the same bytes however often its writing was interrupted and resumed, and chunks can be made
in any order.

Examples
--------
::

    python -m dldiag.workloads wide --n 1000000 --out /data/wide-1m
    python -m dldiag app --dataset chunks:/data/wide-1m --weights data/weights/fashion-mnist.pt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ._validation import check_int, check_interval, check_option
from .chunks import ChunkWriter
from .progress import progress

__all__ = ["WORKLOADS", "augment", "base_items", "make_workload", "main"]

#: Workload → (base data set, the model's weights for it, default augmentation).
WORKLOADS = {
    "wide": {"base": "fashion-mnist", "weights": "data/weights/fashion-mnist.pt", "max_shift": 1, "noise": 8.0,
             "mirror": False, "turns": False},
    "deep": {"base": "galaxies", "weights": "data/weights/galaxies.pt", "max_shift": 0, "noise": 4.0,
             "mirror": True, "turns": True},
}
BASES = ("test", "train+test")


def base_items(kind: str, base: str = "train+test") -> tuple[np.ndarray, np.ndarray, tuple[str, ...], str]:
    """The uint8 base images (M, C, H, W), their labels, the class names and where they come from."""
    from .datasets import load_dataset

    check_option("kind", kind, tuple(WORKLOADS))
    check_option("base", base, BASES)
    splits = ("test",) if base == "test" else ("train", "test")
    ds = load_dataset(WORKLOADS[kind]["base"], splits=splits)
    parts = [(ds.x_test, ds.y_test)] if base == "test" else [(ds.x_train, ds.y_train), (ds.x_test, ds.y_test)]
    # every shipped loader divides uint8 by 255 in float32: rint(x * 255) gives the bytes back
    x = np.concatenate([np.rint(np.asarray(p[0]) * np.float32(255)).astype(np.uint8) for p in parts])
    y = np.concatenate([np.asarray(p[1], dtype=np.int64) for p in parts])
    return x, y, ds.class_names, "; ".join(ds.sources)


def augment(x: np.ndarray, rng: np.random.Generator, *, max_shift: int = 2, noise: float = 8.0,
            mirror: bool = True, turns: bool = False) -> np.ndarray:
    """Shifted, mirrored (and with ``turns`` turned by k·90°), noisy copies of uint8 images.

    Parameters
    ----------
    x : ndarray of uint8, shape (n, C, H, W)
        The images to augment, one copy each.
    rng : numpy Generator
    max_shift : int
        Largest shift in pixels along each axis (zero fill).
    noise : float
        Standard deviation of the added Gaussian noise, in grey levels.
    mirror : bool
        Mirror left-right with probability 1/2.
    turns : bool
        Also turn by 0, 90, 180 or 270 degrees (square images only).

    Returns
    -------
    ndarray of uint8, shape (n, C, H, W)

    Examples
    --------
    >>> img = np.arange(4, dtype=np.uint8).reshape(1, 1, 2, 2)
    >>> augment(img, np.random.default_rng(0), max_shift=0, noise=0.0).shape
    (1, 1, 2, 2)
    """
    x = np.asarray(x)
    if x.ndim != 4 or x.dtype != np.uint8:
        raise ValueError(f"x must be uint8 images of shape (n, C, H, W); got {x.dtype} {x.shape}")
    max_shift = check_int("max_shift", max_shift, 0)
    noise = check_interval("noise", noise, 0.0, 255.0)
    n, channels, h, w = x.shape
    if turns and h != w:
        raise ValueError(f"turns need square images; got {h}×{w}")
    s = max_shift
    padded = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s))) if s else x
    dy, dx = rng.integers(-s, s + 1, size=(2, n))
    flip = rng.random(n) < 0.5
    if not mirror:
        flip[:] = False
    rows = np.arange(h)[None, :] + s - dy[:, None]
    cols = np.where(flip[:, None], w - 1 - np.arange(w)[None, :], np.arange(w)[None, :]) + s - dx[:, None]
    out = padded[np.arange(n)[:, None, None, None], np.arange(channels)[None, :, None, None],
                 rows[:, None, :, None], cols[:, None, None, :]]
    if turns:
        k = rng.integers(0, 4, size=n)
        for quarter in (1, 2, 3):
            mine = k == quarter
            out[mine] = np.rot90(out[mine], quarter, axes=(2, 3))
    if noise > 0:
        noisy = out.astype(np.float32) + noise * rng.standard_normal(out.shape, dtype=np.float32)
        out = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


def make_workload(kind: str, n_items: int, out, *, seed: int = 0, chunk_items: int = 16384,
                  base: str = "train+test", show_progress: bool = True, log=None) -> Path:
    """Write (or finish writing) the ``kind`` workload of ``n_items`` items to the store ``out``.

    Parameters
    ----------
    kind : {"wide", "deep"}
    n_items : int
        N.
    out : path
        The store's folder; chunks already written there (by an interrupted run with the same
        arguments) are kept.
    seed : int
        Chunk ``c`` is drawn from ``numpy.random.default_rng([seed, c])``.
    chunk_items : int
        Items per chunk.
    base : {"train+test", "test"}
        Which base images to augment.
    show_progress : bool
    log : callable, optional
        Receives one line when the store is complete.

    Returns
    -------
    Path
        The store's manifest.
    """
    spec = WORKLOADS[check_option("kind", kind, tuple(WORKLOADS))]
    seed = check_int("seed", seed, 0)
    start = time.perf_counter()
    x, y, class_names, source = base_items(kind, base)
    provenance = {"workload": kind, "seed": seed, "base": base, "base_items": int(len(x)), "source": source,
                  "weights": spec["weights"], "max_shift": spec["max_shift"], "noise": spec["noise"],
                  "mirror": spec["mirror"], "turns": spec["turns"], "command": f"python -m dldiag.workloads {kind} --n {n_items} "
                                                     f"--seed {seed} --chunk-items {chunk_items} --base {base}"}
    writer = ChunkWriter(out, n_items, x.shape[1:], class_names, chunk_items=chunk_items, provenance=provenance)
    labels = np.empty(writer.n_items, dtype=np.int64)
    todo = set(writer.missing())
    bar = progress(total=writer.n_items, desc=f"{kind} workload", unit="item", disable=not show_progress)
    try:
        for c in range(writer.n_chunks):
            lo, hi = writer.bounds(c)
            rng = np.random.default_rng([seed, c])
            pick = rng.integers(0, len(x), size=hi - lo)
            labels[lo:hi] = y[pick]  # labels are redrawn for finished chunks too: same generator, same picks
            if c in todo:
                writer.write(c, augment(x[pick], rng, max_shift=spec["max_shift"], noise=spec["noise"],
                                        mirror=spec["mirror"], turns=spec["turns"]))
            bar.update(hi - lo)
    finally:
        bar.close()
    path = writer.finish(labels)
    (log or (lambda line: print(line, file=sys.stderr)))(
        f"{kind}: {writer.n_items} items in {writer.n_chunks} chunks at {writer.folder} "
        f"({len(todo)} chunk(s) written now, {time.perf_counter() - start:.1f} s)")
    return path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dldiag.workloads",
                                description="Write a large workload (augmented Fashion-MNIST or galaxies) as a chunk "
                                            "store; an interrupted run resumes where it stopped.")
    p.add_argument("kind", choices=tuple(WORKLOADS), help="wide: Fashion-MNIST for LeNet-5; deep: galaxies for the "
                                                          "galaxy CNN")
    p.add_argument("--n", type=int, required=True, help="items N")
    p.add_argument("--out", required=True, help="the store's folder")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--chunk-items", type=int, default=16384, help="items per chunk file (default 16384)")
    p.add_argument("--base", choices=BASES, default="train+test",
                   help="base images: train+test (default) or the test split only")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        make_workload(args.kind, args.n, args.out, seed=args.seed, chunk_items=args.chunk_items, base=args.base,
                      show_progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    weights = WORKLOADS[args.kind]["weights"]
    print(f"use it as --dataset chunks:{args.out} --weights {weights}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
