"""Benchmarks, run as commands: ``python -m dldiag.bench {core,samplers,app}``.

Benchmarks are not tests: times on shared machines are noisy, so each reports medians of
several runs and ratios measured side by side in one run, and ``--write`` records them in
``BENCHMARKS.md`` with the command and the machine.
"""
