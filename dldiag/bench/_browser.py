"""Headless Chromium for the benchmarks: a driver, and click → painted from the page's timeline.

The page is instrumented with a few lines of JavaScript (:data:`TIMELINE_JS`): every input event
(pointer, key, change) is time-stamped; Dash's callback requests are counted as they go out and
come back; a ``MutationObserver`` notes, for each panel, the time of the frame after the last
change to its DOM (two ``requestAnimationFrame`` callbacks after the mutation: the frame that
shows it has been painted). A change's time is from the user's last input event before its
first callback request to the last such frame, once nothing has moved for a quiet period and
no request is in flight.
"""

from __future__ import annotations

import shutil
import time

__all__ = ["chrome", "TIMELINE_JS", "measure", "PANELS"]

#: The elements whose repaint a change waits for (graphs by their dcc.Graph id).
PANELS = ("latent-graph", "summary-graph", "topk-graph", "heatmap-graph", "argmax-graph",
          "confusion-graph", "sample-info", "table-iv", "group-label")

TIMELINE_JS = r"""
if (!window.__dl) {
  const T = window.__dl = {events: [], starts: [], ends: [], reqs: [], inflight: 0, last: 0, panels: {}};
  const panelIds = %s;
  for (const type of ['pointerdown', 'pointerup', 'keydown', 'change', 'click']) {
    document.addEventListener(type, () => T.events.push(performance.now()), true);
  }
  const plain = window.fetch;
  window.fetch = function (url) {
    const dash = String(url).includes('_dash-update-component');
    const start = performance.now();
    if (dash) { T.inflight++; T.starts.push(start); }
    const done = () => {
      if (dash) { const end = performance.now(); T.inflight--; T.ends.push(end); T.reqs.push([start, end]); }
    };
    return plain.apply(this, arguments).then(r => { done(); return r; }, e => { done(); throw e; });
  };
  const panelOf = node => {
    for (let el = node && node.nodeType === 1 ? node : node && node.parentElement; el; el = el.parentElement) {
      if (el.id && panelIds.includes(el.id)) return el.id;
    }
    return null;
  };
  new MutationObserver(mutations => {
    const touched = new Set();
    for (const m of mutations) touched.add(panelOf(m.target));
    requestAnimationFrame(() => requestAnimationFrame(() => {
      const t = performance.now();
      T.last = t;
      for (const id of touched) if (id) T.panels[id] = t;
    }));
  }).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
}
"""


def chrome(width: int = 1400, height: int = 1000):
    """A headless Debian Chromium driven by chromedriver (offline flags as in the tests), whose
    page viewport is ``width`` × ``height`` CSS pixels."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", f"--window-size={width},{height}"):
        options.add_argument(arg)
    driver_path = shutil.which("chromedriver")
    service = Service(driver_path) if driver_path else Service()
    driver = webdriver.Chrome(service=service, options=options)
    # The page's own viewport at exactly width × height (headless Chromium's window size counts
    # its invisible browser bars, ~140 px).
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return driver


def instrument(driver) -> None:
    import json

    driver.execute_script(TIMELINE_JS % json.dumps(list(PANELS)))


def measure(driver, act, *, quiet_ms: float = 600.0, timeout: float = 30.0) -> dict:
    """Do ``act()`` (a user's change) and time it to the last painted frame.

    Returns
    -------
    dict
        ``ms`` (input → last painted frame anywhere), ``panels`` ({panel id: ms}),
        ``requests`` (callback requests sent), ``server_ms`` (first request out → last back).
    """
    driver.execute_script("const T = window.__dl; T.events = []; T.starts = []; T.ends = []; T.reqs = []; "
                          "T.last = 0; T.panels = {};")
    act()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = driver.execute_script(
            "const T = window.__dl; return {now: performance.now(), inflight: T.inflight, "
            "starts: T.starts.length, last: T.last, ends: T.ends.length ? Math.max(...T.ends) : 0};")
        if state["starts"] and not state["inflight"] and state["now"] - max(state["last"], state["ends"]) > quiet_ms:
            break
        time.sleep(0.05)
    else:
        raise TimeoutError("the page did not settle after the change")
    t = driver.execute_script("return window.__dl;")
    first = min(t["starts"])
    before = [e for e in t["events"] if e <= first]
    if not before:
        raise RuntimeError("no input event before the first callback request")
    t0 = max(before)
    return {
        "ms": t["last"] - t0,
        "panels": {k: v - t0 for k, v in t["panels"].items()},
        "requests": len(t["starts"]),
        "server_ms": max(t["ends"]) - first,
        "requests_ms": sorted((round(a - t0), round(b - t0)) for a, b in t["reqs"]),
    }
