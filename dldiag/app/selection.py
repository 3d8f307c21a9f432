"""A box or lasso drawn in the latent view, as a short string a link can carry.

A selection is kept as its shape in the coordinates of the projection it was drawn in, not as
the list of items it holds (a 2,902-item box would make a link of tens of kilobytes):
``box:umap:x0,x1,y0,y1`` or ``lasso:tsne:x1,y1;x2,y2;…``. The server finds the items inside
it whenever it needs them (a vectorised point-in-polygon test over all N points), so the
same link gives the same items, and a client never sends item lists the server would have to
trust.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validation import shown

__all__ = ["Selection", "parse_selection", "selection_from_event", "MAX_VERTICES"]

#: Most vertices of a lasso kept (a longer path is thinned evenly; a link stays short).
MAX_VERTICES = 120
_KINDS = ("box", "lasso")


def _number(text: str) -> str:
    return f"{float(text):.5g}"


@dataclass(frozen=True)
class Selection:
    """A box (``points`` = [(x0, y0), (x1, y1)]) or lasso (the polygon's vertices) in ``projection``."""

    kind: str
    projection: str
    points: tuple[tuple[float, float], ...]

    def to_text(self) -> str:
        if self.kind == "box":
            (x0, y0), (x1, y1) = self.points
            coords = ",".join(_number(v) for v in (x0, x1, y0, y1))
        else:
            coords = ";".join(f"{_number(x)},{_number(y)}" for x, y in self.points)
        return f"{self.kind}:{self.projection}:{coords}"

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """Boolean mask of the points ``xy`` (N, 2) inside the shape (even-odd rule for a lasso)."""
        x, y = np.asarray(xy[:, 0], dtype=np.float64), np.asarray(xy[:, 1], dtype=np.float64)
        if self.kind == "box":
            (x0, y0), (x1, y1) = self.points
            return (x >= min(x0, x1)) & (x <= max(x0, x1)) & (y >= min(y0, y1)) & (y <= max(y0, y1))
        inside = np.zeros(len(x), dtype=bool)
        poly = np.asarray(self.points, dtype=np.float64)
        for (xa, ya), (xb, yb) in zip(poly, np.roll(poly, -1, axis=0)):
            crosses = (ya > y) != (yb > y)
            with np.errstate(divide="ignore", invalid="ignore"):
                at = xa + (y - ya) * (xb - xa) / (yb - ya)
            inside ^= crosses & (x < at)
        return inside

    def shape(self) -> dict:
        """The selection as plotly draws it (``layout.selections``)."""
        if self.kind == "box":
            (x0, y0), (x1, y1) = self.points
            return {"type": "rect", "xref": "x", "yref": "y", "x0": x0, "x1": x1, "y0": y0, "y1": y1}
        path = "M" + "L".join(f"{x},{y}" for x, y in self.points) + "Z"
        return {"type": "path", "xref": "x", "yref": "y", "path": path}


def parse_selection(text, projections) -> Selection | None:
    """A :class:`Selection` from its text (``None`` or ``""``: none); ``ValueError`` naming what is wrong."""
    if text in (None, ""):
        return None
    if not isinstance(text, str) or len(text) > 40 * MAX_VERTICES:
        raise ValueError(f"sel must be box:PROJECTION:x0,x1,y0,y1 or lasso:PROJECTION:x,y;x,y;…; got {shown(text)}")
    parts = text.split(":", 2)
    if len(parts) != 3 or parts[0] not in _KINDS:
        raise ValueError(f"sel must start with box: or lasso:; got {shown(text)}")
    kind, projection, coords = parts
    if projection not in projections:
        raise ValueError(f"sel's projection must be one of {', '.join(projections)}; got {shown(projection)}")
    try:
        if kind == "box":
            x0, x1, y0, y1 = (float(v) for v in coords.split(","))
            points = ((x0, y0), (x1, y1))
        else:
            points = tuple(tuple(float(v) for v in pair.split(",")) for pair in coords.split(";"))
            if any(len(p) != 2 for p in points) or not 3 <= len(points) <= MAX_VERTICES:
                raise ValueError
    except ValueError:
        raise ValueError(f"sel's coordinates must be numbers ({'4' if kind == 'box' else f'3 to {MAX_VERTICES} x,y pairs'}); "
                         f"got {shown(coords)}") from None
    if not all(math.isfinite(v) for p in points for v in p):
        raise ValueError(f"sel's coordinates must be finite; got {shown(coords)}")
    return Selection(kind, projection, points)


def selection_from_event(selected_data, projection: str) -> Selection | None:
    """The shape of a plotly box or lasso selection event, drawn in ``projection``.

    Plotly reports a box as ``range`` {x: [x0, x1], y: [y0, y1]} and a lasso as
    ``lassoPoints`` {x: [...], y: [...]}. An event without either (a cleared selection, a
    click) is no selection.

    Raises
    ------
    ValueError
        If the event is not a plotly selection.
    """
    if not selected_data:
        return None
    if not isinstance(selected_data, dict):
        raise ValueError(f"a selection must be a plotly selection event; got {shown(selected_data)}")
    try:
        if selected_data.get("range"):
            r = selected_data["range"]
            (x0, x1), (y0, y1) = r["x"], r["y"]
            sel = Selection("box", projection, ((float(x0), float(y0)), (float(x1), float(y1))))
        elif selected_data.get("lassoPoints"):
            lp = selected_data["lassoPoints"]
            xs, ys = [float(v) for v in lp["x"]], [float(v) for v in lp["y"]]
            if len(xs) != len(ys) or len(xs) < 3:
                raise ValueError
            step = max(1, -(-len(xs) // MAX_VERTICES))
            sel = Selection("lasso", projection, tuple(zip(xs[::step], ys[::step])))
        else:
            return None
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"a selection event must carry a box range or lasso points; got {shown(selected_data)}") from None
    # Round-trip through the text, so a selection drawn and one read from a link are the same.
    return parse_selection(sel.to_text(), (projection,))
