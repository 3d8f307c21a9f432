"""One colour per sampler and per class, used alike by every figure, the app and the experiments.

The palettes are checked, not only chosen: :func:`delta_e` measures the CIEDE2000 colour
difference of two colours as a person with normal colour vision sees them, or as a person
with deuteranopia, protanopia or tritanopia does (simulated with the matrices of Machado,
Oliveira & Fernandes 2009 at severity 1.0, applied in linear sRGB). ``tests/test_palette.py``
holds every class palette of up to ten classes, and every sampler colour against the full
data's colour, to a minimum difference of :data:`MIN_DELTA_E` in all four kinds of vision.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "SAMPLER_COLORS",
    "sampler_color",
    "CLASS_COLORS",
    "class_colors",
    "OUTCOME_COLORS",
    "FULL_COLOR",
    "VISIONS",
    "MIN_DELTA_E",
    "srgb_to_lab",
    "simulate",
    "ciede2000",
    "delta_e",
    "min_delta_e",
]

#: The kinds of colour vision every palette is checked in.
VISIONS = ("normal", "deuteranopia", "protanopia", "tritanopia")

#: Least CIEDE2000 difference between two colours that must be told apart, in every vision.
#: About 10 is where two colours of a small mark stop being "the same colour, a bit lighter".
MIN_DELTA_E = 10.0

# Okabe–Ito plus two dark tones: distinguishable for common colour-vision deficiencies.
# ``random`` was grey (#7f7f7f) next to the full data's dark grey, so a random sample read as
# "the full data, a bit lighter" and (d) as "random vs random". Its colour now came from a
# scan of the sRGB cube (steps of 1/34) for colours of CIELAB lightness 40..80 and chroma
# above 20, scored by their least CIEDE2000 difference, over the four visions, from every
# other sampler, from FULL_COLOR and (less 10) from white. Of those scoring above 12, the best
# were a light green (faint on white) and dark reds (read as "errors"); periwinkle scores 12.3.
SAMPLER_COLORS = {
    "random": "#8078FF",
    "stratified-cm": "#E69F00",
    "vas": "#56B4E9",
    "eb-tree": "#009E73",
    "latent-grid": "#8C564B",
    "gmm-full": "#0072B2",
    "gmm-spherical": "#D55E00",
    "max-margin": "#CC79A7",
}

#: The full data's bars and marks in every panel: near-black, the reference every sampler's
#: colour is compared against (ΔE ≥ 20 from each sampler colour in all four visions).
FULL_COLOR = "#262626"

# Petroff's ten-colour accessible sequence (M. A. Petroff, "Accessible Color Sequences for
# Data Visualization", arXiv:2107.02270, 2021; matplotlib's "petroff10" style), in its order.
# It was chosen over a search of our own because it already passes: its least pairwise
# CIEDE2000 difference is 17.3 in normal vision, 12.6 in deuteranopia, 11.9 in protanopia and
# 13.3 in tritanopia (Plotly's T10, used before, had 1.3 in protanopia and 3.3 in
# deuteranopia: Pullover and Coat of Fashion-MNIST were one colour), and it keeps light
# colours dark enough to read on white. Every first n colours (n = 2..10) keep these minima.
CLASS_COLORS = (
    "#3F90DA", "#FFA90E", "#BD1F01", "#94A4A2", "#832DB6",
    "#A96B59", "#E76300", "#B9AC70", "#717581", "#92DADD",
)

OUTCOME_COLORS = {"correct": "#4C78A8", "incorrect": "#E45756"}


def sampler_color(name: str) -> str:
    """Colour of a sampler; a variant (weighted, or the experiments' latent-grid-spill) shares
    its family's colour and is drawn dashed."""
    return SAMPLER_COLORS.get(name.removesuffix("-weighted").removesuffix("-spill"), "#333333")


# ------------------------------------------------------------------ colour science

#: Machado, Oliveira & Fernandes (2009), "A physiologically-based model for simulation of
#: color vision deficiency", severity 1.0; they act on linear sRGB.
MACHADO_2009 = {
    "protanopia": np.array([[0.152286, 1.052583, -0.204868],
                            [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968],
                              [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779],
                            [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}

# linear sRGB -> CIE XYZ (D65), and the D65 white point
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])


def _as_rgb(colors) -> np.ndarray:
    """sRGB in [0, 1], shape (..., 3), of hex strings ("#RRGGBB") or of an array as it is."""
    if isinstance(colors, str):
        colors = [colors]
        single = True
    else:
        single = False
    if len(colors) and isinstance(colors[0], str):
        rgb = np.array([[int(c.lstrip("#")[i:i + 2], 16) / 255.0 for i in (0, 2, 4)] for c in colors])
    else:
        rgb = np.asarray(colors, dtype=np.float64)
    return rgb[0] if single else rgb


def _to_linear(rgb: np.ndarray) -> np.ndarray:
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _linear_to_lab(linear: np.ndarray) -> np.ndarray:
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE_D65
    d = 6.0 / 29.0
    f = np.where(xyz > d ** 3, np.cbrt(xyz), xyz / (3 * d * d) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]),
                     200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def _simulated_linear(colors, vision: str) -> np.ndarray:
    if vision not in VISIONS:
        raise ValueError(f"vision must be one of {', '.join(VISIONS)}; got {vision!r}")
    linear = _to_linear(_as_rgb(colors))
    if vision != "normal":
        # clipped: a simulated colour outside the gamut is shown as the nearest one a screen has
        linear = np.clip(linear @ MACHADO_2009[vision].T, 0.0, 1.0)
    return linear


def simulate(colors, vision: str) -> np.ndarray:
    """sRGB (in [0, 1], shape (..., 3)) of ``colors`` as seen with ``vision`` (one of :data:`VISIONS`)."""
    linear = _simulated_linear(colors, vision)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def srgb_to_lab(colors, vision: str = "normal") -> np.ndarray:
    """CIELAB (D65) of sRGB ``colors`` (hex strings or values in [0, 1]) as seen with ``vision``."""
    return _linear_to_lab(_simulated_linear(colors, vision))


def ciede2000(lab1, lab2) -> np.ndarray:
    """CIEDE2000 colour difference of CIELAB colours (broadcast over leading axes; kL = kC = kH = 1).

    Follows Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation
    notes, supplementary test data, and mathematical observations", including their notes on
    the hue mean and difference when a chroma is zero and across the 0°/360° seam.
    """
    L1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=np.float64), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=np.float64), -1, 0)
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2.0
    g = 0.5 * (1.0 - np.sqrt(c_mean ** 7 / (c_mean ** 7 + 25.0 ** 7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360.0
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360.0
    achromatic = (c1p * c2p) == 0.0  # a hue is undefined: its difference is 0, its mean the sum
    dh = h2p - h1p
    dh = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    dh = np.where(achromatic, 0.0, dh)
    d_l, d_c = L2 - L1, c2p - c1p
    d_h = 2.0 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2.0))
    l_mean, cp_mean = (L1 + L2) / 2.0, (c1p + c2p) / 2.0
    h_sum = h1p + h2p
    h_mean = np.where(achromatic, h_sum,
                      np.where(np.abs(h1p - h2p) <= 180.0, h_sum / 2.0,
                               np.where(h_sum < 360.0, (h_sum + 360.0) / 2.0, (h_sum - 360.0) / 2.0)))
    t = (1.0 - 0.17 * np.cos(np.radians(h_mean - 30.0)) + 0.24 * np.cos(np.radians(2.0 * h_mean))
         + 0.32 * np.cos(np.radians(3.0 * h_mean + 6.0)) - 0.20 * np.cos(np.radians(4.0 * h_mean - 63.0)))
    d_theta = 30.0 * np.exp(-(((h_mean - 275.0) / 25.0) ** 2))
    r_c = 2.0 * np.sqrt(cp_mean ** 7 / (cp_mean ** 7 + 25.0 ** 7))
    s_l = 1.0 + 0.015 * (l_mean - 50.0) ** 2 / np.sqrt(20.0 + (l_mean - 50.0) ** 2)
    s_c = 1.0 + 0.045 * cp_mean
    s_h = 1.0 + 0.015 * cp_mean * t
    r_t = -np.sin(np.radians(2.0 * d_theta)) * r_c
    return np.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2 + r_t * (d_c / s_c) * (d_h / s_h))


def delta_e(color1, color2, vision: str = "normal") -> float:
    """CIEDE2000 difference of two sRGB colours (hex strings) as seen with ``vision``."""
    return float(ciede2000(srgb_to_lab(color1, vision), srgb_to_lab(color2, vision)))


def min_delta_e(colors, vision: str = "normal") -> tuple[float, int, int]:
    """Least pairwise CIEDE2000 difference of ``colors`` in ``vision``, and the pair ``(i, j)``."""
    if len(colors) < 2:
        raise ValueError(f"min_delta_e needs at least two colours; got {len(colors)}")
    lab = srgb_to_lab(list(colors), vision)
    d = ciede2000(lab[:, None, :], lab[None, :, :])
    d[np.diag_indices(len(colors))] = np.inf
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    return float(d[i, j]), int(min(i, j)), int(max(i, j))


# ------------------------------------------------------------------ many classes

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

    Up to ten classes every pair is at least :data:`MIN_DELTA_E` apart in normal vision and
    in simulated deuteranopia, protanopia and tritanopia. Beyond ten classes no palette keeps
    every pair apart, so the colours step around the hue circle by the golden angle
    (neighbouring class indices far apart in hue) at three lightness levels, in CIELAB; names
    come from hover and the legend, not from colour alone.
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
