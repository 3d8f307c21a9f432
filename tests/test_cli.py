import json

import numpy as np
import pytest

from dldiag.cli import main


def test_build_then_query_json(tmp_path, capsys):
    cache = str(tmp_path / "cache")
    assert main(["build", "--dataset", "digits", "--cache-dir", cache,
                 "--projections", "pca", "--samplers", "random,stratified-cm"]) == 0
    out = capsys.readouterr().out
    assert "full pass built" in out and "sampler fit stratified-cm" in out
    assert main(["build", "--dataset", "digits", "--cache-dir", cache,
                 "--projections", "pca", "--samplers", "random"]) == 0
    assert "full pass from cache" in capsys.readouterr().out

    assert main(["query", "--dataset", "digits", "--cache-dir", cache, "--sampler", "random",
                 "--fraction", "0.2", "--k", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_sample"] == 90  # floor(0.2 * 450 + 0.5)
    assert result["n_correct"] + result["n_incorrect"] == 90
    assert set(result["per_layer"]) == {"conv1", "conv2", "fc1", "logits"}
    assert 0 <= result["overall"]["s1"] <= 1 and 0 <= result["overall"]["s3"] <= 1

    assert main(["query", "--dataset", "digits", "--cache-dir", cache, "--fraction", "1.0"]) == 0
    table = capsys.readouterr().out
    assert "overall" in table and "1.0000      0.0000    0.0000" in table


def test_query_errors_name_the_value(tmp_path, capsys):
    cache = str(tmp_path / "cache")
    assert main(["query", "--dataset", "digits", "--cache-dir", cache, "--fraction", "1.5"]) == 2
    assert "fraction must be in (0.0, 1.0]; got 1.5" in capsys.readouterr().err
    assert main(["query", "--dataset", "digits", "--cache-dir", cache, "--fraction", "1e-9"]) == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "fraction" in line] == [
        "error: fraction must be at least 0.5/450 ≈ 0.00111112, the smallest that selects one of the "
        "450 items; got 1e-09, which selects 0 of 450 items"]
    assert main(["query", "--dataset", "digits", "--cache-dir", cache, "--sampler", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["build", "--dataset", "cifar", "--cache-dir", cache]) == 2
    assert "cifar" in capsys.readouterr().err


def test_a_cache_folder_that_is_a_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "not-a-folder"
    path.write_text("x")
    assert main(["query", "--dataset", "digits", "--cache-dir", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cache folder") and "is a file" in err


def test_app_py_with_a_cache_folder_that_is_a_file_is_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "not-a-folder"
    path.write_text("x")
    out = subprocess.run([sys.executable, "app.py", "--dataset", "digits", "--cache-dir", str(path)],
                         cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: cache folder") and "is a file" in out.stderr


def test_train_digits(tmp_path, capsys):
    out = tmp_path / "digits.pt"
    assert main(["train", "--dataset", "digits", "--epochs", "2", "--out", str(out)]) == 0
    assert out.is_file() and "test accuracy" in capsys.readouterr().out


def test_train_on_own_data_saves_beside_the_cache_and_query_finds_it(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from sklearn.datasets import load_digits

    digits = load_digits()
    data = tmp_path / "mine.npz"
    np.savez(data, x_train=digits.images[:300] / 16, y_train=digits.target[:300],
             x_test=digits.images[300:400] / 16, y_test=digits.target[300:400])
    shipped = Path(__file__).resolve().parents[1] / "data" / "weights"
    before = sorted(p.name for p in shipped.iterdir())
    cache = tmp_path / "cache"
    monkeypatch.setenv("DLDIAG_CACHE", str(cache))

    assert main(["train", "--dataset", f"npz:{data}", "--epochs", "1"]) == 0
    saved = list((cache / "weights").glob("*.pt"))
    assert [p.name for p in saved] == [f"npz_mine.npz-{saved[0].stem[-8:]}.pt"]
    assert f"saved {saved[0]}" in capsys.readouterr().out
    assert sorted(p.name for p in shipped.iterdir()) == before  # nothing written into the repository

    # No --weights: query finds them through $DLDIAG_CACHE, or through the same --cache-dir.
    assert main(["query", "--dataset", f"npz:{data}", "--fraction", "0.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_sample"] == 50
    monkeypatch.delenv("DLDIAG_CACHE")
    assert main(["query", "--dataset", f"npz:{data}", "--cache-dir", str(cache), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_sample"] == 5

    other = tmp_path / "other"
    assert main(["query", "--dataset", f"npz:{data}", "--cache-dir", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"at '{other / 'weights' / saved[0].name}'" in err
    assert f"`python -m dldiag train --dataset npz:{data} --cache-dir {other}`" in err
    assert main(["train", "--dataset", f"npz:{data}", "--epochs", "1", "--cache-dir", str(other)]) == 0
    assert (other / "weights" / saved[0].name).is_file()
    assert sorted(p.name for p in shipped.iterdir()) == before


def test_info_json_reports_the_exact_parameter_count_and_activation_values(tmp_path, capsys):
    import math

    import torch

    from dldiag.artifacts import resolve_weights
    from dldiag.models import load_checkpoint

    assert main(["info", "--dataset", "digits", "--cache-dir", str(tmp_path), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    model, _ = load_checkpoint(resolve_weights("digits", None))
    assert row["parameters"] == sum(p.numel() for p in model.parameters())
    seen = {}
    hooks = [dict(model.named_modules())[name].register_forward_hook(
        lambda m, i, o, name=name: seen.__setitem__(name, o[0].numel())) for name in model.diagnosed_layers]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, 8, 8))
    finally:
        for h in hooks:
            h.remove()
    assert row["layers"] == seen and row["activation_values_per_item"] == sum(seen.values())
    assert row["activation_to_item"] == sum(seen.values()) / 64 and row["item_shape"] == [1, 8, 8]
    assert (row["items"], row["classes"], row["latent_layer"], row["latent_width"]) == (450, 10, "fc1", 32)
    assert main(["info", "--dataset", "digits", "--cache-dir", str(tmp_path)]) == 0
    assert "activations" in capsys.readouterr().out


def test_info_says_what_a_sample_saves(tmp_path, capsys):
    from dataclasses import replace

    from dldiag.artifacts import load_workspace
    from dldiag.info import sample_savings

    cache = str(tmp_path / "cache")
    assert main(["info", "--dataset", "digits", "--cache-dir", cache, "--json", "--sampler", "random",
                 "--fraction", "0.2"]) == 0
    row = json.loads(capsys.readouterr().out)
    s = row["sample"]
    values = row["activation_values_per_item"]
    assert (s["n"], s["N"], s["sampler"]) == (90, 450, "random")
    assert s["sample_bytes"] == 4 * values * 90 and s["full_bytes"] == 4 * values * 450
    assert s["sample_bytes_float16"] == s["sample_bytes"] // 2 and s["bytes_ratio"] == 5
    # the full pass was built (and timed) by this very command
    assert s["full_seconds_measured"] is True and s["sample_seconds"] > 0
    assert s["time_ratio"] == pytest.approx(s["full_seconds"] / s["sample_seconds"])
    ws = load_workspace("digits", cache_dir=cache, show_progress=False)
    assert ws.cache_hit and ws.full_pass_seconds == pytest.approx(s["full_seconds"])
    # a pass cached without its time: estimated from the sample pass's time per item, and said so
    est = sample_savings(replace(ws, full_pass_seconds=None), np.arange(45), repeats=1)
    assert est["full_seconds_measured"] is False
    assert est["full_seconds"] == pytest.approx(est["sample_seconds"] * 10)
    assert main(["info", "--dataset", "digits", "--cache-dir", cache, "--sampler", "random"]) == 0
    out = capsys.readouterr().out
    assert "of 450 items (5.1" in out and "for the full pass (measured;" in out


def test_query_json_carries_an_estimate_beside_each_measured_figure(tmp_path, capsys):
    cache = str(tmp_path / "cache")
    query = ["query", "--dataset", "digits", "--cache-dir", cache, "--fraction", "0.2", "--k", "10", "--json"]
    assert main(query + ["--n-boot", "0"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(query) == 0
    result = json.loads(capsys.readouterr().out)
    assert main(query) == 0
    assert json.loads(capsys.readouterr().out) == result  # seeded
    assert main(query + ["--boot-seed", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"]["estimate"] != result["overall"]["estimate"]

    # the measured figures and every existing key are as they were
    for key, value in plain.items():
        if key == "groups":
            assert [{k: v for k, v in g.items() if k != "estimate"} for g in result["groups"]] == value
        elif key in ("overall",):
            assert {k: v for k, v in result[key].items() if k != "estimate"} == value
        elif key == "per_layer":
            assert {layer: {k: v for k, v in m.items() if k != "estimate"} for layer, m in result[key].items()} == value
        else:
            assert result[key] == value, key
    assert result["estimate_settings"]["n_boot"] == 200 and result["estimate_settings"]["level"] == 0.9
    assert result["estimate_settings"]["finite_population_correction"] is False
    assert main(query + ["--fpc"]) == 0
    corrected = json.loads(capsys.readouterr().out)
    assert corrected["estimate_settings"]["finite_population_correction"] is True
    # with the correction every resample stays closer to the sample: smaller distances
    assert corrected["overall"]["estimate"]["s2"]["value"] < result["overall"]["estimate"]["s2"]["value"]

    with_estimate = 0
    for group in result["groups"]:
        est = group["estimate"]
        assert est["n_sample"] == group["n_sample"]
        if group["n_sample"] < 2:
            assert est["s1"] is None and est["reason"]
            continue
        with_estimate += 1
        for m in ("s1", "s2", "s3"):
            # the value is the mean over resamples, which may lie outside a percentile interval
            # piled at a bound (9 of 200 resamples at 0.9 and the rest at 1: 0.9955, [1, 1])
            assert 0 <= est[m]["low"] <= est[m]["high"] <= 1 and 0 <= est[m]["value"] <= 1
        # digits' logits have 10 units: at k = 10 their S1 is 1 by construction
        assert est["s1"]["trivial"] == (group["layer"] == "logits")
    assert with_estimate >= 30
    overall = result["overall"]["estimate"]
    assert overall["s2"]["n_groups"] == with_estimate
    assert overall["s1"]["n_groups"] == with_estimate - with_estimate // 4  # logits left out of S1
    assert result["per_layer"]["logits"]["estimate"]["s1"] is None

    assert main(query[:-1]) == 0
    assert "estimated from the sample alone" in capsys.readouterr().out
    assert main(query + ["--level", "1.5"]) == 2
    assert "level must be in (0.0, 1.0); got 1.5" in capsys.readouterr().err
