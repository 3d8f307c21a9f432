"""Finished cells to CSV tables: one raw table per kind of cell and one summary per figure.

Files written under the results folder (every number of the figures is in one of them):

=====================  =======================================================================
``scores.csv``         one row per sample and k: S1, S2, S3, sample size, correct/incorrect,
                       the draw's seed and the seed of the fit it was drawn from
``per_layer.csv``      the same at the main k, per diagnosed layer
``fig4_fraction.csv``  Fig. 4: mean, sd, min, max over draws per (sampler, fraction)
``fig5_topk.csv``      Fig. 5: the same per (sampler, k) at the fixed fraction
``fig6_j.csv``         Fig. 6: the same per (sampler, j) at the fixed fraction
``fig7_time.csv``      Fig. 7: median, min, max of the creation times per (sampler, mode)
``timings.csv``        every timed run
``table4.csv``         Table IV: correct (incorrect) items per sample at the fixed fraction
=====================  =======================================================================

A value that does not apply is an empty field (``j`` of a sampler that ignores j); the spread
of a single draw is 0.

S1 is 1 by construction in a layer with at most k units (every unit is in both top-k sets), so
S1 means leave such layers out (:func:`dldiag.queries.evaluate`): ``scores.csv`` names them per
row (``s1_trivial_layers``), ``per_layer.csv`` flags them (``s1_trivial``, with ``n_units``)
and leaves their ``s1`` empty. S2 and S3 count every layer.

The summaries say over what they average: ``n_seeds`` draws drawn from ``n_fits`` distinct
fits (1 for a sampler whose fit takes no seed; ``n_seeds`` for one whose fit is repeated over
seeds, see :mod:`dldiag.experiments.runner`). ``n_sample`` is the mean size over the draws,
with ``n_sample_min`` and ``n_sample_max``: they differ only for a natural sample, whose size
is its fit's. The natural sample's ``fraction`` is the mean of ``n_sample / N``.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

__all__ = ["write_tables", "read_csv", "TABLES", "stats", "mean_size"]

TABLES = ("scores", "per_layer", "fig4_fraction", "fig5_topk", "fig6_j", "fig7_time", "timings", "table4")
METRICS = ("s1", "s2", "s3")


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        return format(float(value), ".6g")
    return str(value)


def _write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_fmt(row.get(h)) for h in header])
    os.replace(tmp, path)


def read_csv(path) -> list[dict]:
    """Rows of a CSV written here, numbers parsed (int, then float), empty fields as None."""
    def parse(text):
        if text == "":
            return None
        if text in ("true", "false"):
            return text == "true"
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    with open(path, newline="") as fh:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def stats(values) -> dict:
    """n, mean, sample sd (0 for one value), min and max of a list of numbers."""
    a = np.asarray(values, dtype=np.float64)
    return {"n": int(a.size), "mean": float(a.mean()), "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0,
            "min": float(a.min()), "max": float(a.max())}


def mean_size(sizes) -> int | float:
    """The mean of sample sizes: an int when it is one (every fixed-fraction draw), else a float."""
    mean = float(np.mean(sizes))
    return int(mean) if mean.is_integer() else mean


def _size_mode(r) -> str:
    return "natural" if r["fraction"] is None else "fraction"


def _score_rows(results_eval, n_items) -> list[dict]:
    rows = []
    for r in results_eval:
        for k, m in sorted(r["scores"].items(), key=lambda kv: int(kv[0])):
            rows.append({
                "sampler": r["sampler"],
                "weighted": r["sampler"].endswith("-weighted"),
                "size_mode": _size_mode(r),
                "fraction": r["fraction"] if r["fraction"] is not None else r["n_sample"] / n_items,
                "n_sample": r["n_sample"],
                "j": r["j"],
                "seed": r["seed"],
                "fit_seed": r.get("fit_seed"),
                "k": int(k),
                "s1": m["s1"], "s2": m["s2"], "s3": m["s3"],
                "s1_trivial_layers": " ".join(r.get("s1_trivial_layers", {}).get(k, ())),
                "n_correct": r["n_correct"],
                "n_incorrect": r["n_incorrect"],
                "draw_seconds": r["draw_seconds"],
                "tags": " ".join(r.get("tags", ())),
            })
    return rows


def _summarise(rows, by, metrics=METRICS) -> list[dict]:
    groups = defaultdict(list)
    for row in rows:
        # Natural samples of different fits differ in size, hence in fraction: one group.
        natural = row["size_mode"] == "natural"
        groups[tuple(None if natural and b == "fraction" else row[b] for b in by)].append(row)
    out = []
    for key, members in groups.items():
        entry = dict(zip(by, key))
        if "fraction" in entry and entry["fraction"] is None:
            entry["fraction"] = float(np.mean([m["fraction"] for m in members]))
        entry["n_seeds"] = len(members)
        entry["n_fits"] = len({m.get("fit_seed") for m in members})
        sizes = [m["n_sample"] for m in members]
        entry["n_sample"] = mean_size(sizes)
        entry["n_sample_min"], entry["n_sample_max"] = min(sizes), max(sizes)
        for metric in metrics:
            # S1 is None where every layer is trivial at that k (queries.evaluate): no number
            values = [m[metric] for m in members if m[metric] is not None]
            s = stats(values) if values else {}
            for name in ("mean", "sd", "min", "max"):
                entry[f"{metric}_{name}"] = s.get(name)
        out.append(entry)
    return out


def _stat_header(metrics=METRICS) -> list[str]:
    return [f"{m}_{s}" for m in metrics for s in ("mean", "sd", "min", "max")]


def write_tables(out, results_eval, results_timing, meta) -> None:
    """Write every CSV of the module docstring under ``out`` (atomically, file by file)."""
    out = Path(out)
    cfg = meta["config"]
    k_main, n_items = cfg["k"], meta["n_items"]
    order = {n: i for i, n in enumerate(meta["samplers"])}

    def sort(rows, *keys):
        return sorted(rows, key=lambda r: (order.get(r["sampler"], 99),) + tuple(
            (r[k] is None, r[k] if r[k] is not None else 0) for k in keys))

    scores = sort(_score_rows(results_eval, n_items), "size_mode", "fraction", "j", "seed", "k")
    _write_csv(out / "scores.csv",
               ["sampler", "weighted", "size_mode", "fraction", "n_sample", "j", "seed", "fit_seed", "k",
                "s1", "s2", "s3", "s1_trivial_layers", "n_correct", "n_incorrect", "draw_seconds", "tags"],
               scores)

    layer_rows = []
    for r in results_eval:
        for layer, m in r["per_layer"].items():
            layer_rows.append({"sampler": r["sampler"], "size_mode": _size_mode(r),
                               "fraction": r["fraction"] if r["fraction"] is not None else r["n_sample"] / n_items,
                               "j": r["j"], "seed": r["seed"], "fit_seed": r.get("fit_seed"),
                               "k": k_main, "layer": layer, **m})
    _write_csv(out / "per_layer.csv",
               ["sampler", "size_mode", "fraction", "j", "seed", "fit_seed", "k", "layer", "n_units", "s1_trivial",
                "s1", "s2", "s3"],
               sort(layer_rows, "fraction", "j", "seed"))

    def tagged(tag, k=None):
        return [r for r in scores if tag in r["tags"].split() and (k is None or r["k"] == k)]

    by_sampler = ["sampler", "weighted", "size_mode"]
    sizes = ["n_sample", "n_sample_min", "n_sample_max"]
    fig4 = _summarise(tagged("fig4", k_main), by_sampler + ["fraction"])
    _write_csv(out / "fig4_fraction.csv",
               by_sampler + ["fraction", *sizes, "n_seeds", "n_fits", "k"] + _stat_header(),
               [dict(r, k=k_main) for r in sort(fig4, "size_mode", "fraction")])
    fig5 = _summarise(tagged("fig5"), by_sampler + ["fraction", "k"])
    _write_csv(out / "fig5_topk.csv",
               by_sampler + ["fraction", *sizes, "k", "n_seeds", "n_fits"] + _stat_header(("s1",)),
               sort(fig5, "size_mode", "k"))
    fig6 = _summarise(tagged("fig6", k_main), by_sampler + ["fraction", "j"])
    _write_csv(out / "fig6_j.csv",
               by_sampler + ["fraction", *sizes, "j", "n_seeds", "n_fits", "k"] + _stat_header(),
               [dict(r, k=k_main) for r in sort(fig6, "j")])

    t4 = _summarise(tagged("table4", k_main), by_sampler + ["fraction"], metrics=("n_correct", "n_incorrect"))
    t4 = sort(t4, "size_mode")
    n_correct = n_items - meta["n_incorrect"]
    t4.insert(0, {"sampler": "all", "weighted": False, "size_mode": "all", "fraction": 1.0,
                  "n_sample": n_items, "n_sample_min": n_items, "n_sample_max": n_items,
                  "n_seeds": 1, "n_fits": 1, **{f"n_correct_{s}": n_correct for s in ("mean", "min", "max")},
                  **{f"n_incorrect_{s}": meta["n_incorrect"] for s in ("mean", "min", "max")}})
    _write_csv(out / "table4.csv",
               by_sampler + ["fraction", *sizes, "n_seeds", "n_fits", "n_correct_mean", "n_correct_min",
                             "n_correct_max", "n_incorrect_mean", "n_incorrect_min", "n_incorrect_max"], t4)

    timing_rows = []
    for r in results_timing:
        for i, t in enumerate(r["times"]):
            timing_rows.append({"sampler": r["sampler"], "mode": r["mode"], "run": r["run"] + i,
                                "fraction": r["fraction"], "seconds": t})
    timing_rows = sort(timing_rows, "mode", "run")
    _write_csv(out / "timings.csv", ["sampler", "mode", "run", "fraction", "seconds"], timing_rows)
    groups = defaultdict(list)
    for r in timing_rows:
        groups[(r["sampler"], r["mode"])].append(r["seconds"])
    fig7 = []
    for (name, mode), times in groups.items():
        s = stats(times)
        fig7.append({"sampler": name, "weighted": name.endswith("-weighted"), "mode": mode,
                     "fraction": cfg["fixed_fraction"], "n_runs": s["n"],
                     "median_s": float(np.median(times)), "min_s": s["min"], "max_s": s["max"]})
    _write_csv(out / "fig7_time.csv",
               ["sampler", "weighted", "mode", "fraction", "n_runs", "median_s", "min_s", "max_s"],
               sort(fig7, "mode"))
