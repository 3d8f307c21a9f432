"""Can the estimates be trusted? Sample-alone estimates against the full data (issue 12, item 2).

For every draw of a sample, every group (layer, class, outcome) non-empty on the full data gets
both answers: the *estimate* of :mod:`dldiag.estimates` (a bootstrap over the sample's items of
the group, computed from the sample alone) and the *measured* accuracy against the full data
(what :meth:`~dldiag.artifacts.Workspace.evaluate` gives). Two questions are asked of them:

- **Correlation**: across (draw, group) pairs, do the estimated S1 precision@k, S2 cosine
  distance and S3 JS distance follow the measured ones (Pearson and Spearman), and by how much
  is the estimate off on average (bias = estimated − measured)? Layers with at most k units
  have S1 = 1 by construction (``trivial``) and are left out of S1.
- **Coverage**: does each unit's nominal-``level`` interval of S2's mean (``mean_low``,
  ``mean_high``) contain the full data's mean of that unit over the group? Counted for both
  interval kinds of :data:`dldiag.estimates.INTERVALS`, each without and with the
  finite-population correction (``percentile``, ``expanded``, ``percentile+fpc``,
  ``expanded+fpc``), by group size in the sample, and with and without the units whose interval
  has zero width (a unit constant over the group's sample items: for a ReLU layer, never active
  in them).

The correlation is reported for the estimates without and with the correction (``fpc``).

Draws. As in the report's grid, draw ``d`` of a randomised sampler uses sample seed ``d``, and
of a sampler whose fit takes a seed the fit of seed ``d``
(:meth:`~dldiag.artifacts.LatentArtifacts.fitted_sampler`, cached): a deterministic one
(max-margin, gmm-full, the EB tree) gives one sample per fit, a weighted variant a new fit and
a new sample seed. The bootstrap of draw ``d`` uses seed ``d``.

Output (``OUT/``):

- ``calibration.csv``: one row per draw × group, with the three estimates, their intervals,
  the measured values and the unit counts of the coverage check (``units``, ``covered_*``,
  ``zero_width``, ``covered_zero_width``), so that every summary can be recomputed from it;
- ``calibration_correlation.csv``: per (sampler, fraction, query set) the pooled Pearson and
  Spearman correlations, the median within-draw Spearman correlation across groups, the mean
  bias and the share of groups whose measured value lies in the estimate's interval;
- ``calibration_coverage.csv``: per (sampler, fraction, interval kind, layer, group-size bin)
  the pooled per-unit coverage, with and without zero-width units (layer and bin ``all`` pool);
- ``calibration.md``, ``calibration.png``, ``calibration.html``, ``calibration.json`` (settings
  and run times); ``--replot`` rewrites these and the two summaries from an earlier run's CSV,
  and ``--stem`` names the files otherwise (a run of another fraction beside the default one).

Examples
--------
::

    python -m dldiag.experiments.calibration --dataset fashion-mnist --out results/fashion-mnist \\
        --samplers random,stratified-cm,max-margin,gmm-full:20
    python -m dldiag.experiments.calibration --quick --out /tmp/c      # digits, 5 draws
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from .._cli_args import add_workspace_args, float_list, name_list, workspace_kwargs
from .._validation import check_fraction, check_int, check_interval, check_option

__all__ = [
    "DEFAULT_SAMPLERS",
    "SIZE_BINS",
    "calibration_rows",
    "run_calibration",
    "correlation_summary",
    "coverage_summary",
    "size_bin",
    "read_rows",
    "calibration_markdown",
    "calibration_figure",
    "main",
]

METRICS = ("s1", "s2", "s3")
#: The probability samplers first (where the coverage target applies), then boundary samplers.
DEFAULT_SAMPLERS = ("random", "stratified-cm", "max-margin", "max-margin-weighted", "gmm-full", "eb-tree")
#: Group sizes in the sample: ``(label, lowest, highest)`` with both ends included.
SIZE_BINS = (("2-9", 2, 9), ("10-29", 10, 29), (">=30", 30, None))
_ALL = "all"
#: Relative slack when comparing a full mean with an interval bound: the sample's and the full
#: data's means of a unit constant over the group are sums of the same float32 values taken in
#: another order, which may differ in the last bits.
_RTOL = 1e-9


def size_bin(n: int) -> str | None:
    """The label of :data:`SIZE_BINS` that holds a group of ``n`` sample items (None below 2)."""
    for label, lo, hi in SIZE_BINS:
        if n >= lo and (hi is None or n <= hi):
            return label
    return None


#: The finite-population settings compared, and the suffix of their columns.
FPC_SUFFIX = {False: "", True: "+fpc"}


def variant_names(intervals=("percentile", "expanded"), fpc=(False, True)) -> tuple[str, ...]:
    """The coverage variants: each interval kind without, then with, the correction."""
    return tuple(kind + FPC_SUFFIX[f] for f in fpc for kind in intervals)


def _contains(low: np.ndarray, high: np.ndarray, value: np.ndarray) -> np.ndarray:
    slack = _RTOL * np.maximum(1.0, np.abs(value))
    return (low - slack <= value) & (value <= high + slack)


def calibration_rows(ws, indices: np.ndarray, *, k: int = 10, unit_mode: str = "flat", n_boot: int = 200,
                     level: float = 0.9, seed: int = 0, intervals=("percentile", "expanded"),
                     fpc=(False, True)) -> list[dict]:
    """Estimated and measured S1–S3, and S2's per-unit coverage, of every group of one sample.

    Parameters
    ----------
    ws : Workspace
    indices : ndarray of int
        The sample.
    k, unit_mode : as for :meth:`~dldiag.artifacts.Workspace.evaluate`
    n_boot, level, seed : as for :meth:`~dldiag.artifacts.Workspace.estimate`
    intervals : sequence of {"percentile", "expanded"}
        Interval kinds whose per-unit coverage is counted. The first one's S1–S3 estimates are
        reported; every kind shares the same resamples (same ``seed``), so they are equal.
    fpc : sequence of bool
        Without (False) and/or with (True) the finite-population correction, each group's size
        counted from the model's predictions of every item.

    Returns
    -------
    list of dict
        One row per (layer, class, outcome) group non-empty on the full data: ``layer``,
        ``cls``, ``outcome``, ``n_full``, ``n_group`` (the group's sample items), ``units``,
        ``s1_trivial``; for each query set ``<m>_meas`` (measured against the full data),
        ``<m>_est``, ``<m>_low``, ``<m>_high`` (NaN where the group has no estimate, and for a
        trivial S1), the same with the suffix ``+fpc`` for the corrected estimate;
        ``zero_width`` and ``covered_zero_width`` (units whose uncorrected interval has zero
        width, and how many of them contain the full mean), and per variant
        (:func:`variant_names`) ``covered_<variant>`` (units whose interval contains the full
        mean; 0 without estimate).
    """
    from threadpoolctl import threadpool_limits

    from ..activations import OUTCOMES, collect_activations
    from ..estimates import INTERVALS, GroupEstimate, estimate_groups, group_sizes
    from ..queries import answer, answer_rows, compare_group

    intervals = tuple(check_option("intervals", kind, INTERVALS) for kind in intervals)
    if not intervals:
        raise ValueError(f"intervals must hold at least one of {INTERVALS}; got ()")
    fpc = tuple(dict.fromkeys(bool(f) for f in fpc))
    if not fpc:
        raise ValueError("fpc must hold False, True or both; got ()")
    indices = np.asarray(indices, dtype=np.int64)
    # The activations are not kept in the workspace's samples tier: every draw is new, and
    # hundreds of them would evict what the app and colleagues keep there.
    with ws.pool.lease() as model:
        y_pred, acts = collect_activations(model, ws.dataset.x_test, ws.layers, indices, unit_modes=(unit_mode,),
                                           batch_size=ws.batch_size, output=ws.output, transform=ws.transform)
    acts = {layer: acts[layer, unit_mode] for layer in ws.layers}
    y_true = ws.y_true[indices]
    # Many small matrix products: one BLAS thread is 3x faster on a loaded machine than
    # several competing threads (measured on Fashion-MNIST: 0.3 s against 0.9 s per sample).
    sizes = group_sizes(ws.y_true, ws.y_pred, ws.dataset.n_classes)
    with threadpool_limits(1):
        estimates = {kind + FPC_SUFFIX[f]: estimate_groups(
                         acts, y_true, y_pred, n_classes=ws.dataset.n_classes, k=k, n_boot=n_boot, level=level,
                         seed=seed, unit_mode=unit_mode, interval=kind, group_sizes=sizes if f else None)
                     for f in fpc for kind in intervals}
    right = y_pred == y_true
    rows = []
    for layer in ws.layers:
        full_agg = ws.full[layer, unit_mode]
        for cls in range(ws.dataset.n_classes):
            for outcome in OUTCOMES:
                full = answer(full_agg, k, cls, outcome)
                if full.count == 0:
                    continue
                members = np.flatnonzero((y_true == cls) & (right if outcome == "correct" else ~right))
                x = acts[layer][members]
                measured = compare_group(answer_rows(x, k), full)
                trivial = full_agg.n_units <= k
                row = {"layer": layer, "cls": cls, "outcome": outcome, "n_full": full.count,
                       "n_group": len(members), "units": full_agg.n_units, "s1_trivial": trivial}
                first = {f: estimates[intervals[0] + FPC_SUFFIX[f]].lookup(layer, cls, outcome) for f in fpc}
                have = isinstance(first[fpc[0]], GroupEstimate)
                for m in METRICS:
                    keep = have and not (m == "s1" and trivial)
                    row[f"{m}_meas"] = float("nan") if (m == "s1" and trivial) else measured[m]
                    for f in fpc:
                        est = getattr(first[f], m) if keep else None
                        for part in ("est", "low", "high"):
                            row[f"{m}_{part}{FPC_SUFFIX[f]}"] = (getattr(est, "value" if part == "est" else part)
                                                                 if keep else float("nan"))
                if have:
                    plain = estimates[intervals[0] + FPC_SUFFIX[fpc[0]]].lookup(layer, cls, outcome)
                    zero = plain.mean_low == plain.mean_high
                    row["zero_width"] = int(zero.sum())
                    inside = _contains(plain.mean_low, plain.mean_high, full.mean)
                    row["covered_zero_width"] = int((zero & inside).sum())
                else:
                    row["zero_width"] = row["covered_zero_width"] = 0
                for variant, est in estimates.items():
                    est = est.lookup(layer, cls, outcome)
                    row[f"covered_{variant}"] = (int(_contains(est.mean_low, est.mean_high, full.mean).sum())
                                                 if have else 0)
                rows.append(row)
    return rows


def _parse_samplers(samplers, draws: int) -> list[tuple[str, int]]:
    from ..sampling import SAMPLER_NAMES

    out = []
    for spec in samplers:
        name, _, count = str(spec).partition(":")
        check_option("samplers", name, SAMPLER_NAMES)
        if count:
            try:
                n = int(count)
            except ValueError:
                raise ValueError(f"samplers: the draws after ':' must be an integer >= 1; got {spec!r}") from None
            out.append((name, check_int("samplers draws", n, 1)))
        else:
            out.append((name, draws))
    return out


def run_calibration(ws, *, samplers=DEFAULT_SAMPLERS, fractions=(0.05,), draws: int = 100, k: int = 10,
                    unit_mode: str = "flat", n_boot: int = 200, level: float = 0.9, j: float = 0.7,
                    intervals=("percentile", "expanded"), fpc=(False, True), log=None) -> tuple[list[dict], dict]:
    """Calibration rows of every draw of every sampler and fraction.

    Parameters
    ----------
    ws : Workspace
    samplers : sequence of str
        Sampler names, each optionally ``name:draws`` to override ``draws`` for it.
    fractions : sequence of float
        Sample fractions.
    draws : int
        Draws per sampler and fraction: draw ``d`` is sample seed ``d`` of a randomised sampler
        and fit seed ``d`` of a sampler whose fit takes a seed (both for a weighted variant).
    k, unit_mode, n_boot, level, intervals, fpc : see :func:`calibration_rows`
    j : float
        Boundary share of the ratio samplers.
    log : callable, optional
        Receives one line per (sampler, fraction).

    Returns
    -------
    rows : list of dict
        :func:`calibration_rows` of each draw with ``sampler``, ``fraction``, ``draw``,
        ``sample_seed``, ``fit_seed`` and ``n_sample`` in front.
    seconds : dict
        ``{sampler: seconds}`` over its fractions and draws (fits included).
    """
    fractions = tuple(sorted({float(check_fraction(f)) for f in fractions}))
    draws = check_int("draws", draws, 1)
    j = check_interval("j", j, 0.0, 1.0)
    plan = _parse_samplers(samplers, draws)
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    rows, seconds = [], {}
    from ..sampling import SAMPLERS

    for name, n_draws in plan:
        start = time.perf_counter()
        cls = SAMPLERS[name]
        for fraction in fractions:
            for d in range(n_draws):
                fit_seed, sample_seed = (d if cls.seeded_fit else 0), (d if cls.randomised else 0)
                sampler = ws.fitted_sampler(name, seed=fit_seed)
                idx = sampler.sample(fraction, j=j, seed=sample_seed)
                head = {"sampler": name, "fraction": fraction, "draw": d, "sample_seed": sample_seed,
                        "fit_seed": fit_seed, "n_sample": len(idx)}
                for r in calibration_rows(ws, idx, k=k, unit_mode=unit_mode, n_boot=n_boot, level=level, seed=d,
                                          intervals=intervals, fpc=fpc):
                    rows.append({**head, **r})
        seconds[name] = time.perf_counter() - start
        log(f"{name}: {len(fractions)} fraction(s) x {n_draws} draws in {seconds[name]:.1f} s")
    return rows, seconds


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")  # undefined for a constant side
    return float(np.corrcoef(x, y)[0, 1])


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import rankdata

    return _pearson(rankdata(x), rankdata(y)) if len(x) >= 3 else float("nan")


def _keys(rows, *fields):
    return list(dict.fromkeys(tuple(r[f] for f in fields) for r in rows))


def correlation_summary(rows: list[dict]) -> list[dict]:
    """Estimated against measured S1–S3 per (sampler, fraction, query set).

    Over the (draw, group) pairs that have an estimate (and, for S1, a non-trivial layer):
    ``pearson`` and ``spearman`` pooled over all pairs; ``spearman_within`` the median over
    draws of the Spearman correlation across one draw's groups (how well one sample ranks its
    groups); ``bias`` the mean of estimated − measured; ``in_interval`` the share of pairs
    whose measured value lies in the estimate's interval; means of both sides. One row per
    finite-population setting present in ``rows`` (``fpc``).
    """
    out = []
    settings = [f for f, suffix in FPC_SUFFIX.items() if rows and f"s2_est{suffix}" in rows[0]]
    for sampler, fraction in _keys(rows, "sampler", "fraction"):
        mine = [r for r in rows if r["sampler"] == sampler and r["fraction"] == fraction]
        for m, f in ((m, f) for f in settings for m in METRICS):
            e = f"{m}_est{FPC_SUFFIX[f]}"
            pairs = [r for r in mine if np.isfinite(r[e])]
            est = np.array([r[e] for r in pairs], dtype=float)
            meas = np.array([r[f"{m}_meas"] for r in pairs], dtype=float)
            low = np.array([r[f"{m}_low{FPC_SUFFIX[f]}"] for r in pairs], dtype=float)
            high = np.array([r[f"{m}_high{FPC_SUFFIX[f]}"] for r in pairs], dtype=float)
            within = []
            for (d,) in _keys(pairs, "draw"):
                one = [r for r in pairs if r["draw"] == d]
                within.append(_spearman(np.array([r[e] for r in one]), np.array([r[f"{m}_meas"] for r in one])))
            within = np.array(within, dtype=float)
            out.append({"sampler": sampler, "fraction": fraction, "metric": m, "fpc": f,
                        "n_draws": len({r["draw"] for r in mine}), "n_pairs": len(pairs),
                        "n_without_estimate": sum(1 for r in mine if not np.isfinite(r[e])
                                                  and not (m == "s1" and r["s1_trivial"])),
                        "pearson": _pearson(est, meas), "spearman": _spearman(est, meas),
                        "spearman_within": float(np.nanmedian(within)) if np.isfinite(within).any() else float("nan"),
                        "est_mean": float(est.mean()) if len(est) else float("nan"),
                        "meas_mean": float(meas.mean()) if len(meas) else float("nan"),
                        "bias": float(np.mean(est - meas)) if len(est) else float("nan"),
                        "in_interval": float(np.mean((low <= meas) & (meas <= high))) if len(est) else float("nan")})
    return out


def coverage_summary(rows: list[dict], intervals=None) -> list[dict]:
    """Pooled per-unit coverage of S2's intervals per (sampler, fraction, interval, layer, size bin).

    ``intervals`` names the variants (:func:`variant_names`); default: every ``covered_*``
    column of ``rows``.

    ``coverage`` is covered units / units over every group with an estimate in the cell;
    ``coverage_varying`` leaves out the units whose interval has zero width (constant over the
    group's sample items) and ``coverage_zero_width`` is the share of those that contain the
    full mean anyway (the unit is that constant, e.g. dead, on the full group too). The layer
    and size bin ``"all"`` pool every layer and size; pooled over layers, a layer weighs by its
    units (conv1 of LeNet-5 holds 4,704 of 6,518).
    """
    out = []
    if intervals is None:
        intervals = [c.removeprefix("covered_") for c in (rows[0] if rows else ())
                     if c.startswith("covered_") and c != "covered_zero_width"]
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    for sampler, fraction in _keys(rows, "sampler", "fraction"):
        mine = [r for r in rows if r["sampler"] == sampler and r["fraction"] == fraction
                and np.isfinite(r["s2_est"])]
        for kind in intervals:
            for layer in [_ALL] + layers:
                for label in (_ALL,) + tuple(b[0] for b in SIZE_BINS):
                    rs = [r for r in mine if (layer == _ALL or r["layer"] == layer)
                          and (label == _ALL or size_bin(r["n_group"]) == label)]
                    units = sum(r["units"] for r in rs)
                    covered = sum(r[f"covered_{kind}"] for r in rs)
                    zero = sum(r["zero_width"] for r in rs)
                    zero_cov = sum(r["covered_zero_width"] for r in rs)
                    out.append({"sampler": sampler, "fraction": fraction, "interval": kind, "layer": layer,
                                "size": label, "n_groups": len(rs), "n_draws": len({r["draw"] for r in rs}),
                                "units": units, "coverage": covered / units if units else float("nan"),
                                "zero_width_share": zero / units if units else float("nan"),
                                "coverage_varying": ((covered - zero_cov) / (units - zero) if units > zero
                                                     else float("nan")),
                                "coverage_zero_width": zero_cov / zero if zero else float("nan")})
    return out


#: Columns of ``calibration.csv`` that are not floats, and how to read them back.
_INT_COLUMNS = ("draw", "sample_seed", "fit_seed", "n_sample", "cls", "n_full", "n_group", "units",
                "zero_width", "covered_zero_width")


def read_rows(path) -> list[dict]:
    """The rows of a ``calibration.csv`` with their types (ints, floats, bools) restored."""
    out = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            row = {}
            for key, value in r.items():
                if key in ("sampler", "layer", "outcome"):
                    row[key] = value
                elif key == "s1_trivial":
                    row[key] = value == "True"
                elif key in _INT_COLUMNS or key.startswith("covered_"):
                    row[key] = int(value)
                else:
                    row[key] = float(value)
            out.append(row)
    return out


def _write_csv(path: Path, rows: list[dict], *, exact: bool = False) -> None:
    """Floats at 6 significant digits, or ``exact`` (shortest round-trip repr): the per-draw rows
    are written exactly so that ``--replot`` recomputes the same summaries (rounding would turn
    near-equal values into ties and move the Spearman ranks)."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ((repr(v) if exact else f"{v:.6g}") if isinstance(v, float) else v)
                             for k, v in r.items()})


