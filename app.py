"""dldiag in the browser: ``python app.py`` then open http://127.0.0.1:8050.

Serves Fashion-MNIST with the committed LeNet-5 by default. On the first start the full pass,
the 2-D projections and every sampler fit are built (progress in this terminal; the page shows
the same progress and opens the app when they are ready); later starts read them from the cache.
Under a WSGI server, ``app:server`` serves ``$DLDIAG_DATASET`` (default fashion-mnist).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from dldiag.app import Warmup, create_app


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python app.py",
                                description="dldiag in the browser: serve the app, then open http://HOST:PORT/")
    p.add_argument("--dataset", default=os.environ.get("DLDIAG_DATASET", "fashion-mnist"),
                   help="digits, fashion-mnist, idx:DIR or npz:FILE (default: fashion-mnist)")
    p.add_argument("--weights", default=None,
                   help="checkpoint (default: where `python -m dldiag train` saves it: "
                        "data/weights/<dataset>.pt for digits and fashion-mnist, CACHE/weights/ for others)")
    p.add_argument("--cache-dir", default=None, help="cache folder (default: $DLDIAG_CACHE or ./cache)")
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
    warmup = Warmup(args.dataset, cache_dir=args.cache_dir, weights=args.weights)
    app = create_app(warmup=warmup, title="dldiag", default_projection=args.projection)
    return app, warmup


_args = parse_args(sys.argv[1:] if __name__ == "__main__" else [])
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
