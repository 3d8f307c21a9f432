"""Reading ``.npy`` files from many threads at once.

numpy parses an ``.npy`` header with ``ast.literal_eval``, and CPython 3.11's AST constructor is
not thread-safe (python/cpython#106905: "SystemError: AST constructor recursion depth mismatch"
now and then when two threads parse at once; seen in the app's overlapping requests). Every
header is therefore parsed under one process-wide lock: an open is well under a millisecond
(a memory map reads its data later, outside the lock).
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["HEADER_LOCK", "load"]

HEADER_LOCK = threading.Lock()


def load(path, *, mmap_mode=None):
    """``np.load(path, mmap_mode=mmap_mode, allow_pickle=False)`` with its header parsed under :data:`HEADER_LOCK`."""
    with HEADER_LOCK:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
