"""What a (data set, model) pair costs to diagnose: the report's Table I for a workspace.

The report (Section II, Table I) argues from the size of the activations: every diagnosed
layer's output for every item is tens to thousands of times the size of the item itself, so
storing them all is what a sample avoids. :func:`table_one` computes that row for a workspace.
"""

from __future__ import annotations

import math

__all__ = ["table_one", "format_table_one"]


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
