"""dldiag in the browser: ``python app.py`` then open http://127.0.0.1:8050.

Serves Fashion-MNIST with the committed LeNet-5 by default. On the first start the page shows
progress for a few seconds (the full pass, PCA, the default sampler's fit), then opens; UMAP,
t-SNE and the other fits are built in a background process and the page switches to them when
they are ready. Later starts read everything from the cache.

To share it, serve ``app:server`` with gunicorn (``gunicorn app:server``; settings in
gunicorn.conf.py): it serves ``$DLDIAG_DATASET`` (default fashion-mnist) from ``$DLDIAG_CACHE``.
The Dash development server of ``python app.py`` is for one person.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from dldiag._cli_args import add_workspace_args, workspace_kwargs
from dldiag.app import Warmup, create_app


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python app.py",
                                description="dldiag in the browser: serve the app, then open http://HOST:PORT/")
    # Under gunicorn (no command line) the data set and model come from the environment.
    add_workspace_args(p, dataset_default=os.environ.get("DLDIAG_DATASET", "fashion-mnist"),
                       model_default=os.environ.get("DLDIAG_MODEL"))
    p.add_argument("--sample-cache-mb", type=float, default=None,
                   help="size cap of the cache's per-sample tier, least recently used first "
                        "(default: $DLDIAG_SAMPLE_CACHE_MB or 1024)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1, local only)")
    p.add_argument("--port", type=int, default=8050, help="port (default: 8050)")
    p.add_argument("--debug", action="store_true", help="Dash debug mode (dev tools in the page); off by default")
    p.add_argument("--projection", default="umap", choices=("umap", "tsne", "pca"),
                   help="projection of a fresh view (default: umap)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per request (default 1: requests run side by side)")
    return p.parse_args(argv)


def make_app(args: argparse.Namespace):
    """The app and its warm-up (started by the caller, or by the first request)."""
    warmup = Warmup(args.dataset, sample_cache_mb=args.sample_cache_mb, **workspace_kwargs(args))
    app = create_app(warmup=warmup, title="dldiag", default_projection=args.projection)
    return app, warmup


def _check_folders(args: argparse.Namespace) -> None:
    """A cache folder that cannot be used is one line here, not a traceback in a thread."""
    from dldiag.cache import CacheError, check_folder, default_cache_dir, resolve_sample_cache_mb

    try:
        check_folder(Path(args.cache_dir) if args.cache_dir else default_cache_dir())
        resolve_sample_cache_mb(args.sample_cache_mb)
    except CacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


_args = parse_args(sys.argv[1:] if __name__ == "__main__" else [])
if __name__ == "__main__":
    _check_folders(_args)  # before the app is made: it opens its jobs' folder in the cache folder
app, warmup = make_app(_args)
server = app.server

if __name__ == "__main__":
    import torch

    torch.set_num_threads(max(1, _args.threads))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    print(f"dldiag: serving {_args.dataset} at http://{_args.host}:{_args.port}/ — the page shows "
          "progress until the artifacts are ready", flush=True)
    warmup.start()
    app.run(host=_args.host, port=_args.port, debug=_args.debug, use_reloader=False)
