"""One colour per sampler and per class, used alike by every figure, the app and the experiments."""

from __future__ import annotations

import math

__all__ = ["SAMPLER_COLORS", "sampler_color", "CLASS_COLORS", "class_colors", "OUTCOME_COLORS"]

# Okabe–Ito plus two dark tones: distinguishable for common colour-vision deficiencies.
SAMPLER_COLORS = {
    "random": "#7f7f7f",
    "stratified-cm": "#E69F00",
    "vas": "#56B4E9",
    "eb-tree": "#009E73",
    "latent-grid": "#8C564B",
    "gmm-full": "#0072B2",
    "gmm-spherical": "#D55E00",
    "max-margin": "#CC79A7",
}

# Plotly's "T10"-like qualitative palette for up to ten classes, then it cycles.
CLASS_COLORS = (
    "#4C78A8", "#F58518", "#E45756", "#72B7B2", "#54A24B",
    "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D", "#BAB0AC",
)

OUTCOME_COLORS = {"correct": "#4C78A8", "incorrect": "#E45756"}


def sampler_color(name: str) -> str:
    """Colour of a sampler; a weighted variant shares its family's colour (drawn dashed)."""
    return SAMPLER_COLORS.get(name.removesuffix("-weighted"), "#333333")


def _lab_to_hex(lightness: float, a: float, b: float) -> str:
    """sRGB hex of a CIELAB colour (D65), clipped into the gamut."""
    fy = (lightness + 16.0) / 116.0
    fx, fz = fy + a / 500.0, fy - b / 200.0

    def finv(t):
        return t ** 3 if t ** 3 > 0.008856 else (t - 16.0 / 116.0) / 7.787

    x, y, z = 0.95047 * finv(fx), 1.0 * finv(fy), 1.08883 * finv(fz)
    rgb = (3.2406 * x - 1.5372 * y - 0.4986 * z, -0.9689 * x + 1.8758 * y + 0.0415 * z,
           0.0557 * x - 0.2040 * y + 1.0570 * z)

    def gamma(c):
        c = min(max(c, 0.0), 1.0)
        return 12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055

    return "#" + "".join(f"{round(gamma(c) * 255):02X}" for c in rgb)


def class_colors(n: int) -> list[str]:
    """``n`` class colours: :data:`CLASS_COLORS` for up to ten classes, else ``n`` hues.

    Beyond ten classes no palette keeps every pair apart, so the colours step around the hue
    circle by the golden angle (neighbouring class indices far apart in hue) at three
    lightness levels, in CIELAB; names come from hover and the legend, not from colour alone.
    """
    if n <= len(CLASS_COLORS):
        return list(CLASS_COLORS[:n])
    golden = 137.50776405
    out = []
    for i in range(n):
        hue = math.radians((i * golden) % 360.0)
        lightness = (62.0, 45.0, 76.0)[i % 3]
        out.append(_lab_to_hex(lightness, 42.0 * math.cos(hue), 42.0 * math.sin(hue)))
    return out
