"""Providers of the app's workspace: one that is there from the start, and a two-stage warm-up.

:class:`Warmup` prepares the workspace in a thread while the server answers with a loading
page: first only what the explorer needs to open (the full pass, the PCA projection, the
default sampler's and the random baseline's fits: seconds), then the page opens while the rest
(UMAP, t-SNE, the other fits: minutes on 2 cores) is built in the background by a separate,
lower-priority process (:class:`~dldiag.build.BackgroundBuild`). :meth:`Warmup.pending` says
what is still being built; the page marks those options and switches to them when they arrive.
Callbacks never fit or project anything that the background is building.
"""

from __future__ import annotations

import logging
import threading

from .. import density
from ..build import BackgroundBuild, prepare_workspace, start_background
from . import figures as F

__all__ = ["prepare_workspace", "Warmup", "Ready", "FIRST_PROJECTIONS", "NOTHING_PENDING"]

log = logging.getLogger(__name__)

#: Projections built before the page opens (PCA takes a fraction of a second).
FIRST_PROJECTIONS = ("pca",)
NOTHING_PENDING = {"projections": [], "samplers": []}


class Ready:
    """A provider whose workspace is there from the start (tests, notebooks).

    With ``background`` the projections and fits not yet cached are built by a background
    process (:func:`~dldiag.build.start_background`, the first time the app asks), as after a
    :class:`Warmup`; without, what is missing is built on demand.
    """

    def __init__(self, ws, *, background: bool = False, projections=None, samplers=None):
        self.workspace = ws
        self.error = None
        self._background = background
        self._options = (projections, samplers)
        self._build: BackgroundBuild | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return True

    def status(self) -> dict:
        return {"step": 1, "total": 1, "message": "ready", "ready": True, "error": None}

    def start(self) -> None:
        if not self._background:
            return
        from ..projections import PROJECTIONS
        from ..sampling import SAMPLER_NAMES

        with self._lock:
            if self._build is None:
                projections, samplers = self._options
                self._build = start_background(self.workspace, projections or PROJECTIONS, samplers or SAMPLER_NAMES)
                self._background = False  # started (or nothing was missing)

    def pending(self) -> dict:
        """What the background build has not delivered yet (nothing without one)."""
        self.start()
        with self._lock:
            build = self._build
        return build.missing() if build is not None else NOTHING_PENDING


class Warmup:
    """Prepare a workspace in two stages; the page polls :meth:`status`, then :meth:`pending`.

    The thread writes only this object's own fields (under a lock); callbacks read them.

    Parameters
    ----------
    dataset : str
        A data set name or spec (the background build takes it on its command line).
    first_samplers : sequence of str, optional
        Fits built before the page opens (default: ``random`` and the app's default sampler).
    background : bool
        Build the rest in a background process after the page opens (default). If False, the
        page opens only when everything is built, as in one stage.
    nice : int
        Lower priority of the background process.
    **kwargs
        ``cache_dir``, ``weights``, ``projections``, ``samplers``, ``show_progress``: as
        :func:`~dldiag.build.prepare_workspace` (``projections`` and ``samplers``: everything
        that is built in the end).
    """

    def __init__(self, dataset: str = "fashion-mnist", *, first_samplers=None, background: bool = True,
                 nice: int = 10, **kwargs):
        from ..projections import PROJECTIONS
        from ..sampling import SAMPLER_NAMES
        from .service import DEFAULT_SAMPLER

        self.dataset = dataset
        self.projections = tuple(kwargs.pop("projections", None) or PROJECTIONS)
        self.samplers = tuple(kwargs.pop("samplers", None) or SAMPLER_NAMES)
        first = first_samplers if first_samplers is not None else ("random", DEFAULT_SAMPLER)
        self.first_samplers = tuple(s for s in first if s in self.samplers)
        self.first_projections = tuple(p for p in FIRST_PROJECTIONS if p in self.projections) or self.projections[:1]
        self.background = background
        self.nice = nice
        self.kwargs = kwargs
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._status = {"step": 0, "total": 1, "message": "waiting to start…"}
        self._build: BackgroundBuild | None = None
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
        """Wait for the first stage; True if it finished (ready or failed)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.ready or self.error is not None

    def _report(self, step: int, total: int, message: str) -> None:
        with self._lock:
            self._status = {"step": step, "total": total, "message": message}

    def _run(self) -> None:
        first_p = self.first_projections if self.background else self.projections
        first_s = self.first_samplers if self.background else self.samplers
        try:
            ws = prepare_workspace(self.dataset, report=self._report, projections=first_p, samplers=first_s,
                                   **self.kwargs)
            if F.uses_density(ws.n_items):  # before the page opens: its first density view is drawn warm
                density.warm_up(F.density_category_counts(len(ws.dataset.class_names)))
            build = start_background(ws, self.projections, self.samplers, nice=self.nice)
        except Exception as exc:  # shown on the loading page and in the log; the server keeps serving
            log.exception("preparing the workspace failed")
            with self._lock:
                self.error = f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            self._build = build
            self.workspace = ws

    def status(self) -> dict:
        with self._lock:
            return {**self._status, "ready": self.workspace is not None, "error": self.error}

    def pending(self) -> dict:
        """``{"projections": [...], "samplers": [...]}`` still being built in the background."""
        with self._lock:
            build = self._build
        return build.missing() if build is not None else NOTHING_PENDING

    def stop(self) -> None:
        """Stop the background build (it also stops when this process exits)."""
        with self._lock:
            build = self._build
        if build is not None:
            build.stop()
