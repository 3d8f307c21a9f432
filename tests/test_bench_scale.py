"""``python -m dldiag.bench scale --quick``: the wide workload's stages at two small N, in CI."""

from __future__ import annotations

import re

from dldiag.bench.scale import main


def test_quick_scale_benchmark_measures_every_stage(tmp_path, capsys):
    assert main(["--quick", "--n", "1500,3000", "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"\| [\d,]+ \| 0\.\d{3} \|", line)]
    assert len(rows) == 2, out
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        latent, plain, ratio = (float(cells[i]) for i in (2, 3, 4))
        assert latent > 0 and plain > 0 and abs(ratio - latent / plain) <= 0.02 * ratio + 0.01
        assert float(cells[5]) > 0  # peak RSS of the child
        assert cells[8].endswith("MB") and cells[9].endswith("GiB")
    assert "Growth exponent" in out
    # the stores are kept for a rerun: the second run writes no chunk
    assert (tmp_path / "wide-1500" / "manifest.json").exists()
