"""The app in headless Chromium (``dash_duo``): what a person does, end to end.

Runs on the digits workspace with PCA. The Chromium options come from the
``pytest_setup_options`` hook in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import time

import numpy as np

from selenium.webdriver.common.action_chains import ActionChains

from dldiag.app import callbacks as cb
from conftest import free_port, wait_for
from dldiag.app import create_app
from dldiag.app.layout import GRAPH_IDS




def _start(dash_duo, app, path: str = "") -> None:
    dash_duo.start_server(app, port=free_port())
    # Downloads (several per page) into the test's folder, with or without pytest's --headless.
    dash_duo.driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                                    {"behavior": "allow", "downloadPath": dash_duo.download_path})
    if path:
        dash_duo.driver.get(dash_duo.server_url + path)


def _layout(dash_duo, graph_id: str) -> dict:
    """The figure layout plotly.js is showing in a dcc.Graph."""
    return dash_duo.driver.execute_script(
        "const gd = document.querySelector(`#${arguments[0]} .js-plotly-plot`);"
        "return gd && gd.layout ? JSON.parse(JSON.stringify(gd.layout)) : null;", graph_id) or {}


def _title(dash_duo, graph_id: str) -> str:
    title = _layout(dash_duo, graph_id).get("title") or {}
    return title.get("text", "") if isinstance(title, dict) else str(title)


def _wait_for_title(dash_duo, graph_id, text, timeout=30):
    return wait_for(lambda: text in _title(dash_duo, graph_id), timeout, f"{text!r} in the title of {graph_id}")


def _plot_point(dash_duo, graph_id: str, x: float, y: float, xaxis="xaxis", yaxis="yaxis"):
    """Offset (dx, dy) of data point (x, y) from the centre of the graph's drag area."""
    return dash_duo.driver.execute_script("""
        const gd = document.querySelector(`#${arguments[0]} .js-plotly-plot`);
        const fl = gd._fullLayout, xa = fl[arguments[3]], ya = fl[arguments[4]];
        const drag = gd.querySelector('.nsewdrag').getBoundingClientRect();
        const px = xa._offset + xa.l2p(arguments[1]), py = ya._offset + ya.l2p(arguments[2]);
        const box = gd.getBoundingClientRect();
        return [box.left + px - (drag.left + drag.width / 2), box.top + py - (drag.top + drag.height / 2)];
    """, graph_id, x, y, xaxis, yaxis)


def _drag_area(dash_duo, graph_id: str):
    el = dash_duo.find_element(f"#{graph_id} .nsewdrag")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
    return el


def _click(dash_duo, selector: str) -> None:
    """Click an element after scrolling it to the middle of the window (clear of the sticky bar)."""
    el = dash_duo.find_element(selector)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
    el.click()


def _downloaded(dash_duo, suffix: str, timeout=30) -> str:
    folder = dash_duo.download_path

    def find():
        names = [n for n in os.listdir(folder) if n.endswith(suffix)]
        return os.path.join(folder, names[0]) if names else None

    return wait_for(find, timeout, f"a downloaded *{suffix} in {folder}")


