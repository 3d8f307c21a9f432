"""The app's words (dldiag.app.glossary): coverage of issue 10's terms, text limits, builders."""

from __future__ import annotations

import doctest
import json
import re

import pytest
from dash import html

from dldiag.app import glossary as G
from dldiag.app.layout import PANELS, SAMPLER_LABELS
from dldiag.app.state import FRACTION_RANGE, K_RANGE
from dldiag.metrics import MISSING_SCORES
from dldiag.sampling import SAMPLER_NAMES, SAMPLERS, Sampler

#: Every term issue 10 asks the glossary to explain ("What was seen" 1 and "What to build": S1–S3,
#: group, outcome, j, likelihood ratio, each sampler), plus the other words the app shows, each
#: with the glossary key that explains it and a word its display name must hold (so that a reader
#: who searches the glossary for the word on screen finds it).
ISSUE_TERMS = [
    # as the summary panel and the issue write them
    ("S1 precision", "s1", "S1"),
    ("S1 precision", "s1", "precision"),
    ("top-k precision", "s1", "top-k"),
    ("S2 cosine distance", "s2", "S2"),
    ("S2 cosine distance", "s2", "cosine distance"),
    ("mean activations (S2)", "s2", "mean activation"),
    ("S3 JS distance", "s3", "S3"),
    ("S3 Jensen–Shannon distance", "s3", "Jensen–Shannon distance"),
    ("arg-max distribution (S3)", "s3", "arg-max"),
    ("group", "group", "group"),
    ("outcome", "outcome", "outcome"),
    ("correct / incorrect", "outcome", "correct / incorrect"),
    ("j", "j", "j"),
    ("j — share from the boundary end", "j", "share from the boundary end"),
    ("likelihood ratio", "likelihood-ratio", "likelihood ratio"),
    ("log likelihood ratio (the latent view's hover)", "log-likelihood-ratio", "log likelihood ratio"),
    ("100 groups", "n-groups", "groups"),
    ("Table IV row", "table-iv-row", "Table IV row"),
    ("accuracy (sample …)", "sample-accuracy", "sample accuracy"),
    ("model accuracy", "model-accuracy", "model accuracy"),
    # the other words the app shows
    ("unit", "unit", "unit"),
    ("neuron", "unit", "neuron"),
    ("layer", "layer", "layer"),
    ("latent space", "latent-space", "latent space"),
    ("projection", "projection", "projection"),
    ("UMAP", "umap", "UMAP"),
    ("t-SNE", "tsne", "t-SNE"),
    ("PCA", "pca", "PCA"),
    ("fraction", "fraction", "fraction"),
    ("seed", "seed", "seed"),
    ("top-k", "top-k", "top-k"),
    ("mean activation", "mean-activation", "mean activation"),
    ("arg-max unit", "arg-max-unit", "arg-max"),
    ("most active unit", "arg-max-unit", "most active"),
    ("unit mode", "unit-mode", "unit mode"),
    ("channels", "unit-mode", "channels"),
    ("confusion matrix", "confusion-matrix", "confusion matrix"),
    ("a predicted as b", "predicted-as", "predicted as"),
    ("random baseline", "random-baseline", "random baseline"),
    ("sample", "sample", "sample"),
    ("full data", "full-data", "full data"),
    ("sampler", "sampler", "sampler"),
    ("query set", "query-set", "query set"),
    ("query-set accuracy", "query-set-accuracy", "query-set accuracy"),
    ("a group absent from the sample", "absent-group", "absent from the sample"),
    ("decision boundary", "decision-boundary", "decision boundary"),
    ("exemplar", "exemplar", "exemplar"),
    ("true label", "class", "true label"),
    ("predicted label", "predicted-label", "predicted label"),
    ("confidence (the gallery)", "confidence", "confidence"),
    ("logits", "logits", "logits"),
    ("selection (box / lasso)", "selection", "selection"),
    ("item", "item", "item"),
]
#: The eleven samplers of the dropdown, written out (and checked against the registry below).
SAMPLERS_LISTED = ("random", "stratified-cm", "vas", "eb-tree", "latent-grid", "gmm-full", "gmm-spherical",
                   "max-margin", "gmm-full-weighted", "gmm-spherical-weighted", "max-margin-weighted")
PANELS_LISTED = ("latent", "topk", "heatmap", "argmax", "summary", "confusion", "gallery")


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def walk(component):
    """Every component of a dash tree, depth first."""
    yield component
    children = getattr(component, "children", None)
    if children is None or isinstance(children, str):
        return
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if not isinstance(child, (str, int, float)):
            yield from walk(child)


