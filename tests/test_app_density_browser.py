"""The latent view drawn as a density in headless Chromium (``dash_duo``): zoom re-renders the
image, a box still counts every item. The digits workspace (450 items) with the threshold
lowered below it; the Chromium options come from ``tests/conftest.py``."""

from __future__ import annotations

from selenium.webdriver.common.action_chains import ActionChains

from conftest import free_port, wait_for
from dldiag.app import create_app
from dldiag.app import figures as F


def _gd(dash_duo, expression: str):
    """``expression`` of the latent view's plotly element ``gd``, as JSON."""
    return dash_duo.driver.execute_script(
        "const gd = document.querySelector('#latent-graph .js-plotly-plot');"
        f"return gd && gd.layout ? JSON.parse(JSON.stringify({expression})) : null;")



def _image(dash_duo):
    images = _gd(dash_duo, "gd.layout.images || []")
    return images[0] if images else None


def test_a_density_view_zooms_and_selects_every_item(dash_duo, digits_ws, monkeypatch):
    monkeypatch.setattr(F, "DENSITY_THRESHOLD", 100)
    app = create_app(digits_ws, default_projection="pca")
    dash_duo.start_server(app, port=free_port())
    dash_duo.wait_for_contains_text("#table-iv", "max-margin", timeout=40)
    first = wait_for(lambda: _image(dash_duo), 30, "the density image")
    assert first["source"].startswith("data:image/png;base64,") and first["sizing"] == "stretch"
    n_points = _gd(dash_duo, "gd.data[1].customdata.length")
    assert 0 < n_points < digits_ws.n_items and _gd(dash_duo, "gd.data[0].x.length") == 0

    # zoom to the middle of the view, as a zoom box does: the image is rendered for it
    (x0, x1), (y0, y1) = _gd(dash_duo, "gd.layout.xaxis.range"), _gd(dash_duo, "gd.layout.yaxis.range")
    zx = [x0 + (x1 - x0) / 4, x1 - (x1 - x0) / 4]
    zy = [y0 + (y1 - y0) / 4, y1 - (y1 - y0) / 4]
    dash_duo.driver.execute_script(
        "Plotly.relayout(document.querySelector('#latent-graph .js-plotly-plot'), arguments[0]);",
        {"xaxis.range[0]": zx[0], "xaxis.range[1]": zx[1], "yaxis.range[0]": zy[0], "yaxis.range[1]": zy[1]})
    zoomed = wait_for(lambda: (im := _image(dash_duo)) and abs(im["x"] - zx[0]) < 1e-9 * max(1, abs(zx[0])) and im,
                   30, "the image re-rendered for the zoomed axes")
    assert abs(zoomed["sizex"] - (zx[1] - zx[0])) < 1e-6 * (x1 - x0) and zoomed["source"] != first["source"]
    assert _gd(dash_duo, "gd.layout.xaxis.range") == zx  # the axes stay where the user put them
    assert _gd(dash_duo, "gd.data[1].customdata.length") == n_points  # the points stay

    # a box over the zoomed view: its group counts every item inside, not only the sample's points
    dash_duo.driver.execute_script(
        "document.querySelector('#latent-graph .modebar-btn[data-val=\"select\"]').click();")
    drag = dash_duo.find_element("#latent-graph .nsewdrag")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", drag)
    w, h = drag.size["width"], drag.size["height"]
    (ActionChains(dash_duo.driver).move_to_element(drag).move_by_offset(int(-0.45 * w), int(-0.45 * h))
     .click_and_hold().move_by_offset(int(0.45 * w), int(0.45 * h)).move_by_offset(int(0.44 * w), int(0.44 * h))
     .release().perform())
    dash_duo.wait_for_contains_text("#group-label", "selected items", timeout=30)
    n_selected = int(dash_duo.find_element("#group-label").text.split(" selected items")[0].replace(",", ""))
    xy = digits_ws.projection("pca")
    in_view = ((xy[:, 0] >= zx[0]) & (xy[:, 0] <= zx[1]) & (xy[:, 1] >= zy[0]) & (xy[:, 1] <= zy[1])).sum()
    selected_points = len(_gd(dash_duo, "gd.data[1].selectedpoints || []"))
    assert selected_points < n_selected <= in_view
    assert _image(dash_duo)["x"] == zoomed["x"]  # the selection did not redraw the density

    # a reset of the axes: the image for every item's extent again
    dash_duo.driver.execute_script(
        "Plotly.relayout(document.querySelector('#latent-graph .js-plotly-plot'), "
        "{'xaxis.autorange': true, 'yaxis.autorange': true});")
    wait_for(lambda: abs(_image(dash_duo)["sizex"] - first["sizex"]) < 1e-6 * first["sizex"], 30,
          "the image for every item's extent")
    assert not dash_duo.find_element("#latent-error").text
