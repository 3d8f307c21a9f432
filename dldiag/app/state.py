"""The app's view state, its URL query string, and the reducer that applies user events to it.

Everything here is plain Python (no dash): a :class:`ViewState` is what a shared link
restores; :func:`parse_query` reads one from a query string with validation (a bad value falls
back to its default and leaves a note for the page), :func:`to_query` writes it back, and
:func:`apply_event` folds one user event (a control change, a confusion-matrix click, a bar
click, a lasso) into a new state.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from urllib.parse import parse_qs, urlencode

__all__ = [
    "AppMeta",
    "ViewState",
    "COLOR_MODES",
    "OUTCOME_CHOICES",
    "FRACTION_RANGE",
    "K_RANGE",
    "TABS",
    "parse_query",
    "to_query",
    "state_from_dict",
    "apply_event",
]

COLOR_MODES = ("true", "pred", "outcome", "sample", "neuron")
OUTCOME_CHOICES = ("all", "correct", "incorrect")
UNIT_MODES = ("flat", "channel")
FRACTION_RANGE = (0.01, 0.80)
K_RANGE = (1, 50)
SEED_RANGE = (0, 2**31 - 1)
#: The page's tabs: the explorer (default) and the report's experiments (Figs. 4–7, Table IV).
TABS = ("explorer", "experiments")


@dataclass(frozen=True)
class AppMeta:
    """What the layout and the parser need to know about a workspace (small, picklable).

    Attributes
    ----------
    dataset : str
    n_items : int
    class_names : tuple of str
    layers : tuple of str
    latent_layer : str
    samplers : tuple of str
        Sampler names offered in the sampler control.
    uses_j, randomised : dict
        Per sampler: whether ``j`` changes its sample, whether its ``seed`` does.
    projections : tuple of str
    accuracy : float
        Model accuracy on the evaluation split.
    default_sampler : str
    default_layer : str
    default_projection : str
    """

    dataset: str
    n_items: int
    class_names: tuple[str, ...]
    layers: tuple[str, ...]
    latent_layer: str
    samplers: tuple[str, ...]
    uses_j: dict = field(default_factory=dict)
    randomised: dict = field(default_factory=dict)
    projections: tuple[str, ...] = ("umap", "tsne", "pca")
    accuracy: float = float("nan")
    default_sampler: str = "random"
    default_layer: str = ""
    default_projection: str = "umap"

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def default_state(self) -> "ViewState":
        return ViewState(
            sampler=self.default_sampler if self.default_sampler in self.samplers else self.samplers[0],
            layer=self.default_layer if self.default_layer in self.layers else self.layers[0],
            projection=self.default_projection if self.default_projection in self.projections
            else self.projections[0],
        )


@dataclass(frozen=True)
class ViewState:
    """Everything a shared link restores.

    ``cls``/``predicted`` are class indices or ``None`` (all); ``neuron`` is the unit of
    ``layer``/``units`` that colours the latent view when ``color == "neuron"``; ``tab`` is
    the tab shown (one of :data:`TABS`).
    """

    sampler: str = "random"
    fraction: float = 0.05
    j: float = 0.7
    seed: int = 0
    layer: str = ""
    cls: int | None = None
    outcome: str = "all"
    predicted: int | None = None
    k: int = 10
    units: str = "flat"
    projection: str = "umap"
    color: str = "true"
    neuron: int | None = None
    present: bool = False
    tab: str = "explorer"

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def sample_params(self) -> dict:
        """The part of the state that decides the sample."""
        return {"sampler": self.sampler, "fraction": self.fraction, "j": self.j, "seed": self.seed}


# ------------------------------------------------------------------ parsing

def _parse_choice(value, options, name, notes):
    if value in options:
        return value
    notes.append(f"{name}={value!r} is not one of {', '.join(map(str, options))}; using the default")
    return None


def _parse_float(value, low, high, name, notes):
    try:
        number = float(value)
    except (TypeError, ValueError):
        notes.append(f"{name}={value!r} is not a number; using the default")
        return None
    if not math.isfinite(number) or not low <= number <= high:
        notes.append(f"{name}={value!r} is outside [{low:g}, {high:g}]; using the default")
        return None
    return number


def _parse_int(value, low, high, name, notes):
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        notes.append(f"{name}={value!r} is not an integer; using the default")
        return None
    if not low <= number <= high:
        notes.append(f"{name}={value!r} is outside [{low}, {high}]; using the default")
        return None
    return number


def _parse_class(value, meta: AppMeta, name, notes):
    """A class given by index or by name; ``all``/empty means every class."""
    if value in ("", "all", "any", None):
        return None
    if value in meta.class_names:
        return meta.class_names.index(value)
    number = _parse_int(value, 0, meta.n_classes - 1, name, notes)
    return number


def parse_query(search: str | None, meta: AppMeta) -> tuple[ViewState, list[str]]:
    """Read a :class:`ViewState` from a URL query string (``"?sampler=vas&fraction=0.1"``).

    Unknown keys are ignored; a bad value keeps its default and adds a note (the page shows
    the notes), so a damaged link still opens a working view.

    Returns
    -------
    (ViewState, list of str)
    """
    state = meta.default_state()
    notes: list[str] = []
    query = parse_qs((search or "").lstrip("?"), keep_blank_values=True)
    raw = {key: values[-1] for key, values in query.items()}
    changes: dict = {}

    def put(key, value):
        if value is not None:
            changes[key] = value

    if "sampler" in raw:
        put("sampler", _parse_choice(raw["sampler"], meta.samplers, "sampler", notes))
    if "fraction" in raw:
        put("fraction", _parse_float(raw["fraction"], *FRACTION_RANGE, "fraction", notes))
    if "j" in raw:
        put("j", _parse_float(raw["j"], 0.0, 1.0, "j", notes))
    if "seed" in raw:
        put("seed", _parse_int(raw["seed"], *SEED_RANGE, "seed", notes))
    if "layer" in raw:
        put("layer", _parse_choice(raw["layer"], meta.layers, "layer", notes))
    if "cls" in raw:
        cls = _parse_class(raw["cls"], meta, "cls", notes)
        changes["cls"] = cls
    if "outcome" in raw:
        put("outcome", _parse_choice(raw["outcome"], OUTCOME_CHOICES, "outcome", notes))
    if "predicted" in raw:
        changes["predicted"] = _parse_class(raw["predicted"], meta, "predicted", notes)
    if "k" in raw:
        put("k", _parse_int(raw["k"], *K_RANGE, "k", notes))
    if "units" in raw:
        put("units", _parse_choice(raw["units"], UNIT_MODES, "units", notes))
    if "projection" in raw:
        put("projection", _parse_choice(raw["projection"], meta.projections, "projection", notes))
    if "color" in raw:
        put("color", _parse_choice(raw["color"], COLOR_MODES, "color", notes))
    if "neuron" in raw and raw["neuron"] not in ("", "none"):
        put("neuron", _parse_int(raw["neuron"], 0, 10**9, "neuron", notes))
    if "present" in raw:
        changes["present"] = raw["present"] in ("1", "true", "yes", "on")
    if "tab" in raw:
        put("tab", _parse_choice(raw["tab"], TABS, "tab", notes))
    state = replace(state, **changes)
    if state.color == "neuron" and state.neuron is None:
        notes.append("color=neuron needs a neuron=INDEX; colouring by true label")
        state = replace(state, color="true")
    return state, notes


def _format_float(value: float) -> str:
    return f"{value:.6g}"


def to_query(state: ViewState, meta: AppMeta | None = None) -> str:
    """The query string (with its ``?``) that :func:`parse_query` turns back into ``state``.

    Classes are written by index so that names with spaces or slashes stay readable links;
    ``tab`` only when it is not the explorer (so explorer links read as before).
    """
    params = {
        "sampler": state.sampler,
        "fraction": _format_float(state.fraction),
        "j": _format_float(state.j),
        "seed": str(state.seed),
        "layer": state.layer,
        "cls": "all" if state.cls is None else str(state.cls),
        "outcome": state.outcome,
        "k": str(state.k),
        "units": state.units,
        "projection": state.projection,
        "color": state.color,
    }
    if state.predicted is not None:
        params["predicted"] = str(state.predicted)
    if state.neuron is not None:
        params["neuron"] = str(state.neuron)
    if state.present:
        params["present"] = "1"
    if state.tab != TABS[0]:
        params["tab"] = state.tab
    return "?" + urlencode(params)


def state_from_dict(data: dict | None, meta: AppMeta) -> ViewState:
    """A :class:`ViewState` from its ``to_dict`` form (a ``dcc.Store``); defaults if empty."""
    if not data:
        return meta.default_state()
    known = {k: v for k, v in data.items() if k in ViewState.__dataclass_fields__}
    return replace(meta.default_state(), **known)


# ------------------------------------------------------------------ events

def _clamp(value, low, high, default):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    if not math.isfinite(number):
        return default
    return min(max(number, low), high)


def controls_to_changes(controls: dict, meta: AppMeta, state: ViewState) -> dict:
    """Clean control values into ViewState fields (clamped, defaulted when empty)."""
    out = {}
    if controls.get("sampler") in meta.samplers:
        out["sampler"] = controls["sampler"]
    if "fraction" in controls:
        out["fraction"] = round(_clamp(controls["fraction"], *FRACTION_RANGE, state.fraction), 4)
    if "j" in controls:
        out["j"] = round(_clamp(controls["j"], 0.0, 1.0, state.j), 4)
    if "seed" in controls:
        out["seed"] = int(_clamp(controls["seed"], *SEED_RANGE, state.seed))
    if controls.get("layer") in meta.layers:
        out["layer"] = controls["layer"]
    if "cls" in controls:
        value = controls["cls"]
        out["cls"] = None if value in (None, "", "all") else int(value)
    if controls.get("outcome") in OUTCOME_CHOICES:
        out["outcome"] = controls["outcome"]
    if "k" in controls:
        out["k"] = int(_clamp(controls["k"], *K_RANGE, state.k))
    if controls.get("units") in UNIT_MODES:
        out["units"] = controls["units"]
    if controls.get("projection") in meta.projections:
        out["projection"] = controls["projection"]
    if controls.get("color") in COLOR_MODES:
        out["color"] = controls["color"]
    return out


def apply_event(state: ViewState, event: str, payload, meta: AppMeta) -> ViewState:
    """Fold one user event into the state.

    Parameters
    ----------
    state : ViewState
    event : str
        ``"controls"`` (payload: dict of control values), ``"confusion"`` (payload: (true,
        predicted) of the clicked cell), ``"neuron"`` (payload: unit index of a clicked bar),
        ``"clear-group"``, ``"present"`` (payload: bool or None to toggle), ``"tab"`` (payload:
        the tab's value; an unknown one keeps the tab).
    payload
        See ``event``.
    meta : AppMeta

    Returns
    -------
    ViewState
    """
    if event == "controls":
        changes = controls_to_changes(payload, meta, state)
        new = replace(state, **changes)
        if new.cls != state.cls and new.predicted is not None:
            new = replace(new, predicted=None)  # picking a class by hand leaves the Q5 cell
        if (new.layer, new.units) != (state.layer, state.units) and new.color == "neuron":
            new = replace(new, color="true", neuron=None)  # the neuron belonged to the old layer
        if new.color == "neuron" and new.neuron is None:
            new = replace(new, color="true")
        return new
    if event == "confusion":
        true, pred = (int(v) for v in payload)
        outcome = "correct" if true == pred else "incorrect"
        return replace(state, cls=true, predicted=pred, outcome=outcome)
    if event == "neuron":
        return replace(state, color="neuron", neuron=int(payload))
    if event == "clear-group":
        return replace(state, cls=None, predicted=None, outcome="all")
    if event == "present":
        return replace(state, present=(not state.present) if payload is None else bool(payload))
    if event == "tab":
        return replace(state, tab=payload) if payload in TABS else state
    raise ValueError(f"unknown event {event!r}; expected controls, confusion, neuron, clear-group, present or tab")
