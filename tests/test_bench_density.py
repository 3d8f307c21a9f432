"""``python -m dldiag.bench density --quick``: the density view's first paint at two small N, in CI."""

from __future__ import annotations

import re

import numpy as np

from dldiag.bench.density import clustered, first_paint_seconds, main


def test_quick_density_benchmark_times_first_paint_and_zoom(capsys, monkeypatch):
    import dldiag.bench.density as bench

    written = []
    monkeypatch.setattr(bench, "write_section", lambda *a, **k: written.append(a))
    assert main(["--quick"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"\| [\d,]+ \| [\d,]+ \| \d+\.\d{3} \|", line)]
    assert [r.split("|")[1].strip() for r in rows] == ["2,000", "20,000"], out
    for line in rows:
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        assert int(cells[1].replace(",", "")) == round(0.05 * int(cells[0].replace(",", "")))
        style, figure, js, total, zoom = (float(cells[i]) for i in (2, 3, 4, 5, 6))
        assert 0 < total and zoom > 0 and float(cells[8].replace(",", "")) > 0
        assert abs(total - (style + figure + js)) <= 0.2 * total + 0.01  # medians of sums vs sums of medians
    assert "the goal of 3 s" in out and not written  # --quick writes nothing


def test_first_paint_seconds_is_importable_and_reports_its_parts():
    xy, labels = clustered(3000, n_classes=4)
    assert xy.shape == (3000, 2) and set(np.unique(labels)) == {0, 1, 2, 3}
    r = first_paint_seconds(xy, labels, repeat=2)
    assert r["n"] == 3000 and r["sample"] == 150 and len(r["runs"]) == 2
    assert {"style_s", "figure_s", "json_s", "total_s", "zoom_s", "warm_up_s", "figure_kb", "image_kb"} <= set(r)
