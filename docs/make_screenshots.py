"""Screenshots of the real app for the README and docs/: ``python docs/make_screenshots.py``.

Serves the app (Fashion-MNIST by default, everything cached first) in this process and drives
Debian's headless Chromium: the explorer at 1440×1000 with a group set, the gallery, and one
presentation slide per panel (at 1280×720 by default; ``--sizes 1280x720,1920x1080``). Files go to
``docs/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dldiag.bench._browser import chrome  # noqa: E402
from dldiag.bench.browser import _wait_for_panels  # noqa: E402

SLIDES = ("latent", "topk", "heatmap", "argmax", "summary", "confusion", "gallery")


def _serve(dataset: str, cache_dir: str | None):
    from werkzeug.serving import make_server

    from dldiag.app import create_app
    from dldiag.build import prepare_workspace

    ws = prepare_workspace(dataset, cache_dir=cache_dir, show_progress=False)
    app = create_app(ws)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def _settle(driver, seconds: float = 1.5) -> None:
    _wait_for_panels(driver)
    time.sleep(seconds)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python docs/make_screenshots.py")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--out", default=str(ROOT / "docs"))
    p.add_argument("--group", default="cls=6&outcome=incorrect", help="the group of the explorer shots")
    p.add_argument("--sizes", default="1280x720", help="screen sizes of the slides (default 1280x720)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    server, base = _serve(args.dataset, args.cache_dir)
    try:
        driver = chrome(1440, 1000)
        try:
            driver.get(f"{base}/?sampler=max-margin&{args.group}")
            _settle(driver, 2.5)
            driver.save_screenshot(str(out / "explorer.png"))
            gallery = driver.find_element("css selector", "#gallery-panel")
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", gallery)
            time.sleep(0.5)
            gallery.screenshot(str(out / "gallery.png"))
        finally:
            driver.quit()
        for width, height in (tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")):
            driver = chrome(width, height)
            try:
                for slide in SLIDES:
                    driver.get(f"{base}/?sampler=max-margin&{args.group}&present=1&slide={slide}")
                    _settle(driver)
                    driver.save_screenshot(str(out / f"slide-{width}x{height}-{slide}.png"))
            finally:
                driver.quit()
    finally:
        server.shutdown()
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
