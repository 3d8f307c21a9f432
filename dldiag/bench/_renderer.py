"""Just enough of dash-renderer to drive a running app's callbacks as a browser does.

:class:`Renderer` reads ``/_dash-layout`` and ``/_dash-dependencies``, and for each change of
props posts real ``/_dash-update-component`` requests wave by wave: the callbacks whose inputs
changed, callbacks that wait on another's output after it, independent ones concurrently,
until nothing is left to update. With ``record`` every request body and its answer are kept,
so that :func:`replay` can check them against a sequential recomputation.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

__all__ = ["Renderer", "error_message", "same_answer", "first_difference"]


def _split_outputs(output: str) -> list[tuple[str, str]]:
    """``..a.b...c.d..`` (or ``a.b``) -> [(a, b), (c, d)], as the renderer splits them."""
    if output.startswith("..") and output.endswith(".."):
        parts = output[2:-2].split("...")
    else:
        parts = [output]
    return [tuple(p.rsplit(".", 1)) for p in parts]


def _walk(node, found: dict) -> None:
    if isinstance(node, list):
        for child in node:
            _walk(child, found)
    elif isinstance(node, dict) and "props" in node:
        props = node["props"]
        if isinstance(props.get("id"), str):
            found[props["id"]] = {k: v for k, v in props.items() if k != "children" or not isinstance(v, (dict, list))}
        _walk(props.get("children"), found)


class Renderer:
    """Just enough of dash-renderer to drive callbacks the way a browser does."""

    def __init__(self, base: str, search: str = "", *, record: list | None = None, workers: int = 8):
        import requests

        self.base = base
        self.record = record
        self.session = requests.Session()
        layout = self.session.get(base + "/_dash-layout", timeout=30).json()
        components: dict = {}
        _walk(layout, components)
        self.ids = set(components)
        self.props = {(cid, prop): value for cid, props in components.items() for prop, value in props.items()}
        self.props[("url", "search")] = search
        self.props[("url", "href")] = base + "/" + search
        self.callbacks = []
        for spec in self.session.get(base + "/_dash-dependencies", timeout=30).json():
            if spec.get("clientside_function"):
                continue
            if spec.get("background"):
                # A background job (a selection's exact answer): its response is a job handle to
                # poll, not an answer to compare, and the panels learn its result from the cache.
                continue
            inputs = [(i["id"], i["property"]) for i in spec["inputs"]]
            if any(not isinstance(i, str) or i not in self.ids for i, _ in inputs):
                continue  # pattern-matching or absent components (the loading page's)
            outputs = _split_outputs(spec["output"])
            self.callbacks.append({
                "output": spec["output"], "outputs": outputs, "inputs": inputs,
                "state": [(s["id"], s["property"]) for s in spec["state"]],
                "prevent_initial_call": spec.get("prevent_initial_call", False),
                "multi": spec["output"].startswith(".."),
            })
        self.pool = ThreadPoolExecutor(max_workers=workers)

    def _post(self, cb: dict, changed: set) -> dict:
        import requests

        outputs = [{"id": i, "property": p} for i, p in cb["outputs"]]
        payload = {
            "output": cb["output"],
            "outputs": outputs if cb["multi"] else outputs[0],
            "inputs": [{"id": i, "property": p, "value": self.props.get((i, p))} for i, p in cb["inputs"]],
            "state": [{"id": i, "property": p, "value": self.props.get((i, p))} for i, p in cb["state"]],
            "changedPropIds": [f"{i}.{p}" for i, p in cb["inputs"] if (i, p) in changed],
        }
        body = json.dumps(payload)
        start = time.perf_counter()
        with requests.Session() as s:  # one connection per concurrent request, like a browser
            r = s.post(self.base + "/_dash-update-component", data=body,
                       headers={"Content-Type": "application/json"}, timeout=120)
        seconds = time.perf_counter() - start
        if self.record is not None:
            self.record.append({"body": body, "status": r.status_code, "answer": r.text if r.status_code == 200 else ""})
        if r.status_code == 204:
            return {"cb": cb, "seconds": seconds, "bytes": 0, "response": {}}
        r.raise_for_status()
        return {"cb": cb, "seconds": seconds, "bytes": len(r.content), "response": r.json().get("response", {})}

    def change(self, updates: dict, *, initial: bool = False) -> dict:
        """Set props (as a user would) and run every callback that follows; timings and sizes."""
        self.props.update(updates)
        changed = set(updates)
        if initial:
            pending = [cb for cb in self.callbacks if not cb["prevent_initial_call"]]
        else:
            pending = [cb for cb in self.callbacks if any(i in changed for i in cb["inputs"])]
        calls = []
        start = time.perf_counter()
        wave = 0
        while pending:
            outs = {o for cb in pending for o in cb["outputs"]}
            ready = [cb for cb in pending
                     if not any(i in outs and i not in cb["outputs"] for i in cb["inputs"])] or pending[:1]
            results = list(self.pool.map(lambda cb: self._post(cb, changed), ready))
            new_changed = set()
            for res in results:
                res["wave"] = wave
                calls.append(res)
                for cid, props in res["response"].items():
                    for prop, value in props.items():
                        key = (cid, prop)
                        if isinstance(value, dict) and "__dash_patch_update" in value:
                            new_changed.add(key)  # applied in the browser; we only note the change
                            continue
                        self.props[key] = value
                        new_changed.add(key)
            done = {id(cb) for cb in ready}
            pending = [cb for cb in pending if id(cb) not in done]
            for cb in self.callbacks:
                if id(cb) in done or cb in pending:
                    continue
                triggers = [i for i in cb["inputs"] if i in new_changed and i not in
                            {o for r in results if r["cb"] is cb for o in r["cb"]["outputs"]}]
                if triggers:
                    pending.append(cb)
            changed = new_changed
            wave += 1
        return {"seconds": time.perf_counter() - start, "calls": calls}



def error_message(response: dict) -> str | None:
    """The inline error a callback answered with (its ``*-error`` output), if any."""
    for cid, props in response.items():
        if cid.endswith("-error") and props.get("children"):
            return json.dumps(props["children"])[:300]
    return None




def same_answer(a, b, tol: float = 1e-9) -> bool:
    """Whether two callback answers are equal: numbers to ``tol`` (relative above 1), typed
    arrays element by element, everything else exactly."""
    if isinstance(a, dict) and isinstance(b, dict):
        if "bdata" in a and "bdata" in b and a.get("dtype") == b.get("dtype"):
            return a == b or _same_typed(a, b, tol)
        return a.keys() == b.keys() and all(same_answer(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_answer(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a != a and b != b:  # both NaN
            return True
        return abs(a - b) <= tol * max(1.0, abs(a), abs(b))
    return a == b


def first_difference(a, b, tol: float = 1e-9, path: str = "") -> str | None:
    """Where two answers first differ (a path and both values), or None if :func:`same_answer`."""
    if isinstance(a, dict) and isinstance(b, dict):
        if "bdata" in a and "bdata" in b:
            if same_answer(a, b, tol):
                return None
            import base64

            import numpy as np

            x = np.frombuffer(base64.b64decode(a["bdata"]), dtype=a["dtype"])
            y = np.frombuffer(base64.b64decode(b["bdata"]), dtype=b["dtype"])
            if x.shape != y.shape:
                return f"{path}: typed arrays of {x.shape} and {y.shape}"
            i = int(np.argmax(~np.isclose(x, y, rtol=tol, atol=tol, equal_nan=True)))
            return f"{path}[{i}]: {x[i]!r} vs {y[i]!r} (max abs diff {float(np.max(np.abs(x - y))):.3g})"
        if a.keys() != b.keys():
            return f"{path}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            found = first_difference(a[k], b[k], tol, f"{path}.{k}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: lists of {len(a)} and {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, tol, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if same_answer(a, b, tol) else f"{path}: {a!r} vs {b!r}"


def _same_typed(a: dict, b: dict, tol: float) -> bool:
    import base64

    import numpy as np

    x = np.frombuffer(base64.b64decode(a["bdata"]), dtype=a["dtype"])
    y = np.frombuffer(base64.b64decode(b["bdata"]), dtype=b["dtype"])
    return x.shape == y.shape and bool(np.allclose(x, y, rtol=tol, atol=tol, equal_nan=True))
