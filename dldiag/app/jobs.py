"""Where the app's background jobs (Dash background callbacks) keep their progress and results.

A selection's exact answer is a forward pass over every selected item: seconds to minutes at
10^5–10^6 items, so it runs in a background job (Dash's ``DiskcacheManager``: a forked
process per job, its progress and result in a diskcache folder that every server worker
reads, so a job started through one worker is polled through another). The folder stores
JSON (diskcache's ``JSONDisk``), never pickles: what the job returns and reports is a few
strings, and nothing read back from the folder is unpickled.
"""

from __future__ import annotations

from pathlib import Path

import diskcache
from dash import DiskcacheManager

__all__ = ["jobs_manager"]


def jobs_manager(folder) -> DiskcacheManager:
    """A ``DiskcacheManager`` over a JSON-only diskcache in ``folder`` (created if missing)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return DiskcacheManager(diskcache.Cache(str(folder), disk=diskcache.JSONDisk))
