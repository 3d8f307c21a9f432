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

from .._validation import check_int, check_interval, check_option, shown
from ..weighting import ESTIMATORS

__all__ = [
    "AppMeta",
    "ViewState",
    "COLOR_MODES",
    "ESTIMATORS",
    "OUTCOME_CHOICES",
    "FRACTION_RANGE",
    "K_RANGE",
    "TABS",
    "SLIDES",
    "parse_query",
    "to_query",
    "state_from_dict",
    "check_field",
    "check_neuron",
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
#: The confusion matrix shows counts, or each true class's row as shares.
CONFUSION_NORMS = ("counts", "rows")
#: The panels of presentation mode, in the order the arrow keys step through them.
SLIDES = ("latent", "topk", "heatmap", "argmax", "summary", "confusion", "gallery")


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
    unit_counts : dict
        Units per ``(layer, unit mode)``, to check unit indices that clients send.
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
    unit_counts: dict = field(default_factory=dict)

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
    the tab shown (one of :data:`TABS`); ``sel`` a box or lasso drawn in the latent view, as
    text (see :mod:`dldiag.app.selection`), whose items are the group's scope; ``slide`` the
    panel shown in presentation mode (one of :data:`SLIDES`); ``estimator`` how the sample
    answers a group (one of :data:`ESTIMATORS`: the plain mean of its items, the default, or the
    design-weighted one of :mod:`dldiag.weighting`). The estimator changes the sample's answers,
    not which items are sampled, so it is not part of :attr:`sample_params`.
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
    sel: str | None = None
    slide: str = "latent"
    cmnorm: str = "counts"
    estimator: str = "plain"

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def sample_params(self) -> dict:
        """The part of the state that decides the sample."""
        return {"sampler": self.sampler, "fraction": self.fraction, "j": self.j, "seed": self.seed}


# ------------------------------------------------------------------ checking

def _class_field(name: str, value, meta: AppMeta):
    return None if value is None else check_int(name, value, 0, meta.n_classes - 1)


def _selection_field(value, meta: AppMeta):
    from .selection import parse_selection

    sel = parse_selection(value, meta.projections)
    return None if sel is None else sel.to_text()


def _bool_field(name: str, value):
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false; got {shown(value)}")
    return value


def check_field(name: str, value, meta: AppMeta):
    """``value`` if it is allowed for the :class:`ViewState` field ``name``, else ``ValueError``.

    The rules are those of the controls (:data:`FRACTION_RANGE`, :data:`K_RANGE`, …), so that a
    value the page could not have produced is refused, whoever sent it. A unit index is checked
    against its layer by :func:`check_neuron`.
    """
    rules = {
        "sampler": lambda v: check_option(name, v, meta.samplers),
        "fraction": lambda v: check_interval(name, v, *FRACTION_RANGE),
        "j": lambda v: check_interval(name, v, 0.0, 1.0),
        "seed": lambda v: check_int(name, v, *SEED_RANGE),
        "layer": lambda v: check_option(name, v, meta.layers),
        "cls": lambda v: _class_field(name, v, meta),
        "predicted": lambda v: _class_field(name, v, meta),
        "outcome": lambda v: check_option(name, v, OUTCOME_CHOICES),
        "k": lambda v: check_int(name, v, *K_RANGE),
        "units": lambda v: check_option(name, v, UNIT_MODES),
        "projection": lambda v: check_option(name, v, meta.projections),
        "color": lambda v: check_option(name, v, COLOR_MODES),
        "neuron": lambda v: None if v is None else check_int(name, v, 0),
        "present": lambda v: _bool_field(name, v),
        "tab": lambda v: check_option(name, v, TABS),
        "sel": lambda v: _selection_field(v, meta),
        "slide": lambda v: check_option(name, v, SLIDES),
        "cmnorm": lambda v: check_option(name, v, CONFUSION_NORMS),
        "estimator": lambda v: check_option(name, v, ESTIMATORS),
    }
    return rules[name](value)


def check_neuron(state: "ViewState", meta: AppMeta) -> None:
    """Raise ``ValueError`` if ``state.neuron`` is not a unit of its layer in its unit mode."""
    if state.neuron is None:
        return
    count = meta.unit_counts.get((state.layer, state.units))
    if count is not None:
        check_int(f"neuron (a unit of {state.layer}, {state.units} mode)", state.neuron, 0, count - 1)


# ------------------------------------------------------------------ parsing

def _from_text(name: str, text: str, meta: AppMeta):
    """A URL parameter's text as the type of its field (``ValueError`` if it cannot be)."""
    if name in ("fraction", "j"):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{name} must be a number; got {shown(text)}") from None
    if name in ("seed", "k", "neuron"):
        if name == "neuron" and text in ("", "none"):
            return None
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"{name} must be an integer; got {shown(text)}") from None
    if name in ("cls", "predicted"):
        if text in ("", "all", "any"):
            return None
        if text in meta.class_names:
            return meta.class_names.index(text)
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"{name} must be a class index or name; got {shown(text)}") from None
    if name == "present":
        return text in ("1", "true", "yes", "on")
    if name == "sel" and text in ("", "none"):
        return None
    return text


