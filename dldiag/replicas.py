"""Exclusive use of a model for one pass: a per-model lock, and a pool of replicas.

A pass registers forward hooks on the model, switches it to eval mode and runs it. Hooks and
mode live on the module object, so two passes on one module at once record each other's
batches (and one pass's hook can fire inside the other's forward). Every pass therefore holds
the module alone: :func:`exclusive` takes a lock that belongs to the module, for the whole pass.

To let passes run side by side, a :class:`ModelPool` keeps replicas of the model and lends
each to one pass at a time. Replicas are made from a private snapshot taken when the pool is
created, so that a later change to the caller's model (say, more training in a notebook) never
reaches passes whose results are cached under the snapshot's weights hash. Replicas share the
snapshot's parameters (read-only under ``torch.no_grad()``; no copy of the weights per replica)
and own everything else: hooks, buffers, mode.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import weakref
from contextlib import contextmanager

from torch import nn

from ._validation import check_int

__all__ = ["exclusive", "model_lock", "ModelPool"]

log = logging.getLogger(__name__)

_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _new_locks_after_fork() -> None:
    # A forked child (the app's background jobs) must not wait on a lock a thread of the
    # parent held at the fork: it starts with no module held and a free guard.
    global _LOCKS, _LOCKS_GUARD
    _LOCKS = weakref.WeakKeyDictionary()
    _LOCKS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_new_locks_after_fork)


def model_lock(model: nn.Module) -> threading.RLock:
    """The re-entrant lock that every pass over ``model`` holds (one per module object)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


@contextmanager
def exclusive(model: nn.Module):
    """Hold ``model`` alone, in eval mode, for the ``with`` block; give its modes back after.

    Re-entrant in one thread (a pass may start a nested pass on the same model). Each
    submodule's own ``training`` flag is restored, not just the top module's, so a model that
    keeps, say, a frozen sub-network in eval mode during training gets it back as it was.
    """
    with model_lock(model):
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            yield model
        finally:
            for module, training in modes:
                module.training = training


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _replica(template: nn.Module) -> nn.Module:
    """A copy of ``template`` that shares its parameters and owns its buffers, hooks and mode."""
    memo = {id(p): p for p in template.parameters()}
    replica = copy.deepcopy(template, memo)
    replica.eval()
    return replica


class ModelPool:
    """Replicas of a model, each lent to one pass at a time.

    Parameters
    ----------
    model : nn.Module
        The model; the pool snapshots it on creation and never runs or changes it.
    size : int, optional
        Most replicas (and so passes at once); default: the CPU cores this process may use.
        ``1`` makes every pass wait for the one before, like a lock on the model. Replicas are
        made when a pass finds none free, so a single-threaded caller makes one.

    Notes
    -----
    Measured with ``python -m dldiag.bench concurrency`` (BENCHMARKS.md): on 2 cores, 2 replicas
    with one torch thread per pass serve about 1.8 times the sample passes per second of a lock
    (one replica) at 4 clients; 4 replicas gain nothing beyond the noise.

    A model that cannot be deep-copied is run itself, one pass at a time (``size`` becomes 1),
    under :func:`exclusive`; the log says so.

    Examples
    --------
    >>> pool = ModelPool(nn.Linear(2, 2), size=2)
    >>> with pool.lease() as replica:
    ...     replica.training
    False
    """

    def __init__(self, model: nn.Module, size: int | None = None):
        self.size = check_int("size", size if size is not None else _usable_cores(), 1)
        try:
            self._template = copy.deepcopy(model)
        except Exception as exc:  # noqa: BLE001 - any module-specific failure to copy
            log.warning("the model cannot be copied (%s: %s); its passes run one at a time",
                        type(exc).__name__, exc)
            self._template = None
            self.size = 1
            self._free = [model]
            self._made = 1
        else:
            self._template.eval()
            self._free = []
            self._made = 0
        self._cond = threading.Condition()

    @property
    def model(self) -> nn.Module:
        """The snapshot the replicas are made from (do not run it: lease a replica)."""
        return self._template if self._template is not None else self._free[0]

    @property
    def replicas_made(self) -> int:
        return self._made

    @contextmanager
    def lease(self):
        """A replica for the ``with`` block, held alone and in eval mode; waits if none is free."""
        with self._cond:
            while not self._free and self._made >= self.size:
                self._cond.wait()
            replica = self._free.pop() if self._free else None
            if replica is None:
                self._made += 1
        if replica is None:
            try:
                replica = _replica(self._template)
            except BaseException:
                with self._cond:
                    self._made -= 1
                    self._cond.notify()
                raise
        try:
            with exclusive(replica):
                yield replica
        finally:
            with self._cond:
                self._free.append(replica)
                self._cond.notify()
