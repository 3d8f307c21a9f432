"""The command-line options that name a workspace, shared by every command and ``app.py``."""

from __future__ import annotations

import argparse

__all__ = ["add_workspace_args", "workspace_kwargs", "float_list", "name_list"]

DATASET_HELP = ("evaluation data: digits, fashion-mnist, galaxies, idx:DIR, npz:FILE, "
                "folder:DIR (one sub-folder per class), h5:FILE or h5:FILE?x=NAME&y=NAME, chunks:DIR (a chunk "
                "store, python -m dldiag.workloads) (default: fashion-mnist)")
MODEL_HELP = ("the classifier: FILE.py:FACTORY or package.module:FACTORY (a function returning the nn.Module; "
              "with --weights a state_dict), a torch.export program (model.pt2) or a dldiag checkpoint "
              "(default: the dldiag checkpoint trained for --dataset)")


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def float_list(text: str) -> tuple[float, ...]:
    """argparse type of a comma-separated list of numbers (``--fractions 0.05,0.1``)."""
    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, e.g. 0.05,0.1; got {text!r}") from None


def name_list(text: str) -> tuple[str, ...]:
    """argparse type of a comma-separated list of names (``--samplers random,max-margin``)."""
    return tuple(_names(text))


def add_workspace_args(p: argparse.ArgumentParser, *, dataset_default: str | None = "fashion-mnist",
                       model_default: str | None = None) -> None:
    """``--dataset --model --weights --layers --latent --class-names --output --skip-unreadable
    --cache-dir --batch-size --engine``."""
    p.add_argument("--dataset", default=dataset_default, help=DATASET_HELP)
    p.add_argument("--model", default=model_default, help=MODEL_HELP)
    p.add_argument("--weights", default=None,
                   help="state_dict for a FILE.py:FACTORY model; without --model a dldiag checkpoint (default: "
                        "where train saves it: data/weights/<dataset>.pt for the built-in data sets, "
                        "CACHE/weights/ for others)")
    p.add_argument("--layers", type=_names, default=None,
                   help="comma-separated diagnosed layers: module names (their output) or NAME:input "
                        "(default: one per block that changes the representation, plus the logits)")
    p.add_argument("--latent", default=None, help="the latent layer (default: the input of the final linear layer)")
    p.add_argument("--class-names", type=_names, default=None, help="comma-separated class names, one per class")
    p.add_argument("--output", default=None,
                   help="for a model returning a tuple or dict: the index or key of its logits")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="folder: data sets: leave out image files that cannot be read (default: stop and name them)")
    p.add_argument("--cache-dir", default=None, help="cache folder (default: $DLDIAG_CACHE or ./cache)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--engine", choices=("local", "ray"), default=None,
                   help="what runs the full pass: this process (local) or a Ray cluster (ray; joins $RAY_ADDRESS, "
                        "else starts a local one; needs the ray extra) (default: $DLDIAG_ENGINE or local)")


def workspace_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`dldiag.artifacts.load_workspace` from the parsed options."""
    output = args.output
    if output is not None and output.lstrip("-").isdigit():
        output = int(output)
    return {"model": args.model, "weights": args.weights, "layers": args.layers, "latent": args.latent,
            "class_names": args.class_names, "output": output, "skip_unreadable": args.skip_unreadable,
            "cache_dir": args.cache_dir, "batch_size": args.batch_size, "engine": getattr(args, "engine", None)}
