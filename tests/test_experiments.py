"""The experiments command: CSV shapes, the fraction-1.0 identity, resuming, pure figure builders."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from dldiag.experiments.__main__ import main
from dldiag.experiments.figures import FIGURES, build_figures, figures_for_dataset, results_dir_for
from dldiag.experiments.runner import (STATE_DIR, ExperimentConfig, experiment_sampler, experiment_sampler_names,
                                       plan_cells)
from dldiag.experiments.summary import read_csv
from dldiag.palette import sampler_color
from dldiag.sampling import SAMPLER_NAMES, SAMPLERS, sample_size

MAIN = [n for n in SAMPLER_NAMES if not n.endswith("-weighted")]
WEIGHTED = [n for n in SAMPLER_NAMES if n.endswith("-weighted")]
RANDOMISED = [n for n in MAIN if SAMPLERS[n].randomised]
SEEDED_FIT = [n for n in SAMPLER_NAMES if SAMPLERS[n].seeded_fit]
#: The experiments' samplers: the registry's plus the app's latent grid beside the report's.
EXPERIMENT = list(experiment_sampler_names())
EXP_MAIN = [n for n in EXPERIMENT if not n.endswith("-weighted")]
SPILL = "latent-grid-spill"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One ``--quick`` run (digits) into a fresh cache: (results folder, cache folder, run.json)."""
    root = tmp_path_factory.mktemp("experiments")
    out, cache = root / "digits", root / "cache"
    status = main(["--quick", "--out", str(out), "--cache-dir", str(cache), "--no-png", "--no-progress"])
    assert status == 0
    return out, cache, json.loads((out / "run.json").read_text())


def test_plan_of_the_quick_grid():
    config = ExperimentConfig.quick().validated()
    evals, timings = plan_cells(config, SAMPLERS)
    idents = [c.ident() for c in evals]
    assert len(idents) == len(set(idents))  # a cell serving several figures is planned once
    natural = [c for c in evals if c.fraction is None]
    # one natural tree per fit seed
    assert [(c.sampler, c.seed, c.fit_seed, c.tags) for c in natural] == [
        ("eb-tree", s, s, {"fig4", "fig5", "table4"}) for s in range(config.seeds)]
    for c in evals:
        cls = SAMPLERS[c.sampler]
        assert (c.j is None) == (not cls.uses_j)
        assert c.seed < (config.seeds if (cls.randomised or cls.seeded_fit) else 1)
        assert c.fit_seed == (c.seed if cls.seeded_fit else 0)
    for name in SAMPLER_NAMES:  # every sampler of this registry is drawn `seeds` times per point
        assert {c.seed for c in evals if c.sampler == name} == set(range(config.seeds))
    shifted = ExperimentConfig.quick(fit_seed=5).validated()
    assert {c.fit_seed for c in plan_cells(shifted, SAMPLERS)[0] if c.sampler == "vas"} == {5, 6}
    assert {c.fit_seed for c in plan_cells(shifted, SAMPLERS)[0] if c.sampler == "random"} == {5}
    fig6 = {(c.sampler, c.j) for c in evals if "fig6" in c.tags}
    assert fig6 == ({(n, j) for n in ("gmm-full", "gmm-spherical", "max-margin") for j in config.js}
                    | {(n, None) for n in WEIGHTED})
    assert len(timings) == len(SAMPLER_NAMES) * (1 + config.time_create_repeats)


def test_config_errors_name_the_parameter():
    with pytest.raises(ValueError, match="fraction"):
        ExperimentConfig(fractions=(0.05, 1.5)).validated()
    with pytest.raises(ValueError, match="seeds"):
        ExperimentConfig(seeds=0).validated()


