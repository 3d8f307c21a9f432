"""Presentation mode on a projector's screen sizes: every slide readable, nothing overlapping or cut.

Fashion-MNIST (its long class names are the hard case) with a group set, in headless Chromium
with the page's viewport at exactly 1280×720 and 1920×1080. For each slide the text boxes of the
figure — titles, legends, axis titles, tick labels, cell labels — are read from the DOM: no two
may overlap, none may reach outside the window, and no plotly toolbar may be visible.
"""

from __future__ import annotations

import time

import pytest

from dldiag.app import create_app
from dldiag.app.state import SLIDES
from dldiag.artifacts import load_workspace

from conftest import free_port, wait_for

SIZES = ((1280, 720), (1920, 1080))
GROUP = "cls=6&outcome=incorrect"  # Fashion-MNIST's shirts the model got wrong

#: Text boxes of a slide's figure, as the page lays them out (client px).
TEXT_BOXES_JS = r"""
const panel = document.querySelector(arguments[0]);
const out = [];
for (const t of panel.querySelectorAll('svg text')) {
  const r = t.getBoundingClientRect(), cs = getComputedStyle(t);
  if (!t.textContent.trim() || r.width < 1 || r.height < 1 || cs.visibility === 'hidden'
      || cs.display === 'none' || parseFloat(cs.opacity || '1') === 0 || t.closest('[display="none"]')) continue;
  out.push({text: t.textContent.trim().slice(0, 40), x0: r.left, y0: r.top, x1: r.right, y1: r.bottom,
            cls: t.getAttribute('class') || t.parentNode.getAttribute('class') || ''});
}
const bars = [...panel.querySelectorAll('.modebar-container')].filter(m => m.getBoundingClientRect().width > 0
  && getComputedStyle(m).display !== 'none' && getComputedStyle(m).visibility !== 'hidden');
return {boxes: out, toolbars: bars.length, w: window.innerWidth, h: window.innerHeight,
        shown: getComputedStyle(panel).display !== 'none'};
"""

PANEL_OF = {"latent": "#latent-panel", "topk": "#topk-panel", "heatmap": "#heatmap-panel",
            "argmax": "#argmax-panel", "summary": "#summary-panel", "confusion": "#confusion-panel",
            "gallery": "#gallery-panel"}


@pytest.fixture(scope="module")
def fashion_ws(tmp_path_factory):
    return load_workspace("fashion-mnist", cache_dir=tmp_path_factory.mktemp("cache"), show_progress=False)


def _overlaps(boxes, slack=1.5):
    """Pairs of text boxes that overlap by more than ``slack`` px on both axes (glyph boxes
    include line spacing, so touching lines are not an overlap)."""
    found = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            dx = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
            dy = min(a["y1"], b["y1"]) - max(a["y0"], b["y0"])
            if dx > slack and dy > slack:
                found.append((a["text"], b["text"], round(dx, 1), round(dy, 1)))
    return found


def _settled(dash_duo, panel: str) -> None:
    """Until the slide's figure has drawn and stopped changing (it is rebuilt for the window)."""
    def ready():
        state = dash_duo.driver.execute_script(TEXT_BOXES_JS, panel)
        return state["shown"] and len(state["boxes"]) > 2
    wait_for(ready, 40, f"{panel} drawn")
    last = None
    for _ in range(40):
        now = str(dash_duo.driver.execute_script(TEXT_BOXES_JS, panel)["boxes"])
        if now == last and not dash_duo.driver.find_elements("css selector", "[data-dash-is-loading='true']"):
            return
        last = now
        time.sleep(0.4)


@pytest.mark.parametrize("width, height", SIZES)
def test_every_slide_fits_the_screen_without_overlap_or_toolbars(dash_duo, fashion_ws, width, height):
    app = create_app(fashion_ws, default_projection="pca", samplers=["random", "max-margin"])
    dash_duo.start_server(app, port=free_port())
    dash_duo.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    problems = []
    for slide in SLIDES:
        dash_duo.driver.get(f"{dash_duo.server_url}/?sampler=max-margin&{GROUP}&present=1&slide={slide}")
        panel = PANEL_OF[slide]
        _settled(dash_duo, panel if slide != "gallery" else "#topk-panel") if slide != "gallery" else time.sleep(2)
        if slide == "gallery":
            cards = dash_duo.driver.find_elements("css selector", "#gallery .card")
            assert cards and cards[0].is_displayed(), "the gallery shows the group's items"
            continue
        state = dash_duo.driver.execute_script(TEXT_BOXES_JS, panel)
        assert (state["w"], state["h"]) == (width, height)
        boxes = state["boxes"]
        cut = [b["text"] for b in boxes if b["x0"] < -0.5 or b["y0"] < -0.5 or b["x1"] > width + 0.5
               or b["y1"] > height + 0.5]
        overlaps = _overlaps(boxes)
        if cut or overlaps or state["toolbars"]:
            problems.append(f"{slide}: cut {cut[:5]}, overlapping {overlaps[:5]}, toolbars {state['toolbars']}")
        # the other panels are not on the slide
        others = [p for s, p in PANEL_OF.items() if s not in (slide, "gallery")]
        assert not any(dash_duo.find_element(p).is_displayed() for p in others), slide
    assert not problems, "\n".join(problems)