def _f(v: float, spec: str = ".2f") -> str:
    return "–" if not np.isfinite(v) else format(v, spec)


def calibration_markdown(correlation: list[dict], coverage: list[dict], meta: dict) -> str:
    """The correlation table and the coverage tables (by group size, with/without zero-width units)."""
    level = round(100 * meta["level"])
    lines = [f"## Can the estimates be trusted? — {meta['dataset']} (N = {meta['n_items']}, k = {meta['k']}, "
             f"unit mode {meta['unit_mode']}, B = {meta['n_boot']} resamples, nominal {level} %)", "",
             "Estimated (bootstrap over the sample alone) against measured (against the full data), per group "
             "and draw. S1: precision@k, layers with at most k units left out; S2: cosine distance; S3: JS "
             "distance. *pooled*: over all (draw, group) pairs; *within*: median over draws of the Spearman "
             "correlation across one sample's groups; *bias*: mean estimated − measured (S1 > 0 and S2, S3 < 0 "
             "are optimistic); *in CI*: share of pairs whose measured value lies in the estimate's interval; "
             "*FPC*: with the finite-population correction sqrt(1 − n/N) of each group.", "",
             "| sampler | f | draws | query set | FPC | pairs | Pearson | Spearman pooled | Spearman within "
             "| est. mean | meas. mean | bias | in CI |",
             "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(correlation, key=lambda r: (_keys(correlation, "sampler", "fraction").index(
            (r["sampler"], r["fraction"])), METRICS.index(r["metric"]), bool(r.get("fpc", False)))):
        fpc = "yes" if r.get("fpc", False) else "no"
        lines.append(f"| {r['sampler']} | {100 * r['fraction']:g} % | {r['n_draws']} | {r['metric'].upper()} | {fpc} | "
                     f"{r['n_pairs']} | {_f(r['pearson'])} | {_f(r['spearman'])} | {_f(r['spearman_within'])} | "
                     f"{_f(r['est_mean'], '.3f')} | {_f(r['meas_mean'], '.3f')} | {_f(r['bias'], '+.3f')} | "
                     f"{_f(100 * r['in_interval'], '.0f')} % |")
    sizes = (_ALL,) + tuple(b[0] for b in SIZE_BINS)
    for column, title in (("coverage", "every unit"),
                          ("coverage_varying", "without zero-width units (units constant over the group's "
                                               "sample items, for ReLU layers never active in them)")):
        lines += ["", f"### Coverage of S2's per-unit {level} % intervals — {title}", "",
                  "Share of (draw, group, unit) triples whose interval contains the full group's mean; groups of "
                  "2–9, 10–29 and ≥ 30 sample items; (groups with an estimate in brackets).", "",
                  "| sampler | f | interval | " + " | ".join(sizes) + " |",
                  "|---|---:|---|" + "---:|" * len(sizes)]
        for sampler, fraction, kind in _keys(coverage, "sampler", "fraction", "interval"):
            cells = []
            for s in sizes:
                r = next(c for c in coverage if (c["sampler"], c["fraction"], c["interval"], c["layer"], c["size"])
                         == (sampler, fraction, kind, _ALL, s))
                cells.append(f"{_f(100 * r[column], '.1f')} % ({r['n_groups']})" if r["n_groups"] else "–")
            lines.append(f"| {sampler} | {100 * fraction:g} % | {kind} | " + " | ".join(cells) + " |")
    layers = [lay for lay in dict.fromkeys(c["layer"] for c in coverage) if lay != _ALL]
    kinds = list(dict.fromkeys(c["interval"] for c in coverage))
    lines += ["", f"### Coverage by layer — without zero-width units, {' / '.join(kinds)} (%)", "",
              "Pooled over layers a layer weighs by its units; here each layer on its own (its units in "
              "brackets).", "",
              "| sampler | f | size | " + " | ".join(
                  f"{lay} ({next(c['units'] // max(c['n_groups'], 1) for c in coverage if c['layer'] == lay)})"
                  for lay in layers) + " |",
              "|---|---:|---|" + "---:|" * len(layers)]
    for sampler, fraction in _keys(coverage, "sampler", "fraction"):
        for s in sizes:
            cells = []
            for lay in layers:
                pair = [next(c for c in coverage if (c["sampler"], c["fraction"], c["interval"], c["layer"], c["size"])
                             == (sampler, fraction, kind, lay, s)) for kind in kinds]
                cells.append(" | ".join(_f(100 * c["coverage_varying"], ".0f") for c in pair)
                             .replace(" | ", " / ") if pair[0]["n_groups"] else "–")
            lines.append(f"| {sampler} | {100 * fraction:g} % | {s} | " + " | ".join(cells) + " |")
    lines += ["", "Zero-width units: share of all units, and how many of them contain the full mean anyway.", "",
              "| sampler | f | zero-width share | of which covered |", "|---|---:|---:|---:|"]
    for r in coverage:
        if r["size"] == _ALL and r["layer"] == _ALL and r["interval"] == coverage[0]["interval"]:
            lines.append(f"| {r['sampler']} | {100 * r['fraction']:g} % | {_f(100 * r['zero_width_share'], '.1f')} % "
                         f"| {_f(100 * r['coverage_zero_width'], '.1f')} % |")
    return "\n".join(lines) + "\n"