def test_explore_select_click_and_export(dash_duo, digits_ws):
    app = create_app(digits_ws, default_projection="pca")
    _start(dash_duo, app)

    # The default view: every panel filled, the summary beside random, the URL carrying the state.
    dash_duo.wait_for_contains_text("#table-iv", "max-margin", timeout=40)
    for gid in GRAPH_IDS:
        wait_for(lambda gid=gid: _title(dash_duo, gid).startswith(("(", "Latent")), 30, f"{gid} drawn")
    assert "sampler=max-margin" in dash_duo.driver.current_url
    first_summary = _title(dash_duo, "summary-graph")

    # Change the sampler: the summary and the Table IV row follow.
    dash_duo.select_dcc_dropdown("#sampler", value="Stratified (confusion cells)")
    dash_duo.wait_for_contains_text("#table-iv", "stratified-cm", timeout=30)
    _wait_for_title(dash_duo, "summary-graph", "stratified-cm")
    assert _title(dash_duo, "summary-graph") != first_summary
    assert "sampler=stratified-cm" in dash_duo.driver.current_url
    wait_for(lambda: "stratified-cm" in _title(dash_duo, "latent-graph"), 20, "the latent view patched")

    # Hover an item: a tooltip with its thumbnail, labels and likelihood ratio.
    xy = digits_ws.projection("pca")
    drag = _drag_area(dash_duo, "latent-graph")
    dx, dy = _plot_point(dash_duo, "latent-graph", float(xy[0, 0]), float(xy[0, 1]))
    ActionChains(dash_duo.driver).move_to_element(drag).move_by_offset(int(dx), int(dy)).perform()
    tip = wait_for(lambda: dash_duo.find_element("#latent-tooltip img.tip-img"), 20, "the hover tooltip")
    assert tip.get_attribute("src").startswith("data:image/png;base64,")
    assert "log likelihood ratio" in dash_duo.find_element("#latent-tooltip").text

    # Lasso a region of the latent view: the selection becomes the group of the panels.
    before = _layout(dash_duo, "topk-graph")
    drag = _drag_area(dash_duo, "latent-graph")
    w, h = drag.size["width"], drag.size["height"]
    (ActionChains(dash_duo.driver).move_to_element(drag).move_by_offset(int(-0.4 * w), int(-0.4 * h))
     .click_and_hold().move_by_offset(int(0.5 * w), 0).move_by_offset(0, int(0.8 * h))
     .move_by_offset(int(-0.5 * w), 0).move_by_offset(0, int(-0.79 * h)).release().perform())
    dash_duo.wait_for_contains_text("#group-label", "selected items", timeout=30)
    wait_for(lambda: _layout(dash_duo, "topk-graph") != before, 20, "the panels to change")
    label = dash_duo.find_element("#group-label").text
    n_selected = int(label.split(" selected items")[0].replace(",", ""))
    assert 0 < n_selected < digits_ws.n_items
    assert f"{n_selected:,} items in the data" in label

    # Click a neuron bar: the latent view is coloured by that unit on the sampled items.
    bar = dash_duo.find_element("#topk-graph g.trace.bars g.point path")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", bar)
    ActionChains(dash_duo.driver).move_to_element(bar).click().perform()
    _wait_for_title(dash_duo, "latent-graph", "colour: unit")
    assert "color=neuron" in dash_duo.driver.current_url

    # Click a confusion cell: "class a predicted as b" becomes the group.
    _click(dash_duo, "#clear-group")
    dash_duo.wait_for_contains_text("#group-label", "all items", timeout=20)
    drag = _drag_area(dash_duo, "confusion-graph")
    dx, dy = _plot_point(dash_duo, "confusion-graph", 3, 3)
    ActionChains(dash_duo.driver).move_to_element(drag).move_by_offset(int(dx), int(dy)).click().perform()
    dash_duo.wait_for_contains_text("#group-label", "class 3, predicted as 3, correct", timeout=20)
    assert "cls=3" in dash_duo.driver.current_url and "predicted=3" in dash_duo.driver.current_url

    # Every figure's toolbar saves SVG (beside plotly's PNG camera); the panel bar's buttons too.
    for gid in GRAPH_IDS:
        dash_duo.find_element(f'#{gid} .modebar-btn[data-title="Download plot as SVG"]')
    dash_duo.driver.execute_script(
        "document.querySelector('#topk-graph .modebar-btn[data-title=\"Download plot as SVG\"]').click();")
    svg = _downloaded(dash_duo, ".svg")
    assert os.path.basename(svg) == "dldiag-topk.svg" and "<svg" in open(svg, encoding="utf-8").read(300)
    camera = '#confusion-graph .modebar-btn[data-title="Download plot as PNG"]'
    dash_duo.driver.execute_script(f"document.querySelector('{camera}').click();")
    png = _downloaded(dash_duo, ".png")
    head = open(png, "rb").read(24)
    assert os.path.basename(png) == "dldiag-confusion.png" and head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert (width, height) == (2000, 2000)  # the confusion matrix's export size, square, at scale 2

    # Export the whole view as a self-contained HTML report.
    dash_duo.find_element("#export-btn").click()
    report = _downloaded(dash_duo, ".html")
    text = open(report, encoding="utf-8").read()
    assert text.count("Plotly.newPlot") == 6 and "stratified-cm" in text and "class 3, predicted as 3" in text

    assert dash_duo.get_logs() == [], "browser console errors"


