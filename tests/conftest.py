"""Shared fixtures: the digits workspace, a few hundred Fashion-MNIST items, a tiny model."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
import torch
from torch import nn

from dldiag.artifacts import load_workspace
from dldiag.datasets import load_dataset
from dldiag.models import load_checkpoint, default_checkpoint_path


class TinyNet(nn.Module):
    """2 inputs → fc (3 units: x0, x1, x0 + x1) → ReLU → logits (units 0 and 1 of the ReLU).

    Small enough to check every activation by hand.
    """

    diagnosed_layers = ("act", "logits")
    latent_layer = "act"

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.fc = nn.Linear(2, 3, bias=False)
        self.act = nn.ReLU(inplace=inplace)
        self.logits = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
            self.logits.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))

    def forward(self, x):
        return self.logits(self.act(self.fc(x.flatten(1))))


#: Items of the tiny model and their labels. ReLU outputs, by hand:
#: item 0 [2, 1, 3] → pred 0 (correct);  item 1 [1, 3, 4] → pred 1 (correct);
#: item 2 [0, 2, 1] → pred 1 (wrong);    item 3 [3, 0, 2] → pred 0 (wrong);
#: item 4 [4, 0, 4] → pred 0 (correct; units 0 and 2 tie for the arg-max).
TINY_X = np.array([[2, 1], [1, 3], [-1, 2], [3, -1], [4, 0]], dtype=np.float32).reshape(5, 1, 1, 2)
TINY_Y = np.array([0, 1, 0, 1, 0], dtype=np.int64)


@pytest.fixture
def tiny():
    return TinyNet(), TINY_X, TINY_Y


@pytest.fixture(scope="session")
def digits_ws(tmp_path_factory):
    """The digits workspace with the shipped small-CNN weights, in a fresh cache."""
    return load_workspace("digits", cache_dir=tmp_path_factory.mktemp("cache"), show_progress=False)


@pytest.fixture(scope="session")
def fashion_small():
    """300 Fashion-MNIST test items (from data/) and the shipped LeNet-5."""
    ds = load_dataset("fashion-mnist", splits=("test",))
    model, _ = load_checkpoint(default_checkpoint_path("fashion-mnist"))
    return model, ds.x_test[:300], ds.y_test[:300]


# --- browser options (app) ---
def pytest_setup_options():
    """Chromium options of the ``dash_duo`` browser tests: Debian's headless chromium, offline."""
    import os
    import shutil

    from selenium.webdriver.chrome.options import Options

    options = Options()
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary and "DASH_TEST_CHROMEPATH" not in os.environ:
        options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1000"):
        options.add_argument(arg)
    return options
# --- end browser options ---


def free_port() -> int:
    """A free local port for a test's server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=30, message="condition"):
    """``predicate()``'s first truthy value within ``timeout`` s (a page may be re-rendering)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - the page may be re-rendering
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message}")
