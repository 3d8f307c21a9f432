"""The cells of the report's experiments, run once each and stored so that a run resumes.

A run is a list of *cells*:

- an :class:`EvalCell` draws one sample (sampler, fraction, j, seed), runs the forward pass over
  the sample only, and scores S1 (for every k asked), S2 and S3 against the full data, with
  the sample's count of correctly and incorrectly classified items;
- a :class:`TimingCell` times sample creation at the timing fraction: ``mode="create"`` is one
  fit from scratch plus one ``sample()`` (the report's Fig. 7), ``mode="sample"`` is repeated
  ``sample()`` calls on the cached fit (what moving a slider costs).

Every finished cell is written atomically to ``OUT/_state/<key>.json``; the key is a content
hash of everything that determines the result (the workspace, i.e. data and weights; the
sampler, its parameters and its fit seed; fraction, j, seed, ks, unit mode). A restarted run finds those
files and skips the cells; ``fresh=True`` clears them first. The key also holds a hash of the
source of the sampler's module and of the query code, so cells computed by older code are
recomputed. (Sampler *fits* come from the workspace cache, keyed by the fit parameters only:
after changing a sampler's fit, use a fresh ``--cache-dir``.) At the end the cells are turned
into the CSV tables of :mod:`dldiag.experiments.summary` and ``run.json``.

The latent grid follows the report's rule here (equal seats per cell, no spill; see
:data:`SAMPLER_VARIANTS`), and the app's default grid is drawn beside it as
``latent-grid-spill`` in Fig. 4 and Table IV.

Every sampler is drawn ``seeds`` times, as the report repeats each sample ten times. Draw
``s`` of a sampler uses the sample seed ``s`` and, when its fit depends on a seed
(``seeded_fit``: the ratio samplers and their weighted twins, VAS, the EB tree), the fit seed
``fit_seed + s``; a sampler that is neither randomised nor seeded would be drawn once.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .._validation import check_fraction, check_int, check_interval
from ..cache import content_key
from ..progress import progress

__all__ = [
    "ExperimentConfig",
    "EvalCell",
    "TimingCell",
    "plan_cells",
    "run_experiments",
    "STATE_DIR",
    "RUNNER_VERSION",
    "SAMPLER_VARIANTS",
    "experiment_sampler",
    "experiment_sampler_names",
]

#: Bump when a cell's stored result changes meaning, so that old state is not reused.
#: 2: a cell records its fit seed; seeded fits are repeated over the seeds.
#: 3: S1 means leave out the layers with at most k units; a cell names them per k.
RUNNER_VERSION = 3
#: Folder under ``--out`` that holds one JSON file per finished cell (git-ignored).
STATE_DIR = "_state"
#: Sampler whose natural (unforced) sample is plotted as a single point.
NATURAL_SAMPLER = "eb-tree"
#: Experiment samplers that differ from the registry's defaults, as (registry name, params).
#: "latent-grid" is the report's rule: equal seats per cell, and a cell smaller than its share
#: leaves its seats empty (``spill="none"``), so the sample falls short at large fractions
#: (Fig. 4's knee at 80 %). The app keeps the default ``spill="uniform"`` (the size asked,
#: short seats drawn uniformly): shown beside it as "latent-grid-spill".
SAMPLER_VARIANTS = {
    "latent-grid": ("latent-grid", {"spill": "none"}),
    "latent-grid-spill": ("latent-grid", {"spill": "uniform"}),
}
#: Variants drawn only where they can differ from their twin: across fractions (Fig. 4) and in
#: Table IV; the two grids coincide at any fraction where no cell is short.
FRACTION_ONLY = ("latent-grid-spill",)


def experiment_sampler(name: str):
    """A new, unfitted sampler of the experiments by name (registry names and :data:`SAMPLER_VARIANTS`)."""
    from ..sampling import make_sampler

    base, params = SAMPLER_VARIANTS.get(name, (name, {}))
    return make_sampler(base, **params)


def _fitted(ws, name: str, seed: int):
    base, params = SAMPLER_VARIANTS.get(name, (name, {}))
    return ws.fitted_sampler(base, seed=seed, **params)


@dataclass(frozen=True)
class ExperimentConfig:
    """Parameters of the report's experiments (defaults: the report's Section V-C).

    Attributes
    ----------
    fractions : tuple of float
        Sample fractions of Fig. 4.
    seeds : int
        Draws per sampler (the report: 10): sample seeds of a randomised sampler, fit seeds of a
        sampler whose fit is seeded, both for the weighted twins (see the module docstring).
    k : int
        Top-k of S1 in Figs. 4 and 6.
    ks : tuple of int
        Values of k in Fig. 5.
    j : float
        Share of boundary items of the ratio samplers in Figs. 4, 5 and Table IV.
    js : tuple of float
        Values of j in Fig. 6.
    fixed_fraction : float
        The fraction of Figs. 5, 6, 7 and Table IV (5 %).
    j_samplers : tuple of str
        Samplers of Fig. 6; their ``-weighted`` twins are added when they exist.
    unit_mode : {"flat", "channel"}
    fit_seed : int
        First fit seed: draw ``s`` of a seeded fit uses ``fit_seed + s``; the fits of the other
        samplers, and the timings, use ``fit_seed``.
    time_sample_repeats : int
        Timed ``sample()`` calls per sampler (after one untimed warm-up call).
    time_create_repeats : int
        Timed creations from scratch (fit + sample) per sampler.
    time_slow_s : float
        A sampler whose first creation takes longer than this is timed once only.
    samplers : tuple of str or None
        Restrict to these samplers (default: all registered).
    """

    fractions: tuple = (0.05, 0.1, 0.2, 0.4, 0.8)
    seeds: int = 10
    k: int = 10
    ks: tuple = tuple(range(10, 101, 10))
    j: float = 0.7
    js: tuple = (0.0, 0.25, 0.5, 0.75, 1.0)
    fixed_fraction: float = 0.05
    j_samplers: tuple = ("gmm-full", "gmm-spherical", "max-margin")
    unit_mode: str = "flat"
    fit_seed: int = 0
    time_sample_repeats: int = 7
    time_create_repeats: int = 3
    time_slow_s: float = 60.0
    samplers: tuple | None = None

    @classmethod
    def quick(cls, **overrides) -> "ExperimentConfig":
        """A small grid for tests: fractions 5 %, 20 %, 100 %, 2 seeds, 3 values of j."""
        base = dict(fractions=(0.05, 0.2, 1.0), seeds=2, js=(0.0, 0.5, 1.0),
                    time_sample_repeats=3, time_create_repeats=1)
        base.update(overrides)
        return cls(**base)

    def validated(self) -> "ExperimentConfig":
        """A copy with normalised tuples; ``ValueError`` names a bad parameter."""
        fractions = tuple(sorted({float(check_fraction(f)) for f in self.fractions}))
        ks = tuple(sorted({check_int("ks", k, 1) for k in self.ks}))
        js = tuple(sorted({float(check_interval("js", j, 0.0, 1.0)) for j in self.js}))
        if not fractions:
            raise ValueError("fractions must hold at least one fraction in (0, 1]; got ()")
        return replace(
            self,
            fractions=fractions,
            seeds=check_int("seeds", self.seeds, 1),
            k=check_int("k", self.k, 1),
            ks=ks,
            j=float(check_interval("j", self.j, 0.0, 1.0)),
            js=js,
            fixed_fraction=float(check_fraction(self.fixed_fraction)),
            j_samplers=tuple(self.j_samplers),
            fit_seed=check_int("fit_seed", self.fit_seed, 0),
            time_sample_repeats=check_int("time_sample_repeats", self.time_sample_repeats, 0),
            time_create_repeats=check_int("time_create_repeats", self.time_create_repeats, 0),
            samplers=None if self.samplers is None else tuple(self.samplers),
        )

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class EvalCell:
    """One sample and its scores. ``fraction=None`` is a sampler's natural sample (EB tree).

    ``fit_seed`` is the seed of the fit the sample is drawn from; it follows from ``seed``
    (:func:`fit_seed_of`), so it is not part of :meth:`ident`.
    """

    sampler: str
    fraction: float | None
    j: float | None
    seed: int
    fit_seed: int = 0
    ks: set = field(default_factory=set)
    tags: set = field(default_factory=set)

    kind = "eval"

    def ident(self) -> tuple:
        return (self.sampler, self.fraction, self.j, self.seed)


@dataclass
class TimingCell:
    """One timing: ``create`` = fit from scratch + sample; ``sample`` = repeated sample()."""

    sampler: str
    mode: str
    run: int

    kind = "timing"


# ---------------------------------------------------------------------------- planning
def _twin(name: str) -> str:
    return name.removesuffix("-weighted")


def fit_seed_of(config: ExperimentConfig, sampler, seed: int) -> int:
    """The fit seed of draw ``seed`` of ``sampler`` (a class or instance with ``seeded_fit``).

    A seeded fit gets a new seed per draw, so that its spread over draws is the spread over
    fits; an unseeded one keeps ``config.fit_seed`` (refitting it would only repeat the fit).
    """
    return config.fit_seed + seed if sampler.seeded_fit else config.fit_seed


def plan_cells(config: ExperimentConfig, samplers: dict) -> tuple[list[EvalCell], list[TimingCell]]:
    """The cells of a run.

    Parameters
    ----------
    config : ExperimentConfig
    samplers : dict
        ``{name: sampler class or instance}`` with ``randomised``, ``seeded_fit`` and ``uses_j``
        attributes, in display order.

    Returns
    -------
    eval_cells, timing_cells : lists
        Eval cells are unique by (sampler, fraction, j, seed); a cell serving several
        experiments carries all their tags (``fig4``, ``fig5``, ``fig6``, ``table4``) and the
        union of their ks. A sampler that is randomised or has a seeded fit gets
        ``config.seeds`` cells per point, the others one. Timing ``create`` cells beyond the first run are listed too; the
        runner skips them for samplers slower than ``time_slow_s``.
    """
    cells: dict[tuple, EvalCell] = {}

    def add(name, fraction, j, ks, tag):
        cls = samplers[name]
        j_eff = j if (cls.uses_j and j is not None) else None
        seeds = range(config.seeds) if (cls.randomised or cls.seeded_fit) else (0,)
        for seed in seeds:
            key = (name, fraction, j_eff, seed)
            cell = cells.setdefault(key, EvalCell(name, fraction, j_eff, seed,
                                                  fit_seed_of(config, cls, seed)))
            cell.ks.update(ks)
            cell.tags.add(tag)

    main = [n for n in samplers if not n.endswith("-weighted")]
    f5 = config.fixed_fraction
    for name in main:
        for f in config.fractions:
            add(name, f, config.j, (config.k,), "fig4")
        if name not in FRACTION_ONLY:
            add(name, f5, config.j, config.ks, "fig5")
    for name in samplers:
        add(name, f5, config.j, (config.k,), "table4")
    if NATURAL_SAMPLER in samplers:
        for tag, ks in (("fig4", (config.k,)), ("fig5", config.ks), ("table4", (config.k,))):
            add(NATURAL_SAMPLER, None, None, ks, tag)
    for name in samplers:
        if _twin(name) in config.j_samplers:
            for j in config.js:
                add(name, f5, j, (config.k,), "fig6")
    eval_cells = list(cells.values())

    timing = []
    for name in samplers:
        if config.time_sample_repeats:
            timing.append(TimingCell(name, "sample", 0))
        for run in range(config.time_create_repeats):
            timing.append(TimingCell(name, "create", run))
    return eval_cells, timing


# ---------------------------------------------------------------------------- state
def _write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(obj, fh, default=_json_default)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    return str(o)


def _read_json(path: Path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None  # absent or torn: the cell is recomputed


class _State:
    """Finished cells as one JSON file each under ``OUT/_state/``."""

    def __init__(self, out: Path, fresh: bool):
        self.dir = out / STATE_DIR
        if fresh and self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)

    def get(self, key: str):
        return _read_json(self.dir / f"{key}.json")

    def put(self, key: str, result: dict) -> None:
        _write_json_atomic(self.dir / f"{key}.json", result)


# ---------------------------------------------------------------------------- computing cells
@functools.lru_cache(maxsize=None)
def _source_hash(*modules: str) -> str:
    """sha256 of the source files of ``modules``: a cell computed by other code is not reused."""
    digest = hashlib.sha256()
    for name in modules:
        path = inspect.getsourcefile(importlib.import_module(name))
        digest.update(Path(path).read_bytes() if path else name.encode())
    return digest.hexdigest()


def _sampler_identity(ws, name, fit_seed, sampler) -> dict:
    code = _source_hash(type(sampler).__module__, "dldiag.sampling._base", "dldiag.queries",
                        "dldiag.metrics")
    return {"workspace": ws.key, "sampler": name, "params": sampler.get_params(),
            "fit_seed": fit_seed, "code": code}


def _eval_key(ws, config, cell: EvalCell, sampler) -> str:
    return content_key("eval", RUNNER_VERSION, _sampler_identity(ws, cell.sampler, cell.fit_seed, sampler),
                       cell.fraction, cell.j, cell.seed, sorted(cell.ks), config.unit_mode)


def _timing_key(ws, config, cell: TimingCell, sampler) -> str:
    repeats = config.time_sample_repeats if cell.mode == "sample" else 1
    return content_key("timing", RUNNER_VERSION,
                       _sampler_identity(ws, cell.sampler, config.fit_seed, sampler),
                       cell.mode, cell.run, config.fixed_fraction, config.j, repeats)


def _draw(sampler, cell: EvalCell, j_default: float):
    """(indices, sample_info, seconds) of the cell's sample."""
    j = cell.j if cell.j is not None else j_default
    start = time.perf_counter()
    if cell.fraction is None:
        indices = np.asarray(sampler.natural_sample(), dtype=np.int64)
        seconds = time.perf_counter() - start
        info = {"natural_size": int(len(indices))}
    else:
        indices = sampler.sample(cell.fraction, j=j, seed=cell.seed)
        seconds = time.perf_counter() - start
        info = sampler.sample_info(cell.fraction, j=j, seed=cell.seed)
    return indices, info, seconds