def calibration_figure(rows: list[dict], coverage: list[dict], meta: dict, *, max_points: int = 1500,
                       seed: int = 0):
    """Estimated vs measured per query set (scatter) and S2's coverage by sampler and group size (bars).

    Parameters
    ----------
    rows : list of dict
        The per-draw rows (``calibration.csv``).
    coverage : list of dict
        :func:`coverage_summary`.
    meta : dict
        ``dataset``, ``n_items``, ``k``, ``level``.
    max_points : int
        Most points per sampler and panel; more are thinned at random (``seed``) so that the
        HTML stays small. Every point is in the CSV.
    seed : int
        Seed of the thinning.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from ..palette import sampler_color

    variants = list(dict.fromkeys(c["interval"] for c in coverage))
    titles = ["S1 precision@{k}".format(k=meta["k"]), "S2 cosine distance", "S3 JS distance",
              f"S2 per-unit coverage of the {round(100 * meta['level'])} % intervals ({' | '.join(variants)})"]
    fig = make_subplots(rows=2, cols=3, specs=[[{}, {}, {}], [{"colspan": 3}, None, None]],
                        subplot_titles=titles, vertical_spacing=0.16, horizontal_spacing=0.06)
    rng = np.random.default_rng(seed)
    samplers = list(dict.fromkeys(r["sampler"] for r in rows))
    fractions = sorted({r["fraction"] for r in rows})
    for col, m in enumerate(METRICS, start=1):
        top = 0.0
        for name in samplers:
            for fraction in fractions:
                pts = [r for r in rows if r["sampler"] == name and r["fraction"] == fraction
                       and np.isfinite(r[f"{m}_est"])]
                if len(pts) > max_points:
                    pts = [pts[i] for i in np.sort(rng.choice(len(pts), max_points, replace=False))]
                if not pts:
                    continue
                x = [r[f"{m}_meas"] for r in pts]
                y = [r[f"{m}_est"] for r in pts]
                top = max(top, max(x), max(y))
                fig.add_trace(go.Scatter(
                    x=x, y=y, mode="markers", name=f"{name} {100 * fraction:g} %",
                    legendgroup=f"{name}{fraction}", showlegend=col == 1,
                    marker=dict(size=4, opacity=0.35, color=sampler_color(name),
                                symbol="circle" if fraction == fractions[0] else "diamond"),
                    customdata=[[r["layer"], r["cls"], r["outcome"], r["n_group"], r["draw"]] for r in pts],
                    hovertemplate=(f"<b>{name}</b> %{{customdata[0]}}, class %{{customdata[1]}} "
                                   "%{customdata[2]}<br>%{customdata[3]} sample items, draw %{customdata[4]}"
                                   f"<br>measured %{{x:.3f}}, estimated %{{y:.3f}}<extra></extra>"),
                ), row=1, col=col)
        fig.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", line=dict(color="#888", dash="dot"),
                                 showlegend=False, hoverinfo="skip"), row=1, col=col)
        fig.update_xaxes(title_text="measured (full data)", row=1, col=col)
        fig.update_yaxes(title_text="estimated (sample alone)", row=1, col=col)
    sizes = [b[0] for b in SIZE_BINS]
    short = {"percentile": "pct", "expanded": "exp"}
    for kind, pattern in zip(variants, ("", "/", ".", "x")):
        base, _, corrected = kind.partition("+")
        for fraction in fractions:
            for label in sizes:
                cells = [c for c in coverage if c["interval"] == kind and c["fraction"] == fraction
                         and c["size"] == label and c["layer"] == _ALL]
                if not cells:
                    continue
                fig.add_trace(go.Bar(
                    x=[[c["sampler"] for c in cells],
                       [f"{label} · {short.get(base, base)}{'+' + corrected if corrected else ''}" for c in cells]],
                    y=[c["coverage_varying"] for c in cells],
                    marker=dict(color=[sampler_color(c["sampler"]) for c in cells], pattern_shape=pattern,
                                opacity=0.5 + 0.25 * sizes.index(label)),
                    name=f"{label} items, {kind}", showlegend=False,
                    customdata=[[c["coverage"], c["n_groups"], c["zero_width_share"]] for c in cells],
                    hovertemplate=("<b>%{x}</b><br>coverage without zero-width units %{y:.3f}<br>with them "
                                   "%{customdata[0]:.3f}; %{customdata[1]} groups<extra></extra>"),
                ), row=2, col=1)
    fig.add_hline(y=meta["level"], line=dict(color="#444", dash="dot"), row=2, col=1)
    fig.add_hline(y=0.85, line=dict(color="#c00", dash="dash", width=1), row=2, col=1)
    fig.update_yaxes(title_text="coverage (units varying in the sample)", range=[0, 1.02], row=2, col=1)
    fig.update_layout(
        title=dict(text=(f"<b>Estimates from the sample alone vs the full data</b> · {meta['dataset']} "
                         f"(N = {meta['n_items']}, k = {meta['k']})<br><span style='font-size:13px;color:#555'>"
                         "top: one point per (draw, group), dotted = estimate equals measurement; bottom: share "
                         "of S2 unit intervals holding the full group mean by sampler and group size in the "
                         "sample (" + ", ".join(f"{p} = {v}" for p, v in zip(("plain", "hatched", "dotted", "crossed"),
                                                                              variants))
                         + "); dotted line = nominal, dashed = 85 % target; points: estimates without the "
                         "finite-population correction</span>"), x=0.01, xanchor="left", font=dict(size=18)),
        barmode="group", template="plotly_white", width=1500, height=1050,
        font=dict(family="Arial, Helvetica, sans-serif", size=14, color="#222"),
        margin=dict(l=70, r=30, t=120, b=60), legend=dict(itemsizing="constant"),
    )
    return fig


def build_parser() -> argparse.ArgumentParser:
    from .report import add_output_args

    p = argparse.ArgumentParser(prog="python -m dldiag.experiments.calibration",
                                description="Sample-alone estimates against the full data: correlation and "
                                            "coverage.")
    add_workspace_args(p, dataset_default=None)
    add_output_args(p, quick_help="5 draws (default dataset: digits)")
    p.add_argument("--draws", type=int, default=None,
                   help="draws per sampler and fraction (default 100; 5 with --quick)")
    p.add_argument("--samplers", type=name_list, default=tuple(DEFAULT_SAMPLERS),
                   help="comma-separated samplers, each optionally NAME:DRAWS (default: %(default)s)")
    p.add_argument("--fractions", type=float_list, default=(0.05,), help="comma-separated fractions (default 0.05)")
    p.add_argument("--k", type=int, default=10, help="top-k of S1 (default 10)")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples (default 200)")
    p.add_argument("--level", type=float, default=0.9, help="nominal coverage (default 0.9)")
    p.add_argument("--stem", default="calibration",
                   help="file names OUT/STEM.csv, STEM_correlation.csv, STEM_coverage.csv, STEM.md, STEM.png, "
                        "STEM.html, STEM.json (default: %(default)s), so that runs of other fractions can sit "
                        "beside the default one")
    p.add_argument("--replot", action="store_true",
                   help="draw nothing: rewrite the summaries, tables and figure from OUT/STEM.csv and "
                        "OUT/STEM.json of an earlier run")
    return p


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    from ..artifacts import load_workspace
    from .report import PNG_HINT, dataset_and_out, write_figure

    dataset, out = dataset_and_out(args)
    draws = args.draws or (5 if args.quick else 100)
    samplers = list(args.samplers)
    fractions = args.fractions
    stem = args.stem
    if not stem or "/" in stem or stem.startswith("."):
        print(f"error: --stem must be a plain file name stem such as 'calibration'; got {stem!r}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    if args.replot:
        if not (out / f"{stem}.csv").exists() or not (out / f"{stem}.json").exists():
            print(f"error: --replot needs {stem}.csv and {stem}.json in {out}/ (from an earlier run)",
                  file=sys.stderr)
            return 2
        rows = read_rows(out / f"{stem}.csv")
        meta = json.loads((out / f"{stem}.json").read_text())
    else:
        try:
            ws = load_workspace(dataset, **workspace_kwargs(args), show_progress=False)
            t_load = time.perf_counter() - start
            rows, seconds = run_calibration(ws, samplers=samplers, fractions=fractions, draws=draws, k=args.k,
                                            n_boot=args.n_boot, level=args.level)
        except (ValueError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        t_draws = time.perf_counter() - start - t_load
        out.mkdir(parents=True, exist_ok=True)
        meta = {"dataset": ws.dataset.name, "n_items": ws.n_items, "k": args.k, "unit_mode": "flat",
                "n_boot": args.n_boot, "level": args.level, "draws": draws, "samplers": samplers,
                "fractions": list(fractions), "weights_hash": ws.model_info.get("weights_hash"),
                "load_seconds": t_load, "draws_seconds": t_draws, "sampler_seconds": seconds,
                "command": ("python -m dldiag.experiments.calibration "
                            + " ".join(sys.argv[1:] if argv is None else argv))}
        _write_csv(out / f"{stem}.csv", rows, exact=True)
    correlation = correlation_summary(rows)
    coverage = coverage_summary(rows)
    _write_csv(out / f"{stem}_correlation.csv", correlation)
    _write_csv(out / f"{stem}_coverage.csv", coverage)
    (out / f"{stem}.md").write_text(calibration_markdown(correlation, coverage, meta))
    problem = write_figure(calibration_figure(rows, coverage, meta), out, stem,
                           title="Sample-alone estimates against the full data", plotlyjs=args.plotlyjs,
                           png=not args.no_png)
    if not args.replot:
        meta["total_seconds"] = time.perf_counter() - start
        (out / f"{stem}.json").write_text(json.dumps(meta, indent=1))
    print(f"{meta['dataset']}: {len(rows)} (draw, group) rows; load {meta['load_seconds']:.1f} s, draws "
          f"{meta['draws_seconds']:.1f} s, total {meta['total_seconds']:.1f} s; wrote {stem}.csv, "
          f"{stem}_correlation.csv, {stem}_coverage.csv, {stem}.md, {stem}.html"
          f"{'' if problem or args.no_png else f', {stem}.png'} to {out}/")
    if problem and not args.no_png:
        print(f"PNG export skipped: {problem}; {PNG_HINT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
