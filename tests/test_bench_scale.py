"""``python -m dldiag.bench scale --quick``: every stage of issue 13's table at small N, in CI."""

from __future__ import annotations

import json
import re

from dldiag.bench.scale import main


def _rows(out: str, heading: str) -> list[list[str]]:
    """The body rows of the first table after ``heading``, as lists of cells."""
    lines = out.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[start + 2:end]]


def test_quick_scale_benchmark_measures_every_stage(tmp_path, capsys):
    assert main(["--quick", "--n", "1000,2000", "--deep-n", "300", "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    passes = _rows(out, "### Passes and memory")
    assert [(r[0], r[1]) for r in passes] == [("wide", "1,000"), ("wide", "2,000"), ("deep", "300")], out
    for cells in passes:
        latent, plain, ratio = (float(cells[i]) for i in (3, 4, 5))
        assert latent > 0 and plain > 0 and abs(ratio - latent / plain) <= 0.02 * ratio + 0.01
        assert float(cells[6]) > 0 and float(cells[7]) > 0  # peak RSS: the latent pass's, the whole run's
    views = _rows(out, "### The app's views and answers")
    assert len(views) == 3
    for cells in views:
        assert all(float(c) > 0 for c in cells[2:11]), cells  # projections, paint, group, lasso, exact
        assert int(cells[11]) >= 1  # the exact pass reported its progress
    fits = _rows(out, "### Sampler fits")
    assert {"random", "vas", "max-margin"} <= {r[0] for r in fits}
    assert all(float(re.sub(r" \(on .*\)", "", c)) > 0 for r in fits for c in r[1:4])
    assert "Growth exponent, wide" in out and "Peak RSS of the whole run after each stage" in out
    assert "Growth exponent, wide" in out and "Goals at 10^6 (wide): not checked" in out
    assert "Deep: the galaxy CNN's diagnosed layers" in out
    for kind, n in (("wide", 1000), ("wide", 2000), ("deep", 300)):
        row = json.loads((tmp_path / f"scale-{kind}-{n}.json").read_text())
        assert row["store_bytes"] < row["full_bytes"]  # the sample's float16 store against all activations
        assert row["fits"]["random"]["fit_items"] == n and row["lasso_items"] == n // 10
    # the stores are kept for a rerun, and --reuse writes the table again without measuring
    assert (tmp_path / "wide-1000" / "manifest.json").exists()
    assert main(["--quick", "--n", "1000,2000", "--deep-n", "300", "--work", str(tmp_path), "--reuse"]) == 0
    again = capsys.readouterr().out

    def tables(text):  # the command line names --reuse; every figure must be the same
        return [line for line in text.splitlines() if not line.startswith("Command:")]

    assert "--reuse" in again and tables(again) == tables(out)
