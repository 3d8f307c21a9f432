"""The palettes: CIEDE2000 against published data, colour-vision simulation, and the checks every
class and sampler palette must pass."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dldiag.palette import (
    CLASS_COLORS,
    FULL_COLOR,
    MACHADO_2009,
    MIN_DELTA_E,
    SAMPLER_COLORS,
    VISIONS,
    ciede2000,
    class_colors,
    delta_e,
    min_delta_e,
    simulate,
    srgb_to_lab,
)

# Sharma, Wu & Dalal (2005), Table 1: (L*, a*, b*) pairs and their CIEDE2000 difference. The
# pairs cover the hue seam at 0°/360°, the mean hue of a near-achromatic pair, large lightness
# and chroma differences and near-black colours.
SHARMA_2005 = [
    ((50.0000, 2.6772, -79.7751), (50.0000, 0.0000, -82.7485), 2.0425),   # 1
    ((50.0000, 3.1571, -77.2803), (50.0000, 0.0000, -82.7485), 2.8615),   # 2
    ((50.0000, -1.3802, -84.2814), (50.0000, 0.0000, -82.7485), 1.0000),  # 5
    ((50.0000, 0.0000, 0.0000), (50.0000, -1.0000, 2.0000), 2.3669),      # 7
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0009), 7.1792),     # 9
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0011), 7.2195),     # 11
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0009, -2.4900), 4.8045),     # 13
    ((50.0000, 2.5000, 0.0000), (50.0000, 0.0000, -2.5000), 4.3065),      # 16
    ((50.0000, 2.5000, 0.0000), (73.0000, 25.0000, -18.0000), 27.1492),   # 17
    ((50.0000, 2.5000, 0.0000), (56.0000, -27.0000, -3.0000), 31.9030),   # 19
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),  # 25
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),  # 26
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),  # 29
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),    # 32
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),       # 34
]


@pytest.mark.parametrize("lab1, lab2, expected", SHARMA_2005)
def test_ciede2000_matches_sharma_wu_dalal(lab1, lab2, expected):
    assert float(ciede2000(lab1, lab2)) == pytest.approx(expected, abs=5e-5)
    assert float(ciede2000(lab2, lab1)) == pytest.approx(expected, abs=5e-5)  # symmetric


def test_ciede2000_broadcasts_over_pairs():
    a = np.array([p[0] for p in SHARMA_2005])
    b = np.array([p[1] for p in SHARMA_2005])
    np.testing.assert_allclose(ciede2000(a, b), [p[2] for p in SHARMA_2005], atol=5e-5)
    square = ciede2000(a[:, None], a[None])
    assert square.shape == (len(a), len(a)) and np.allclose(np.diag(square), 0.0)


def test_srgb_to_lab_known_colours():
    np.testing.assert_allclose(srgb_to_lab("#FFFFFF"), [100.0, 0.0, 0.0], atol=0.01)
    np.testing.assert_allclose(srgb_to_lab("#000000"), [0.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(srgb_to_lab("#FF0000"), [53.24, 80.09, 67.20], atol=0.02)
    np.testing.assert_allclose(srgb_to_lab("#0000FF"), [32.30, 79.19, -107.86], atol=0.02)


def test_simulation_keeps_greys_and_merges_what_dichromats_confuse():
    for vision in VISIONS:  # every Machado matrix's rows sum to 1: neutral greys stay as they are
        np.testing.assert_allclose(simulate("#808080", vision), [128 / 255] * 3, atol=2e-3)
    for m in MACHADO_2009.values():
        np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-5)
    # red and green, far apart in normal vision, nearly meet without L or M cones
    assert delta_e("#D62728", "#2CA02C") > 60
    assert delta_e("#D62728", "#2CA02C", "deuteranopia") < 25
    assert delta_e("#D62728", "#2CA02C", "protanopia") < 25
    # blue and green (a tritan confusion line) meet without S cones, not without L cones
    assert delta_e("#1F77B4", "#2CA02C", "tritanopia") < delta_e("#1F77B4", "#2CA02C", "protanopia") / 2
    with pytest.raises(ValueError, match="vision must be one of"):
        simulate("#808080", "monochromacy")


def test_the_old_class_palette_fails_where_the_issue_says():
    """Plotly's T10, used before: Pullover/Coat merge in deuteranopia, Sneaker/Ankle boot in protanopia."""
    t10 = ("#4C78A8", "#F58518", "#E45756", "#72B7B2", "#54A24B",
           "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D", "#BAB0AC")
    assert delta_e(t10[2], t10[4], "deuteranopia") < 2.0
    assert delta_e(t10[7], t10[9], "protanopia") < 2.0
    assert min_delta_e(t10, "protanopia")[1:] == (7, 9)


@pytest.mark.parametrize("vision", VISIONS)
@pytest.mark.parametrize("n", range(2, 11))
def test_class_palette_keeps_every_pair_apart(n, vision):
    colors = class_colors(n)
    least, i, j = min_delta_e(colors, vision)
    assert least >= MIN_DELTA_E, f"classes {i} and {j} of {n} are ΔE {least:.1f} apart in {vision}"


def test_class_palette_minima_per_vision():
    """The minima recorded in palette.py's comment (so that the comment cannot go stale)."""
    minima = {v: round(min_delta_e(CLASS_COLORS, v)[0], 1) for v in VISIONS}
    assert minima == {"normal": 17.3, "deuteranopia": 12.6, "protanopia": 11.9, "tritanopia": 13.3}


def test_class_colours_read_on_white():
    for vision in VISIONS:
        assert min(delta_e(c, "#FFFFFF", vision) for c in CLASS_COLORS) >= MIN_DELTA_E


def test_more_than_ten_classes_step_around_the_hue_circle():
    colors = class_colors(100)
    assert len(set(colors)) == 100 and colors[:10] != list(CLASS_COLORS)
    assert class_colors(10) == list(CLASS_COLORS) and class_colors(3) == list(CLASS_COLORS[:3])


@pytest.mark.parametrize("vision", VISIONS)
@pytest.mark.parametrize("sampler", sorted(SAMPLER_COLORS))
def test_every_sampler_stands_apart_from_the_full_data_and_from_random(sampler, vision):
    color = SAMPLER_COLORS[sampler]
    assert delta_e(color, FULL_COLOR, vision) >= MIN_DELTA_E
    if sampler != "random":  # (d) draws each sampler beside the random baseline
        assert delta_e(color, SAMPLER_COLORS["random"], vision) >= MIN_DELTA_E


def test_random_is_not_a_grey():
    """A grey random sample beside the full data's dark bars read as "random vs random"."""
    _, a, b = srgb_to_lab(SAMPLER_COLORS["random"])
    assert np.hypot(a, b) > 30
    _, a, b = srgb_to_lab(FULL_COLOR)
    assert np.hypot(a, b) < 1  # the reference stays neutral


def test_min_delta_e_names_the_closest_pair():
    colors = ["#000000", "#FFFFFF", "#F8F8F8"]
    least, i, j = min_delta_e(colors)
    assert (i, j) == (1, 2) and least == pytest.approx(delta_e("#FFFFFF", "#F8F8F8"))
    assert all(delta_e(a, b) >= least for a, b in itertools.combinations(colors, 2))
    with pytest.raises(ValueError, match="at least two"):
        min_delta_e(["#000000"])
