"""What runs a full pass: this process (``local``, the default) or a Ray cluster (``ray``).

A full pass's results are per-item outputs (prediction, probabilities, latent) and per-group
aggregates that are sums, counts and histograms (:class:`~dldiag.activations.LayerAggregates`),
so a pass is a map over shards of the items and a merge: each shard is passed on its own, its
aggregates are added, its per-item outputs put in place. With ``ray`` the shards are the rows
of a Ray Dataset mapped by ``map_batches`` over a pool of actors, each holding one copy of the
model (Ray Data's way of offline batch inference); the driver joins the cluster at
``RAY_ADDRESS`` when set, else starts a local one.

A shard's result is merged once, by its shard number: when a worker dies mid-shard, Ray runs
the shard again on another (or a restarted) actor and only the finished run's result arrives;
should a shard ever arrive twice it is checked equal to the first and not added again, and a
shard missing at the end is an error. No item is counted twice or lost.

Examples
--------
::

    DLDIAG_ENGINE=ray python -m dldiag build --dataset chunks:/data/wide-1m --weights data/weights/fashion-mnist.pt
    RAY_ADDRESS=ray://head:10001 python -m dldiag query --engine ray ...
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Sequence

import numpy as np

from pathlib import Path

from ._validation import check_int, check_option
from .activations import Aggregates, PassResult, run_pass
from .cache import content_key

__all__ = ["ENGINES", "DEFAULT_SHARD_ITEMS", "resolve_engine", "shard_ranges", "merge_aggregates", "full_pass",
           "pass_shard", "ray_init", "resumable_pass"]

ENGINES = ("local", "ray")
#: Items per shard when the data does not come in chunks: enough work per task that the
#: scheduling overhead (milliseconds) stays small, few enough that a lost shard costs little.
DEFAULT_SHARD_ITEMS = 8192


def resolve_engine(engine: str | None = None) -> str:
    """``engine``, else ``$DLDIAG_ENGINE``, else ``"local"``; checked."""
    name = engine if engine is not None else os.environ.get("DLDIAG_ENGINE", "local")
    return check_option("engine", name, ENGINES)


def shard_ranges(x, shard_items: int | None = None) -> list[tuple[int, int]]:
    """``[start, stop)`` item ranges covering ``x``: a chunk store's chunks, else runs of ``shard_items``."""
    n = len(x)
    if shard_items is None and hasattr(x, "chunk_bounds") and hasattr(x, "n_chunks"):
        return [x.chunk_bounds(c) for c in range(x.n_chunks)]
    step = check_int("shard_items", DEFAULT_SHARD_ITEMS if shard_items is None else shard_items, 1)
    return [(a, min(n, a + step)) for a in range(0, n, step)]


def merge_aggregates(parts: Sequence[Aggregates]) -> Aggregates:
    """The sum of the aggregates of disjoint shards (in float64, counts exact)."""
    if not parts:
        raise ValueError("parts must hold at least one shard's aggregates; got none")
    first = parts[0]
    by_layer = dict(first.by_layer)
    for other in parts[1:]:
        if other.layers != first.layers or other.n_classes != first.n_classes:
            raise ValueError("parts must be of the same layers and classes")
        by_layer = {key: agg + other.by_layer[key] for key, agg in by_layer.items()}
    return Aggregates(first.layers, first.n_classes, by_layer)


def pass_shard(model, x, y, layers, start: int, stop: int, *, n_classes: int, latent_layer=None,
               batch_size: int = 256, output=None, transform=None) -> dict[str, np.ndarray]:
    """The pass over items ``[start, stop)`` as named arrays: per-item outputs and aggregates."""
    res = run_pass(model, x, y, layers, n_classes=n_classes, indices=np.arange(start, stop), latent_layer=latent_layer,
                   batch_size=batch_size, output=output, transform=transform)
    out = {"y_pred": res.y_pred, "probs": res.probs, **res.aggregates.to_arrays()}
    if res.latent is not None:
        out["latent"] = res.latent
    return out


