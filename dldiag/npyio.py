"""Reading ``.npy`` files from many threads at once.

numpy parses an ``.npy`` header with ``ast.literal_eval``, and CPython 3.11's AST constructor is
not thread-safe (python/cpython#106905: "SystemError: AST constructor recursion depth mismatch"
now and then when two threads parse at once; seen in the app's overlapping requests). Every
header is therefore parsed under one process-wide lock: an open is well under a millisecond
(a memory map reads its data later, outside the lock).
"""

from __future__ import annotations

import os
import threading

import numpy as np

__all__ = ["HEADER_LOCK", "header_lock", "load"]

HEADER_LOCK = threading.Lock()


def _new_lock_after_fork() -> None:
    # A process forked while another thread held the lock (the app's background jobs are
    # forked from a serving process) would wait for it forever: the child starts with its own.
    global HEADER_LOCK
    HEADER_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


def header_lock() -> threading.Lock:
    """This process's :data:`HEADER_LOCK` (a forked child has its own: read it at each use)."""
    return HEADER_LOCK


def load(path, *, mmap_mode=None):
    """``np.load(path, mmap_mode=mmap_mode, allow_pickle=False)`` with its header parsed under :data:`HEADER_LOCK`."""
    with header_lock():
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