def text_of(component) -> str:
    """The visible text of a dash tree."""
    children = getattr(component, "children", None)
    if children is None:
        return ""
    if isinstance(children, (str, int, float)):
        return str(children)
    items = children if isinstance(children, (list, tuple)) else [children]
    return "".join(str(c) if isinstance(c, (str, int, float)) else text_of(c) for c in items)


def rendered(component) -> dict:
    """The component as the JSON dash sends (fails if it is not serialisable)."""
    return json.loads(json.dumps(component.to_plotly_json(), default=lambda o: o.to_plotly_json()))


# ------------------------------------------------------------------ coverage

@pytest.mark.parametrize("shown, key, word", ISSUE_TERMS, ids=[f"{k}:{w}" for _, k, w in ISSUE_TERMS])
def test_the_glossary_covers_every_term_the_issue_lists(shown, key, word):
    assert key in G.GLOSSARY, f"{shown!r} has no glossary entry {key!r}"
    assert word.lower() in G.GLOSSARY[key].term.lower(), f"{key}: {G.GLOSSARY[key].term!r} lacks {word!r}"


def test_every_sampler_has_an_entry_named_as_the_app_names_it():
    assert set(SAMPLERS_LISTED) == set(SAMPLER_NAMES) == set(SAMPLER_LABELS)
    for name in SAMPLER_NAMES:
        e = G.GLOSSARY[name]
        assert e.term == name
        assert len(sentences(e.short)) == 1


def test_every_panel_has_help_and_the_layout_panels_are_among_them():
    assert set(PANELS_LISTED) == set(G.PANEL_HELP) == set(G.PANEL_KEYS)
    assert {name for name, _ in PANELS} <= set(G.PANEL_HELP)


# ------------------------------------------------------------------ the texts

@pytest.mark.parametrize("key", list(G.GLOSSARY))
def test_entry_texts_fit_their_use(key):
    e = G.GLOSSARY[key]
    assert e.key == key and e.term.strip() == e.term and e.term
    # short: the hover tooltip, one plain sentence
    assert len(e.short) <= 160, (key, len(e.short))
    assert len(sentences(e.short)) == 1 and e.short.endswith("."), e.short
    assert "[[" not in e.short and "]]" not in e.short
    # long: 2-4 sentences (links rendered as their words), at most 600 characters
    long = G.plain_text(e.long)
    assert len(long) <= 600, (key, len(long))
    assert 2 <= len(sentences(long)) <= 4, sentences(long)
    assert long.endswith("."), long


@pytest.mark.parametrize("key", list(G.GLOSSARY))
def test_see_and_inline_links_name_existing_entries(key):
    e = G.GLOSSARY[key]
    assert isinstance(e.see, tuple)
    assert len(set(e.see)) == len(e.see) and key not in e.see
    unknown = [k for k in (*e.see, *G.links_in(e.long)) if k not in G.GLOSSARY]
    assert not unknown, f"{key} refers to unknown keys {unknown}"


def all_texts():
    for e in G.GLOSSARY.values():
        yield e.key, e.short
        yield e.key, G.plain_text(e.long)
    for p in G.PANEL_HELP.values():
        for text in (p.shows, p.read, p.better):
            yield p.key, G.plain_text(text)


def test_texts_read_plainly_once_links_are_rendered():
    """No brackets inside brackets (a link's display name inside a parenthesis), no Latin
    abbreviations, no doubled words where a link meets the text around it."""
    for key, text in all_texts():
        depth = deepest = 0
        for ch in text:
            depth += {"(": 1, ")": -1}.get(ch, 0)
            deepest = max(deepest, depth)
            assert depth >= 0, (key, text)
        assert depth == 0 and deepest <= 1, (key, text)
        assert not re.search(r"\b(e\.g|i\.e|etc|vs)\b\.?", text), (key, text)
        assert not re.search(r"\b(\w+) \1\b", text, flags=re.IGNORECASE), (key, text)


def test_entries_are_frozen_and_the_mappings_read_only():
    e = G.GLOSSARY["s1"]
    with pytest.raises(AttributeError):
        e.short = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        G.GLOSSARY["new"] = e  # type: ignore[index]
    with pytest.raises(TypeError):
        G.PANEL_HELP["new"] = G.PANEL_HELP["latent"]  # type: ignore[index]


def test_topics_hold_every_key_once_in_the_glossary_order():
    keys = [k for _, ks in G.GLOSSARY_TOPICS for k in ks]
    assert keys == list(G.GLOSSARY)


@pytest.mark.parametrize("key", PANELS_LISTED)
def test_panel_texts_are_short_and_link_known_terms(key):
    p = G.PANEL_HELP[key]
    assert p.key == key and p.title
    for text in (p.shows, p.read, p.better):
        plain = G.plain_text(text)
        assert plain and len(plain) <= 450, (key, len(plain))
        assert plain.endswith("."), plain
        assert all(k in G.GLOSSARY for k in G.links_in(text))
    assert p.see and all(k in G.GLOSSARY for k in p.see)


