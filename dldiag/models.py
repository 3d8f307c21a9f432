"""The classifiers dldiag ships, their seeded training, and checkpoints.

Three architectures are built in:

- ``lenet5`` — the report's MNIST model (Fig. 2): LeNet-5 with batch normalisation after
  every layer, conv 6@5×5 → pool → conv 16@5×5 → pool → fc 120 → fc 84 → fc 10.
- ``small-cnn`` — a small CNN for 8×8 images (scikit-learn's digits).
- ``galaxy-cnn`` — the report's Galaxy Zoo 2 model (Fig. 3): five convolutions with batch
  normalisation after each, one dropout, FC-1 of 64 units as the latent; 1,095,650 parameters
  for 3×69×69 images and two classes (the report's has 1,095,842).

All are ``nn.Sequential``-like modules whose diagnosed layers are named blocks ending in their
non-linearity (``conv1``, ``conv2``, ``fc1``, ``fc2``) plus ``logits``; ``diagnosed_layers``
lists them and ``latent_layer`` names the last hidden one. Any other ``nn.Module`` works with the
rest of the library too: :func:`default_layers` then traces one batch through it and applies a
documented rule (each block with parameters, after its non-linearity, plus the logits), and
:func:`latent_layer` takes the input of the final linear layer (``"fc:input"``).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import math
import pickle
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._validation import check_int, check_interval, check_option
from .activations import INPUT_SUFFIX
from .cache import default_cache_dir
from .datasets import DATASET_NAMES
from .progress import progress
from .replicas import exclusive

__all__ = [
    "ARCHITECTURES",
    "LeNet5",
    "SmallCNN",
    "GalaxyCNN",
    "build_model",
    "default_architecture",
    "default_layers",
    "latent_layer",
    "train_model",
    "evaluate_accuracy",
    "save_checkpoint",
    "load_checkpoint",
    "weights_hash",
    "default_checkpoint_path",
]

ARCHITECTURES = ("lenet5", "small-cnn", "galaxy-cnn")


def _conv_block(c_in: int, c_out: int, kernel: int, padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=padding, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


def _fc_block(f_in: int, f_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(f_in, f_out, bias=False), nn.BatchNorm1d(f_out), nn.ReLU())


class _BlockClassifier(nn.Sequential):
    """A sequential classifier whose named blocks are the diagnosed layers."""

    diagnosed_layers: tuple[str, ...] = ()
    latent_layer: str = ""


class LeNet5(_BlockClassifier):
    """LeNet-5 with batch normalisation after every layer (the report's Fig. 2).

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    image_size : int
        Height (= width) of the input images; 28 for (Fashion-)MNIST. The first convolution
        pads by 2 so that 28×28 inputs behave like LeNet's original 32×32.
    n_classes : int
        Number of output logits.
    """

    diagnosed_layers = ("conv1", "conv2", "fc1", "fc2", "logits")
    latent_layer = "fc2"

    def __init__(self, in_channels: int = 1, image_size: int = 28, n_classes: int = 10):
        side = ((image_size + 4 - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"image_size must be at least 12 for lenet5; got {image_size}")
        super().__init__(
            OrderedDict(
                conv1=_conv_block(in_channels, 6, 5, padding=2),
                pool1=nn.MaxPool2d(2),
                conv2=_conv_block(6, 16, 5, padding=0),
                pool2=nn.MaxPool2d(2),
                flatten=nn.Flatten(),
                fc1=_fc_block(16 * side * side, 120),
                fc2=_fc_block(120, 84),
                logits=nn.Linear(84, n_classes),
            )
        )


class SmallCNN(_BlockClassifier):
    """A small CNN for 8×8 images: conv 8@3×3 → pool → conv 16@3×3 → fc 32 → logits.

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    image_size : int
        Height (= width) of the input images (8 for digits).
    n_classes : int
        Number of output logits.
    """

    diagnosed_layers = ("conv1", "conv2", "fc1", "logits")
    latent_layer = "fc1"

    def __init__(self, in_channels: int = 1, image_size: int = 8, n_classes: int = 10):
        side = image_size // 2
        super().__init__(
            OrderedDict(
                conv1=_conv_block(in_channels, 8, 3, padding=1),
                pool1=nn.MaxPool2d(2),
                conv2=_conv_block(8, 16, 3, padding=1),
                flatten=nn.Flatten(),
                fc1=_fc_block(16 * side * side, 32),
                logits=nn.Linear(32, n_classes),
            )
        )


class GalaxyCNN(_BlockClassifier):
    """The report's Galaxy Zoo 2 model (Fig. 3), a variation of Dieleman et al.'s.

    conv 32@5×5 → pool → conv 64@3×3 → pool → conv 160@3×3 → pool → conv 192@3×3 → pool →
    conv 256@3×3 → fc 64 (FC-1, the latent) → dropout 0.25 → logits. Every convolution and
    FC-1 is followed by batch normalisation and a ReLU ("batch normalisation after every
    convolutional layer", "reduced the number of dropout layers": one is left, outside the
    diagnosed blocks, so that it changes nothing at evaluation time). For 3×69×69 images the
    spatial sides are 69 → 34 → 17 → 8 → 4 and FC-1 sees 256·4·4 = 4096 inputs.

    Parameters
    ----------
    in_channels : int
        Channels of the input images (3 for the galaxies' g, r, i).
    image_size : int
        Height (= width) of the input images; at least 16 (four poolings).
    n_classes : int
        Number of output logits.
    """

    diagnosed_layers = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "logits")
    latent_layer = "fc1"

    def __init__(self, in_channels: int = 3, image_size: int = 69, n_classes: int = 2):
        side = image_size // 16
        if side < 1:
            raise ValueError(f"image_size must be at least 16 for galaxy-cnn; got {image_size}")
        super().__init__(
            OrderedDict(
                conv1=_conv_block(in_channels, 32, 5, padding=2),
                pool1=nn.MaxPool2d(2),
                conv2=_conv_block(32, 64, 3, padding=1),
                pool2=nn.MaxPool2d(2),
                conv3=_conv_block(64, 160, 3, padding=1),
                pool3=nn.MaxPool2d(2),
                conv4=_conv_block(160, 192, 3, padding=1),
                pool4=nn.MaxPool2d(2),
                conv5=_conv_block(192, 256, 3, padding=1),
                flatten=nn.Flatten(),
                fc1=_fc_block(256 * side * side, 64),
                dropout=nn.Dropout(0.25),
                logits=nn.Linear(64, n_classes),
            )
        )


_ARCH_CLASSES = {"lenet5": LeNet5, "small-cnn": SmallCNN, "galaxy-cnn": GalaxyCNN}


def _check_image_shape(item_shape) -> tuple[int, int, int]:
    # dldiag trains only its own CNNs; other data (feature vectors) come with the user's model.
    shape = tuple(int(s) for s in item_shape)
    if len(shape) != 3:
        raise ValueError(
            f"item_shape must be an image (C, H, W) for dldiag's own CNNs "
            f"({', '.join(ARCHITECTURES)}); got {shape}: for feature vectors or other items, "
            "diagnose a model of your own (e.g. an MLP) instead of training one here"
        )
    return shape


def default_architecture(item_shape: tuple[int, ...]) -> str:
    """Return ``"galaxy-cnn"`` for colour images (3, H, W) at least 64 pixels high, ``"lenet5"``
    for other images at least 12 pixels high, else ``"small-cnn"``.

    Raises ``ValueError`` for items that are not images, e.g. feature vectors (F,).
    """
    c, h, w = _check_image_shape(item_shape)
    if c == 3 and min(h, w) >= 64:
        return "galaxy-cnn"
    return "lenet5" if w >= 12 and h >= 12 else "small-cnn"


def build_model(arch: str, item_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Build an untrained model of architecture ``arch`` for items of ``item_shape`` (C, H, W)."""
    check_option("arch", arch, ARCHITECTURES)
    c, h, w = _check_image_shape(item_shape)
    if h != w:
        raise ValueError(f"item_shape must be square for {arch}; got {item_shape}")
    return _ARCH_CLASSES[arch](in_channels=c, image_size=h, n_classes=n_classes)


# BatchNorm* and InstanceNorm* share _NormBase; RMSNorm is in torch >= 2.4.
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm) + (
    (nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _module_class(module: nn.Module) -> type | None:
    """The class ``module`` was built from.

    A module of an unflattened ``torch.export`` program is an ``InterpreterModule`` that keeps
    its original class only as a string (``_ty``, e.g. ``"torch.nn.modules.conv.Conv2d"``);
    torch's own classes are resolved from it, any other gives ``None`` (a plain module).
    """
    recorded = getattr(module, "_ty", None)
    if not isinstance(recorded, str) or not type(module).__module__.startswith("torch.export"):
        return type(module)
    where, _, name = recorded.rpartition(".")
    if not where.startswith("torch."):
        return None
    try:
        cls = getattr(importlib.import_module(where), name)
    except (ImportError, AttributeError):
        return None
    return cls if isinstance(cls, type) else None


def _is(module: nn.Module, kinds) -> bool:
    cls = _module_class(module)
    return cls is not None and issubclass(cls, kinds)


@dataclass
class _Call:
    """What one module did in the traced forward pass."""

    calls: int = 0
    order: int = -1  # when its first call returned, counted over every module
    in_shape: tuple | None = None
    out_shape: tuple | None = None


def _trace(model: nn.Module, example) -> dict[str, _Call]:
    """Run ``model`` once on ``example`` with a hook on every module; record calls and shapes.

    The model is held alone and in eval mode (:func:`~dldiag.replicas.exclusive`, which gives
    every module's mode back), under ``torch.no_grad()``; the hooks are removed in ``finally``.
    """
    if not isinstance(example, torch.Tensor):
        raise TypeError(f"example must be a torch.Tensor (one batch of inputs); got {type(example).__name__}")
    record = {name: _Call() for name, _ in model.named_modules()}
    returned = [0]

    def hook_for(name):
        def hook(_module, args, kwargs, output):
            call = record[name]
            call.calls += 1
            if call.calls > 1:
                return
            call.order = returned[0]
            returned[0] += 1
            first = args[0] if args else next(iter(kwargs.values()), None)
            call.in_shape = tuple(first.shape) if isinstance(first, torch.Tensor) else None
            call.out_shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
        return hook

    handles = []
    with exclusive(model), torch.no_grad():
        try:
            for name, module in model.named_modules():
                handles.append(module.register_forward_hook(hook_for(name), with_kwargs=True))
            model(example)
        finally:
            for handle in handles:
                handle.remove()
    return record


def _units(model: nn.Module, record: dict[str, _Call]) -> list[str]:
    """The model's direct children, with containers expanded into their children, recursively.

    A container is an ``nn.Sequential``, ``nn.ModuleList`` or ``nn.ModuleDict``, or any module
    that never ran itself while modules inside it did (a plain holder of modules; this also
    covers an exported ``ModuleList``, whose recorded class is not reliable).
    """
    def inside(prefix, module):
        for child_name, child in module.named_children():
            name = f"{prefix}.{child_name}" if prefix else child_name
            holder = record[name].calls == 0 and any(
                record[f"{name}.{sub}"].calls for sub, _ in child.named_modules() if sub)
            if _is(child, _CONTAINERS) or holder:
                yield from inside(name, child)
            else:
                yield name

    return list(inside("", model))


def _groups(model: nn.Module, record: dict[str, _Call]) -> list[list[str]]:
    """Steps (b) and (c) of the rule of :func:`default_layers`: the units, grouped."""
    modules = dict(model.named_modules())
    units = [u for u in _units(model, record) if record[u].calls == 1 and record[u].out_shape is not None]
    units.sort(key=lambda u: record[u].order)
    groups: list[list[str]] = []
    current = None
    for unit in units:
        module, call = modules[unit], record[unit]
        if next(module.parameters(), None) is not None and not _is(module, _NORMS):
            current = [unit]
            groups.append(current)
        elif call.in_shape == call.out_shape:
            if current is not None:  # a non-linearity, normalisation or dropout of the group
                current.append(unit)
        else:
            current = None  # pooling, flatten: ends the group without joining it
    return groups


def _group_name(group: list[str], record: dict[str, _Call], sequentials: dict[str, list[str]]) -> str:
    """Step (d): the group's last member, or the outermost ``nn.Sequential`` that is exactly it."""
    name = group[-1]
    parent = name.rpartition(".")[0]
    while parent in sequentials and sequentials[parent] == group and record[parent].calls == 1:
        name = parent
        parent = name.rpartition(".")[0]
    return name


def _rule_layers(model: nn.Module, example) -> tuple[str, ...]:
    record = _trace(model, example)
    groups = _groups(model, record)
    if not groups:
        raise ValueError("the default layer rule found no module with parameters that runs once "
                         "in the forward pass; name the layers explicitly")
    modules = dict(model.named_modules())
    units = _units(model, record)
    # The called units under each nn.Sequential, to tell when one group is a whole Sequential.
    sequentials = {}
    for name, module in modules.items():
        if name and _is(module, nn.Sequential):
            sequentials[name] = [u for u in units if u.startswith(name + ".") and record[u].calls]
    return tuple(_group_name(g, record, sequentials) for g in groups)


_NEEDS_EXAMPLE = ("model {name} declares no {what}; pass example= (a batch of a few inputs) so that "
                  "the default rule can trace its forward pass, or name the layers explicitly")


def default_layers(model: nn.Module, example: torch.Tensor | None = None) -> tuple[str, ...]:
    """The diagnosed layers of ``model``, as layer references (dotted module names).

    Models built here declare them (``diagnosed_layers``). For any other model, one forward
    pass over ``example`` traces the order in which modules run and their output shapes, and
    this rule picks the layers:

    a. The *units* are the model's direct children, with ``nn.Sequential``, ``nn.ModuleList``
       and ``nn.ModuleDict`` containers expanded into their children, recursively (and any
       module that never runs itself while modules inside it do).
    b. Units that do not run, run more than once per forward pass (a shared ``ReLU``), or
       output something else than a tensor are dropped.
    c. The remaining units are grouped in the order they run: a unit with parameters that is
       not a normalisation layer (BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm)
       starts a group; following units that keep the shape (non-linearities, normalisation,
       dropout) join it; a shape-changing unit without parameters (pooling, flatten) ends the
       group without joining it, and shape-keeping units after it, before the next group
       starts, are dropped.
    d. A group's diagnosed layer is its last member (so a block is diagnosed after its
       non-linearity), named by the enclosing ``nn.Sequential`` when a whole Sequential is
       the group.
    e. The last group is the logits.

    A residual block (not a container) is one unit: its output, after the skip connection
    and its last non-linearity, is diagnosed. Functional non-linearities (``F.relu`` in a
    ``forward``) are invisible to hooks, so such a group is diagnosed before them.

    Parameters
    ----------
    model : nn.Module
        The classifier. It is run once in eval mode under ``torch.no_grad()``, held alone,
        and every module's mode is given back; the trace's hooks are removed.
    example : Tensor, optional
        A batch of a few inputs; required unless the model declares its layers.

    Returns
    -------
    tuple of str

    Raises
    ------
    ValueError
        If the model declares no layers and no ``example`` is given, or the rule finds none.

    Examples
    --------
    >>> mlp = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    >>> default_layers(mlp, torch.zeros(2, 4))
    ('1', '2')
    """
    declared = getattr(model, "diagnosed_layers", None)
    if declared:
        return tuple(declared)
    if example is None:
        raise ValueError(_NEEDS_EXAMPLE.format(name=type(model).__name__, what="diagnosed_layers"))
    return _rule_layers(model, example)


def latent_layer(model: nn.Module, layers: tuple[str, ...] | None = None,
                 example: torch.Tensor | None = None) -> str:
    """The last hidden layer, as a layer reference.

    Declared by models built here (``latent_layer``). For any other model it is
    ``"<final nn.Linear>:input"``, the input of the last ``nn.Linear`` to run (once) in the
    forward pass: the features the logits are computed from. For a ResNet these are the
    pooled, flattened features, which no module outputs. Without ``example`` the final linear
    layer is the last of ``layers`` when that is an ``nn.Linear``. If the model has no such
    linear layer, the latent is the layer before the logits, ``layers[-2]``.

    Parameters
    ----------
    model : nn.Module
        The classifier.
    layers : tuple of str, optional
        Its diagnosed layers; :func:`default_layers` if omitted.
    example : Tensor, optional
        A batch of a few inputs, to trace the forward pass (see :func:`default_layers`).

    Returns
    -------
    str

    Examples
    --------
    >>> mlp = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    >>> latent_layer(mlp, example=torch.zeros(2, 4))
    '2:input'
    """
    declared = getattr(model, "latent_layer", None)
    if declared:
        return declared
    modules = dict(model.named_modules())
    if layers and layers[-1] in modules and _is(modules[layers[-1]], nn.Linear):
        return f"{layers[-1]}{INPUT_SUFFIX}"
    if example is None:
        raise ValueError(_NEEDS_EXAMPLE.format(name=type(model).__name__, what="latent_layer"))
    record = _trace(model, example)
    linear = [n for n, m in modules.items() if n and _is(m, nn.Linear) and record[n].calls == 1]
    if linear:
        return f"{max(linear, key=lambda n: record[n].order)}{INPUT_SUFFIX}"
    layers = tuple(layers or _rule_layers(model, example))
    if len(layers) < 2:
        raise ValueError(f"cannot tell the latent layer from layers={layers!r}; name it explicitly")
    return layers[-2]


def _batches(n: int, batch_size: int, rng: np.random.Generator | None):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def train_model(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    show_progress: bool = True,
) -> nn.Module:
    """Train ``model`` in place with Adam and a cosine learning-rate schedule.

    Parameters
    ----------
    model : nn.Module
        The classifier to train.
    x : ndarray of shape (N, C, H, W)
        Training items (float32).
    y : ndarray of shape (N,)
        Integer labels.
    epochs, batch_size : int
        Passes over ``x`` and items per step.
    lr, weight_decay : float
        Adam's learning rate and weight decay.
    seed : int
        Seeds the initial weights and the batch order through a local generator; the
        global torch and numpy generators are left alone.
    show_progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    nn.Module
        ``model``, trained and switched to eval mode.
    """
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    check_interval("lr", lr, 0.0, None, closed="neither")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length; got {len(x)} and {len(y)}")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        # Re-initialise from the local generator so that training is reproducible from `seed`.
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                bound = math.sqrt(6.0 / fan_in)
                module.weight.uniform_(-bound, bound, generator=gen)
                if module.bias is not None:
                    module.bias.zero_()
    rng = np.random.default_rng(seed)
    xt = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * math.ceil(len(x) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    bar = progress(total=steps, desc="train", unit="step", disable=not show_progress)
    try:
        for epoch in range(epochs):
            for idx in _batches(len(x), batch_size, rng):
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                sched.step()
                bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    finally:
        bar.close()
        model.eval()
    return model


def evaluate_accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Fraction of items of ``x`` whose predicted class equals ``y``."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32))
            correct += int((model(xb).argmax(1).numpy() == y[start : start + batch_size]).sum())
    return correct / max(len(x), 1)


def save_checkpoint(path: str | Path, model: nn.Module, *, arch: str, item_shape, n_classes: int,
                    meta: dict | None = None) -> Path:
    """Save ``model``'s weights with what is needed to rebuild it.

    The file holds only tensors, strings and numbers so that it loads with
    ``torch.load(..., weights_only=True)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "arch": arch,
        "item_shape": [int(v) for v in item_shape],
        "n_classes": int(n_classes),
        "state_dict": model.state_dict(),
        "meta": dict(meta or {}),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: a killed save never leaves a half-written checkpoint
    return path


_CHECKPOINT_KEYS = ("arch", "item_shape", "n_classes", "state_dict")
_CHECKPOINT_FORM = "a dict with arch, item_shape, n_classes, state_dict"


def _unpickling_problem(exc: pickle.UnpicklingError) -> str:
    """One line out of torch's multi-paragraph ``weights_only`` refusal."""
    inner = str(exc.__context__ or exc)
    found = re.search(r"Unsupported global: GLOBAL (\S+)", inner)
    if found:
        return (f"holds a pickled {found.group(1)} object (torch.save(model) writes one), which dldiag "
                "does not unpickle; dldiag checkpoints hold tensors and plain values only and come "
                "from `python -m dldiag train`")
    return ("is not a valid dldiag checkpoint: torch.load cannot read it "
            f"({(inner.strip().splitlines() or [type(exc).__name__])[0]})")


def _check_payload(path: Path, payload) -> None:
    """Refuse, in one line, a readable torch file that holds something else than a checkpoint."""
    where = f"checkpoint {str(path)!r}"
    if not isinstance(payload, dict):
        raise ValueError(f"{where} holds a {type(payload).__name__}, not a dldiag checkpoint "
                         f"({_CHECKPOINT_FORM})")
    missing = [k for k in _CHECKPOINT_KEYS if k not in payload]
    if not missing:
        return
    if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise ValueError(
            f"{where} holds a bare state_dict ({len(payload)} tensors) without the architecture, "
            "item shape and number of classes; dldiag checkpoints come from `python -m dldiag train` "
            "(or dldiag.models.save_checkpoint)"
        )
    keys = sorted(map(str, payload))
    shown = ", ".join(keys[:8]) + (f", … ({len(keys)} keys)" if len(keys) > 8 else "")
    raise ValueError(f"{where} holds a dict without {', '.join(missing)} (its keys: {shown or 'none'}), "
                     f"not a dldiag checkpoint ({_CHECKPOINT_FORM})")


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    model : nn.Module
        The rebuilt model in eval mode.
    info : dict
        ``arch``, ``item_shape``, ``n_classes``, ``meta`` and ``weights_hash``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a dldiag checkpoint: unreadable, a torch file holding something
        else (a list, a bare ``state_dict``, a whole pickled model, a dict missing keys), or
        weights that do not fit the architecture. The message names the path and what it holds.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {str(path)!r} does not exist; train one with "
            "`python -m dldiag train --dataset NAME`"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"checkpoint {str(path)!r} {_unpickling_problem(exc)}") from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ValueError(f"checkpoint {str(path)!r} is not a valid dldiag checkpoint: {exc}") from exc
    _check_payload(path, payload)
    try:
        model = build_model(payload["arch"], tuple(payload["item_shape"]), payload["n_classes"])
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"checkpoint {str(path)!r} is not a valid dldiag checkpoint: {exc}") from exc
    model.eval()
    info = {k: payload[k] for k in ("arch", "item_shape", "n_classes")}
    info["meta"] = payload.get("meta", {})
    info["item_shape"] = tuple(info["item_shape"])
    info["weights_hash"] = weights_hash(model)
    return model, info


def weights_hash(model: nn.Module) -> str:
    """sha256 of the model's parameters and buffers, independent of file layout."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        buf = io.BytesIO()
        np.save(buf, tensor.detach().cpu().numpy(), allow_pickle=False)
        h.update(buf.getvalue())
    return h.hexdigest()


def default_checkpoint_path(dataset_name: str, cache_dir: str | Path | None = None) -> Path:
    """Where ``python -m dldiag train`` saves a data set's weights when ``--out`` is not given.

    The built-in data sets (``digits``, ``fashion-mnist``, ``galaxies``) keep theirs in the repository's
    ``data/weights/``. Any other data set's go beside the cache, in ``<cache_dir>/weights/``, so
    that training on a user's data never writes into the repository.

    Parameters
    ----------
    dataset_name : str
        A name for :func:`~dldiag.datasets.load_dataset`.
    cache_dir : str or Path, optional
        The cache folder; :func:`~dldiag.cache.default_cache_dir` (``$DLDIAG_CACHE`` or
        ``cache/``) if omitted. Not used for the shipped data sets.

    Returns
    -------
    Path
        ``data/weights/<name>.pt``, or ``<cache_dir>/weights/<kind>_<file name>-<hash>.pt`` for
        ``idx:`` and ``npz:`` names, where the hash is of the absolute path: two ``data.npz`` in
        different folders get their own weights, a relative and an absolute name of one file
        the same.
    """
    if dataset_name in DATASET_NAMES:
        return Path(__file__).resolve().parents[1] / "data" / "weights" / f"{dataset_name}.pt"
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    kind, sep, target = dataset_name.partition(":")
    if sep and target:
        resolved = Path(target).expanduser().resolve()
        stem = f"{kind}_{resolved.name}-{hashlib.sha256(str(resolved).encode()).hexdigest()[:8]}"
    else:
        stem = dataset_name
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_.") or "dataset"
    return folder / "weights" / f"{safe}.pt"
