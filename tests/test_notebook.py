"""examples/your_own_model.ipynb runs headless, top to bottom, and shows the app inline."""

from __future__ import annotations

from pathlib import Path

import nbformat
import requests
from nbclient import NotebookClient

from conftest import free_port

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "your_own_model.ipynb"


def test_the_notebook_runs_and_serves_the_app_inline(tmp_path, monkeypatch):
    port = free_port()
    monkeypatch.setenv("DLDIAG_CACHE", str(tmp_path / "cache"))  # the kernel inherits the environment
    monkeypatch.setenv("DLDIAG_PORT", str(port))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors
        # the app is served by the kernel while it lives, and its page is the explorer
        layout = requests.get(f"http://127.0.0.1:{port}/_dash-layout", timeout=30)
        assert layout.ok and "latent-graph" in layout.text
    text = "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream")
    assert "('relu1', 'relu2', 'fc3') fc3:input accuracy" in text and "57 items:" in text
    html = "\n".join(str(o.get("data", {})) for c in nb.cells for o in c.get("outputs", []))
    assert f"127.0.0.1:{port}" in html  # the inline frame of the app