def _compute_eval(ws, sampler, cell: EvalCell, config: ExperimentConfig) -> dict:
    from ..queries import evaluate

    start = time.perf_counter()
    indices, info, draw_s = _draw(sampler, cell, config.j)
    wrong = int(np.sum(ws.y_pred[indices] != ws.y_true[indices]))
    agg = ws.sample_pass(indices).aggregates
    scores, per_layer, trivial = {}, {}, {}
    for k in sorted(cell.ks):
        acc = evaluate(agg, ws.full, k=k, unit_mode=config.unit_mode)
        scores[str(k)] = acc.overall
        trivial[str(k)] = list(acc.s1_trivial_layers)
        if k == config.k:
            per_layer = acc.per_layer
    return {
        "kind": "eval",
        "sampler": cell.sampler,
        "fraction": cell.fraction,
        "j": cell.j,
        "seed": cell.seed,
        "fit_seed": cell.fit_seed,
        "n_sample": int(len(indices)),
        "n_correct": int(len(indices) - wrong),
        "n_incorrect": wrong,
        "scores": scores,
        "s1_trivial_layers": trivial,
        "per_layer": per_layer,
        "sample_info": info,
        "draw_seconds": draw_s,
        "seconds": time.perf_counter() - start,
    }


def _compute_timing(ws, name: str, cell: TimingCell, config: ExperimentConfig) -> dict:
    f, j = config.fixed_fraction, config.j
    start = time.perf_counter()
    if cell.mode == "create":
        t0 = time.perf_counter()
        sampler = experiment_sampler(name).fit(ws.latent, ws.y_true, ws.y_pred, seed=config.fit_seed)
        sampler.sample(f, j=j, seed=0)
        times = [time.perf_counter() - t0]
    else:
        sampler = _fitted(ws, name, config.fit_seed)
        sampler.sample(f, j=j, seed=0)  # warm-up: first-call costs (imports, JIT) not counted
        times = []
        for r in range(config.time_sample_repeats):
            t0 = time.perf_counter()
            sampler.sample(f, j=j, seed=r)
            times.append(time.perf_counter() - t0)
    return {"kind": "timing", "sampler": name, "mode": cell.mode, "run": cell.run,
            "fraction": f, "times": times, "seconds": time.perf_counter() - start}


