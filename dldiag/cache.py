"""A disk cache of named numpy arrays whose entries are verified before they are served.

Built on :mod:`diskcache`. Each entry is an ``.npz`` payload stored under its key plus the
payload's sha256 stored under a second key, written after the payload. A build killed between
the two writes leaves no digest; a truncated or altered payload file no longer matches its
digest; either way :meth:`ArrayCache.get` reports a miss (and drops the entry), so that the
caller rebuilds instead of serving a corrupt result.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import diskcache
import numpy as np

__all__ = ["ArrayCache", "content_key", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$DLDIAG_CACHE`` if set, else ``cache/`` beside the ``dldiag`` package (git-ignored)."""
    env = os.environ.get("DLDIAG_CACHE")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "cache"


def content_key(*parts) -> str:
    """A sha256 hex key of JSON-serialisable parts (sorted keys, so dict order never matters)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ArrayCache:
    """Verified disk cache of ``dict[str, ndarray]`` values.

    Parameters
    ----------
    directory : str or Path, optional
        Folder of the cache; :func:`default_cache_dir` by default.

    Examples
    --------
    >>> import tempfile
    >>> with ArrayCache(tempfile.mkdtemp()) as cache:
    ...     cache.put("k", {"a": np.arange(3)})
    ...     cache.get("k")["a"]
    array([0, 1, 2])
    """

    _DIGEST = "::sha256"

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(str(self.directory), size_limit=2**34)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._cache.close()

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or ``None`` if absent, partial or corrupt."""
        digest = self._cache.get(key + self._DIGEST)
        payload = self._cache.get(key)
        if digest is None or payload is None:
            return None
        if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != digest:
            self.delete(key)
            return None
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            self.delete(key)
            return None

    def put(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Store ``arrays`` under ``key`` (payload first, digest last)."""
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        payload = buf.getvalue()
        self._cache.delete(key + self._DIGEST)
        self._cache.set(key, payload)
        self._cache.set(key + self._DIGEST, hashlib.sha256(payload).hexdigest())

    def delete(self, key: str) -> None:
        self._cache.delete(key + self._DIGEST)
        self._cache.delete(key)

    def get_or_build(self, key: str, build: Callable[[], dict[str, np.ndarray]]) -> tuple[dict, bool]:
        """Return ``(arrays, hit)``: the cached arrays, or those of ``build()`` after storing them."""
        arrays = self.get(key)
        if arrays is not None:
            return arrays, True
        arrays = build()
        self.put(key, arrays)
        return arrays, False
