"""Serving the app for the benchmarks as the README says to share it: gunicorn, ``app:server``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["served", "free_port", "stop", "REPO"]

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Terminate a child process, and kill it if it has not ended within ``timeout``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextmanager
def served(dataset: str, cache_root, *, workers: int = 2, threads: int = 4, timeout: float = 300.0,
           extra_env: dict | None = None, log_path=None):
    """Run ``gunicorn app:server`` (this repository's gunicorn.conf.py) until the block ends.

    Yields the base URL once every worker serves the explorer (not the loading page).
    """
    port = free_port()
    env = {**os.environ, "DLDIAG_DATASET": dataset, "DLDIAG_CACHE": str(cache_root),
           "DLDIAG_BIND": f"127.0.0.1:{port}", "DLDIAG_WORKERS": str(workers), "DLDIAG_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
           **(extra_env or {})}
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    cmd = [sys.executable, "-m", "gunicorn", "app:server"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_explorer(base, proc, workers, timeout)
        yield base
    finally:
        stop(proc)
        if log_path:
            log.close()


def _wait_explorer(base: str, proc, workers: int, timeout: float) -> None:
    """Until ``workers * 3`` layouts in a row are the explorer's (each worker answers some)."""
    import requests

    deadline = time.monotonic() + timeout
    in_a_row = 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {proc.returncode}")
        try:
            r = requests.get(base + "/_dash-layout", timeout=10)
            in_a_row = in_a_row + 1 if r.ok and "latent-graph" in r.text else 0
        except requests.RequestException:
            in_a_row = 0
        if in_a_row >= 3 * workers:
            return
        time.sleep(0.3)
    raise TimeoutError(f"the app at {base} did not serve the explorer within {timeout:.0f} s")
