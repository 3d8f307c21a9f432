"""The report's experiments (Section V, Figs. 4–7, Table IV) as one resumable command.

``python -m dldiag.experiments --dataset fashion-mnist --out results/fashion-mnist`` evaluates
every sampler over the grid of the report, writes a CSV of every number, and draws the figures
as PNG and interactive HTML. The work is cut into *cells* (one sample and its scores, or one
timing run); each finished cell is stored under ``OUT/_state/`` so that an interrupted run
resumes where it stopped.

Modules
-------
runner
    :class:`~dldiag.experiments.runner.ExperimentConfig`, the cells, :func:`run_experiments`.
summary
    Raw cells to the CSV tables that the figures read (pure, no plotting).
figures
    Pure plotly builders, :func:`build_figures(results_dir) <dldiag.experiments.figures.build_figures>`
    (no dash import, so the app can show the same figures in a tab).
report
    PNG (kaleido) and HTML files of the figures, Table IV as markdown.
"""

from .runner import ExperimentConfig, run_experiments

__all__ = ["ExperimentConfig", "run_experiments"]