def test_a_shared_link_restores_the_view_and_presentation_mode(dash_duo, digits_ws):
    app = create_app(digits_ws, default_projection="pca")
    _start(dash_duo, app,
           "/?sampler=random&fraction=0.1&seed=3&layer=conv1&cls=3&outcome=correct&k=5&units=channel"
           "&projection=pca&j=7")
    dash_duo.wait_for_contains_text("#group-label", "class 3, correct", timeout=40)
    _wait_for_title(dash_duo, "topk-graph", "Top-5 neurons of conv1")
    dash_duo.wait_for_contains_text("#table-iv", "random", timeout=20)
    assert dash_duo.find_element("#fraction-value").text == "10 %"
    assert dash_duo.find_element("#seed").get_attribute("value") == "3"
    assert "j must be in [0.0, 1.0]; got 7.0" in dash_duo.find_element("#notes").text  # named; the rest restored
    sample_n = dash_duo.find_element("#table-iv").text
    assert str(round(0.1 * digits_ws.n_items)) in sample_n
    url = dash_duo.driver.current_url
    assert "layer=conv1" in url and "units=channel" in url and "j=0.7" in url

    dash_duo.find_element("#present-btn").click()
    wait_for(lambda: "present" in dash_duo.find_element("#root").get_attribute("class"), 10, "presentation mode")
    wait_for(lambda: not dash_duo.find_element("#controls").is_displayed(), 10, "the controls hidden")
    wait_for(lambda: _layout(dash_duo, "topk-graph").get("font", {}).get("size", 0) >= 17, 20, "large type")
    assert "present=1" in dash_duo.driver.current_url
    dash_duo.find_element("#present-btn").click()
    wait_for(lambda: dash_duo.find_element("#controls").is_displayed(), 10, "the controls back")


def test_a_failing_callback_shows_an_inline_message(dash_duo, digits_ws, monkeypatch):
    real = cb.views.panel_figures

    def failing(svc, state, selection=None, **kwargs):
        if state.layer == "conv2":
            raise RuntimeError("simulated failure in conv2")
        return real(svc, state, selection, **kwargs)

    monkeypatch.setattr(cb.views, "panel_figures", failing)
    app = create_app(digits_ws, default_projection="pca")
    _start(dash_duo, app)
    _wait_for_title(dash_duo, "topk-graph", "(a) Top-10")
    dash_duo.select_dcc_dropdown("#layer", value="conv2")
    dash_duo.wait_for_contains_text("#panels-error", "simulated failure in conv2", timeout=30)
    assert "Updating the panels failed" in dash_duo.find_element("#panels-error").text
    # The server keeps serving: the next change works and clears the message.
    dash_duo.select_dcc_dropdown("#layer", value="conv1")
    _wait_for_title(dash_duo, "topk-graph", "of conv1")
    wait_for(lambda: dash_duo.find_element("#panels-error").text == "", 20, "the message cleared")
    dash_duo.wait_for_contains_text("#table-iv", "max-margin", timeout=10)


def _drawn_width(dash_duo, graph_id: str) -> float:
    """The width plotly.js drew a figure at (its container's, for an autosized one)."""
    return dash_duo.driver.execute_script(
        "const gd = document.querySelector(`#${arguments[0]} .js-plotly-plot`);"
        "return gd && gd._fullLayout ? gd._fullLayout.width : 0;", graph_id)