def _pack(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _unpack(blob: bytes) -> dict[str, np.ndarray]:
    # arrays only: a shard's result never carries a pickle
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class _Merger:
    """Folds shard results in as they arrive: per-item outputs put in place, aggregates added.

    Only the running sums are kept, so the driver's memory does not grow with the shards.
    """

    def __init__(self, ranges, n_classes: int):
        self.ranges = ranges
        n = ranges[-1][1] if ranges else 0
        self.y_pred = np.empty(n, dtype=np.int64)
        self.probs = np.empty((n, n_classes), dtype=np.float32)
        self.latent = None
        self.total: Aggregates | None = None
        self.seen: dict[int, np.ndarray] = {}  # shard → its predictions, to check a duplicate
        self.duplicates = 0

    def add(self, shard: int, arrays: dict) -> None:
        if shard in self.seen:
            self.duplicates += 1
            if not np.array_equal(arrays["y_pred"], self.seen[shard]):
                raise RuntimeError(f"shard {shard} arrived twice with different results")
            return
        a, b = self.ranges[shard]
        self.y_pred[a:b] = arrays["y_pred"]
        self.probs[a:b] = arrays["probs"]
        if "latent" in arrays:
            if self.latent is None:
                self.latent = np.empty((len(self.y_pred), arrays["latent"].shape[1]), dtype=np.float32)
            self.latent[a:b] = arrays["latent"]
        part = Aggregates.from_arrays(arrays)
        self.total = part if self.total is None else merge_aggregates([self.total, part])
        self.seen[shard] = np.asarray(arrays["y_pred"])

    def result(self) -> PassResult:
        missing = [s for s in range(len(self.ranges)) if s not in self.seen]
        if missing:
            raise RuntimeError(f"the pass lost {len(missing)} shard(s) of {len(self.ranges)} (first: {missing[0]})")
        return PassResult(self.y_pred, self.probs, self.latent, self.total)


def resumable_pass(model, x, y, layers, *, n_classes: int, parts_dir, key: str, latent_layer=None,
                   batch_size: int = 256, output=None, transform=None, shard_items: int | None = None,
                   show_progress: bool = False, desc: str = "full pass", log=None) -> PassResult:
    """A full pass here, shard by shard, each shard's result kept on disk until the pass ends.

    Killed (``kill -9``, a crash, a reboot) and run again with the same ``key``, the pass reads
    the finished shards back and passes only the others: an hour at 10^6 galaxies is not lost
    to the last minute. A shard's file is written under a temporary name and renamed, so a file
    under its final name is whole; files of another ``key`` (other data, model or layers, or
    another shard layout) are never read. Shards are merged in their order whatever order they
    were computed in, so a resumed pass gives the uninterrupted pass's arrays to the bit. Memory:
    one shard's activations at a time, plus the per-item outputs of all N items.

    Parameters
    ----------
    model, x, y, layers, n_classes, latent_layer, batch_size, output, transform
        As for :func:`~dldiag.activations.run_pass`.
    parts_dir : path
        Where the finished shards wait (created; emptied of this pass's files at the end).
    key : str
        What names this pass (the workspace's cache key, say).
    shard_items, show_progress, desc, log
        As for :func:`full_pass`; the bar counts items, with the rate and time left.
    """
    from .progress import progress

    start = time.perf_counter()
    parts_dir = Path(parts_dir)
    parts_dir.mkdir(parents=True, exist_ok=True)
    ranges = shard_ranges(x, shard_items)
    tag = content_key("pass-parts", key, [list(r) for r in ranges])[:16]
    merger = _Merger(ranges, n_classes)
    reused = 0
    bar = progress(total=len(x), desc=desc, unit="item", disable=not show_progress)
    try:
        for shard, (a, b) in enumerate(ranges):
            path = parts_dir / f"part-{tag}-{shard:05d}.npz"
            arrays = None
            if path.is_file():
                try:
                    arrays = _unpack(path.read_bytes())
                    reused += 1
                except (OSError, ValueError):  # unreadable: pass the shard again
                    arrays = None
            if arrays is None:
                arrays = pass_shard(model, x, y, layers, a, b, n_classes=n_classes, latent_layer=latent_layer,
                                    batch_size=batch_size, output=output, transform=transform)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_bytes(_pack(arrays))
                os.replace(tmp, path)
            merger.add(shard, arrays)
            bar.update(b - a)
    finally:
        bar.close()
    result = merger.result()
    for shard in range(len(ranges)):
        (parts_dir / f"part-{tag}-{shard:05d}.npz").unlink(missing_ok=True)
    if log is not None:
        log(f"local pass: {len(x)} items in {len(ranges)} shards ({reused} read back from an interrupted run), "
            f"{time.perf_counter() - start:.1f} s")
    return result


def full_pass(model, x, y, layers, *, n_classes: int, latent_layer=None, batch_size: int = 256, output=None,
              transform=None, engine: str | None = None, shard_items: int | None = None, workers: int | None = None,
              show_progress: bool = False, desc: str = "full pass", log=None, parts_dir=None,
              key: str | None = None) -> PassResult:
    """A full pass over ``x`` on the chosen engine; the same result as :func:`~dldiag.activations.run_pass`.

    Parameters
    ----------
    model, x, y, layers, n_classes, latent_layer, batch_size, output, transform
        As for :func:`~dldiag.activations.run_pass`.
    engine : {"local", "ray"}, optional
        Default :func:`resolve_engine`. ``local`` runs :func:`~dldiag.activations.run_pass`
        here, in one streaming pass.
    shard_items : int, optional
        Items per shard (``ray``); default: the chunks of a chunk store, else
        :data:`DEFAULT_SHARD_ITEMS`.
    workers : int, optional
        Actors (model copies) of the ``ray`` pool; default: the cluster's CPUs, at most the shards.
    show_progress, desc
        Progress of the local pass (Ray shows its own).
    log : callable, optional
        Receives one line with the engine, shards and time.
    parts_dir, key : optional
        With both, the local pass is :func:`resumable_pass` (shards kept on disk until the end).

    Returns
    -------
    PassResult
        Aggregates equal to the local pass's up to float summation order (sums of float32
        activations in float64 per shard, added in float64).
    """
    engine = resolve_engine(engine)
    if engine == "local" and parts_dir is not None and key is not None:
        return resumable_pass(model, x, y, layers, n_classes=n_classes, parts_dir=parts_dir, key=key,
                              latent_layer=latent_layer, batch_size=batch_size, output=output, transform=transform,
                              shard_items=shard_items, show_progress=show_progress, desc=desc, log=log)
    if engine == "local":
        return run_pass(model, x, y, layers, n_classes=n_classes, latent_layer=latent_layer, batch_size=batch_size,
                        output=output, transform=transform, show_progress=show_progress, desc=desc)
    return _ray_pass(model, x, y, layers, n_classes=n_classes, latent_layer=latent_layer, batch_size=batch_size,
                     output=output, transform=transform, shard_items=shard_items, workers=workers, log=log)


class _ShardActor:
    """One model copy on a Ray worker; each call passes the shards of its batch."""

    def __init__(self, job):
        import torch

        # one thread per actor: the pool already uses one actor per core
        torch.set_num_threads(1)
        self.job = job

    def __call__(self, batch: dict) -> dict:
        j = self.job
        blobs = []
        for a, b in zip(batch["start"], batch["stop"]):
            arrays = pass_shard(j["model"], j["x"], j["y"], j["layers"], int(a), int(b), n_classes=j["n_classes"],
                                latent_layer=j["latent_layer"], batch_size=j["batch_size"], output=j["output"],
                                transform=j["transform"])
            blobs.append(_pack(arrays))
        return {"shard": np.asarray(batch["shard"]), "result": np.array(blobs, dtype=object)}


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise ImportError("engine 'ray' needs Ray Data: pip install 'ray[data]==2.60.0' (the [ray] extra of "
                          "dldiag), or use engine 'local'") from exc
    return ray


def ray_init(**kwargs):
    """Join ``$RAY_ADDRESS`` when set, else start (or reuse) a local cluster; return ``ray``."""
    ray = _ray()
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        ray.init(address=address, include_dashboard=False, log_to_driver=False, **({} if address else kwargs))
    return ray


def _ray_pass(model, x, y, layers, *, n_classes, latent_layer, batch_size, output, transform, shard_items, workers,
              log) -> PassResult:
    start = time.perf_counter()
    ray = ray_init()
    ranges = shard_ranges(x, shard_items)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    workers = min(len(ranges), check_int("workers", workers, 1) if workers is not None else max(1, cpus))
    job = {"model": model, "x": x, "y": np.asarray(y), "layers": tuple(layers), "n_classes": n_classes,
           "latent_layer": latent_layer, "batch_size": batch_size, "output": output, "transform": transform}
    rows = [{"shard": s, "start": a, "stop": b} for s, (a, b) in enumerate(ranges)]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    # Ray Data restarts a dead actor and retries its task without limit by default
    # (max_restarts = max_task_retries = -1): a killed worker costs its shard's rerun only.
    mapped = ds.map_batches(_ShardActor, fn_constructor_kwargs={"job": job}, batch_size=1,
                            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1)
    merger = _Merger(ranges, n_classes)
    for row in mapped.iter_rows():
        merger.add(int(row["shard"]), _unpack(row["result"]))
    result = merger.result()
    if log is not None:
        dup = f", {merger.duplicates} duplicate shard(s) ignored" if merger.duplicates else ""
        log(f"ray pass: {len(x)} items in {len(ranges)} shards on {workers} actor(s), "
            f"{time.perf_counter() - start:.1f} s{dup}")
    return result
