"""One colour per sampler and per class, used alike by every figure, the app and the experiments."""

from __future__ import annotations

__all__ = ["SAMPLER_COLORS", "sampler_color", "CLASS_COLORS", "OUTCOME_COLORS"]

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
