"""The app's experiments tab (the report's Figs. 4–7 and Table IV) as plain functions and over HTTP.

The figures come from the committed ``results/digits/``; the browser test is in
``tests/test_app_browser.py``.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from dash import dcc, html

from dldiag.app import callbacks as cb
from dldiag.app import create_app
from dldiag.app.layout import EXPERIMENT_FIGURES, GRAPH_IDS, build_layout, experiments_panels, tab_styles
from dldiag.app.service import build_meta
from dldiag.app.state import ViewState, apply_event, parse_query, to_query
from dldiag.experiments.figures import FIGURES, RESULTS_ROOT, load_run

STEMS = tuple(FIGURES)


@pytest.fixture(scope="module")
def meta(digits_ws):
    return build_meta(digits_ws, default_projection="pca")


def _walk(node):
    """Every component under ``node`` (children lists, nested components)."""
    if isinstance(node, (list, tuple)):
        for child in node:
            yield from _walk(child)
        return
    if not hasattr(node, "to_plotly_json"):
        return
    yield node
    yield from _walk(getattr(node, "children", None))


def _by_id(root) -> dict:
    return {c.id: c for c in _walk(root) if isinstance(getattr(c, "id", None), str)}


def _text(node) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, (list, tuple)):
        return "".join(_text(c) for c in node)
    return _text(getattr(node, "children", None)) if hasattr(node, "to_plotly_json") else ""


# ------------------------------------------------------------------ layout

def test_the_layout_has_two_tabs_with_the_explorer_shown_first(meta):
    ids = _by_id(build_layout(meta))
    tabs = ids["tabs"]
    assert isinstance(tabs, dcc.Tabs) and tabs.value == "explorer"
    assert [(t.value, t.label) for t in tabs.children] == [
        ("explorer", "Explorer"), ("experiments", "Experiments (report's Figs. 4–7)")]
    assert ids["explorer-view"].style == {"display": "block"}
    assert ids["experiments-view"].style == {"display": "none"}
    for gid in GRAPH_IDS:  # the explorer as before, inside its view
        assert gid in _by_id(ids["explorer-view"])
    # The experiments' figures are not in the page until the tab is opened.
    content = ids["experiments-content"]
    assert not [c for c in _walk(content) if isinstance(c, dcc.Graph)]
    assert "experiments-loaded" in ids and "experiments-error" in ids
    assert "The report's experiments on digits" in _text(ids["experiments-view"])

    opened = _by_id(build_layout(meta, replace(meta.default_state(), tab="experiments")))
    assert opened["tabs"].value == "experiments"
    assert (opened["explorer-view"].style, opened["experiments-view"].style) == tab_styles("experiments")
    assert tab_styles("experiments") == ({"display": "none"}, {"display": "block"})


def test_experiments_panels_are_pure_and_keep_the_figure_height():
    assert experiments_panels({}, None) == []
    only_note = experiments_panels({}, "No experiment results: run `python -m dldiag.experiments`.")
    assert len(only_note) == 1 and "alert-note" in only_note[0].className
    assert any(isinstance(c, html.Code) for c in only_note[0].children)
    panels = experiments_panels({"fig7_time": {"data": [], "layout": {"height": 480}},
                                 "extra": {"data": [], "layout": {}}}, None)
    assert [p.id for p in panels] == ["fig7_time-panel", "extra-panel"]  # known first, then the others
    graph = _by_id(panels[0])["fig7_time-graph"]
    assert graph.style == {"height": "480px"}


# ------------------------------------------------------------------ the callback's body

def test_experiments_outputs_show_every_figure_of_digits(digits_ws):
    weights = digits_ws.model_info["weights_hash"]
    assert load_run(RESULTS_ROOT / "digits")["weights_hash"] == weights  # the committed run is this model's
    children = cb.experiments_outputs("digits", weights)
    assert not [c for c in children if "alert" in (getattr(c, "className", "") or "")]  # no note
    assert "computed" in _text(children[0])  # when and where the results were made
    ids = _by_id(children)
    graphs = [ids[f"{stem}-graph"] for stem in STEMS]
    for stem, graph in zip(STEMS, graphs):
        assert isinstance(graph, dcc.Graph)
        # The same config as every other figure: PNG at 2x from the camera, saved under the figure's name.
        assert graph.config["toImageButtonOptions"] == {"format": "png", "scale": 2, "filename": f"dldiag-{stem}"}
        assert graph.config["displaylogo"] is False
        layout = graph.figure.layout
        assert layout.width is None and layout.autosize  # the container's width
        assert graph.style == {"height": f"{layout.height}px"}
        panel = ids[f"{stem}-panel"]
        buttons = [c.id for c in _walk(panel) if isinstance(c, html.Button)]
        assert buttons == [{"type": "save", "graph": f"{stem}-graph", "fmt": f} for f in ("png", "svg")]
    # Titles below plotly's toolbar row, as in the explorer's figures; the plot area keeps its height.
    from dldiag.experiments.figures import build_figures

    raw = build_figures(RESULTS_ROOT / "digits", fixed_width=False)
    for stem, graph in zip(STEMS, graphs):
        layout, before = graph.figure.layout, raw[stem].layout
        assert layout.title.yref == "container" and layout.title.pad.t >= 30
        assert layout.height - before.height == layout.margin.t - before.margin.t > 0
    captions = [c.children for c in _walk(children) if getattr(c, "className", None) == "panel-caption"]
    assert captions == [caption for _, caption, _ in EXPERIMENT_FIGURES]
    assert graphs[0].figure.layout.title.text.startswith("<b>Fig. 4")
    assert "Table IV" in graphs[-1].figure.layout.title.text and graphs[-1].figure.data[0].type == "table"


def test_results_for_other_weights_are_shown_with_a_note():
    children = cb.experiments_outputs("digits", "0" * 64)
    note = _text(children[0])
    assert "computed for other weights" in note and "python -m dldiag.experiments --dataset digits" in note
    assert len([c for c in _walk(children) if isinstance(c, dcc.Graph)]) == len(STEMS)


def test_a_data_set_without_results_gets_the_command_that_makes_them(tmp_path):
    children = cb.experiments_outputs("fashion-mnist", None, root=tmp_path)
    assert len(children) == 1 and not [c for c in _walk(children) if isinstance(c, dcc.Graph)]
    note = _text(children)
    assert "No experiment results for 'fashion-mnist'" in note
    assert f"python -m dldiag.experiments --dataset fashion-mnist --out {tmp_path / 'fashion-mnist'}" in note
    # Under the working folder, the command names the folder as a relative path.
    relative = _text(cb.experiments_outputs("no-such-set", None))
    assert "--out results/no-such-set" in relative or str(RESULTS_ROOT) in relative


# ------------------------------------------------------------------ URL state

@pytest.mark.parametrize("changes", [{"tab": "experiments"},
                                     {"tab": "experiments", "sampler": "vas", "fraction": 0.2, "present": True},
                                     {"tab": "explorer", "layer": "conv1"}])
def test_the_tab_round_trips_through_the_url(meta, changes):
    state = ViewState(**{**meta.default_state().to_dict(), **changes})
    query = to_query(state)
    assert ("tab=experiments" in query) == (state.tab == "experiments")
    assert "tab=explorer" not in query  # explorer links read as before
    parsed, notes = parse_query(query, meta)
    assert parsed == state and notes == []


def test_a_bad_tab_in_a_link_opens_the_explorer_with_a_note(meta):
    state, notes = parse_query("?tab=charts&k=5", meta)
    assert (state.tab, state.k) == ("explorer", 5)
    assert notes == ["tab must be one of 'explorer', 'experiments'; got 'charts'; using the default"]
    assert apply_event(state, "tab", "nope", meta) == state


def test_switching_tabs_changes_only_the_tab(meta):
    state, _ = cb.sync_state(meta, None, "?sampler=random&k=5", {})
    opened, notes = cb.sync_state(meta, "tabs", "", {}, previous=state.to_dict(), tab="experiments")
    assert opened == replace(state, tab="experiments") and notes == []
    assert cb.derived_stores(opened) == cb.derived_stores(state)  # no explorer callback recomputes
    back, _ = cb.sync_state(meta, "tabs", "", {}, previous=opened.to_dict(), tab="explorer")
    assert back == state
    linked, _ = cb.sync_state(meta, None, to_query(opened), {}, tab="explorer")
    assert linked.tab == "experiments"


def test_the_export_link_opens_the_explorer(meta, digits_ws):
    from dldiag.app.service import Diagnosis

    svc = Diagnosis(digits_ws)
    state = replace(meta.default_state(), tab="experiments", sampler="random")
    out = cb.export_outputs(meta, svc, state.to_dict(), href="http://host/?tab=experiments")
    assert "tab=experiments" not in out["content"] and "sampler=random" in out["content"]


# ------------------------------------------------------------------ wiring, over HTTP

@pytest.fixture(scope="module")
def app(digits_ws):
    return create_app(digits_ws, default_projection="pca")


def _post(client, tab, loaded=None):
    body = {"output": "..experiments-content.children...experiments-loaded.data...experiments-error.children..",
            "outputs": [{"id": "experiments-content", "property": "children"},
                        {"id": "experiments-loaded", "property": "data"},
                        {"id": "experiments-error", "property": "children"}],
            "inputs": [{"id": "tabs", "property": "value", "value": tab}],
            "state": [{"id": "experiments-loaded", "property": "data", "value": loaded}],
            "changedPropIds": ["tabs.value"]}
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def test_the_figures_load_lazily_in_their_own_callback(app):
    client = app.server.test_client()
    deps = client.get("/_dash-dependencies").get_json()
    (exp,) = [d for d in deps if "experiments-content.children" in d["output"]]
    assert [i["id"] for i in exp["inputs"]] == ["tabs"] and exp["prevent_initial_call"]
    # The tabs feed only the reducer (the URL's tab=), the views' visibility and the figures;
    # no explorer callback writes the experiments tab.
    on_tabs = [d["output"] for d in deps if any(i["id"] == "tabs" for i in d["inputs"])]
    assert len(on_tabs) == 3 and exp["output"] in on_tabs
    assert any("url.search" in o for o in on_tabs) and any("experiments-view.style" in o for o in on_tabs)
    assert sum("experiments-content" in d["output"] for d in deps) == 1
    assert _post(client, "explorer").status_code == 204  # nothing to load on the explorer
    assert _post(client, "experiments", loaded=True).status_code == 204  # loaded once per page
    opened = _post(client, "experiments")
    assert opened.status_code == 200
    response = opened.get_json()["response"]
    assert response["experiments-loaded"]["data"] is True and response["experiments-error"]["children"] is None
    text = json.dumps(response["experiments-content"])
    for stem in STEMS:
        assert f'"{stem}-graph"' in text
    assert '"scale": 2' in text