@pytest.mark.parametrize("key, direction", [
    ("latent", "Nothing is better"), ("gallery", "Nothing is better"), ("topk", "higher is better"),
    ("heatmap", "lower is better"), ("argmax", "lower is better"), ("summary", "S1 higher, S2 and S3 lower"),
    ("confusion", "nothing is better"),
])
def test_each_panel_says_which_way_is_better(key, direction):
    assert direction in G.PANEL_HELP[key].better


# ------------------------------------------------------------------ accurate to the code

def test_the_absent_group_scores_are_the_code_s():
    assert MISSING_SCORES == {"s1": 0.0, "s2": 1.0, "s3": 1.0}
    assert "S1 = 0, S2 = 1 and S3 = 1" in G.GLOSSARY["absent-group"].long
    assert "scores 0" in G.GLOSSARY["s1"].long
    assert "scores 1" in G.GLOSSARY["s2"].long and "scores 1" in G.GLOSSARY["s3"].long


def test_s3_is_the_base_2_distance_in_0_1():
    assert "base-2" in G.GLOSSARY["s3"].long
    assert "from 0" in G.GLOSSARY["s3"].short and "to 1" in G.GLOSSARY["s3"].short


def test_j_names_exactly_the_samplers_that_use_it_and_its_default():
    users = {n for n, cls in SAMPLERS.items() if cls.uses_j}
    linked = {k for k in G.links_in(G.GLOSSARY["j"].long) if k in SAMPLERS}
    assert linked == users
    import inspect
    default = inspect.signature(Sampler.sample).parameters["j"].default
    assert f"default is {default:g}" in G.GLOSSARY["j"].long


def test_seed_names_exactly_the_randomised_samplers():
    randomised = {n for n, cls in SAMPLERS.items() if cls.randomised}
    text = G.GLOSSARY["seed"].long
    linked = {k for k in G.links_in(text) if k in SAMPLERS}
    weighted = {n for n in SAMPLER_NAMES if n.endswith("-weighted")}
    assert "three weighted ones" in text and len(weighted) == 3
    assert linked | weighted == randomised


def test_control_ranges_in_the_words_are_the_app_s():
    assert f"{K_RANGE[0]} to {K_RANGE[1]}" in G.GLOSSARY["top-k"].long
    low, high = (f"{v * 100:g} %" for v in FRACTION_RANGE)
    assert f"{low} to {high}" in G.GLOSSARY["fraction"].long


def test_the_estimator_entry_names_the_app_s_choices_default_and_measured_numbers():
    import csv
    from pathlib import Path

    from dldiag.app.figures import ESTIMATOR_NAMES
    from dldiag.app.state import ViewState
    from dldiag.weighting import ESTIMATORS

    e = G.GLOSSARY["estimator"]
    default = ViewState().estimator
    assert default == ESTIMATORS[0] == "plain" and set(ESTIMATOR_NAMES) == set(ESTIMATORS)
    assert ESTIMATOR_NAMES["plain"] in e.term and ESTIMATOR_NAMES["weighted"] in e.term
    assert "plain mean of its items (the default)" in e.short
    assert "Plain is the default because it measured better" in e.long
    assert "plain is the default" in G.ESTIMATOR_HINT and len(G.ESTIMATOR_HINT) <= 110
    # the numbers quoted are results/fashion-mnist/weighting_summary.csv's (max-margin at 5 %)
    table = Path(__file__).resolve().parents[1] / "results" / "fashion-mnist" / "weighting_summary.csv"
    with open(table, newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["sampler"] == "max-margin" and float(r["fraction"]) == 0.05)
    plain, weighted = float(row["s1_plain"]), float(row["s1_weighted"])
    assert weighted < plain
    assert f"S1 at 5 % from {plain:.3f} to {weighted:.3f}" in e.long


def test_the_sample_estimate_entry_quotes_the_bootstrap_s_settings_and_the_panels_words():
    from dldiag.app.figures import estimate_line
    from dldiag.estimates import DEFAULT_LEVEL, DEFAULT_N_BOOT, MIN_ITEMS

    e = G.GLOSSARY["sample-estimate"]
    level = f"{DEFAULT_LEVEL * 100:g} % interval"
    assert level in e.short and level in e.long
    assert f"with replacement {DEFAULT_N_BOOT} times" in e.long
    assert f"fewer than {MIN_ITEMS} sample items has none" in e.long
    # what it cannot see, and so which way it errs
    assert "boundary sampler's lean" in G.plain_text(e.long) and "units never active" in e.long
    assert "optimistic" in e.long
    # the panels' line starts with the entry's words, and every panel that shows it links the entry
    assert estimate_line("s1", {"score": (1.0, 1.0, 1.0)}).startswith("estimated from the sample alone")
    assert e.term.startswith("estimated from the sample alone")
    for key in ("topk", "heatmap", "argmax"):
        assert "sample-estimate" in G.PANEL_HELP[key].see and "sample-estimate" in G.links_in(G.PANEL_HELP[key].read)