def test_the_experiments_tab_shows_the_reports_figures(dash_duo, digits_ws):
    app = create_app(digits_ws, default_projection="pca")
    _start(dash_duo, app)
    wait_for(lambda: _title(dash_duo, "latent-graph").startswith("Latent"), 40, "the explorer drawn")
    assert not dash_duo.find_elements("#fig4_fraction-graph")  # loaded only when the tab opens

    dash_duo.find_element("#tab-experiments").click()
    _wait_for_title(dash_duo, "fig4_fraction-graph", "Fig. 4", timeout=30)
    wait_for(lambda: "tab=experiments" in dash_duo.driver.current_url, 10, "tab=experiments in the URL")
    assert not dash_duo.find_element("#controls").is_displayed()  # the explorer is hidden, not removed
    for stem in ("fig5_topk", "fig6_j", "fig7_time", "table4"):
        wait_for(lambda stem=stem: _layout(dash_duo, f"{stem}-graph"), 20, f"{stem} drawn")
    dash_duo.find_element('#fig4_fraction-graph .modebar-btn[data-title="Download plot as SVG"]')
    box = dash_duo.find_element("#fig4_fraction-graph").size["width"]
    assert 0.9 * box <= _drawn_width(dash_duo, "fig4_fraction-graph") <= box + 1  # the page's width
    assert not os.listdir(dash_duo.download_path)  # the new PNG/SVG buttons saved nothing by themselves

    # The link opens the tab; back on the explorer, its figures are as they were.
    dash_duo.driver.get(dash_duo.driver.current_url)
    _wait_for_title(dash_duo, "fig4_fraction-graph", "Fig. 4", timeout=40)
    dash_duo.find_element("#tab-explorer").click()
    wait_for(lambda: dash_duo.find_element("#controls").is_displayed(), 10, "the explorer shown")
    wait_for(lambda: "tab=" not in dash_duo.driver.current_url, 10, "the tab gone from the URL")
    wait_for(lambda: _title(dash_duo, "latent-graph").startswith("Latent"), 30, "the latent view drawn")
    wait_for(lambda: _drawn_width(dash_duo, "latent-graph") >= 0.9 * dash_duo.find_element("#latent-graph").size["width"],
          10, "the latent view at its panel's width")  # drawn while hidden, resized when shown
    assert dash_duo.get_logs() == [], "browser console errors"


def test_your_own_model_and_data_in_the_browser(dash_duo, tmp_path):
    """An MLP dldiag has never seen, given as the command line gives it (FILE.py:FACTORY + a
    state_dict, npz: feature vectors): the page opens, the tooltip describes an item by its most
    unusual features, and the group controls work."""
    from pathlib import Path

    import numpy as np
    import torch
    from sklearn.datasets import load_breast_cancer

    from dldiag.app import Warmup

    data = load_breast_cancer()
    x = ((data.data - data.data.mean(0)) / data.data.std(0)).astype(np.float32)
    npz = tmp_path / "cancer.npz"
    np.savez(npz, x_test=x, y_test=data.target, class_names=data.target_names, feature_names=data.feature_names)
    models = Path(__file__).resolve().parents[1] / "examples" / "models.py"
    import importlib.util

    spec = importlib.util.spec_from_file_location("_browser_models", models)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        mlp = module.breast_cancer_mlp()
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(mlp(torch.from_numpy(x)), torch.from_numpy(data.target)).backward()
        opt.step()
    weights = tmp_path / "mlp.pt"
    torch.save(mlp.state_dict(), weights)

    samplers = ["random", "max-margin"]
    warmup = Warmup(f"npz:{npz}", model=f"{models}:breast_cancer_mlp", weights=str(weights), cache_dir=tmp_path,
                    projections=["pca"], samplers=samplers, show_progress=False)
    app = create_app(warmup=warmup, default_projection="pca", samplers=samplers)
    _start(dash_duo, app)
    dash_duo.wait_for_contains_text("#table-iv", "max-margin", timeout=90)
    for gid in GRAPH_IDS:
        wait_for(lambda gid=gid: _title(dash_duo, gid).startswith(("(", "Latent")), 30, f"{gid} drawn")
    assert "fc3:input" in _title(dash_duo, "latent-graph") and "569 items" in _title(dash_duo, "latent-graph")

    ws = warmup.workspace
    xy = ws.projection("pca")
    # the item nearest the middle of the view (clear of the legend at the edge)
    mid = int(np.argmin(((xy - np.median(xy, axis=0)) ** 2).sum(axis=1)))
    drag = _drag_area(dash_duo, "latent-graph")
    dx, dy = _plot_point(dash_duo, "latent-graph", float(xy[mid, 0]), float(xy[mid, 1]))
    ActionChains(dash_duo.driver).move_to_element(drag).move_by_offset(int(dx), int(dy)).perform()
    wait_for(lambda: "most unusual features" in dash_duo.find_element("#latent-tooltip").text, 20, "the feature table")
    tip = dash_duo.find_element("#latent-tooltip").text
    assert "σ" in tip and any(name in tip for name in data.feature_names)
    assert not dash_duo.driver.find_elements("css selector", "#latent-tooltip img")

    dash_duo.find_element("#outcome input[value='incorrect']").find_element("xpath", "./ancestor::label").click()
    dash_duo.wait_for_contains_text("#group-label", "incorrect", timeout=30)
    assert "relu" in _title(dash_duo, "topk-graph") or "fc" in _title(dash_duo, "topk-graph")


