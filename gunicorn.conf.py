"""gunicorn's settings for sharing the app: ``gunicorn app:server`` reads this file from here.

Two worker processes of four threads each: on 2 cores, two processes answer side by side
without contending for one interpreter lock, and each one's threads overlap waiting on the
cache (``python -m dldiag.bench load`` measured the choice; BENCHMARKS.md). Each worker prepares
its workspace as soon as it starts, not at its first request, so that no request is answered by
a worker that is still loading. Override any setting on the command line, e.g. ``--bind``.
"""

import os

bind = os.environ.get("DLDIAG_BIND", "127.0.0.1:8050")
workers = int(os.environ.get("DLDIAG_WORKERS", "2"))
threads = int(os.environ.get("DLDIAG_THREADS", "4"))
worker_class = "gthread"
# A sample's first pass takes well under a second; a cold fit of a sampler a few seconds.
timeout = 120


def post_worker_init(worker):
    import torch

    import app  # the module gunicorn loaded for this worker: start its warm-up now

    # One torch thread per pass: the workers' threads run passes side by side instead
    # (``python -m dldiag.bench concurrency``: 1.8x the passes per second of 2 threads per pass).
    torch.set_num_threads(int(os.environ.get("DLDIAG_TORCH_THREADS", "1")))
    app.warmup.start()
