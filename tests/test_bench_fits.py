"""``python -m dldiag.bench fits --quick``: fit times and the exact/approximate check at small N."""

from __future__ import annotations

import json

import pytest

from dldiag.bench import fits


def test_quick_fits_benchmark(tmp_path, capsys, monkeypatch):
    written = {}
    monkeypatch.setattr(fits, "write_section", lambda name, text: written.update({name: text}))
    out_json = tmp_path / "fits.json"
    assert fits.main(["--quick", "--n", "2000,6000", "--work", str(tmp_path), "--json", str(out_json),
                      "--draw-seeds", "2", "--write"]) == 0
    text = capsys.readouterr().out
    results = json.loads(out_json.read_text())["results"]
    assert [r["n"] for r in results] == [2000, 6000]

    families = fits.families()
    assert set(families) == {"random", "stratified-cm", "vas", "eb-tree", "latent-grid", "gmm-full",
                             "gmm-spherical", "max-margin"}
    for r in results:
        assert [f["sampler"] for f in r["fits"]] == list(families)
        for f in r["fits"]:
            assert f["fit_s"] > 0 and f["cpu_s"] > 0 and f["fits"] == 1
            # Below the default thresholds (20,000 for vas, 50,000 for gmm-full and max-margin, none for
            # gmm-spherical) every fit is exact.
            assert not f["approximate"] and f["fit_items"] == r["n"], f
        # every approximated sampler and its weighted twin, compared at both N (both <= --check-max)
        rows = {c["sampler"]: c for c in r["compare"]}
        assert set(rows) == {"vas", "gmm-full", "max-margin", "gmm-full-weighted", "max-margin-weighted"}
        for name, c in rows.items():
            # the approximation is used in the comparison: the default threshold, or N // 2 below it
            assert c["max_fit_items"] == r["n"] // 2 and c["fit_items"] <= r["n"] // 2
            if name == "vas":  # cells of at most min(cell_items, max_fit_items): 2 x 1000, 4 x 1500;
                # at 6,000 the 1 % level (15 seats a cell) runs in pairs of cells, max_fit_items at most
                assert c["fit_items"] == {2000: 1000, 6000: 3000}[r["n"]]
            else:
                assert c["fit_items"] == r["n"] // 2
            assert c["exact_fit_s"] > 0 and c["approximate_fit_s"] > 0
            assert c["draw_seeds"] == (2 if name.endswith("-weighted") else 1)
            for s in ("s1", "s2", "s3"):
                assert 0 <= c["exact"][s] <= 1 and 0 <= c["approximate"][s] <= 1
                assert abs(c["delta"][s] - (c["approximate"][s] - c["exact"][s])) < 1e-12
            assert c["ok"] == all(abs(d) <= 0.01 for d in c["delta"].values())
        spread = r["random_spread"]
        assert spread["pairs"] == 2 and set(spread["single"]) == set(spread["means"]) == {"s1", "s2", "s3"}

    section = written["fits"]
    assert section in text
    for name in families:
        assert f"| `{name}` |" in section
    assert "fit at N = 2,000: wall (CPU) s" in section and "fit at N = 6,000: wall (CPU) s" in section
    assert "Exact against approximate fit at N = 6,000" in section
    assert "N = 6,000: no (exact)" in section and "N = 2,000: no (exact)" in section
    assert "| `vas` | 6,000 | 3,000 |" in section  # the comparison row: N, max_fit_items


def test_fits_benchmark_of_some_samplers(tmp_path, capsys):
    out_json = tmp_path / "fits.json"
    assert fits.main(["--quick", "--n", "2000", "--samplers", "random,vas", "--work", str(tmp_path),
                      "--json", str(out_json)]) == 0
    payload = json.loads(out_json.read_text())
    result = payload["results"][0]
    assert [f["sampler"] for f in result["fits"]] == ["random", "vas"]
    assert [c["sampler"] for c in result["compare"]] == ["vas"]
    assert payload["command"].endswith("--samplers random,vas")  # and no --write


def test_fits_benchmark_refuses_unknown_samplers_and_a_partial_section(tmp_path, capsys):
    with pytest.raises(SystemExit):
        fits.main(["--quick", "--samplers", "vas,nope", "--work", str(tmp_path)])
    err = capsys.readouterr().err
    assert "--samplers must name sampler families among" in err and "got 'vas,nope'" in err
    with pytest.raises(SystemExit):
        fits.main(["--quick", "--samplers", "vas", "--write", "--work", str(tmp_path)])
    assert "--write would replace the section" in capsys.readouterr().err