def test_a_group_set_by_its_controls_shows_its_items_in_the_gallery(dash_duo, digits_ws):
    import numpy as np

    app = create_app(digits_ws, default_projection="pca")
    _start(dash_duo, app)
    dash_duo.wait_for_contains_text("#table-iv", "max-margin", timeout=40)
    # the most frequent mistake of digits: set its class, predicted class and outcome by hand
    yt, yp = digits_ws.y_true, digits_ws.y_pred
    wrong = yt != yp
    cells = np.bincount(yt[wrong] * 10 + yp[wrong], minlength=100)
    true, pred = divmod(int(np.argmax(cells)), 10)
    dash_duo.select_dcc_dropdown("#cls", value=f"{true}: {true}")
    dash_duo.select_dcc_dropdown("#predicted", value=f"{pred}: {pred}")
    _click(dash_duo, f"#outcome input[value='incorrect']")
    label = f"class {true}, predicted as {pred}, incorrect"
    dash_duo.wait_for_contains_text("#group-label", label, timeout=30)
    n = int(cells[true * 10 + pred])
    dash_duo.wait_for_contains_text("#gallery-info", f"{n:,} items in the group", timeout=30)
    cards = dash_duo.driver.find_elements("css selector", "#gallery .card")
    assert len(cards) == min(n, 24)
    assert all(f"true {true}" in c.text and f"predicted {pred}" in c.text for c in cards)
    assert all(c.find_element("css selector", "img.card-img").get_attribute("src").startswith("data:image/png")
               for c in cards)
    url = dash_duo.driver.current_url
    assert f"cls={true}" in url and f"predicted={pred}" in url and "outcome=incorrect" in url


def test_a_box_survives_a_reload_from_its_link(dash_duo, digits_ws):
    app = create_app(digits_ws, default_projection="pca")
    _start(dash_duo, app)
    dash_duo.wait_for_contains_text("#table-iv", "max-margin", timeout=40)
    _wait_for_title(dash_duo, "topk-graph", "(a) Top-10")
    # the toolbar's box select, then a drag over the middle of the view
    dash_duo.driver.execute_script(
        "document.querySelector('#latent-graph .modebar-btn[data-val=\"select\"]').click();")
    drag = _drag_area(dash_duo, "latent-graph")
    w, h = drag.size["width"], drag.size["height"]
    (ActionChains(dash_duo.driver).move_to_element(drag).move_by_offset(int(-0.3 * w), int(-0.3 * h))
     .click_and_hold().move_by_offset(int(0.3 * w), int(0.3 * h)).move_by_offset(int(0.25 * w), int(0.25 * h))
     .release().perform())
    dash_duo.wait_for_contains_text("#group-label", "selected items", timeout=30)
    wait_for(lambda: "sel=box:pca:" in dash_duo.driver.current_url, 20, "the box in the link")
    url = dash_duo.driver.current_url
    label = dash_duo.find_element("#group-label").text
    info = dash_duo.find_element("#selection-info").text
    assert info.split(" items")[0] == label.split(" selected items")[0]  # the same count under the view
    # the panels' title: the first line (the selection's exact answer may arrive in between)
    topk = _title(dash_duo, "topk-graph").split("<br>")[0]
    shape = _layout(dash_duo, "latent-graph").get("selections")

    dash_duo.driver.get(url)  # reload from the link alone
    dash_duo.wait_for_contains_text("#group-label", label.split(" —")[0], timeout=40)
    assert dash_duo.find_element("#group-label").text == label
    wait_for(lambda: _title(dash_duo, "topk-graph").split("<br>")[0] == topk, 20, "the same panels")
    wait_for(lambda: _layout(dash_duo, "latent-graph").get("selections"), 20, "the box drawn again")
    again = _layout(dash_duo, "latent-graph")["selections"][0]
    for key in ("x0", "x1", "y0", "y1"):
        assert abs(float(again[key]) - float(shape[0][key])) <= 1e-4 * max(1.0, abs(float(shape[0][key])))