def test_quick_csv_shapes(quick):
    out, _, meta = quick
    cfg = meta["config"]
    assert cfg["fractions"] == [0.05, 0.2, 1.0] and cfg["seeds"] == 2
    fig4 = read_csv(out / "fig4_fraction.csv")
    assert list(fig4[0]) == ["sampler", "weighted", "size_mode", "fraction", "n_sample", "n_sample_min",
                             "n_sample_max", "n_seeds", "n_fits", "k", "s1_mean", "s1_sd", "s1_min", "s1_max", "s2_mean", "s2_sd", "s2_min", "s2_max",
                             "s3_mean", "s3_sd", "s3_min", "s3_max"]
    # every sampler at every fraction, plus the EB tree's natural sample
    assert len(fig4) == len(EXP_MAIN) * 3 + 1
    assert {(r["sampler"], r["fraction"]) for r in fig4 if r["size_mode"] == "fraction"} == {
        (n, f) for n in EXP_MAIN for f in cfg["fractions"]}
    for r in fig4:
        assert r["n_seeds"] == 2 and r["n_fits"] == (2 if r["sampler"] in SEEDED_FIT else 1)
        if r["sampler"] == "latent-grid":  # the report's grid falls short where cells run out
            assert r["n_sample_min"] <= r["n_sample_max"] <= int(r["fraction"] * 450 + 0.5)
            assert r["fraction"] < 1 or r["n_sample_max"] < 450
        elif r["size_mode"] == "fraction":
            assert r["n_sample"] == r["n_sample_min"] == r["n_sample_max"] == int(r["fraction"] * 450 + 0.5)
        else:
            assert r["n_sample"] == pytest.approx(meta["natural_size"]["eb-tree"])
            assert r["n_sample"] == pytest.approx(sum(meta["natural_sizes"]["eb-tree"]) / 2)
    fig5 = read_csv(out / "fig5_topk.csv")
    assert len(fig5) == (len(MAIN) + 1) * len(cfg["ks"])  # the spill grid only where it can differ
    assert SPILL not in {r["sampler"] for r in fig5}
    fig6 = read_csv(out / "fig6_j.csv")
    assert len(fig6) == 3 * len(cfg["js"]) + len(WEIGHTED)
    fig7 = read_csv(out / "fig7_time.csv")
    assert {(r["sampler"], r["mode"]) for r in fig7} == {(n, m) for n in EXPERIMENT for m in ("create", "sample")}
    assert all(r["median_s"] > 0 for r in fig7)
    table4 = read_csv(out / "table4.csv")
    assert [r["sampler"] for r in table4][0] == "all" and len(table4) == 1 + len(EXPERIMENT) + 1
    assert table4[0]["n_incorrect_mean"] == meta["n_incorrect"]
    for r in table4[1:]:
        assert r["n_correct_mean"] + r["n_incorrect_mean"] == pytest.approx(r["n_sample"])
        assert r["n_incorrect_min"] <= r["n_incorrect_mean"] <= r["n_incorrect_max"]
        assert r["n_correct_min"] <= r["n_correct_mean"] <= r["n_correct_max"]
    scores = read_csv(out / "scores.csv")
    per_seed = len(EXP_MAIN) * 3 * 2 + 2  # fig4 cells at k = 10: 2 draws per point, 2 natural trees
    assert len([r for r in scores if "fig4" in r["tags"] and r["k"] == 10]) == per_seed
    layers = read_csv(out / "per_layer.csv")
    assert {r["layer"] for r in layers} == set(meta["layers"])
    # digits' logits have 10 units: trivial at k = 10, flagged and left out of S1
    logits = [r for r in layers if r["layer"] == "logits"]
    assert logits and all(r["n_units"] == 10 and r["s1_trivial"] and r["s1"] is None for r in logits)
    assert all(not r["s1_trivial"] and r["s1"] is not None for r in layers if r["layer"] != "logits")
    assert all(r["s1_trivial_layers"] == ("logits" if r["k"] >= 10 else None)
               for r in scores if r["k"] in (10, 20))


def test_seeded_fits_are_averaged_over_fit_seeds(quick):
    """A sampler whose fit takes a seed is scored on one fit per draw, and the summary averages them."""
    out, _, meta = quick
    scores = [r for r in read_csv(out / "scores.csv") if r["k"] == meta["config"]["k"]]
    fig4 = read_csv(out / "fig4_fraction.csv")
    for name in MAIN:
        assert meta["samplers"][name]["seeded_fit"] == (name in SEEDED_FIT)
        assert meta["samplers"][name]["fit_seeds"] == ([0, 1] if name in SEEDED_FIT else [0])
        mine = [r for r in scores if r["sampler"] == name and "fig4" in r["tags"]]
        for r in mine:
            assert r["fit_seed"] == (r["seed"] if name in SEEDED_FIT else 0)
        for row in (r for r in fig4 if r["sampler"] == name):
            draws = [r for r in mine if r["size_mode"] == row["size_mode"]
                     and (row["size_mode"] == "natural" or r["fraction"] == row["fraction"])]
            assert sorted(r["seed"] for r in draws) == [0, 1]
            for m in ("s1", "s2", "s3"):
                values = [r[m] for r in draws]
                assert row[f"{m}_mean"] == pytest.approx(sum(values) / 2, abs=1e-6)
                assert (row[f"{m}_min"], row[f"{m}_max"]) == pytest.approx((min(values), max(values)), abs=1e-6)
    # Fits of other seeds give other samples (not each sampler need differ: on digits the mixtures
    # of seeds 0 and 1 converge alike), so the deterministic samplers' spread is not all zero.
    fitted_only = [n for n in SEEDED_FIT if n in MAIN and not SAMPLERS[n].randomised]
    spread = [r for r in fig4 if r["sampler"] in fitted_only and r["fraction"] < 1
              and any(r[f"{m}_max"] > r[f"{m}_min"] for m in ("s1", "s2", "s3"))]
    assert spread
    weighted = [r for r in scores if r["sampler"] in WEIGHTED]
    assert weighted and all(r["fit_seed"] == r["seed"] for r in weighted)  # a new fit per draw
    natural = [r for r in scores if r["size_mode"] == "natural"]
    assert sorted(r["n_sample"] for r in natural) == sorted(meta["natural_sizes"]["eb-tree"])


