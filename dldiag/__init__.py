"""dldiag: diagnose deep-learning classifiers from a small, smart sample of their data.

The library works without dash: data sets (:mod:`dldiag.datasets`), models
(:mod:`dldiag.models`), the streaming pass (:mod:`dldiag.activations`), query sets and
metrics (:mod:`dldiag.queries`, :mod:`dldiag.metrics`), samplers (:mod:`dldiag.sampling`)
and the cached workspace (:mod:`dldiag.artifacts`). The Dash app lives in ``dldiag.app``.

Your own model and data in two calls: ``ws = dldiag.from_model(model, (x, y))`` then
``dldiag.launch(ws)`` (:mod:`dldiag.api`).
"""

from . import sqlite_fork

__version__ = "0.1.0"

# Before anything imports sqlite3 (diskcache, dash): background jobs are forked from a threaded
# server, and SQLite's allocator mutex must not be one a child can inherit locked.
sqlite_fork.disable_memstatus()

__all__ = ["from_model", "launch"]


def __getattr__(name):
    # The two entry points import torch and (for launch) dash: only when first used.
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'dldiag' has no attribute {name!r}")