def _table_row(dash_duo, name: str) -> str:
    """The text of the Table IV row of ``name`` (the sampler's, or "random")."""
    rows = dash_duo.find_elements("#table-iv tbody tr")
    return next((r.text for r in rows if r.text.split(" ")[0] == name), "")


def test_the_estimate_toggle_changes_the_summary_and_the_link(dash_duo, digits_ws):
    app = create_app(digits_ws, default_projection="pca")
    _start(dash_duo, app)
    dash_duo.wait_for_contains_text("#table-iv", "max-margin", timeout=40)
    _wait_for_title(dash_duo, "topk-graph", "(a) Top-10")
    plain_row, random_row = _table_row(dash_duo, "max-margin"), _table_row(dash_duo, "random")
    assert plain_row and "estimator=" not in dash_duo.driver.current_url
    assert "design-weighted" not in _title(dash_duo, "summary-graph")
    assert "plain is the default" in dash_duo.find_element("#estimator-field").text

    _click(dash_duo, "#estimator input[value='weighted']")
    _wait_for_title(dash_duo, "summary-graph", "design-weighted sample")
    wait_for(lambda: _table_row(dash_duo, "max-margin") not in ("", plain_row), 20, "the sample's scores changed")
    assert _table_row(dash_duo, "random") == random_row  # the baseline stays plain
    _wait_for_title(dash_duo, "topk-graph", "design-weighted sample")
    assert "estimator=weighted" in dash_duo.driver.current_url

    # and back: the plain numbers again, and a link of the default view
    _click(dash_duo, "#estimator input[value='plain']")
    wait_for(lambda: _table_row(dash_duo, "max-margin") == plain_row, 20, "the plain scores back")
    wait_for(lambda: "estimator=" not in dash_duo.driver.current_url, 10, "the estimator gone from the link")


def _error_bars(dash_duo, graph_id: str) -> list:
    """(trace name, bars, error bars) of each trace plotly.js draws with error bars in a dcc.Graph.

    The bars are horizontal, so their error bars are plotly's ``error_x``.
    """
    return dash_duo.driver.execute_script("""
        const gd = document.querySelector(`#${arguments[0]} .js-plotly-plot`);
        return (gd && gd.data || []).filter(t => t.error_x && t.error_x.visible)
          .map(t => [t.name, t.x.length, t.error_x.array.length]);
    """, graph_id) or []


def test_the_panels_show_the_estimate_from_the_sample_alone_after_a_group_change(dash_duo, digits_ws):
    app = create_app(digits_ws, default_projection="pca")
    _start(dash_duo, app, "/?sampler=stratified-cm&fraction=0.2&layer=conv1")
    _wait_for_title(dash_duo, "topk-graph", "(a) Top-10 neurons of conv1")
    dash_duo.select_dcc_dropdown("#cls", value="3: 3")
    dash_duo.wait_for_contains_text("#group-label", "class 3", timeout=30)
    line = "estimated from the sample alone: "
    for gid, words in (("topk-graph", "precision ≈"), ("heatmap-graph", "cosine distance ≈"),
                       ("argmax-graph", "JS distance ≈")):
        wait_for(lambda gid=gid: "group: class 3" in _title(dash_duo, gid), 30, f"{gid} redrawn for class 3")
        assert line + words in _title(dash_duo, gid), _title(dash_duo, gid)
    topk = _error_bars(dash_duo, "topk-graph")
    assert topk and all(name.startswith("sample") and bars == errors > 0 for name, bars, errors in topk)
    argmax = _error_bars(dash_duo, "argmax-graph")
    assert len(argmax) == 1 and argmax[0][0].startswith("sample") and argmax[0][1] == argmax[0][2] > 0
    # the error bars are drawn, not only carried in the data
    assert dash_duo.driver.find_elements("css selector", "#topk-graph g.errorbar path")
    assert not _error_bars(dash_duo, "heatmap-graph")


