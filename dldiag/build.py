"""Building a workspace's artifacts in steps: the full pass, projections, sampler fits.

:func:`prepare_workspace` builds them in the foreground with one progress bar (the ``build``
command and the app's first stage). :class:`BackgroundBuild` builds the rest in a separate,
lower-priority process (``python -m dldiag.build``) that writes into the same cache, so that the
slow steps (UMAP and t-SNE take a minute or two each on 2 cores, in numba code that holds the
GIL) never stall a server answering requests; the server sees each artifact appear in the cache.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

from .progress import progress

__all__ = ["prepare_workspace", "run_steps", "BackgroundBuild", "start_background", "build_lock"]

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
    from .projections import offered_projections

    # t-SNE is not offered beyond its limit (projections.TSNE_MAX): skipped, not failed
    steps = [(f"projection {p}", lambda p=p: ws.projection(p))
             for p in offered_projections(projections, len(ws.latent))]
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


def prepare_workspace(dataset="fashion-mnist", *, projections: Sequence[str] | None = None,
                      samplers: Sequence[str] | None = None, report: Callable[[int, int, str], None] | None = None,
                      show_progress: bool = True, **workspace):
    """Load (or build) the workspace and make sure its projections and sampler fits are cached.

    Parameters
    ----------
    dataset : str, Dataset or data
        As :func:`dldiag.artifacts.load_workspace`.
    projections : sequence of str, optional
        Default: every projection (UMAP, t-SNE, PCA).
    samplers : sequence of str, optional
        Default: every sampler.
    report : callable(step, total, message), optional
        Told before each step (and once at the end with ``step == total``).
    show_progress : bool
        Progress bars on stderr.
    **workspace
        Passed to :func:`dldiag.artifacts.load_workspace`: ``model``, ``weights``, ``layers``,
        ``cache_dir``, ``sample_cache_mb``, …

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
    ws = load_workspace(dataset, show_progress=show_progress, **workspace)
    run_steps(ws, projections, samplers, report=say, show_progress=show_progress, total=total)
    say(total, total, "ready")
    return ws


@contextmanager
def build_lock(root):
    """One build at a time per cache folder (the app's background build and a user's, say): the
    second waits, then finds the first's results in the cache."""
    try:
        import fcntl
    except ImportError:  # not on a POSIX system: builds may overlap, and duplicate some work
        yield
        return
    Path(root).mkdir(parents=True, exist_ok=True)
    with open(Path(root) / "build.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class BackgroundBuild:
    """Projections and sampler fits built in a child process of lower priority.

    They need only the latent matrix and the labels, so the child gets those in a file (not
    the data set or the model: any workspace, however it was made, can be built this way) and
    stores its results in the workspace's cache under the workspace's keys; :meth:`missing`
    asks the cache which are not there yet. The child's output goes to ``build-log.txt`` in the
    cache folder; the child is stopped when this process exits, and stops itself when this
    process has gone without stopping it (killed: ``atexit`` does not run on a signal), so that
    no orphaned build competes with the next server for the cores.

    Parameters
    ----------
    ws : Workspace
    projections, samplers : sequence of str
        What to build.
    nice : int
        Added to the child's niceness, so that requests keep the cores first.
    """

    def __init__(self, ws, projections: Sequence[str], samplers: Sequence[str], *, nice: int = 10):
        import numpy as np

        self.ws = ws
        self.projections = tuple(projections)
        self.samplers = tuple(samplers)
        root = Path(ws.cache.directory).parent
        self.log_path = root / "build-log.txt"
        self.latent_path = root / f"latent-{ws.key[:16]}-{os.getpid()}.npz"
        partial = self.latent_path.with_suffix(".partial.npz")
        np.savez(partial, key=np.array(ws.key), latent=ws.latent, y_true=ws.y_true, y_pred=ws.y_pred)
        partial.replace(self.latent_path)
        cmd = [sys.executable, "-m", "dldiag.build", str(self.latent_path), "--cache-dir", str(ws.cache.directory),
               "--projections", ",".join(self.projections), "--samplers", ",".join(self.samplers),
               "--nice", str(int(nice)), "--parent", str(os.getpid())]
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
        self.latent_path.unlink(missing_ok=True)


def start_background(ws, projections: Sequence[str], samplers: Sequence[str], *, nice: int = 10):
    """A :class:`BackgroundBuild` of those of ``projections`` and ``samplers`` not yet cached, or None."""
    from .projections import offered_projections

    rest_p = [p for p in offered_projections(projections, len(ws.latent)) if not ws.has_projection(p)]
    rest_s = [s for s in samplers if not ws.has_fit(s)]
    return BackgroundBuild(ws, rest_p, rest_s, nice=nice) if rest_p or rest_s else None


def _exit_when_orphaned(parent: int, every_s: float = 0.5) -> None:
    """End this process as soon as ``parent`` is no longer its parent (it died; Linux re-parents us).

    A thread polls: the build's steps are long library calls that check nothing in between.
    ``os._exit`` because nothing of a half-done step is worth keeping: the cache's writes are
    atomic, and the build lock is a ``flock`` the kernel releases with the process.
    """
    import threading
    import time

    def watch():
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(3)

    if os.getppid() != parent:
        os._exit(3)
    threading.Thread(target=watch, name="dldiag-build-parent-watch", daemon=True).start()


def main(argv=None) -> int:
    """``python -m dldiag.build LATENT.npz --cache-dir CORE ...``: the background build's child."""
    import argparse

    import numpy as np

    from .artifacts import LatentSpace
    from .cache import ArrayCache

    p = argparse.ArgumentParser(prog="python -m dldiag.build")
    p.add_argument("latent", help="npz with key, latent, y_true, y_pred (written by BackgroundBuild)")
    p.add_argument("--cache-dir", required=True, help="the workspace's core tier")
    p.add_argument("--projections", default="")
    p.add_argument("--samplers", default="")
    p.add_argument("--nice", type=int, default=0)
    p.add_argument("--parent", type=int, default=None, help="exit as soon as this process is gone")
    args = p.parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    if args.parent is not None:
        _exit_when_orphaned(args.parent)
    with np.load(args.latent, allow_pickle=False) as arrays:
        space = LatentSpace(key=str(arrays["key"]), latent=arrays["latent"], y_true=arrays["y_true"],
                            y_pred=arrays["y_pred"], cache=ArrayCache(args.cache_dir))
    names = [n for n in args.samplers.split(",") if n]
    with build_lock(Path(args.cache_dir).parent):
        run_steps(space, [n for n in args.projections.split(",") if n], names, echo=sys.stdout,
                  show_progress=False)
    Path(args.latent).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