def parse_query(search: str | None, meta: AppMeta) -> tuple[ViewState, list[str]]:
    """Read a :class:`ViewState` from a URL query string (``"?sampler=vas&fraction=0.1"``).

    Unknown keys are ignored; a bad value keeps its default and adds a note (the page shows
    the notes), so a damaged link still opens a working view. Values are checked by
    :func:`check_field`, the same rules as every other value a client sends.

    Returns
    -------
    (ViewState, list of str)
    """
    notes: list[str] = []
    query = parse_qs((search or "").lstrip("?"), keep_blank_values=True)
    raw = {key: values[-1] for key, values in query.items()}
    changes: dict = {}
    for name in ViewState.__dataclass_fields__:
        if name not in raw:
            continue
        try:
            changes[name] = check_field(name, _from_text(name, raw[name], meta), meta)
        except ValueError as exc:
            notes.append(f"{exc}; using the default")
    state = replace(meta.default_state(), **changes)
    try:
        check_neuron(state, meta)
    except ValueError as exc:
        notes.append(f"{exc}; using none")
        state = replace(state, neuron=None)
    if state.color == "neuron" and state.neuron is None:
        notes.append("color=neuron needs a neuron=INDEX; colouring by true label")
        state = replace(state, color="true")
    return state, notes


def _format_float(value: float) -> str:
    return f"{value:.6g}"


