"""``python -m dldiag``: train a model, build a workspace, query a sample's accuracy."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ._cli_args import add_workspace_args, workspace_kwargs
from .build import build_lock, run_steps

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dldiag", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train the data set's default model and save a checkpoint")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--arch", default=None, help="lenet5, small-cnn or galaxy-cnn (default: by image size)")
    p.add_argument("--epochs", type=int, default=None, help="default: 15 (lenet5), 60 (small-cnn), 8 (galaxy-cnn)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=None,
                   help="default: 2e-3 (lenet5, galaxy-cnn), 1e-2 (small-cnn)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None,
                   help="checkpoint path (default: data/weights/<dataset>.pt for the built-in data sets; "
                        "CACHE/weights/<name>.pt for other data sets)")
    p.add_argument("--cache-dir", default=None,
                   help="cache folder CACHE whose weights/ receives other data sets' checkpoints, where "
                        "build, query and the app look for them (default: $DLDIAG_CACHE or ./cache)")

    p = sub.add_parser("build", help="run the full pass once and cache every artifact")
    add_workspace_args(p)
    p.add_argument("--projections", default="umap,tsne,pca",
                   help="comma-separated projections to compute (default: umap,tsne,pca; '' for none)")
    p.add_argument("--samplers", default="all",
                   help="comma-separated samplers to fit (default: all; '' for none)")
    p.add_argument("--nice", type=int, default=0,
                   help="run at this much lower priority (the app's background build uses 10)")

    p = sub.add_parser("query", help="S1/S2/S3 accuracy of a sample against the full data")
    add_workspace_args(p)
    p.add_argument("--sampler", default="random")
    p.add_argument("--fraction", type=float, default=0.05)
    p.add_argument("--j", type=float, default=0.7, help="share of boundary items (ratio samplers)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--unit-mode", default="flat", choices=("flat", "channel"))
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--n-boot", type=int, default=200,
                   help="resamples of the bootstrap that estimates each answer's accuracy from the sample "
                        "alone (default: 200; 0 for no estimate)")
    p.add_argument("--level", type=float, default=0.9, help="nominal coverage of the estimates' intervals")
    p.add_argument("--boot-seed", type=int, default=0, help="seed of the bootstrap's resamples")
    p.add_argument("--interval", default="expanded", choices=("percentile", "expanded"),
                   help="per-unit and per-bin intervals: plain percentile, or expanded for small groups "
                        "(default: expanded, which measured closer to nominal)")
    p.add_argument("--fpc", action=argparse.BooleanOptionalAction, default=False,
                   help="finite-population correction: shrink each resample's deviation by sqrt(1 - n/N) of its "
                        "group, N counted from the model's predictions of every item; ranks a boundary sampler's "
                        "groups better, narrows every interval below its measured coverage (default: off)")

    sub.add_parser("experiments", add_help=False,
                   help="the report's experiments (Figs. 4-7, Table IV): python -m dldiag experiments --help")

    p = sub.add_parser("info", help="the report's Table I for the pair: sizes, parameters, activations per item")
    add_workspace_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--sampler", default=None,
                   help="also say what a sample of this sampler saves: its activations' size and pass time "
                        "against the full artifacts'")
    p.add_argument("--fraction", type=float, default=0.05, help="the sample's fraction (with --sampler)")
    p.add_argument("--j", type=float, default=0.7, help="boundary share (with --sampler)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and of its fit (with --sampler)")
    return parser


# Enough passes for each shipped model's test accuracy to level off (measured when it was trained)
_DEFAULT_EPOCHS = {"lenet5": 15, "small-cnn": 60, "galaxy-cnn": 8}


def _train(args) -> int:
    from . import models
    from .datasets import load_dataset

    ds = load_dataset(args.dataset)
    arch = args.arch or models.default_architecture(ds.item_shape)
    epochs = args.epochs or _DEFAULT_EPOCHS.get(arch, 15)
    lr = args.lr or (1e-2 if arch == "small-cnn" else 2e-3)
    model = models.build_model(arch, ds.item_shape, ds.n_classes)
    start = time.perf_counter()
    models.train_model(model, ds.x_train, ds.y_train, epochs=epochs, batch_size=args.batch_size,
                       lr=lr, seed=args.seed)
    seconds = time.perf_counter() - start
    acc = models.evaluate_accuracy(model, ds.x_test, ds.y_test)
    out = args.out or models.default_checkpoint_path(ds.name, args.cache_dir)
    meta = {"dataset": ds.name, "test_accuracy": acc, "epochs": epochs, "lr": lr,
            "batch_size": args.batch_size, "seed": args.seed, "train_seconds": round(seconds, 1)}
    models.save_checkpoint(out, model, arch=arch, item_shape=ds.item_shape, n_classes=ds.n_classes, meta=meta)
    print(f"{arch} on {ds.name}: test accuracy {acc:.4f} after {epochs} epochs ({seconds:.0f} s); saved {out}")
    return 0


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _load_workspace(args, **kwargs):
    """The workspace of ``--dataset`` and ``--model`` (default: the dldiag checkpoint for the data)."""
    from .artifacts import load_workspace

    return load_workspace(args.dataset, **workspace_kwargs(args), **kwargs)


def _build(args) -> int:
    if args.nice:
        os.nice(args.nice)
    ws = _load_workspace(args)
    print(f"{ws.dataset.name}: {ws.n_items} items, accuracy {ws.accuracy:.4f}, layers {', '.join(ws.layers)}; "
          f"full pass {'from cache' if ws.cache_hit else 'built'} in {ws.build_seconds:.2f} s "
          f"({ws.cache.directory})")
    names = _split(args.samplers)
    if names == ["all"]:
        from .sampling import SAMPLER_NAMES

        names = list(SAMPLER_NAMES)
    with build_lock(Path(ws.cache.directory).parent):
        run_steps(ws, _split(args.projections), names, echo=sys.stdout)
    return 0


def _query(args) -> int:
    ws = _load_workspace(args, show_progress=not args.json)
    sampler = ws.fitted_sampler(args.sampler, seed=args.seed)
    indices = sampler.sample(args.fraction, j=args.j, seed=args.seed)
    info = sampler.sample_info(args.fraction, j=args.j, seed=args.seed)
    acc = ws.evaluate(indices, k=args.k, unit_mode=args.unit_mode)
    est = None
    if args.n_boot:
        est = ws.estimate(indices, k=args.k, unit_mode=args.unit_mode, n_boot=args.n_boot, level=args.level,
                          seed=args.boot_seed, interval=args.interval, fpc=args.fpc)
    wrong = int(np.sum(ws.y_pred[indices] != ws.y_true[indices]))
    if args.json:
        from .estimates import with_estimates

        measured = acc.to_dict() if est is None else with_estimates(acc.to_dict(), est)
        out = {"dataset": ws.dataset.name, "sampler": args.sampler, "fraction": args.fraction,
               "j": args.j, "seed": args.seed, "n_sample": int(len(indices)),
               "n_correct": int(len(indices) - wrong), "n_incorrect": wrong,
               "sample_info": info, **measured}
        json.dump(out, sys.stdout, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o))
        print()
        return 0
    print(f"{args.sampler} sample of {ws.dataset.name}: {len(indices)} of {ws.n_items} items "
          f"({len(indices) - wrong} correct, {wrong} incorrect); k={args.k}, units {args.unit_mode}")
    for key, value in info.items():
        print(f"  {key}: {value}")
    print(f"{'layer':<12}{'S1 precision':>14}{'S2 cosine':>12}{'S3 JS':>10}")
    def s1(value):
        return f"{'trivial':>14}" if value is None else f"{value:>14.4f}"

    for layer, m in acc.per_layer.items():
        print(f"{layer:<12}{s1(m['s1'])}{m['s2']:>12.4f}{m['s3']:>10.4f}")
    m = acc.overall
    print(f"{'overall':<12}{s1(m['s1'])}{m['s2']:>12.4f}{m['s3']:>10.4f}  ({len(acc.groups)} groups)")
    if acc.s1_trivial_layers:
        # a layer with <= k units has S1 = 1 whatever the sample; the mean would only be inflated
        print(f"S1 leaves out {', '.join(acc.s1_trivial_layers)}: at most k={args.k} units "
              f"({args.unit_mode}), S1 trivially 1")
    if est is not None:
        def cell(v, width):
            if v is None:
                return f"{'—':>{width}}"
            return f"{v['value']:.3f} [{v['low']:.3f}, {v['high']:.3f}]".rjust(width)

        print(f"estimated from the sample alone ({est.n_boot} resamples, {est.level:.0%} intervals"
              f"{', finite-population corrected' if est.fpc else ''}; S1 leaves out layers with at most k units):")
        for layer, e in est.per_layer.items():
            print(f"{layer:<12}{cell(e['s1'], 26)}{cell(e['s2'], 26)}{cell(e['s3'], 26)}")
        e = est.overall
        print(f"{'overall':<12}{cell(e['s1'], 26)}{cell(e['s2'], 26)}{cell(e['s3'], 26)}")
    return 0


def _info(args) -> int:
    from .info import format_savings, format_table_one, sample_savings, table_one

    ws = _load_workspace(args, show_progress=not args.json)
    row = table_one(ws)
    if args.sampler is not None:
        indices = ws.fitted_sampler(args.sampler, seed=args.seed).sample(args.fraction, j=args.j, seed=args.seed)
        row["sample"] = {"sampler": args.sampler, "fraction": args.fraction, "j": args.j, "seed": args.seed,
                         **sample_savings(ws, indices)}
    if args.json:
        json.dump(row, sys.stdout, indent=2)
        print()
    else:
        print(format_table_one(row))
        if "sample" in row:
            print(format_savings(row["sample"]))
    return 0


def main(argv=None) -> int:
    """Entry point of ``python -m dldiag``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["experiments"]:  # the same command as python -m dldiag.experiments
        from .experiments.__main__ import main as experiments

        return experiments(argv[1:])
    args = build_parser().parse_args(argv)
    handler = {"train": _train, "build": _build, "query": _query, "info": _info}[args.command]
    from .cache import CacheError

    try:
        return handler(args)
    except (ValueError, FileNotFoundError, CacheError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
