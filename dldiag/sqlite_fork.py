"""SQLite's allocator without its global mutex, so that a forked child never starts on it.

The app forks a process per background job (Dash's ``DiskcacheManager``) from a threaded
server whose other threads use SQLite all the time (diskcache, under the jobs' progress and
dldiag's caches). With SQLite's memory statistics on (its default), every ``sqlite3_malloc``
and ``sqlite3_free`` takes one process-wide mutex; a thread inside one of them at the moment
of the fork leaves that mutex locked in the child, where the thread does not exist: the
child's first SQLite call (its first progress report) sleeps forever. Seen in the test suite
and caught with ``py-spy dump``: a job asleep in ``pthread_mutex_lock`` under
``sqlite3Malloc`` under ``pysqlite_connection_init``.

With the statistics off (``SQLITE_CONFIG_MEMSTATUS``, 0) SQLite calls the system allocator
directly, which glibc keeps fork-safe. Nothing here reads SQLite's memory statistics. The
setting can only be made before SQLite initialises, which Python's ``sqlite3`` module does on
import: :func:`disable_memstatus` runs when dldiag is imported and does nothing (returns False)
if ``sqlite3`` was imported first. The app's entry point imports dldiag first.

Tried first and dropped: holding SQLite's static mutexes across every fork with
``os.register_at_fork`` (``pthread_atfork``'s pattern). It deadlocks: Python runs other
at-fork handlers (logging's) between the fork and ours, a thread switch there lets another
thread into a call that holds the GIL while it waits for the held mutex, and the forking
thread waits for the GIL (caught with py-spy too).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["disable_memstatus", "memstatus_disabled"]

#: sqlite3.h
_SQLITE_CONFIG_MEMSTATUS = 9
_SQLITE_OK = 0

_state = {"disabled": False}


def _library():
    path = ctypes.util.find_library("sqlite3")
    if path is None:
        return None
    try:
        return ctypes.PyDLL(path)  # PyDLL: the call keeps the GIL, nothing else runs meanwhile
    except OSError:
        return None


def disable_memstatus() -> bool:
    """Switch SQLite's memory statistics off if SQLite has not initialised yet.

    Returns whether they are off now (True after an earlier success). False when Python's
    ``sqlite3`` was imported before (SQLite then refuses the setting), or when the shared
    library Python's ``sqlite3`` would load is not found.
    """
    if _state["disabled"]:
        return True
    if "_sqlite3" in sys.modules:
        return False
    lib = _library()
    if lib is None:
        return False
    if lib.sqlite3_config(ctypes.c_int(_SQLITE_CONFIG_MEMSTATUS), ctypes.c_int(0)) != _SQLITE_OK:
        return False
    _state["disabled"] = True
    return True


def memstatus_disabled() -> bool:
    """Whether :func:`disable_memstatus` has switched the statistics off in this process."""
    return _state["disabled"]