def test_summary_says_whether_the_first_is_clear_of_the_second(quick):
    """'apart' is yes exactly when the first's min–max range over draws does not meet the second's."""
    out, _, _ = quick
    fig4 = [r for r in read_csv(out / "fig4_fraction.csv") if r["size_mode"] == "fraction"]
    lines = [line for line in (out / "summary.md").read_text().splitlines() if line.startswith("| ") and " % |" in line]
    assert lines
    metric = {"S1": "s1", "S2": "s2", "S3": "s3"}
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        fraction, m = float(cells[0].rstrip(" %")) / 100, metric[cells[1][:2]]
        by_name = {r["sampler"]: r for r in fig4 if r["fraction"] == pytest.approx(fraction)}
        first, second = by_name[cells[2].split()[0]], by_name[cells[3].split()[0]]
        clear = first[f"{m}_min"] > second[f"{m}_max"] if m == "s1" else first[f"{m}_max"] < second[f"{m}_min"]
        assert cells[4] == ("yes" if clear else "no"), line


def test_full_fraction_scores_exactly(quick):
    """At fraction 1.0 every sampler's sample is all of D: S1 = 1, S2 = 0, S3 = 0, every draw."""
    out, _, meta = quick
    rows = [r for r in read_csv(out / "scores.csv") if r["fraction"] == 1.0 and r["size_mode"] == "fraction"]
    assert {r["sampler"] for r in rows} == set(EXP_MAIN)
    # the report's latent grid does not spill: its cells cap it below all of D (checked below)
    rows = [r for r in rows if r["sampler"] != "latent-grid"]
    for r in rows:
        assert r["n_sample"] == meta["n_items"]
        assert (r["s1"], r["s2"], r["s3"]) == (1, 0, 0), r
    fig4 = [r for r in read_csv(out / "fig4_fraction.csv") if r["fraction"] == 1.0 and r["sampler"] != "latent-grid"]
    assert all((r["s1_mean"], r["s2_mean"], r["s3_mean"]) == (1, 0, 0) for r in fig4)


def test_rerun_resumes_and_recomputes_only_missing_cells(quick, tmp_path):
    out, cache, _ = quick
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    args = ["--quick", "--out", str(copy), "--cache-dir", str(cache), "--no-png", "--no-html", "--no-progress"]
    assert main(args) == 0
    meta = json.loads((copy / "run.json").read_text())
    assert meta["cells_computed"] == 0 and meta["cells_reused"] > 0
    before = (copy / "fig4_fraction.csv").read_text()
    states = sorted((copy / STATE_DIR).glob("*.json"))
    states[0].unlink()  # as if the run had been killed before this cell
    states[1].write_text(states[1].read_text()[:20])  # a torn file is recomputed, not trusted
    assert main(args) == 0
    meta = json.loads((copy / "run.json").read_text())
    assert meta["cells_computed"] == 2
    computed = [h["cells_computed"] for h in meta["history"]]  # every invocation is kept
    assert len(computed) == 3 and computed[0] > 0 and computed[1:] == [0, 2]
    assert (copy / "fig4_fraction.csv").read_text() == before  # the same cells, the same numbers


def test_figures_readable_and_one_colour_per_sampler(quick):
    out, _, meta = quick
    figures = build_figures(out)
    assert list(figures) == list(FIGURES)
    for stem, fig in figures.items():
        assert meta["dataset_label"] in fig.layout.title.text
        if stem == "table4":
            continue
        for axis in ("xaxis", "yaxis"):
            assert fig.layout[axis].title.text, (stem, axis)
        assert fig.layout.showlegend is not False
        for trace in fig.data:
            name = (trace.legendgroup or "").strip()
            if name in EXPERIMENT:
                colour = trace.line.color if trace.mode and "lines" in trace.mode else trace.marker.color
                assert colour == sampler_color(name), (stem, name)
                variant = name.endswith("-weighted") or name == SPILL
                assert (trace.line.dash == "dash") == variant or trace.mode == "markers"
    assert figures["fig7_time"].layout.yaxis.type == "log"
    assert "sample fraction (%" in figures["fig4_fraction"].layout.xaxis.title.text
    html = sorted(p.name for p in out.glob("*.html"))
    assert html == sorted(f"{s}.html" for s in FIGURES) and (out / "plotly.min.js").is_file()
    assert (out / "table4.md").is_file() and (out / "summary.md").is_file()