def test_a_selection_s_exact_answer_runs_in_the_background_with_progress_and_cancel(dash_duo, digits_ws,
                                                                                   monkeypatch, tmp_path):
    """The sample's answer at once; the exact one in a Dash background job (a forked process)."""
    from dldiag.app.service import Diagnosis

    proj = digits_ws.projection("pca")
    lo, hi = np.percentile(proj, [10, 80], axis=0)
    box = f"box:pca:{lo[0]:.4f},{hi[0]:.4f},{lo[1]:.4f},{hi[1]:.4f}"
    real = Diagnosis.exact_pass
    gate = tmp_path / "go"

    def slow_exact_pass(self, items, *, on_progress=None, pool=None):
        # The job's process inherits this: it reports progress, then waits for the test's word.
        for done in range(0, len(items), 10):
            on_progress(done, len(items))
            time.sleep(0.05)
        while not gate.exists():
            time.sleep(0.1)
        return real(self, items, on_progress=on_progress, pool=pool)

    monkeypatch.setattr(Diagnosis, "exact_pass", slow_exact_pass)
    app = create_app(digits_ws, default_projection="pca", jobs_dir=tmp_path / "jobs")
    _start(dash_duo, app, f"/?sampler=random&fraction=0.2&seed=1&projection=pca&layer=fc1&sel={box}")
    dash_duo.wait_for_contains_text("#group-label", "selected items", timeout=40)
    wait_for(lambda: "computing in the background" in _title(dash_duo, "topk-graph"), 30, "the sample's answer first")
    # a job is a forked process: on two busy cores (the whole suite) it takes a while to report
    wait_for(lambda: dash_duo.find_element("#exact-row").is_displayed(), 60, "the job's progress row")
    wait_for(lambda: " of " in dash_duo.find_element("#exact-label").text, 90, "progress in the page")
    dash_duo.find_element("#exact-cancel").click()
    wait_for(lambda: not dash_duo.find_element("#exact-row").is_displayed(), 60, "the row hidden after Cancel")
    assert "computing in the background" in _title(dash_duo, "topk-graph")  # no answer appeared
    assert dash_duo.find_element("#exact-start").is_displayed()
    gate.touch()
    dash_duo.find_element("#exact-start").click()  # start it again: this time it finishes
    wait_for(lambda: "S1 precision" in _title(dash_duo, "topk-graph")
          and "computing" not in _title(dash_duo, "topk-graph"), 60, "the exact answer in the panels")
    wait_for(lambda: not dash_duo.find_element("#exact-start").is_displayed(), 20, "the start button hidden")
    assert not dash_duo.get_logs() or all(e["level"] != "SEVERE" for e in dash_duo.get_logs())


