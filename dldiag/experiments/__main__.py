"""``python -m dldiag.experiments``: the report's experiments (Figs. 4–7, Table IV) as one command.

Examples
--------
Full run (resumable; finished cells are kept in OUT/_state/)::

    python -m dldiag.experiments --dataset fashion-mnist --out results/fashion-mnist

Quick run for tests (digits, 2 seeds, fractions 5 %, 20 %, 100 %)::

    python -m dldiag.experiments --quick --out /tmp/quick

PNG export needs a Chrome or Chromium for kaleido; it is checked at start, and without one the
command writes the CSVs and HTML, says in one line how to get PNGs, and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .._cli_args import add_workspace_args, float_list, name_list, workspace_kwargs

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dldiag.experiments",
                                description="Reproduce the report's Section V experiments with figures.")
    add_workspace_args(p, dataset_default=None)  # default: fashion-mnist; digits with --quick
    p.add_argument("--out", default=None, help="results folder (default: results/<dataset>)")
    p.add_argument("--quick", action="store_true",
                   help="small grid for tests: fractions 0.05,0.2,1.0, 2 seeds, j in 0,0.5,1, one creation timing")
    p.add_argument("--fresh", action="store_true", help="discard finished cells in OUT/_state/ and recompute")
    p.add_argument("--fractions", type=float_list, default=None,
                   help="sample fractions of Fig. 4 (default: 0.05,0.1,0.2,0.4,0.8)")
    p.add_argument("--seeds", type=int, default=None,
                   help="draws per sampler: sample seeds, or fit seeds for a sampler whose fit takes one "
                        "(default: 10; 2 with --quick)")
    p.add_argument("--samplers", type=name_list, default=None, help="comma-separated samplers (default: all)")
    p.add_argument("--no-png", action="store_true",
                   help="skip PNG export (kaleido) and the check at start that it works here")
    p.add_argument("--no-html", action="store_true", help="skip interactive HTML")
    p.add_argument("--plotlyjs", default="directory", choices=("directory", "shared", "inline"),
                   help="where HTML finds plotly.js: OUT/plotly.min.js (default), one shared copy in OUT/.. , "
                        "or inlined in each file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    from ..artifacts import load_workspace
    from ..cache import CacheError
    from .report import PNG_HINT, dataset_and_out, png_export_problem, write_report
    from .runner import ExperimentConfig, run_experiments

    dataset, out = dataset_and_out(args)
    overrides = {k: v for k, v in (("fractions", args.fractions), ("seeds", args.seeds),
                                   ("samplers", args.samplers)) if v is not None}
    config = ExperimentConfig.quick(**overrides) if args.quick else ExperimentConfig(**overrides)
    start = time.perf_counter()
    # Checked before the run, not found missing after it: without a browser kaleido fails
    # only once every cell is computed.
    png_problem = None if args.no_png else png_export_problem()
    try:
        ws = load_workspace(dataset, **workspace_kwargs(args), show_progress=not args.no_progress)
        meta = run_experiments(ws, out, config, fresh=args.fresh, show_progress=not args.no_progress)
        t_report = time.perf_counter()
        files = write_report(out, png=not args.no_png and png_problem is None, html=not args.no_html,
                             plotlyjs=args.plotlyjs)
        t_report = time.perf_counter() - t_report
    except (ValueError, FileNotFoundError, CacheError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        state = out / "_state"
        done = len(list(state.glob("*.json"))) if state.is_dir() else 0
        print(f"\ninterrupted; {done} finished cells are kept in {state}; run the same command "
              "again to resume", file=sys.stderr)
        return 130
    total = time.perf_counter() - start
    _record_command(out, argv, total, t_report)
    print(f"{meta['dataset_label']}: {meta['cells_computed']} cells computed, {meta['cells_reused']} reused "
          f"from {out / '_state'}; experiments {meta['wall_seconds']:.1f} s, figures {t_report:.1f} s, "
          f"total {total:.1f} s (workspace load included)")
    print(f"wrote {len(files)} figure/table files and the CSVs to {out}/")
    if png_problem:
        print(f"PNG export skipped: {png_problem}; {PNG_HINT}", file=sys.stderr)
    return 0


def _record_command(out: Path, argv, total: float, report_seconds: float) -> None:
    """Add this invocation's command line and total time (load + cells + figures) to run.json."""
    import json

    from .runner import _write_json_atomic

    path = out / "run.json"
    meta = json.loads(path.read_text())
    args = sys.argv[1:] if argv is None else list(argv)
    meta["command"] = "python -m dldiag.experiments " + " ".join(args)
    meta["figures_seconds"] = report_seconds
    meta["total_seconds"] = total
    if meta.get("history"):
        meta["history"][-1].update(command=meta["command"], total_seconds=total)
    _write_json_atomic(path, meta)


if __name__ == "__main__":
    sys.exit(main())
