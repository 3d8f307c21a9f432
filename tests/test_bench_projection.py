"""``python -m dldiag.bench projection --quick``: UMAP's stages at two small N and the placement's quality."""

from __future__ import annotations

import re

import numpy as np

from dldiag.bench.projection import main, projection_seconds


def test_projection_seconds_gives_every_stage():
    latent = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)
    t = projection_seconds(latent, "umap", seed=0, umap_fit_max=200)
    assert t["n"] == 300 and t["fit_items"] == 200
    assert t["fit_s"] > 0 and t["place_s"] > 0 and t["total_s"] >= t["fit_s"] + t["place_s"]


def test_quick_projection_benchmark_times_each_stage_and_compares_the_placements(tmp_path, capsys):
    assert main(["--quick", "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"\| [\d,]+ \| [\d,]+ \| \d", line)]
    assert len(rows) == 2, out
    small, large = ([float(c.replace(",", "")) for c in line.strip("|").split("|")] for line in rows)
    assert small[:2] == [2000, 2000] and small[4] == 0  # fitted on every item, nothing placed
    assert large[:2] == [8000, 5000] and large[4] > 0
    assert "Growth exponent" in out
    quality = re.search(r"\| fitted neighbours \(now\) \|.*\| (0\.\d+) \| (0\.\d+) \| (0\.\d+) \|", out)
    before = re.search(r"\| umap `transform` \(before\) \|.*\| (0\.\d+) \| (0\.\d+) \| 0 \|", out)
    assert quality and before, out
    acc, trust, distance = map(float, quality.groups())
    assert acc > 0.6 and trust > 0.8 and distance < 0.2
