"""What a (data set, model) pair costs to diagnose: the report's Table I for a workspace.

The report (Section II, Table I) argues from the size of the activations: every diagnosed
layer's output for every item is tens to thousands of times the size of the item itself, so
storing them all is what a sample avoids. :func:`table_one` computes that row for a workspace.
"""

from __future__ import annotations

import math
import time

import numpy as np

__all__ = ["table_one", "format_table_one", "sample_savings", "savings_row", "format_savings", "human_size"]


def table_one(ws) -> dict:
    """The report's Table I row of a workspace (all sizes as float32 values).

    Returns
    -------
    dict
        ``dataset``, ``items`` (N), ``classes``, ``item_shape``, ``item_values`` and ``item_kb``
        (one item), ``parameters`` (exact: ``sum(p.numel())``), ``layers`` ({layer: values per
        item}), ``activation_values_per_item`` (over the diagnosed layers, each element of
        each layer's output), ``activation_kb_per_item``, ``activation_to_item`` (their ratio,
        the report's "×"), ``activations_gb`` (for all N items), ``latent_layer``,
        ``latent_width``, ``accuracy``.
    """
    item_shape = tuple(int(v) for v in ws.dataset.x_test.shape[1:])
    item_values = math.prod(item_shape)
    layers = {layer: math.prod(ws.full[layer, "flat"].unit_shape) for layer in ws.layers}
    values = sum(layers.values())
    return {
        "dataset": ws.dataset.name,
        "items": int(ws.n_items),
        "classes": int(ws.dataset.n_classes),
        "item_shape": list(item_shape),
        "item_values": int(item_values),
        "item_kb": item_values * 4 / 1024,
        "parameters": int(sum(p.numel() for p in ws.model.parameters())),
        "layers": {k: int(v) for k, v in layers.items()},
        "activation_values_per_item": int(values),
        "activation_kb_per_item": values * 4 / 1024,
        "activation_to_item": values / item_values,
        "activations_gb": values * 4 * ws.n_items / 1024**3,
        "latent_layer": ws.latent_layer,
        "latent_width": int(ws.latent.shape[1]),
        "accuracy": float(ws.accuracy),
    }


def format_table_one(row: dict) -> str:
    """The row as a few readable lines (the ``info`` command without ``--json``)."""
    layers = ", ".join(f"{k} {v:,}" for k, v in row["layers"].items())
    return "\n".join([
        f"data set          {row['dataset']}: {row['items']:,} items, {row['classes']} classes",
        f"item              {' x '.join(map(str, row['item_shape']))} = {row['item_values']:,} values "
        f"({row['item_kb']:.2f} KB as float32)",
        f"model             {row['parameters']:,} parameters, accuracy {row['accuracy']:.4f}",
        f"diagnosed layers  {layers}",
        f"activations       {row['activation_values_per_item']:,} values per item "
        f"({row['activation_kb_per_item']:.1f} KB) = {row['activation_to_item']:.1f}x the item; "
        f"{row['activations_gb']:.3f} GB for all {row['items']:,} items",
        f"latent            {row['latent_layer']} ({row['latent_width']} dimensions)",
    ])


def sample_savings(ws, indices, *, full_seconds: float | None = None, repeats: int = 3) -> dict:
    """What a sample saves against the full artifacts: the report's Table I, live for one sample.

    Parameters
    ----------
    ws : Workspace
    indices : array of int
        The sample.
    full_seconds : float, optional
        A measured time of the full pass; default the workspace's own
        (``ws.full_pass_seconds``, timed when it was built), else an estimate from the sample
        pass's time per item, said so.
    repeats : int
        Sample passes timed (their median is reported).

    Returns
    -------
    dict
        ``n``, ``N``, ``share``; ``values_per_item`` (every diagnosed layer's output);
        ``sample_bytes`` and ``full_bytes`` (float32 activations of the sample and of all N
        items) and ``sample_bytes_float16``; ``bytes_ratio`` (full / sample);
        ``sample_seconds`` (median of ``repeats`` forward passes over the sample with every
        diagnosed layer captured), ``full_seconds`` and ``full_seconds_measured`` (False when
        estimated as sample seconds × N/n), ``time_ratio``.
    """
    from ._validation import check_int
    from .activations import collect_activations

    indices = np.asarray(indices, dtype=np.int64)
    n, big_n = len(indices), int(ws.n_items)
    if n == 0:
        raise ValueError("indices must hold at least one item; got an empty sample")
    repeats = check_int("repeats", repeats, 1)
    values = sum(math.prod(ws.full[layer, "flat"].unit_shape) for layer in ws.layers)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with ws.pool.lease() as model:
            collect_activations(model, ws.dataset.x_test, ws.layers, indices, unit_modes=("flat",),
                                batch_size=ws.batch_size, output=ws.output, transform=ws.transform)
        times.append(time.perf_counter() - start)
    return savings_row(ws, n, float(np.median(times)), full_seconds=full_seconds)


def savings_row(ws, n: int, sample_seconds: float, *, full_seconds: float | None = None,
                stored_bytes: int | None = None) -> dict:
    """:func:`sample_savings`'s row from a sample pass already timed (the app's, when it wrote the store).

    Parameters
    ----------
    ws : Workspace
    n : int
        Items in the sample.
    sample_seconds : float
        Time of the sample's forward pass.
    full_seconds : float, optional
        As for :func:`sample_savings`.
    stored_bytes : int, optional
        Bytes the sample's activations take on disk (its store: both unit modes, float16 or
        float32); added to the row as ``stored_bytes``.
    """
    n, big_n = int(n), int(ws.n_items)
    values = sum(math.prod(ws.full[layer, "flat"].unit_shape) for layer in ws.layers)
    if full_seconds is None:
        full_seconds = getattr(ws, "full_pass_seconds", None)
    measured = full_seconds is not None
    full = float(full_seconds) if measured else sample_seconds * big_n / n
    row = {"n": n, "N": big_n, "share": n / big_n, "values_per_item": int(values),
           "sample_bytes": 4 * values * n, "sample_bytes_float16": 2 * values * n, "full_bytes": 4 * values * big_n,
           "bytes_ratio": big_n / n, "sample_seconds": sample_seconds, "full_seconds": full,
           "full_seconds_measured": measured, "time_ratio": full / sample_seconds if sample_seconds > 0 else math.inf}
    if stored_bytes is not None:
        row["stored_bytes"] = int(stored_bytes)
    return row


def human_size(b: float) -> str:
    """Bytes as B, KB, MB, GB or TB (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if b < 1024 or unit == "TB":
            return f"{b:.1f} {unit}" if unit != "B" else f"{int(b)} B"
        b /= 1024


def format_savings(row: dict) -> str:
    """:func:`sample_savings` as three lines."""
    how = "measured" if row["full_seconds_measured"] else "estimated from the sample pass's time per item"
    return "\n".join([
        f"sample            activations computed for {row['n']:,} of {row['N']:,} items ({100 * row['share']:.2f} %)",
        f"on disk           {human_size(row['sample_bytes'])} as float32 "
        f"({human_size(row['sample_bytes_float16'])} as float16) "
        f"against {human_size(row['full_bytes'])} for the full artifacts ({row['bytes_ratio']:.0f}x smaller)",
        f"time              sample pass {row['sample_seconds']:.3g} s (median) against {row['full_seconds']:.3g} s "
        f"for the full pass ({how}; {row['time_ratio']:.0f}x)",
    ])
