"""What ``requirements.txt`` (the README's app command) installs, for what the app needs at start.

The test environment cannot catch a missing runtime dependency by itself: requirements-test.txt
adds ``dash[testing]``, which brings psutil and multiprocess too. A fresh venv with the app's
requirements alone lacked them, and ``python app.py`` stopped at ``DiskcacheManager``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> dict[str, set[str]]:
    """Package name -> its extras, from requirements.txt."""
    found = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        spec = line.split("#", 1)[0].strip()
        m = re.match(r"([A-Za-z0-9_.-]+)(\[([^\]]*)\])?", spec)
        if m:
            found[m.group(1).lower()] = {e.strip() for e in (m.group(3) or "").split(",") if e.strip()}
    return found


def test_the_app_s_requirements_bring_what_its_background_jobs_need():
    import importlib.metadata as md

    reqs = _requirements()
    assert "diskcache" in reqs.get("dash", set()), "dash's [diskcache] extra (psutil, multiprocess) is missing"
    # and that extra is what Dash itself says DiskcacheManager needs
    extra = [r for r in md.requires("dash") or [] if 'extra == "diskcache"' in r]
    names = {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in extra}
    assert {"psutil", "multiprocess"} <= names
