"""Building a workspace's artifacts in steps: the full pass, projections, sampler fits.

:func:`prepare_workspace` builds them in the foreground with one progress bar (the ``build``
command and the app's first stage). :class:`BackgroundBuild` builds the rest in a separate,
lower-priority process (``python -m dldiag build --nice``) that writes into the same cache, so
that the slow steps (UMAP and t-SNE take a minute or two each on 2 cores, in numba code that
holds the GIL) never stall a server answering requests; the server sees each artifact appear
in the cache.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .progress import progress

__all__ = ["prepare_workspace", "run_steps", "BackgroundBuild"]

log = logging.getLogger(__name__)


def run_steps(ws, projections: Sequence[str], samplers: Sequence[str], *,
              report: Callable[[int, int, str], None] | None = None, show_progress: bool = True,
              first_step: int = 1, total: int | None = None, echo=None) -> None:
    """Compute (or find in the cache) each projection, then each sampler fit, of ``ws``.

    Parameters
    ----------
    ws : Workspace
    projections, samplers : sequence of str
    report : callable(step, total, message), optional
        Told before each step.
    show_progress : bool
        One progress bar over the steps, naming the step in progress.
    first_step, total : int
        Numbering of the steps for ``report`` (when these steps follow others).
    echo : file, optional
        Where to write one line per finished step with its time.
    """
    steps = [(f"projection {p}", lambda p=p: ws.projection(p)) for p in projections]
    steps += [(f"sampler fit {s}", lambda s=s: ws.fitted_sampler(s)) for s in samplers]
    total = total if total is not None else len(steps)
    say = report or (lambda *_: None)
    bar = progress(total=len(steps), desc="build", unit="step", disable=not show_progress, leave=True)
    try:
        for i, (name, run) in enumerate(steps, start=first_step):
            say(i, total, f"{name} ({i}/{total})…")
            bar.set_postfix_str(name)
            start = time.perf_counter()
            run()
            seconds = time.perf_counter() - start
            log.info("%s: %.1f s", name, seconds)
            if echo is not None:
                bar.write(f"{name}: {seconds:.1f} s", file=echo)
            bar.update(1)
    finally:
        bar.close()


def prepare_workspace(dataset="fashion-mnist", *, cache_dir=None, weights=None, sample_cache_mb=None,
                      projections: Sequence[str] | None = None, samplers: Sequence[str] | None = None,
                      report: Callable[[int, int, str], None] | None = None, show_progress: bool = True):
    """Load (or build) the workspace and make sure its projections and sampler fits are cached.

    Parameters
    ----------
    dataset : str or Dataset
    cache_dir, weights : path, optional
    sample_cache_mb : float, optional
        As :func:`dldiag.artifacts.load_workspace`.
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
    from .artifacts import load_workspace
    from .projections import PROJECTIONS
    from .sampling import SAMPLER_NAMES

    projections = tuple(projections) if projections is not None else tuple(PROJECTIONS)
    samplers = tuple(samplers) if samplers is not None else tuple(SAMPLER_NAMES)
    total = 1 + len(projections) + len(samplers)
    say = report or (lambda *_: None)
    say(0, total, f"loading {getattr(dataset, 'name', dataset)} and its model (full pass on first start)…")
    ws = load_workspace(dataset, weights=weights, cache_dir=cache_dir, sample_cache_mb=sample_cache_mb,
                        show_progress=show_progress)
    run_steps(ws, projections, samplers, report=say, show_progress=show_progress, total=total)
    say(total, total, "ready")
    return ws


class BackgroundBuild:
    """``python -m dldiag build`` for the given steps, in a child process of lower priority.

    The child writes into the workspace's cache; :meth:`missing` asks the cache which of the
    steps are not there yet. Its output goes to ``build-log.txt`` in the cache folder. The child
    is stopped when this process exits.

    Parameters
    ----------
    ws : Workspace
        The workspace whose cache the child fills (its data set must be given by name).
    dataset : str
        The data set's name or spec, as the command line takes it.
    projections, samplers : sequence of str
        What to build.
    nice : int
        Added to the child's niceness, so that requests keep the cores first.
    """

    def __init__(self, ws, dataset: str, projections: Sequence[str], samplers: Sequence[str], *, nice: int = 10):
        self.ws = ws
        self.projections = tuple(projections)
        self.samplers = tuple(samplers)
        root = Path(ws.cache.directory).parent
        self.log_path = root / "build-log.txt"
        cmd = [sys.executable, "-m", "dldiag", "build", "--dataset", str(dataset), "--cache-dir", str(root),
               "--weights", str(ws.model_info["weights_path"]), "--batch-size", str(ws.batch_size),
               "--projections", ",".join(self.projections), "--samplers", ",".join(self.samplers),
               "--nice", str(int(nice))]
        self._log = open(self.log_path, "ab")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[1]), *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                        stdin=subprocess.DEVNULL)
        atexit.register(self.stop)
        self._reported = False

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def missing(self) -> dict[str, list[str]]:
        """The projections and sampler fits not in the cache yet, while the child runs.

        Once the child has ended this is empty: what it did not build (it failed; the log says
        why) is built on demand, as without a background build.
        """
        if not self.running:
            if not self._reported:
                self._reported = True
                code = self.process.returncode
                if code:
                    log.warning("the background build exited with status %s; see %s", code, self.log_path)
            return {"projections": [], "samplers": []}
        return {"projections": [p for p in self.projections if not self.ws.has_projection(p)],
                "samplers": [s for s in self.samplers if not self.ws.has_fit(s)]}

    def stop(self) -> None:
        if self.running:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()
