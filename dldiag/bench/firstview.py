"""``python -m dldiag.bench firstview``: a newcomer's first start, from a fresh clone and cache.

The repository (its committed HEAD) is cloned into a temporary folder and ``python app.py``
started there, as the README says, with the clone's empty ``cache/`` (the Python environment
is this one: installing packages is not part of the app's start). Headless Chromium opens the
page at once; it shows the loading page, then the explorer. Measured from the moment the
process is started: every panel of the explorer drawn, and the background build's end (UMAP,
t-SNE and the other fits in the cache, the page's options no longer marked as computing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._browser import chrome
from ._report import machine, write_section
from .browser import _wait_for_panels
from .serve import REPO, free_port, stop

__all__ = ["main"]

GOAL_S = 30.0


def one_start(background: bool, timeout: float = 900.0) -> dict:
    """Clone, start ``python app.py``, and time the first view (and the background build)."""
    work = Path(tempfile.mkdtemp(prefix="dldiag-firstview-"))
    clone = work / "dldiag"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DLDIAG_CACHE", "PYTHONPATH")}
    log = open(work / "app.log", "wb")
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=clone, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    driver = chrome()
    try:
        base = f"http://127.0.0.1:{port}/"
        while True:
            try:
                driver.get(base)
                break
            except Exception:  # noqa: BLE001 - the server is not listening yet
                if proc.poll() is not None or time.monotonic() - start > timeout:
                    raise RuntimeError(f"app.py did not serve; see {work / 'app.log'}")
                time.sleep(0.2)
        _wait_for_panels(driver, timeout=timeout)
        panels_s = time.monotonic() - start
        out = {"panels_s": panels_s}
        if background:
            while time.monotonic() - start < timeout:
                if driver.execute_script("return !document.getElementById('pending-note') || "
                                         "!document.getElementById('pending-note').textContent"):
                    break
                time.sleep(0.5)
            out["background_s"] = time.monotonic() - start
            time.sleep(2.0)  # the last poll's answer redraws the latent view
            title = driver.execute_script(
                "const t = document.querySelector('#latent-graph .gtitle'); return t ? t.textContent : ''")
            out["switched"] = "UMAP" in title and "still being computed" not in title
        return out
    finally:
        driver.quit()
        stop(proc)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dldiag.bench firstview")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-background", action="store_true", help="stop once the panels are drawn")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    load_before = os.getloadavg()[0]
    runs = []
    for i in range(args.repeat):
        runs.append(one_start(background=not args.no_background))
        print(f"start {i + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in runs[-1].items() if k.endswith("_s")),
              flush=True)
    load_after = os.getloadavg()[0]
    panels = [r["panels_s"] for r in runs]
    lines = [
        "## First start (`python -m dldiag.bench firstview`)",
        "",
        f"Command: `python -m dldiag.bench firstview --repeat {args.repeat} --write`  ",
        f"Machine: {machine()}  ",
        f"A fresh clone of HEAD ({head}), `python app.py` with its empty cache (default data: Fashion-MNIST, "
        "10,000 items), headless Chromium opening the page at once; seconds from starting the process. "
        f"1-minute load average before / after: {load_before:.2f} / {load_after:.2f}.",
        "",
        "| measure | median s | runs (s) | goal |",
        "|---|---:|---|---|",
        f"| every panel of the explorer drawn | {statistics.median(panels):.1f} | "
        f"{', '.join(f'{v:.1f}' for v in panels)} | ≤ {GOAL_S:.0f} s |",
    ]
    if not args.no_background:
        bg = [r["background_s"] for r in runs]
        switched = all(r["switched"] for r in runs)
        lines.append(f"| background build done (UMAP, t-SNE, every fit) | "
                     f"{statistics.median(bg):.1f} | {', '.join(f'{v:.1f}' for v in bg)} | |")
        lines.append(f"| the open page's latent view then switched to UMAP in place | | "
                     f"{'yes' if switched else 'no'} in every run | |")
    lines += ["", "Until the background build is done the latent view shows PCA, titled as waiting for UMAP; the "
              "projection and sampler options still being built are marked as computing."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("firstview", text)
    return 0 if statistics.median(panels) <= GOAL_S else 1
