"""Progress bars for long work, on stderr so that ``--json`` output stays clean."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["progress"]


def progress(iterable=None, *, total=None, desc=None, unit="it", disable=False, leave=False):
    """A ``tqdm`` bar on stderr; disabled automatically when stderr is not a terminal."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=True if disable else None,  # None: off when stderr is not a terminal
        leave=leave,
        file=sys.stderr,
        dynamic_ncols=True,
    )
