"""``python -m dldiag.bench galaxies``: how long drawing the GalSim galaxies takes, per core and on all.

Draws ``--n`` galaxies ``--repeat`` times each way, interleaved: in this process (one core, no
worker start-up), with one worker process and with one per usable core (:func:`dldiag.galaxies.draw`,
as ``galaxy_split`` does), and extrapolates the medians to the report's splits.
"""

from __future__ import annotations

import argparse

from ._report import machine, median, write_section

__all__ = ["main"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dldiag.bench galaxies")
    parser.add_argument("--n", type=int, default=500, help="galaxies per draw (default 500)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7, help="a seed of no shipped split, so no cache is touched")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)

    import time

    import galsim

    from .. import galaxies

    cores = galaxies._usable_cores()
    ways = {"one core, in process": lambda: [galaxies.render(args.seed, i) for i in range(args.n)],
            "1 worker process": lambda: galaxies.draw(args.seed, args.n, workers=1, show_progress=False),
            f"{cores} worker processes": lambda: galaxies.draw(args.seed, args.n, workers=cores,
                                                               show_progress=False)}
    times = {name: [] for name in ways}
    for _ in range(args.repeat):
        for name, fn in ways.items():  # interleaved, so that drift on a noisy machine hits all alike
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    one = median(times["one core, in process"])
    rows = []
    for name, values in times.items():
        m = median(values)
        per = m / args.n
        rows.append(f"| {name} | {1000 * per:.2f} | {one / m:.2f} | {per * galaxies.SPLITS['test'][1]:.0f} | "
                    f"{per * galaxies.SPLITS['train'][1] / 60:.1f} |")
    lines = [
        "## Drawing the galaxies (`python -m dldiag.bench galaxies`)",
        "",
        f"Command: `python -m dldiag.bench galaxies --n {args.n} --repeat {args.repeat} --write`  ",
        f"Machine: {machine()}; GalSim {galsim.__version__}  ",
        f"{args.n} galaxies (3 bands, 69×69, disk + bulge + PSF + noise) per draw, medians of {args.repeat} "
        "interleaved draws; the splits' times are extrapolated from them (a split is drawn once, then read "
        "from the cache).",
        "",
        "| way | ms per galaxy | speed-up vs one core | test split, 2,118 (s) | train split, 54,000 (min) |",
        "|---|---:|---:|---:|---:|",
        *rows,
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("galaxies", text)
    return 0
