"""SQLite's process-wide mutexes held across every ``fork()``, so that a child never starts on one
another thread held.

The app forks a process per background job (Dash's ``DiskcacheManager``) from a threaded
server whose other threads use SQLite all the time (diskcache, under the jobs' progress and
dldiag's caches). A thread inside SQLite at the moment of the fork holds one of SQLite's
global mutexes — most often the memory allocator's, taken by every ``sqlite3_malloc`` — and
in the child that thread does not exist, so the mutex is never released: the child's first
SQLite call (its first progress report, opening a connection) sleeps forever. Seen in the test
suite and caught with ``py-spy dump``: a job asleep in ``pthread_mutex_lock`` under
``sqlite3Malloc`` under ``pysqlite_connection_init``.

The usual cure for a library without fork handlers of its own is ``pthread_atfork``'s
pattern: take the library's locks before the fork (waiting for any thread inside to leave)
and release them after it, in the parent and in the child. :func:`install` registers that for
SQLite's static mutexes with ``os.register_at_fork``, through SQLite's own mutex API
(``sqlite3_mutex_alloc`` of a static mutex returns the one SQLite uses).

Order: the mutexes SQLite may hold while taking another are taken first, the allocator's
(a leaf: nothing is taken while holding it) last, as SQLite itself nests them; the others are
not nested with each other. A thread holding one of them does not need the GIL to release it
(Python's ``sqlite3`` releases the GIL around the calls that run long, and SQLite calls no
Python code while holding these), so the forking thread, which holds the GIL, cannot wait on
a thread that waits on it.
"""

from __future__ import annotations

import ctypes
import os
import threading

__all__ = ["install", "held_mutexes"]

# sqlite3.h: SQLITE_MUTEX_STATIC_MAIN, _VFS1 (the unix VFS's inode list), _LRU (page cache),
# _PMEM (page-cache memory), _PRNG, and _MEM (sqlite3_malloc) last.
_STATIC_MUTEXES = (("main", 2), ("vfs1", 11), ("lru", 6), ("pmem", 7), ("prng", 5), ("mem", 3))

_installed = False
_install_lock = threading.Lock()


def _library():
    """The libsqlite3 that Python's ``sqlite3`` module is linked against, or None."""
    import sqlite3  # noqa: F401 - loads the library whose mutexes count

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libsqlite3" in line and line.split()[-1].startswith("/")}
    except OSError:
        return None
    if len(paths) != 1:
        return None
    lib = ctypes.CDLL(paths.pop())
    lib.sqlite3_mutex_alloc.restype = ctypes.c_void_p
    lib.sqlite3_mutex_alloc.argtypes = [ctypes.c_int]
    lib.sqlite3_mutex_enter.argtypes = [ctypes.c_void_p]
    lib.sqlite3_mutex_leave.argtypes = [ctypes.c_void_p]
    return lib


def held_mutexes():
    """(library, [(name, mutex pointer)]) as :func:`install` takes them; (None, []) without SQLite."""
    lib = _library()
    if lib is None:
        return None, []
    mutexes = [(name, lib.sqlite3_mutex_alloc(kind)) for name, kind in _STATIC_MUTEXES]
    return lib, [(name, m) for name, m in mutexes if m]  # NULL: a build without threads


def install() -> bool:
    """Hold SQLite's static mutexes across every later ``fork()`` of this process (once).

    Returns whether the handlers are installed (False where the library cannot be found:
    not Linux, or Python's sqlite3 linked statically).
    """
    global _installed
    with _install_lock:
        if _installed:
            return True
        lib, mutexes = held_mutexes()
        if lib is None or not mutexes:
            return False
        pointers = [m for _, m in mutexes]

        def before():
            for m in pointers:
                lib.sqlite3_mutex_enter(m)

        def after():
            for m in reversed(pointers):
                lib.sqlite3_mutex_leave(m)

        os.register_at_fork(before=before, after_in_parent=after, after_in_child=after)
        _installed = True
        return True