# ---------------------------------------------------------------------------- the run
def experiment_sampler_names() -> tuple[str, ...]:
    """Every sampler of a full run: the registry's, with each variant after its twin."""
    from ..sampling import SAMPLER_NAMES

    names = []
    for name in SAMPLER_NAMES:
        names.append(name)
        names += [v for v, (base, _) in SAMPLER_VARIANTS.items() if base == name and v != name]
    return tuple(names)


def _registry(config: ExperimentConfig) -> dict:
    allowed = experiment_sampler_names()
    names = list(allowed) if config.samplers is None else list(config.samplers)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"samplers must be among {', '.join(map(repr, allowed))}; got {unknown}")
    return {n: experiment_sampler(n) for n in names}


def run_experiments(ws, out, config: ExperimentConfig | None = None, *, fresh: bool = False,
                    show_progress: bool = True, log=None) -> dict:
    """Run (or resume) every cell of the experiments on a workspace and write the CSVs.

    Parameters
    ----------
    ws : Workspace
        From :func:`dldiag.artifacts.load_workspace`.
    out : path
        Results folder; cells go to ``out/_state/``, tables to ``out/*.csv``, ``out/run.json``.
    config : ExperimentConfig, optional
    fresh : bool
        Drop stored cells first and recompute everything.
    show_progress : bool
        A progress bar over the cells (on stderr, when it is a terminal).
    log : callable, optional
        Receives one line per sampler started and per phase (default: stderr).

    Returns
    -------
    dict
        The content of ``run.json``: metadata, the config, cells computed and reused, times.
    """
    from . import summary

    wall_start = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    config = (config or ExperimentConfig()).validated()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = _State(out, fresh)
    registry = _registry(config)
    eval_cells, timing_cells = plan_cells(config, registry)
    if log is None:
        def log(line):
            print(line, file=sys.stderr, flush=True)

    # Cells grouped by sampler and fit seed, so that each fit is loaded (or built) once.
    order = {n: i for i, n in enumerate(registry)}
    eval_cells.sort(key=lambda c: (order[c.sampler], c.fit_seed, c.fraction is None, c.fraction or 0,
                                   c.j or 0, c.seed))
    results_eval, results_timing = [], []
    computed = reused = 0
    fit_seconds: dict[str, float] = {}
    bar = progress(total=len(eval_cells) + len(timing_cells), desc="experiments", unit="cell",
                   disable=not show_progress, leave=True)
    try:
        current, fitted = None, None
        for cell in eval_cells:
            key = _eval_key(ws, config, cell, registry[cell.sampler])
            result = state.get(key)
            if result is None:
                if (cell.sampler, cell.fit_seed) != current:
                    if current is None or cell.sampler != current[0]:
                        log(f"[experiments] {ws.dataset.name}: {cell.sampler}")
                    current = (cell.sampler, cell.fit_seed)
                    t0 = time.perf_counter()
                    fitted = _fitted(ws, cell.sampler, cell.fit_seed)
                    fit_seconds[cell.sampler] = fit_seconds.get(cell.sampler, 0.0) + time.perf_counter() - t0
                bar.set_postfix_str(f"{cell.sampler} f={cell.fraction} j={cell.j} seed={cell.seed} "
                                    f"fit_seed={cell.fit_seed}")
                result = _compute_eval(ws, fitted, cell, config)
                state.put(key, result)
                computed += 1
            else:
                reused += 1
            result["tags"] = sorted(cell.tags)
            results_eval.append(result)
            bar.update(1)

        slow = set()
        for cell in timing_cells:
            key = _timing_key(ws, config, cell, registry[cell.sampler])
            result = state.get(key)
            if result is None:
                if cell.mode == "create" and cell.run > 0 and cell.sampler in slow:
                    bar.update(1)
                    continue
                if cell.run == 0:
                    log(f"[experiments] {ws.dataset.name}: timing {cell.sampler} ({cell.mode})")
                bar.set_postfix_str(f"time {cell.sampler} {cell.mode} #{cell.run}")
                result = _compute_timing(ws, cell.sampler, cell, config)
                state.put(key, result)
                computed += 1
            else:
                reused += 1
            if cell.mode == "create" and cell.run == 0 and result["times"][0] > config.time_slow_s:
                slow.add(cell.sampler)
            results_timing.append(result)
            bar.update(1)
    finally:
        bar.close()

    meta = _run_meta(ws, config, registry, started, time.perf_counter() - wall_start,
                     computed, reused, results_eval, fit_seconds, eval_cells)
    summary.write_tables(out, results_eval, results_timing, meta)
    meta["wall_seconds"] = time.perf_counter() - wall_start
    # One entry per invocation, so that a resumed run does not hide the time of the first.
    old = _read_json(out / "run.json") if not fresh else None
    history = old.get("history", []) if old and old.get("workspace_key") == ws.key else []
    meta["history"] = history + [{k: meta[k] for k in ("started", "finished", "wall_seconds",
                                                      "cells_computed", "cells_reused", "machine")}]
    _write_json_atomic(out / "run.json", meta)
    return meta