def test_doctests():
    assert doctest.testmod(G, optionflags=doctest.ELLIPSIS).failed == 0


# ------------------------------------------------------------------ builders

def test_term_is_a_link_with_the_definition_as_tooltip():
    link = G.term("s1")
    assert isinstance(link, html.A)
    props = rendered(link)["props"]
    assert props == {"children": G.GLOSSARY["s1"].term, "href": "#glossary-s1",
                     "title": G.GLOSSARY["s1"].short, "className": "term"}
    assert rendered(G.term("max-margin", "Max margin (SVM)"))["props"]["children"] == "Max margin (SVM)"
    assert G.tooltip("j") == G.GLOSSARY["j"].short


@pytest.mark.parametrize("key", list(G.GLOSSARY))
def test_every_term_renders(key):
    props = rendered(G.term(key))["props"]
    assert props["href"] == f"#glossary-{key}" and props["title"] == G.GLOSSARY[key].short


def test_glossary_section_holds_an_anchor_per_entry():
    section = G.glossary_section()
    assert isinstance(section, html.Section) and section.id == "glossary"
    rendered(section)
    nodes = list(walk(section))
    dls = [n for n in nodes if isinstance(n, html.Dl)]
    assert len(dls) == len(G.GLOSSARY_TOPICS)
    dts = [n for n in nodes if isinstance(n, html.Dt)]
    assert [dt.id for dt in dts] == [f"glossary-{k}" for k in G.GLOSSARY]
    assert [dt.children for dt in dts] == [e.term for e in G.GLOSSARY.values()]
    dds = [n for n in nodes if isinstance(n, html.Dd)]
    assert len(dds) == len(G.GLOSSARY)
    for dd, e in zip(dds, G.GLOSSARY.values()):
        text = text_of(dd)
        assert e.short in text and G.plain_text(e.long) in text
    # every link in the section points at an anchor of the section
    anchors = {f"#{dt.id}" for dt in dts}
    links = [n for n in nodes if isinstance(n, html.A)]
    assert links and {a.href for a in links} <= anchors


@pytest.mark.parametrize("key", PANELS_LISTED)
def test_panel_help_is_a_details_with_the_three_texts(key):
    details = G.panel_help(key)
    assert isinstance(details, html.Details) and not details.open
    rendered(details)
    summary = details.children[0]
    assert isinstance(summary, html.Summary) and summary.children == G.HELP_SUMMARY
    text = text_of(details)
    p = G.PANEL_HELP[key]
    for part in (p.shows, p.read, p.better):
        assert G.plain_text(part) in text
    links = [n for n in walk(details) if isinstance(n, html.A)]
    assert {f"#glossary-{k}" for k in p.see} <= {a.href for a in links}
    assert all(a.title for a in links)
    assert G.panel_help(key, open=True).open is True


def test_rich_and_plain_text():
    children = G.rich_text("before [[s1]] middle [[top-k|the top units]] after")
    assert children[0] == "before " and children[-1] == " after"
    links = [c for c in children if isinstance(c, html.A)]
    assert [a.children for a in links] == [G.GLOSSARY["s1"].term, "the top units"]
    assert G.plain_text("a [[j]] b") == f"a {G.GLOSSARY['j'].term} b"
    assert G.rich_text("no links") == ["no links"]


@pytest.mark.parametrize("call", [G.term, G.entry, G.tooltip, G.anchor_id,
                                  lambda k: G.plain_text(f"[[{k}]]")])
def test_unknown_glossary_keys_fail_with_the_known_ones(call):
    with pytest.raises(ValueError, match=r"unknown glossary key 'S1 precision'; known keys: 'item', .*'s1'"):
        call("S1 precision")


def test_unknown_panel_keys_fail_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown panel key 'legend'; known keys: 'latent', 'topk', .*'gallery'"):
        G.panel_help("legend")
    with pytest.raises(ValueError, match="unknown panel key"):
        G.panel_help(["topk"])  # unhashable: still the clear message


def test_accuracy_phrase_never_reads_as_the_model_failing():
    assert G.accuracy_phrase(0.907) == "model accuracy 90.7 % on all items"
    text = G.accuracy_phrase(0.907, 0.636)
    assert text.startswith("model accuracy 90.7 % on all items")
    assert "63.6 % correct" in text and "not of the model" in text
