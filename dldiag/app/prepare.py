"""Preparing a workspace for the app: the full pass, the projections and every sampler fit.

:func:`prepare_workspace` does it in the foreground with progress in the terminal;
:class:`Warmup` does it in a background thread so that the server can answer right away with
a loading page that shows the same progress. Callbacks never fit anything: when the app is
ready, everything they read is in the disk cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from ..progress import progress

__all__ = ["prepare_workspace", "Warmup", "Ready"]

log = logging.getLogger(__name__)


def prepare_workspace(dataset: str = "fashion-mnist", *, cache_dir=None, weights=None,
                      projections: Sequence[str] | None = None, samplers: Sequence[str] | None = None,
                      report: Callable[[int, int, str], None] | None = None, show_progress: bool = True):
    """Load (or build) the workspace and make sure its projections and sampler fits are cached.

    Parameters
    ----------
    dataset : str
    cache_dir, weights : path, optional
        As :func:`dldiag.artifacts.load_workspace`, except that without ``weights`` a data set
        other than the shipped ones finds its weights in ``cache_dir/weights/``, where
        ``python -m dldiag train --cache-dir`` saves them.
    projections : sequence of str, optional
        Default: every projection (UMAP, t-SNE, PCA).
    samplers : sequence of str, optional
        Default: every sampler.
    report : callable(step, total, message), optional
        Told before each step (and once at the end with ``step == total``).
    show_progress : bool
        Progress bars on stderr.

    Returns
    -------
    Workspace
    """
    from ..artifacts import load_workspace
    from ..projections import PROJECTIONS
    from ..sampling import SAMPLER_NAMES

    projections = tuple(projections) if projections is not None else tuple(PROJECTIONS)
    samplers = tuple(samplers) if samplers is not None else tuple(SAMPLER_NAMES)
    total = 1 + len(projections) + len(samplers)
    say = report or (lambda *_: None)
    say(0, total, f"loading {dataset} and its model (full pass on first start)…")
    ws = load_workspace(dataset, weights=weights, cache_dir=cache_dir, show_progress=show_progress)
    steps = [(f"projection {p}", lambda p=p: ws.projection(p)) for p in projections]
    steps += [(f"sampler fit {s}", lambda s=s: ws.fitted_sampler(s)) for s in samplers]
    bar = progress(total=len(steps), desc="preparing the app", unit="step", disable=not show_progress,
                   leave=True)
    try:
        for i, (name, run) in enumerate(steps, start=1):
            say(i, total, f"{name} ({i}/{len(steps)})…")
            bar.set_postfix_str(name)
            start = time.perf_counter()
            run()
            log.info("%s: %.1f s", name, time.perf_counter() - start)
            bar.update(1)
    finally:
        bar.close()
    say(total, total, "ready")
    return ws


class Ready:
    """A provider whose workspace is there from the start (tests, notebooks)."""

    def __init__(self, ws):
        self.workspace = ws
        self.error = None

    @property
    def ready(self) -> bool:
        return True

    def start(self) -> None:
        pass

    def status(self) -> dict:
        return {"step": 1, "total": 1, "message": "ready", "ready": True, "error": None}


class Warmup:
    """Prepare a workspace in a background thread; the page polls :meth:`status`.

    The thread writes only this object's own fields (under a lock); callbacks read them.

    Parameters
    ----------
    dataset : str
    **kwargs
        Passed to :func:`prepare_workspace`.
    """

    def __init__(self, dataset: str = "fashion-mnist", **kwargs):
        self.dataset = dataset
        self.kwargs = kwargs
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._status = {"step": 0, "total": 1, "message": "waiting to start…"}
        self.workspace = None
        self.error: str | None = None

    @property
    def ready(self) -> bool:
        return self.workspace is not None

    def start(self) -> None:
        """Start the preparation once (later calls do nothing)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="dldiag-warmup", daemon=True)
            self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the preparation; True if it finished (ready or failed)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.ready or self.error is not None

    def _report(self, step: int, total: int, message: str) -> None:
        with self._lock:
            self._status = {"step": step, "total": total, "message": message}

    def _run(self) -> None:
        try:
            ws = prepare_workspace(self.dataset, report=self._report, **self.kwargs)
        except Exception as exc:  # shown on the loading page and in the log; the server keeps serving
            log.exception("preparing the workspace failed")
            with self._lock:
                self.error = f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            self.workspace = ws

    def status(self) -> dict:
        with self._lock:
            return {**self._status, "ready": self.workspace is not None, "error": self.error}