_DISPLAY = {"fashion-mnist": "Fashion-MNIST", "digits": "digits (scikit-learn 8×8)",
            "galaxies": "galaxies (GalSim, edge-on vs face-on)"}
_ARCH = {"lenet5": "LeNet-5", "small-cnn": "small CNN", "galaxy-cnn": "galaxy CNN (report Fig. 3)"}


def _run_meta(ws, config, registry, started, wall, computed, reused, results_eval, fit_seconds,
              eval_cells) -> dict:
    import torch

    from .summary import mean_size

    info = ws.model_info
    natural = sorted((r for r in results_eval if r["sampler"] == NATURAL_SAMPLER and r["fraction"] is None),
                     key=lambda r: r["seed"])
    fit_seeds = {n: sorted({c.fit_seed for c in eval_cells if c.sampler == n}) for n in registry}
    return {
        "dataset": ws.dataset.name,
        "dataset_label": _DISPLAY.get(ws.dataset.name, ws.dataset.name),
        "model": info.get("arch"),
        "model_label": _ARCH.get(info.get("arch"), info.get("arch")),
        "weights_hash": info.get("weights_hash"),
        "workspace_key": ws.key,
        "n_items": int(ws.n_items),
        "n_incorrect": int(np.sum(ws.y_pred != ws.y_true)),
        "n_classes": int(ws.dataset.n_classes),
        "accuracy": float(ws.accuracy),
        "layers": list(ws.layers),
        "latent_layer": ws.latent_layer,
        "latent_dim": int(ws.latent.shape[1]),
        "config": config.to_dict(),
        "samplers": {n: {"randomised": bool(s.randomised), "seeded_fit": bool(s.seeded_fit),
                         "uses_j": bool(s.uses_j), "fit_seeds": fit_seeds[n],
                         "params": s.get_params(), "family": s.name} for n, s in registry.items()},
        "latent_grid_rule": ("latent-grid: the report's rule, equal seats per cell and no spill "
                             "(spill='none'; the sample falls short where cells run out, sample_info's "
                             "shortfall); latent-grid-spill: the app's default, short seats drawn uniformly "
                             "from the items left (spill='uniform')"),
        "s1_rule": "S1 means leave out the layers with at most k units (S1 is 1 there by construction)",
        # The natural sample's size is the fit's: one per fit seed, and their mean (as the
        # summaries' n_sample).
        "natural_size": ({NATURAL_SAMPLER: mean_size([r["n_sample"] for r in natural])}
                         if natural else {}),
        "natural_sizes": {NATURAL_SAMPLER: [r["n_sample"] for r in natural]} if natural else {},
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "wall_seconds": wall,
        "cells_computed": computed,
        "cells_reused": reused,
        "cell_seconds_total": float(sum(r.get("seconds", 0.0) for r in results_eval)),
        "fit_or_load_seconds": fit_seconds,  # per sampler, summed over its fit seeds
        "machine": f"{platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
                   f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
        "unit": "S1 precision@k in [0, 1]; S2 cosine distance in [0, 2]; S3 JS distance (base 2) in [0, 1]",
    }
