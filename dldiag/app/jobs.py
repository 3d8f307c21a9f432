"""Where the app's background jobs (Dash background callbacks) keep their progress and results.

A selection's exact answer is a forward pass over every selected item: seconds to minutes at
10^5–10^6 items, so it runs in a background job (Dash's ``DiskcacheManager``: a forked
process per job, its progress and result in a diskcache folder that every server worker
reads, so a job started through one worker is polled through another). The folder stores
JSON (diskcache's ``JSONDisk``), never pickles: what the job returns and reports is a few
strings, and nothing read back from the folder is unpickled.

A fork of a threaded server can start with a lock that another thread held at the fork, which
nobody in the child will release. dldiag renews its own locks after a fork, and SQLite's
allocator takes no mutex in a process that imported dldiag before sqlite3
(:mod:`dldiag.sqlite_fork`): before that, a job sometimes slept for good in ``sqlite3Malloc``
on its first progress report (diskcache is SQLite; caught with py-spy in the test suite). Jobs
are daemonic processes all the same: one that hangs on some other library's lock never holds
up the server's (or a test run's) exit, and Cancel ends it.
"""

from __future__ import annotations

from pathlib import Path

import diskcache
from dash import DiskcacheManager

__all__ = ["jobs_manager"]


class _DaemonJobs(DiskcacheManager):
    """Dash's ``DiskcacheManager``, its job processes daemonic (see the module's notes)."""

    def call_job_fn(self, key, job_fn, args, context):
        from multiprocess import Process

        process = Process(target=job_fn, args=(key, self._make_progress_key(key), args, context), daemon=True)
        process.start()
        return process.pid


def jobs_manager(folder) -> DiskcacheManager:
    """A ``DiskcacheManager`` over a JSON-only diskcache in ``folder`` (created if missing)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return _DaemonJobs(diskcache.Cache(str(folder), disk=diskcache.JSONDisk))