def test_figures_module_does_not_import_dash_or_torch():
    code = ("import sys, dldiag.experiments.figures; "
            "bad = [m for m in ('dash', 'torch') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_figures_for_the_apps_dataset(quick):
    out, _, meta = quick
    figures, note = figures_for_dataset("digits", meta["weights_hash"], root=out.parent)
    assert list(figures) == list(FIGURES) and note is None
    figures, note = figures_for_dataset("digits", "0" * 64, root=out.parent)
    assert figures and "other weights" in note
    figures, note = figures_for_dataset("digits", meta["weights_hash"], root=out.parent / "nowhere")
    assert figures == {} and "python -m dldiag.experiments --dataset digits" in note


def test_missing_results_name_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m dldiag.experiments"):
        build_figures(tmp_path)
    assert results_dir_for("idx:/data/my-set/", "results") == Path("results/idx-my-set")
    assert results_dir_for("digits").parent.name == "results"
    assert results_dir_for("fashion-mnist", "r") == Path("r/fashion-mnist")


def test_without_a_browser_pngs_are_skipped_in_one_line(quick, tmp_path, monkeypatch, capsys):
    """No browser for kaleido: CSV and HTML still written, one line says why no PNG, exit 0."""
    from dldiag.experiments.report import PNG_HINT, png_export_problem

    missing = tmp_path / "no-such-chrome"
    monkeypatch.setenv("BROWSER_PATH", str(missing))  # choreographer's override of its browser lookup
    if png_export_problem() is None:
        pytest.skip("a Chrome downloaded by plotly_get_chrome is found before BROWSER_PATH")
    out, cache, _ = quick
    copy = tmp_path / "digits"
    shutil.copytree(out / STATE_DIR, copy / STATE_DIR)  # the cells only: this run writes every file
    capsys.readouterr()
    assert main(["--quick", "--out", str(copy), "--cache-dir", str(cache), "--no-progress"]) == 0
    assert not list(copy.glob("*.png"))
    assert sorted(p.name for p in copy.glob("*.html")) == sorted(f"{s}.html" for s in FIGURES)
    assert {p.name for p in copy.glob("*.csv")} == {p.name for p in out.glob("*.csv")} != set()
    printed = capsys.readouterr()
    lines = [line for line in (printed.out + printed.err).splitlines() if "PNG" in line]
    assert lines == [f"PNG export skipped: kaleido found no Chrome or Chromium (BROWSER_PATH={str(missing)!r} "
                     f"is not a browser); {PNG_HINT}"]
    assert "apt-get install chromium" in PNG_HINT and "plotly_get_chrome" in PNG_HINT


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
                    reason="PNG export needs a Chromium for kaleido")
def test_png_of_every_figure_at_its_layout_size(quick, tmp_path):
    pytest.importorskip("kaleido")
    from dldiag.experiments.report import write_report

    out = tmp_path / "digits"
    shutil.copytree(quick[0], out, ignore=shutil.ignore_patterns(STATE_DIR))
    written = write_report(out, html=False, scale=1)
    figures = build_figures(out)
    for stem, fig in figures.items():
        png = out / f"{stem}.png"
        assert png in written
        width, height = struct.unpack(">II", png.read_bytes()[16:24])  # the IHDR chunk
        assert (width, height) == (fig.layout.width, fig.layout.height)


def test_the_experiments_latent_grid_is_the_reports_rule(digits_ws):
    """Equal seats per cell, no spill: at 80 % on digits some cells run out and the sample is short."""
    grid, spill = experiment_sampler("latent-grid"), experiment_sampler(SPILL)
    assert grid.get_params()["spill"] == "none" and spill.get_params()["spill"] == "uniform"
    state = digits_ws.fitted_sampler("latent-grid").get_state()
    grid.set_state(state)
    spill.set_state(state)
    asked = sample_size(0.8, digits_ws.n_items)
    short = grid.sample(0.8, seed=0)
    assert len(short) < asked  # the knee of Fig. 4
    assert grid.sample_info(0.8, seed=0)["shortfall"] == asked - len(short)
    assert len(spill.sample(0.8, seed=0)) == asked
    assert len(grid.sample(0.05, seed=0)) == sample_size(0.05, digits_ws.n_items)  # no cell short yet


def test_run_json_records_the_latent_grid_rule(quick):
    out, _, meta = quick
    assert meta["samplers"]["latent-grid"]["params"]["spill"] == "none"
    assert meta["samplers"][SPILL]["params"]["spill"] == "uniform"
    assert meta["samplers"][SPILL]["family"] == "latent-grid"
    assert "no spill" in meta["latent_grid_rule"]
    fig4 = {(r["sampler"], r["fraction"]): r for r in read_csv(out / "fig4_fraction.csv")}
    assert fig4[("latent-grid", 1.0)]["n_sample"] < fig4[(SPILL, 1.0)]["n_sample"] == meta["n_items"]