def test_a_unit_colours_the_sample_at_once_and_every_item_after_a_background_pass(dash_duo, digits_ws,
                                                                                 monkeypatch, tmp_path):
    """Colour by a unit: the sample's values from its store first, every item's from a job."""
    from dldiag.app.service import Diagnosis
    from dldiag.cache import ArrayCache

    real = Diagnosis.unit_pass
    gate = tmp_path / "go"

    def slow_unit_pass(self, layer, unit_mode, unit, *, on_progress=None, pool=None):
        for done in range(0, 200, 20):  # the job's process inherits this: progress, then the test's word
            on_progress(done, self.ws.n_items)
            time.sleep(0.05)
        while not gate.exists():
            time.sleep(0.1)
        return real(self, layer, unit_mode, unit, on_progress=on_progress, pool=pool)

    monkeypatch.setattr(Diagnosis, "unit_pass", slow_unit_pass)
    app = create_app(digits_ws, default_projection="pca", jobs_dir=tmp_path / "jobs",
                     sample_cache_dir=tmp_path / "samples")  # no unit's values cached by other tests
    _start(dash_duo, app, "/?sampler=random&fraction=0.2&seed=1&projection=pca&layer=fc1&color=neuron&neuron=5")
    _wait_for_title(dash_duo, "latent-graph", "on the sample's items", timeout=40)
    wait_for(lambda: dash_duo.find_element("#unit-row").is_displayed(), 60, "the job's progress row")
    wait_for(lambda: " of " in dash_duo.find_element("#unit-label").text, 90, "progress in the page")
    gate.touch()
    _wait_for_title(dash_duo, "latent-graph", f"on all {digits_ws.n_items:,} items", timeout=90)
    wait_for(lambda: not dash_duo.find_element("#unit-row").is_displayed(), 30, "the row hidden when done")
    assert not dash_duo.find_element("#unit-start").is_displayed()
    cached = Diagnosis(digits_ws, sample_cache=ArrayCache(tmp_path / "samples")).unit_values_all("fc1", "flat", 5)
    drawn = dash_duo.driver.execute_script(  # a typed-array spec as sent, or the array plotly made of it
        "const c = document.querySelector('#latent-graph .js-plotly-plot').data[0].marker.color;"
        "return c.bdata ? [c.dtype, c.bdata] : Array.from(c);")
    if len(drawn) == 2 and isinstance(drawn[1], str):
        import base64

        drawn = np.frombuffer(base64.b64decode(drawn[1]), dtype={"f4": np.float32}[drawn[0]])
    np.testing.assert_allclose(drawn, cached, rtol=1e-6)  # every item drawn on the unit's scale
    assert not dash_duo.get_logs() or all(e["level"] != "SEVERE" for e in dash_duo.get_logs())


def test_the_app_command_serves_a_chunk_store_workload(dash_duo, tmp_path):
    """``python app.py --dataset chunks:DIR`` on a quick wide workload, driven in the browser."""
    import subprocess
    import sys

    from dldiag.workloads import make_workload

    store = tmp_path / "wide"
    make_workload("wide", 3000, store, base="test", chunk_items=1024, show_progress=False, log=lambda *a: None)
    port = free_port()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # The server's log goes to a file: a pipe nobody reads until the end fills up (64 KiB of
    # progress and log lines) and then blocks every process that writes to it, the jobs included.
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, os.path.join(root, "app.py"), "--dataset", f"chunks:{store}",
                                   "--cache-dir", str(tmp_path / "cache"), "--port", str(port), "--projection", "pca"],
                                  cwd=root, stdout=subprocess.DEVNULL, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for(lambda: _page_up(url), 120, "the server")
        dash_duo.driver.get(url)  # the warm-up page, then the app when the workspace is built
        dash_duo.wait_for_contains_text("#group-label", "3,000 items in the data", timeout=180)
        wait_for(lambda: "Top-10" in _title(dash_duo, "topk-graph"), 60, "the panels")
        saved = wait_for(lambda: dash_duo.find_element("#sample-savings").text, 60, "what the sample saved")
        assert "of 3,000 items" in saved and "(measured)" in saved
        assert "chunks:" in dash_duo.find_element(".brand-sub").text
        proj = dash_duo.driver.execute_script(
            "const gd = document.querySelector('#latent-graph .js-plotly-plot'); return gd.layout.xaxis.range;")
        mid = (proj[0] + proj[1]) / 2
        dash_duo.driver.get(url + f"?projection=pca&sel=box:pca:{proj[0]},{mid},-1000,1000")
        dash_duo.wait_for_contains_text("#group-label", "selected items", timeout=60)
        wait_for(lambda: "S1 precision" in _title(dash_duo, "topk-graph")
              and "computing" not in _title(dash_duo, "topk-graph"), 90, "the selection's exact answer")
    finally:
        server.terminate()
        server.wait(timeout=30)
    err = log_path.read_text()
    assert "Traceback" not in err, err[-2000:]


def _page_up(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