def to_query(state: ViewState, meta: AppMeta | None = None) -> str:
    """The query string (with its ``?``) that :func:`parse_query` turns back into ``state``.

    Classes are written by index so that names with spaces or slashes stay readable links;
    ``tab``, ``cmnorm`` and ``estimator`` only when they are not the default (so that links
    of the default view read as before).
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
    if state.sel:
        params["sel"] = state.sel
    if state.cmnorm != "counts":
        params["cmnorm"] = state.cmnorm
    if state.estimator != ESTIMATORS[0]:
        params["estimator"] = state.estimator
    if state.present or state.slide != SLIDES[0]:
        params["slide"] = state.slide
    return "?" + urlencode(params, safe=":,;")


def state_from_dict(data: dict | None, meta: AppMeta) -> ViewState:
    """A :class:`ViewState` from its ``to_dict`` form (a ``dcc.Store``); defaults if empty.

    The stores come back from the browser, so every field is checked (:func:`check_field`,
    :func:`check_neuron`) and a value the controls could not have produced is a
    ``ValueError`` naming it; keys that are not fields are ignored.

    Raises
    ------
    ValueError
        If ``data`` is not a dict or a field's value is not allowed.
    """
    if not data:
        return meta.default_state()
    if not isinstance(data, dict):
        raise ValueError(f"a view state must be an object of fields; got {shown(data)}")
    known = {k: check_field(k, v, meta) for k, v in data.items() if k in ViewState.__dataclass_fields__}
    state = replace(meta.default_state(), **known)
    check_neuron(state, meta)
    return state


# ------------------------------------------------------------------ events

def _clamp(value, low, high, default):
    if isinstance(value, bool):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    if not math.isfinite(number):
        return default
    return min(max(number, low), high)


def controls_to_changes(controls: dict, meta: AppMeta, state: ViewState, notes: list | None = None) -> dict:
    """Clean control values into ViewState fields.

    Numbers typed past a control's range are clamped to it (a k of 500 becomes 50); an empty
    number keeps the current value; anything else a control could not have sent (a seed of
    1.5, a class of -1, an unknown sampler) keeps the current value and, with ``notes``, says
    so there.
    """
    out = {}
    numeric = {"fraction": (FRACTION_RANGE, 4), "j": ((0.0, 1.0), 4), "k": (K_RANGE, None),
               "seed": (SEED_RANGE, None)}
    for name, value in controls.items():
        if name not in ViewState.__dataclass_fields__ or value is None or value == "":
            continue
        try:
            if name in numeric:
                (low, high), digits = numeric[name]
                number = _clamp(value, low, high, None)
                if number is None:
                    raise ValueError(f"{name} must be a number; got {shown(value)}")
                value = round(number, digits) if digits else number
                if digits is None:
                    if not float(value).is_integer():
                        raise ValueError(f"{name} must be an integer; got {shown(controls[name])}")
                    value = int(value)
            elif name in ("cls", "predicted"):
                value = None if value in ("all", "any") else _class_from_control(value, meta, name)
            out[name] = check_field(name, value, meta)
        except ValueError as exc:
            if notes is not None:
                notes.append(f"{exc}; kept {getattr(state, name)!r}")
    return out


def _class_from_control(value, meta: AppMeta, name: str = "cls") -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {'all' if name == 'cls' else 'any'} or a class index in "
                         f"[0, {meta.n_classes - 1}]; got {shown(value)}") from None


def apply_event(state: ViewState, event: str, payload, meta: AppMeta, notes: list | None = None) -> ViewState:
    """Fold one user event into the state.

    Parameters
    ----------
    state : ViewState
    event : str
        ``"controls"`` (payload: dict of control values), ``"confusion"`` (payload: (true,
        predicted) of the clicked cell), ``"neuron"`` (payload: unit index of a clicked bar),
        ``"clear-group"``, ``"select"`` (payload: a selection's text or None),
        ``"slide"`` (payload: a slide's name, or +1 / -1 for the next / previous),
        ``"present"`` (payload: bool or None to toggle), ``"tab"`` (payload: the tab's value;
        an unknown one keeps the tab).
    payload
        See ``event``.
    meta : AppMeta
    notes : list, optional
        Notes for the page about control values that were not taken.

    Returns
    -------
    ViewState

    Raises
    ------
    ValueError
        If a clicked cell or unit is not one of the data's (the payload comes from the browser).
    """
    if event == "controls":
        changes = controls_to_changes(payload, meta, state, notes)
        new = replace(state, **changes)
        if (new.layer, new.units) != (state.layer, state.units) and new.color == "neuron":
            new = replace(new, color="true", neuron=None)  # the neuron belonged to the old layer
        if new.color == "neuron" and new.neuron is None:
            new = replace(new, color="true")
        return new
    if event == "confusion":
        if not isinstance(payload, (list, tuple)) or len(payload) != 2:
            raise ValueError(f"a confusion cell must be [true, predicted]; got {shown(payload)}")
        true, pred = (check_field(name, v, meta) for name, v in zip(("cls", "predicted"), payload))
        if true is None or pred is None:
            raise ValueError(f"a confusion cell must name two classes; got {shown(payload)}")
        outcome = "correct" if true == pred else "incorrect"
        return replace(state, cls=true, predicted=pred, outcome=outcome)
    if event == "neuron":
        new = replace(state, color="neuron", neuron=check_field("neuron", payload, meta))
        check_neuron(new, meta)
        return new
    if event == "clear-group":
        return replace(state, cls=None, predicted=None, outcome="all", sel=None)
    if event == "select":
        return replace(state, sel=check_field("sel", payload, meta))
    if event == "slide":
        if payload in (1, -1):  # the arrow keys: the next or previous panel, round the ends
            return replace(state, slide=SLIDES[(SLIDES.index(state.slide) + payload) % len(SLIDES)])
        return replace(state, slide=check_field("slide", payload, meta))
    if event == "present":
        return replace(state, present=(not state.present) if payload is None else bool(payload))
    if event == "tab":
        return replace(state, tab=payload) if payload in TABS else state
    raise ValueError(f"unknown event {event!r}; expected controls, confusion, neuron, clear-group, select, slide, "
                     "present or tab")
