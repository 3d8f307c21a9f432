"""``python -m dldiag.bench browser``: click → painted in headless Chromium, for every control.

The app is served as the README says to share it (gunicorn, :mod:`dldiag.bench.serve`) over
Fashion-MNIST with every projection and fit cached beforehand and an empty samples tier, so
that each sample asked for is new and runs its pass. Debian's Chromium loads the page; each
control is then changed as a person would (a dropdown opened and an option clicked, a slider
thumb moved with the arrow keys, a number typed and Enter pressed, a radio label clicked), and
the time from that input event to the frame that shows the last repainted panel is read from
the page's own timeline (:mod:`dldiag.bench._browser`). Median of ``--repeat`` changes each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from ._browser import PANELS, chrome, instrument, measure
from ._report import machine, write_section
from .serve import served

__all__ = ["main"]

#: Click → painted goals of the issue, by kind of change (ms).
GOALS_MS = {"sample": 700.0, "group": 250.0}
SAMPLE_CONTROLS = ("sampler", "fraction", "j", "seed")
GROUP_CONTROLS = ("layer", "cls", "outcome", "k")
OTHER_CONTROLS = ("units", "color", "projection")


def _actions(driver, meta, repeat: int) -> dict:
    """For each control, ``repeat`` callables that each make one new change; and setups."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def pick(cid, label):
        def act():
            driver.find_element(By.ID, cid).click()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                for option in driver.find_elements(By.CSS_SELECTOR, "[role=option]"):
                    if option.text.strip() == label:
                        option.click()
                        return
                time.sleep(0.05)
            raise RuntimeError(f"no option {label!r} in the {cid} dropdown")
        return act

    def arrows(cid, key):
        return lambda: driver.find_element(By.CSS_SELECTOR, f"#{cid} [role=slider]").send_keys(key)

    def typed(cid, value):
        def act():
            box = driver.find_element(By.ID, cid)
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(str(value), Keys.ENTER)
        return act

    def radio(cid, value):
        return lambda: driver.find_element(
            By.CSS_SELECTOR, f"#{cid} input[value='{value}']").find_element(By.XPATH, "./ancestor::label").click()

    from ..app.layout import SAMPLER_LABELS

    samplers = [s for s in meta["samplers"] if s not in (meta["start_sampler"], "random")]
    layers = meta["layers"]
    classes = [f"{i}: {name}" for i, name in enumerate(meta["class_names"])] + ["all classes"]
    colours = ["predicted label", "outcome", "sample membership", "true label"]
    return {
        "sampler": [pick("sampler", SAMPLER_LABELS.get(s, s)) for s in (samplers * repeat)[:repeat]],
        # the fraction slider (step 0.5 %) and j (step 0.05) move one step up, then down, …
        "fraction": [arrows("fraction", Keys.ARROW_RIGHT) for _ in range(repeat)],
        "j": [arrows("j", Keys.ARROW_LEFT) for _ in range(repeat)],
        "seed": [typed("seed", 100 + i) for i in range(repeat)],
        "layer": [pick("layer", layers[(i + 1) % len(layers)] + (" (latent)" if layers[(i + 1) % len(layers)]
                                                                == meta["latent_layer"] else ""))
                  for i in range(repeat)],
        "cls": [pick("cls", classes[i % len(classes)]) for i in range(repeat)],
        "outcome": [radio("outcome", ("correct", "incorrect", "all")[i % 3]) for i in range(repeat)],
        "k": [typed("k", (5, 15, 20, 12, 30, 8, 25, 10, 40)[i % 9]) for i in range(repeat)],
        "units": [radio("units", ("channel", "flat")[i % 2]) for i in range(repeat)],
        "color": [pick("color", colours[i % len(colours)]) for i in range(repeat)],
        "projection": [radio("projection", ("tsne", "pca", "umap")[i % 3]) for i in range(repeat)],
    }, {
        # unmeasured, before a control's changes: a sampler that j (or the seed) changes
        "j": pick("sampler", SAMPLER_LABELS.get(meta["start_sampler"], meta["start_sampler"])),
        "seed": pick("sampler", SAMPLER_LABELS.get("random", "random")),
    }


def _wait_for_panels(driver, timeout: float = 300.0) -> float:
    """Seconds until every graph of the explorer has drawn (the page may first show progress)."""
    start = time.monotonic()
    script = ("return ['latent-graph','summary-graph','topk-graph','heatmap-graph','argmax-graph',"
              "'confusion-graph'].every(id => { const g = document.querySelector('#' + id + ' .js-plotly-plot');"
              " return g && g.data && g.data.length && g.querySelector('.main-svg'); })")
    while time.monotonic() - start < timeout:
        try:
            if driver.execute_script(script):
                return time.monotonic() - start
        except Exception:  # noqa: BLE001 - the loading page reloads itself
            pass
        time.sleep(0.1)
    raise TimeoutError("the explorer's panels did not appear")


