"""Shared helpers of the benchmarks: medians, the machine's description, BENCHMARKS.md sections."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[2] / "BENCHMARKS.md"


def timed(fn, repeat: int) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls of ``fn``."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def run_together(target, count: int) -> float:
    """Run ``target(i, barrier)`` in ``count`` threads that each wait on ``barrier`` once ready;
    return the seconds from their common release to the last one's end."""
    import threading

    barrier = threading.Barrier(count + 1)
    threads = [threading.Thread(target=target, args=(i, barrier)) for i in range(count)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def median(values) -> float:
    return float(statistics.median(values))


def machine() -> str:
    """One line: CPU model, cores, memory, Python and torch versions."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    import torch

    return (f"{cpu}, {os.cpu_count()} cores{mem}; Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)")


def write_section(name: str, text: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` (or append it)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in old and end in old:
        head, rest = old.split(start, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.write_text(new)
