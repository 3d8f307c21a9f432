"""A disk cache of named numpy arrays that never runs code, heals itself and stays bounded.

Built on :mod:`diskcache`. An entry is one ``bytes`` value: a magic header, the sha256 of the
payload, and the payload, an ``.npz`` archive read back with ``allow_pickle=False``. Whatever
else the cache folder may hold — an entry stored by diskcache's pickle mode, a pickled key, a
truncated or altered file — is never unpickled or served: :meth:`ArrayCache.get` reports a
miss (and drops the entry), so the caller rebuilds.

Two tiers share a cache folder (:func:`open_tiers`): ``core/`` for what is costly to rebuild
(full passes, projections, sampler fits; never evicted) and ``samples/`` for what any client
can ask for (one entry set per sample drawn; evicted least-recently-*used* first, under a size
cap), so that no stream of requests can push the core out.

Trouble is answered in one line: a cache folder that is a file or cannot be written is a
:class:`CacheError`; a corrupt ``cache.db`` is moved aside with a warning and the tier starts
empty; a full disk gives one warning and the results are computed but not kept.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import stat
import tempfile
import threading
import time
import weakref
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import diskcache
import numpy as np

from .npyio import header_lock

__all__ = [
    "ArrayCache",
    "CacheError",
    "Tiers",
    "content_key",
    "default_cache_dir",
    "open_tiers",
    "resolve_sample_cache_mb",
    "check_folder",
    "DEFAULT_SAMPLE_CACHE_MB",
]

log = logging.getLogger(__name__)

#: Default size cap of the ``samples`` tier (``$DLDIAG_SAMPLE_CACHE_MB`` overrides it): about
#: 500 samples of Fashion-MNIST's LeNet-5 (~2 MB each with every layer's aggregates).
DEFAULT_SAMPLE_CACHE_MB = 1024

_MAGIC = b"DLDIAG\x02\n"
_DIGEST_SIZE = 32


class CacheError(Exception):
    """The cache folder cannot be used (it is a file, or it cannot be created or written)."""


class _UnsafeEntry(Exception):
    """An entry or key in a form that would have to be unpickled."""


class _BytesOnlyDisk(diskcache.Disk):
    """diskcache's storage, restricted to raw bytes in and out: nothing is ever unpickled."""

    def store(self, value, read, key=diskcache.core.UNKNOWN):
        if type(value) is not bytes:
            raise TypeError(f"the cache stores bytes only; got {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode, filename, value, read):
        if mode not in (diskcache.core.MODE_RAW, diskcache.core.MODE_BINARY) or read:
            raise _UnsafeEntry(f"an entry stored in diskcache mode {mode}")
        return super().fetch(mode, filename, value, read)

    def get(self, key, raw):
        if not raw:
            raise _UnsafeEntry("a pickled key")
        return super().get(key, raw)


def default_cache_dir() -> Path:
    """``$DLDIAG_CACHE`` if set, else ``cache/`` beside the ``dldiag`` package (git-ignored)."""
    env = os.environ.get("DLDIAG_CACHE")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "cache"


def content_key(*parts) -> str:
    """A sha256 hex key of JSON-serialisable parts (sorted keys, so dict order never matters)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _encode(arrays: dict[str, np.ndarray]) -> bytes:
    for name, value in arrays.items():
        if np.asarray(value).dtype.hasobject:
            raise TypeError(f"array {name!r} holds Python objects, which the cache refuses to store "
                            "(they could only be read back by unpickling)")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    payload = buf.getvalue()
    return _MAGIC + hashlib.sha256(payload).digest() + payload


def _decode(value: bytes) -> dict[str, np.ndarray] | None:
    """The arrays of an entry, or None if it is not a whole, unaltered entry of this format."""
    head = len(_MAGIC) + _DIGEST_SIZE
    if len(value) < head or not value.startswith(_MAGIC):
        return None
    payload = memoryview(value)[head:]
    if hashlib.sha256(payload).digest() != value[len(_MAGIC):head]:
        return None
    try:
        # numpy parses .npy headers with ast.literal_eval, not thread-safe in CPython 3.11 (see
        # dldiag.npyio): decoding takes turns with every other header read in the process.
        with header_lock(), np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None


def _is_corruption(exc: BaseException) -> bool:
    """SQLITE_CORRUPT / SQLITE_NOTADB, as opposed to a locked or full database."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)


def check_folder(path: Path) -> Path:
    """Create ``path`` if needed and make sure the cache can write there; one-line errors.

    Raises
    ------
    CacheError
        If ``path`` is a file, or cannot be created or written.
    """
    hint = "give --cache-dir (or $DLDIAG_CACHE) a writable folder"
    if path.exists() and not path.is_dir():
        raise CacheError(f"cache folder {str(path)!r} is a file, not a folder; {hint}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"cache folder {str(path)!r} cannot be created ({exc.strerror or exc}); {hint}") from None
    try:
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        raise CacheError(f"cache folder {str(path)!r} is not writable ({exc.strerror or exc}); {hint}") from None
    return path


def _warn_if_shared(path: Path) -> None:
    """Warn when others may write the folder: they could change the numbers it serves."""
    try:
        st = path.stat()
    except OSError:
        return
    others_write = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if others_write or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
        log.warning("cache folder %s can be written by other users, who could change the results it "
                    "serves; use a private folder (--cache-dir or $DLDIAG_CACHE)", path)


_OPEN: "weakref.WeakSet[ArrayCache]" = weakref.WeakSet()


def _new_locks_after_fork() -> None:
    for cache in list(_OPEN):
        cache._new_locks()


os.register_at_fork(after_in_child=_new_locks_after_fork)


class ArrayCache:
    """Verified disk cache of ``dict[str, ndarray]`` values (one tier).

    Parameters
    ----------
    directory : str or Path, optional
        Folder of the cache; :func:`default_cache_dir` by default.
    size_limit_mb : float, optional
        Size cap. Without one nothing is evicted; with one, the least recently *used* entries
        go first once the cap is passed.

    Raises
    ------
    CacheError
        If the folder is a file, or cannot be created or written.

    Examples
    --------
    >>> with ArrayCache(tempfile.mkdtemp()) as cache:
    ...     cache.put("k", {"a": np.arange(3)})
    ...     cache.get("k")["a"]
    True
    array([0, 1, 2])
    """

    def __init__(self, directory: str | Path | None = None, *, size_limit_mb: float | None = None):
        self.directory = check_folder(Path(directory) if directory is not None else default_cache_dir())
        _warn_if_shared(self.directory)
        self.size_limit_mb = size_limit_mb
        self._settings = dict(
            # Every setting given, so that none is taken from a cache.db someone else wrote.
            diskcache.DEFAULT_SETTINGS,
            size_limit=int(size_limit_mb * 2**20) if size_limit_mb is not None else 2**62,
            eviction_policy="least-recently-used" if size_limit_mb is not None else "none",
            cull_limit=10,  # entries dropped per write while over the cap
        )
        self._new_locks()
        _OPEN.add(self)
        self._warned_full = False
        self._cache = self._open()

    def _new_locks(self) -> None:
        """Fresh locks: at creation, and in a forked child (a lock another thread of the parent
        held at the fork would never be released there; the app's background jobs are forks)."""
        self._reopen_lock = threading.RLock()
        self._flights: dict[str, threading.Lock] = {}
        self._flights_guard = threading.Lock()

    # ---------------------------------------------------------------- lifecycle
    def _open(self) -> diskcache.Cache:
        try:
            cache = diskcache.Cache(str(self.directory), disk=_BytesOnlyDisk, **self._settings)
            row = cache._sql("PRAGMA quick_check(1)").fetchone()
            if row is None or row[0] != "ok":
                cache.close()
                raise sqlite3.DatabaseError(f"quick_check: {row[0] if row else 'no answer'}")
            return cache
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise
            self._move_aside(exc)
            return diskcache.Cache(str(self.directory), disk=_BytesOnlyDisk, **self._settings)

    def _move_aside(self, exc: BaseException) -> None:
        """Move the corrupt folder's contents to a sibling and start empty (one warning)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.directory.with_name(f"{self.directory.name}.corrupt-{stamp}-{os.getpid()}")
        aside.mkdir(parents=True, exist_ok=True)
        for child in list(self.directory.iterdir()):
            shutil.move(str(child), str(aside / child.name))
        reason = " ".join(str(exc).split())  # sqlite's reports span lines; the warning is one
        log.warning("cache %s was corrupt (%s); moved it to %s and starting an empty cache "
                    "(delete the old one when you like)", self.directory, reason, aside)

    def _recover(self, broken: diskcache.Cache, exc: BaseException) -> None:
        with self._reopen_lock:
            if self._cache is not broken:  # another thread has already recovered
                return
            broken.close()
            self._move_aside(exc)
            self._cache = diskcache.Cache(str(self.directory), disk=_BytesOnlyDisk, **self._settings)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._cache.close()

    # ---------------------------------------------------------------- entries
    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def has(self, key: str) -> bool:
        """Whether an entry is stored under ``key``, without reading it (so not verified)."""
        try:
            return key in self._cache
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise
            return False

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or ``None`` if absent, partial, corrupt or unsafe."""
        cache = self._cache
        try:
            value = cache.get(key)
        except _UnsafeEntry as exc:
            log.warning("cache %s: refused %s under key %s…; it is dropped and rebuilt (nothing "
                        "in the cache is ever unpickled)", self.directory, exc, key[:12])
            self.delete(key)
            return None
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise
            self._recover(cache, exc)
            return None
        if value is None:
            return None
        arrays = _decode(value) if type(value) is bytes else None
        if arrays is None:
            self.delete(key)
        return arrays

    def put(self, key: str, arrays: dict[str, np.ndarray]) -> bool:
        """Store ``arrays`` under ``key``; False (after one warning) when the disk is full.

        Raises
        ------
        TypeError
            If an array holds Python objects (it could only be read back by unpickling).
        """
        value = _encode(arrays)
        cache = self._cache
        try:
            cache.set(key, value)
            return True
        except sqlite3.DatabaseError as exc:
            if _is_corruption(exc):
                self._recover(cache, exc)
                return self.put(key, arrays)
            if not _is_full(exc):
                raise
            self._say_full(exc)
        except OSError as exc:
            if not _is_full(exc):
                raise
            self._say_full(exc)
        return False

    def _say_full(self, exc: BaseException) -> None:
        if not self._warned_full:
            self._warned_full = True
            log.warning("cache %s is full (%s): results are computed but not kept; free disk space or "
                        "give --cache-dir another folder", self.directory, exc)

    def delete(self, key: str) -> None:
        try:
            self._cache.delete(key)
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise

    def volume_mb(self) -> float:
        """Size on disk (database and value files) in MiB, as diskcache counts it for the cap."""
        return self._cache.volume() / 2**20

    def __len__(self) -> int:
        return len(self._cache)

    def get_or_build(self, key: str, build: Callable[[], dict[str, np.ndarray]]) -> tuple[dict, bool]:
        """Return ``(arrays, hit)``: the cached arrays, or those of ``build()`` after storing them.

        Threads of one process that ask for the same missing key build it once: the others
        wait for that build and read its result.
        """
        arrays = self.get(key)
        if arrays is not None:
            return arrays, True
        with self.single_flight(key):
            arrays = self.get(key)
            if arrays is not None:
                return arrays, True
            arrays = build()
            self.put(key, arrays)
            return arrays, False

    def single_flight(self, key: str):
        """A lock of ``key`` for this process: hold it to build what is stored under ``key``.

        A thread that finds the key missing takes the lock, looks again, and builds only if it
        is still missing, so that concurrent requests for one new entry compute it once.
        """
        with self._flights_guard:
            lock = self._flights.get(key)
            if lock is None:
                lock = self._flights[key] = _FlightLock(self, key)
            lock.users += 1
        return lock


class _FlightLock:
    """The lock of one key's build; removed from its cache's table when its last user leaves."""

    def __init__(self, owner: ArrayCache, key: str):
        self.owner, self.key, self.users = owner, key, 0
        self._lock = threading.Lock()

    def __enter__(self):
        self._lock.acquire()
        return self

    def __exit__(self, *exc):
        self._lock.release()
        with self.owner._flights_guard:
            self.users -= 1
            if self.users == 0:
                del self.owner._flights[self.key]


@dataclass
class Tiers:
    """The two tiers of a cache folder: ``core`` (never evicted) and ``samples`` (capped, LRU)."""

    core: ArrayCache
    samples: ArrayCache

    def close(self) -> None:
        self.core.close()
        self.samples.close()


def resolve_sample_cache_mb(value: float | None = None) -> float:
    """The samples tier's cap: ``value``, else ``$DLDIAG_SAMPLE_CACHE_MB``, else the default."""
    if value is None:
        env = os.environ.get("DLDIAG_SAMPLE_CACHE_MB")
        if env is None:
            return float(DEFAULT_SAMPLE_CACHE_MB)
        try:
            value = float(env)
        except ValueError:
            raise CacheError(f"DLDIAG_SAMPLE_CACHE_MB must be a number of MiB; got {env!r}") from None
        name = "DLDIAG_SAMPLE_CACHE_MB"
    else:
        name = "sample_cache_mb"
    if not np.isfinite(value) or value <= 0:
        raise CacheError(f"{name} must be a positive number of MiB; got {value!r}")
    return float(value)


def open_tiers(root: str | Path | None = None, *, sample_cache_mb: float | None = None) -> Tiers:
    """Open ``root/core`` and ``root/samples`` (``root``: :func:`default_cache_dir` by default).

    ``sample_cache_mb`` caps the samples tier (see :func:`resolve_sample_cache_mb`).
    """
    root = check_folder(Path(root) if root is not None else default_cache_dir())
    return Tiers(core=ArrayCache(root / "core"),
                 samples=ArrayCache(root / "samples", size_limit_mb=resolve_sample_cache_mb(sample_cache_mb)))