def run(base_url: str, meta: dict, repeat: int, width: int, height: int) -> dict:
    driver = chrome(width, height)
    try:
        driver.get(base_url + "/?sampler=" + meta["start_sampler"])
        _wait_for_panels(driver)
        time.sleep(1.0)
        instrument(driver)
        results = {}
        actions, setups = _actions(driver, meta, repeat)
        for control, acts in actions.items():
            if control in setups:
                measure(driver, setups[control])
            results[control] = [measure(driver, act) for act in acts]
            print(f"{control}: " + ", ".join(f"{r['ms']:.0f}" for r in results[control]) + " ms", flush=True)
        return results
    finally:
        driver.quit()


def _table(results: dict, repeat: int) -> list[str]:
    lines = ["| change | median ms | min–max ms | goal ms | callback requests | server ms (median) | ok |",
             "|---|---:|---:|---:|---:|---:|:-:|"]
    for control, runs in results.items():
        ms = [r["ms"] for r in runs]
        kind = "sample" if control in SAMPLE_CONTROLS else "group" if control in GROUP_CONTROLS else None
        goal = GOALS_MS.get(kind)
        med = statistics.median(ms)
        ok = "" if goal is None else ("yes" if med <= goal else "no")
        lines.append(f"| {control} | {med:.0f} | {min(ms):.0f}–{max(ms):.0f} | {'' if goal is None else f'{goal:.0f}'} | "
                     f"{statistics.median(r['requests'] for r in runs):.0f} | "
                     f"{statistics.median(r['server_ms'] for r in runs):.0f} | {ok} |")
    lines += ["", "Per panel, median ms from the input to the frame that shows it repainted (— : not repainted):", "",
              "| change | " + " | ".join(PANELS) + " |", "|---|" + "---:|" * len(PANELS)]
    for control, runs in results.items():
        cells = []
        for panel in PANELS:
            values = [r["panels"][panel] for r in runs if panel in r["panels"]]
            cells.append(f"{statistics.median(values):.0f}" if values else "—")
        lines.append(f"| {control} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dldiag.bench browser")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--cache-dir", default=None, help="prepared cache (default: the default cache)")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)

    from ..build import prepare_workspace
    from ..app.service import DEFAULT_SAMPLER

    ws = prepare_workspace(args.dataset, cache_dir=args.cache_dir, show_progress=False)
    meta = {"samplers": list(__import__("dldiag.sampling", fromlist=["SAMPLER_NAMES"]).SAMPLER_NAMES),
            "start_sampler": DEFAULT_SAMPLER, "layers": list(ws.layers), "latent_layer": ws.latent_layer,
            "class_names": list(ws.dataset.class_names)}
    root = Path(tempfile.mkdtemp(prefix="dldiag-browser-"))
    try:
        shutil.copytree(ws.cache.directory, root / "core")  # fits and projections; an empty samples tier
        load_before = os.getloadavg()[0]
        with served(args.dataset, root, workers=args.workers, threads=args.threads) as base:
            results = run(base, meta, args.repeat, args.width, args.height)
        load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(root, ignore_errors=True)

    failed = [c for c, runs in results.items()
              if (c in SAMPLE_CONTROLS and statistics.median(r["ms"] for r in runs) > GOALS_MS["sample"])
              or (c in GROUP_CONTROLS and statistics.median(r["ms"] for r in runs) > GOALS_MS["group"])]
    text = "\n".join([
        "## App in the browser: click → painted (`python -m dldiag.bench browser`)",
        "",
        f"Command: `python -m dldiag.bench browser --repeat {args.repeat} --write`  ",
        f"Machine: {machine()}  ",
        f"Headless Debian Chromium ({args.width}×{args.height}, software rendering) on {args.dataset} "
        f"({ws.n_items:,} items), the app under gunicorn ({args.workers} workers × {args.threads} threads), every "
        "projection and fit cached, an empty samples tier (each sample asked for is new and runs its pass). Each "
        "change is made as a person makes it (dropdown option clicked, slider thumb moved with an arrow key, number "
        "typed + Enter, radio label clicked); its time runs from that input event to the frame after the last "
        f"repainted panel, read from the page's timeline. Median of {args.repeat}. 1-minute load average before / "
        f"after: {load_before:.2f} / {load_after:.2f}.",
        "",
        *_table(results, args.repeat),
    ])
    print(text)
    if args.write:
        write_section("browser", text)
    return 1 if failed else 0
