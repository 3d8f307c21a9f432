"""A user's classifier from any of the forms dldiag accepts, with hashes that key its caches.

:func:`load_model` takes

- an ``nn.Module`` instance, used as it is;
- a ``torch.export`` program (``.pt2``, written by ``torch.export.save``);
- ``"FILE.py:FACTORY"`` or ``"package.module:FACTORY"``, a function (or class) that returns the
  module when called with no arguments, with ``weights=`` a ``state_dict`` file;
- a dldiag checkpoint (``python -m dldiag train``, :func:`~dldiag.models.save_checkpoint`),

and gives a :class:`LoadedModel`: the module and where it came from, with a hash of its weights
and a hash of the code that defines its forward pass, so that two models with equal weights and
different code never share a cache entry. Anything else gets one line that says what was given
and what is accepted.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import marshal
import os
import pickle
import re
import sys
import types
import weakref
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import models

__all__ = ["LoadedModel", "load_model"]

KINDS = ("module", "export", "factory", "checkpoint")

_FORMS = ("an nn.Module, a torch.export program ('model.pt2'), 'FILE.py:FACTORY' or "
          "'package.module:FACTORY' (with weights= a state_dict file), or a dldiag checkpoint")
_EXPORT_HOWTO = ("torch.export.save(torch.export.export(model, (example,), "
                 "dynamic_shapes=({0: torch.export.Dim('batch')},)), 'model.pt2')")
_FACTORY = re.compile(r"(?P<target>.+):(?P<attr>[A-Za-z_]\w*)")
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
#: Names an error message lists before it only counts the rest.
_SHOWN = 6


@dataclass(frozen=True)
class LoadedModel:
    """A classifier and where it came from.

    Attributes
    ----------
    module : nn.Module
        The model. A module given as an instance is the caller's own object, untouched (its
        mode too: every pass runs in eval mode and gives the modes back, and
        :class:`~dldiag.replicas.ModelPool` snapshots it); any other is built here, in eval mode.
    info : dict
        ``kind`` (one of ``"module"``, ``"export"``, ``"factory"``, ``"checkpoint"``);
        ``source``, where it came from, in words; ``weights_hash``
        (:func:`~dldiag.models.weights_hash`); ``code_hash``, sha256 of what defines the
        forward pass (see :func:`load_model`). A checkpoint adds ``arch``, ``item_shape``,
        ``n_classes`` and ``meta``; a factory adds ``weights`` (the file or ``None``); an
        export adds ``batch_size``, the batch size it was exported for, or ``None`` when its
        batch dimension is dynamic.
    """

    module: nn.Module = field(repr=False)
    info: dict


def load_model(spec, *, weights: str | os.PathLike | None = None) -> LoadedModel:
    """Load a classifier from ``spec``.

    Parameters
    ----------
    spec : nn.Module, str or path
        One of

        - an ``nn.Module`` instance: used as it is, never changed (no ``.eval()`` on it).
        - a path to a ``torch.export`` program (``torch.export.save``). It is loaded with
          ``torch.export.load`` and ``torch.export.unflatten``, so that the original submodules
          exist under their names and forward hooks run on them. Export it in eval mode, from
          CPU tensors, with a dynamic batch dimension, or it runs only batches of the exported
          size: ``torch.export.save(torch.export.export(model.eval(), (example,),
          dynamic_shapes=({0: torch.export.Dim("batch")},)), "model.pt2")``.
        - ``"FILE.py:FACTORY"``: the file is imported by path (under a module name of its own,
          with its folder on ``sys.path`` while it is imported and the factory runs) and
          ``FACTORY()`` is called with no arguments; ``FACTORY`` may be a class.
        - ``"package.module:FACTORY"``: the same, with ``package.module`` imported from
          ``sys.path``.
        - a path to a dldiag checkpoint (:func:`~dldiag.models.load_checkpoint`).

        Files are told apart by their content, not their suffix.
    weights : str or path, optional
        For a factory only: a ``state_dict`` file (``torch.save(model.state_dict(), path)``,
        or a dict holding one under ``"state_dict"``), loaded with ``weights_only=True`` and
        ``map_location="cpu"`` and applied with ``load_state_dict(strict=True)``. Without it
        the factory's own initial weights are used.

    Returns
    -------
    LoadedModel
        ``info["code_hash"]`` is sha256 over the module's ``repr`` (its layers and their
        settings) and, for every class among its modules, the qualified name and source
        (``inspect.getsource``; the bytecode of its methods when the source is not available);
        for an export, over the exported graph's code.

    Raises
    ------
    FileNotFoundError
        If a named file does not exist.
    ValueError
        If ``spec`` is none of the forms above, the file holds something else (a TorchScript
        archive: hooks cannot run on it; a bare ``state_dict`` or a whole pickled model: give
        the code as a factory), the import or the factory fails or returns no ``nn.Module``,
        the factory is not in the module, the weights do not fit (missing, unexpected and
        mis-shaped keys are named), or a program was saved on CUDA and this torch has none.
        Each message is one line naming the spec.
    TypeError
        If ``spec`` is of another type.

    Examples
    --------
    >>> loaded = load_model(nn.Sequential(nn.Linear(4, 2)))
    >>> loaded.info["kind"], loaded.info["source"]
    ('module', 'torch.nn.modules.container.Sequential instance')
    """
    if isinstance(spec, nn.Module):
        return _from_module(spec, weights)
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"model must be {_FORMS}; got a {type(spec).__name__}")
    text = os.fspath(spec)
    path = Path(text).expanduser()
    if not path.is_file():
        factory = _FACTORY.fullmatch(text)
        if factory and factory["target"].endswith(".py"):
            return _from_factory(text, Path(factory["target"]).expanduser(), None, factory["attr"], weights)
        if factory and _DOTTED.fullmatch(factory["target"]):
            return _from_factory(text, None, factory["target"], factory["attr"], weights)
        if path.is_dir():
            raise ValueError(f"model must be {_FORMS}; got the folder {text!r}")
        if path.suffix or os.sep in text:
            raise FileNotFoundError(f"model file {text!r} does not exist")
        raise ValueError(f"model must be {_FORMS}; got {text!r}")
    _no_weights(weights, f"model file {text!r}")
    kind = _file_kind(path)
    if kind == "export":
        return _from_export(path)
    if kind == "torchscript":
        raise ValueError(_torchscript_message(f"model file {text!r} is a TorchScript archive"))
    return _from_torch_file(path)


def _no_weights(weights, what: str) -> None:
    if weights is not None:
        raise ValueError(f"weights= applies to 'FILE.py:FACTORY' and 'package.module:FACTORY' specs; "
                         f"{what} carries its own weights; got weights={os.fspath(weights)!r}")


def _torchscript_message(what: str) -> str:
    return (f"{what}; forward hooks do not run on a TorchScript module's submodules, so dldiag "
            f"cannot read its layers: export the nn.Module instead, {_EXPORT_HOWTO}")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _few(names) -> str:
    names = list(names)
    shown = ", ".join(names[:_SHOWN])
    return shown + (f", … ({len(names)} in all)" if len(names) > _SHOWN else "")


# --- code hashes ---
def _class_code(cls: type) -> bytes:
    """The source of ``cls``; the bytecode of its methods when the source cannot be read
    (a class typed at a prompt), which still tells two different forward passes apart."""
    try:
        return inspect.getsource(cls).encode()
    except (OSError, TypeError):
        funcs = [(name, f) for name, f in sorted(vars(cls).items()) if isinstance(f, types.FunctionType)]
        return b"".join(name.encode() + marshal.dumps(f.__code__) for name, f in funcs)


def _module_code_hash(module: nn.Module) -> str:
    # Qualified names without the module path: the same file imported as examples.models or by
    # path (under a made-up module name) is the same code.
    h = hashlib.sha256(repr(module).encode())
    classes = {type(m) for m in module.modules()}
    for name, code in sorted((cls.__qualname__, _class_code(cls)) for cls in classes):
        h.update(name.encode())
        h.update(hashlib.sha256(code).digest())
    return h.hexdigest()


# --- the forms ---
def _from_module(module: nn.Module, weights) -> LoadedModel:
    cls = type(module)
    if isinstance(module, torch.jit.ScriptModule):
        raise ValueError(_torchscript_message("model is a TorchScript module"))
    _no_weights(weights, "an nn.Module instance")
    info = {
        "kind": "module",
        "source": f"{cls.__module__}.{cls.__qualname__} instance",
        "weights_hash": models.weights_hash(module),
        "code_hash": _module_code_hash(module),
    }
    return LoadedModel(module, info)


def _file_kind(path: Path) -> str:
    """``"export"``, ``"torchscript"`` or ``"torch"`` (anything else: left to ``torch.load``)."""
    if not zipfile.is_zipfile(path):
        return "torch"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    # Both are zips with one top folder: a program has <top>/archive_format, TorchScript
    # <top>/constants.pkl and its code; torch.save writes neither.
    if any(n.endswith("/archive_format") or n == "archive_format" for n in names):
        return "export"
    if any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names):
        return "torchscript"
    return "torch"


def _from_export(path: Path) -> LoadedModel:
    where = f"model file {str(path)!r}"
    try:
        program = torch.export.load(path)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for one cause
        if "cuda" in str(exc).lower() and not torch.cuda.is_available():
            raise ValueError(f"{where} was saved on CUDA; this torch is CPU-only; re-export on CPU "
                             "(model.cpu() and a CPU example before torch.export.export)") from exc
        raise ValueError(f"{where} is not a torch.export program that this torch can load: "
                         f"{_first_line(exc)}") from exc
    batch = _fixed_batch(program)
    module = _unflatten(program, where, batch)
    info = {
        "kind": "export",
        "source": str(path),
        "weights_hash": models.weights_hash(module),
        "code_hash": hashlib.sha256(program.graph_module.code.encode()).hexdigest(),
        "batch_size": batch,
    }
    return LoadedModel(module, info)


def _unflatten(program, where: str, batch: int | None) -> nn.Module:
    """The program as a module with its original submodules, in eval mode, that can be copied.

    torch cannot deep-copy an unflattened program (the fake tensors in its graph's metadata), so
    :class:`~dldiag.replicas.ModelPool` could make no replicas of it and would run its passes one
    at a time. The module's ``__deepcopy__`` therefore unflattens the program again and gives
    the copy the module's current weights, as a deep copy would: parameters found in ``memo``
    (a pool's replicas share the snapshot's) are shared, the rest are copied.
    """
    module = torch.export.unflatten(program)
    module.eval()
    if batch is not None:
        module.register_forward_pre_hook(_batch_check(where, batch))
    this = weakref.ref(module)

    def deepcopy(memo):
        source = this()
        copied = _unflatten(program, where, batch)
        copied.load_state_dict(source.state_dict())
        for name, param in source.named_parameters():
            if id(param) in memo:
                owner, _, leaf = name.rpartition(".")
                copied.get_submodule(owner)._parameters[leaf] = memo[id(param)]
        for (_, original), (_, twin) in zip(source.named_modules(), copied.named_modules()):
            twin.training = original.training
        memo[id(source)] = copied
        return copied

    module.__deepcopy__ = deepcopy
    return module


def _fixed_batch(program) -> int | None:
    """The first input's batch size when the program was exported with a fixed one."""
    user_inputs = program.graph_signature.user_inputs
    for node in program.graph.nodes:
        if node.op == "placeholder" and user_inputs and node.name == user_inputs[0]:
            val = node.meta.get("val")
            if isinstance(val, torch.Tensor) and val.ndim and isinstance(val.shape[0], int):
                return int(val.shape[0])
    return None


def _batch_check(where: str, batch: int):
    # Torch's own refusal comes from inside the program and does not say how to fix the export.
    def hook(_module, args):
        if args and isinstance(args[0], torch.Tensor) and args[0].ndim and args[0].shape[0] != batch:
            raise ValueError(f"{where} was exported for batches of exactly {batch} items and got "
                             f"{args[0].shape[0]}; re-export it with a dynamic batch dimension: "
                             f"{_EXPORT_HOWTO}")
    return hook


_MODEL_FILES = "a model file is a torch.export program (.pt2) or a dldiag checkpoint"
_PICKLED = re.compile(r"Unsupported global: GLOBAL (\S+)")


def _pickled_class(exc: pickle.UnpicklingError) -> str | None:
    """The class of the object that torch's ``weights_only`` refused, or ``None`` when the file
    is not a pickle at all (junk bytes raise the same exception)."""
    found = _PICKLED.search(str(exc.__context__ or exc))
    return found.group(1) if found else None


def _unreadable(where: str, exc: BaseException, what: str) -> ValueError:
    return ValueError(f"{where} is not a file torch can read ({_first_line(exc.__context__ or exc)}); {what}")


def _from_torch_file(path: Path) -> LoadedModel:
    where = f"model file {str(path)!r}"
    as_factory = f"give the code that builds it as 'FILE.py:FACTORY' with weights={str(path)!r}"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if _pickled_class(exc) is None:
            raise _unreadable(where, exc, _MODEL_FILES) from exc
        raise ValueError(
            f"{where} holds a pickled {_pickled_class(exc)} object (torch.save(model) writes one), "
            "which dldiag does not unpickle: save model.state_dict() and give the code that builds "
            "the model as 'FILE.py:FACTORY' with weights=, or export it to a .pt2 program") from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise _unreadable(where, exc, _MODEL_FILES) from exc
    if isinstance(payload, dict) and all(k in payload for k in models._CHECKPOINT_KEYS):
        module, ck = models.load_checkpoint(path)
        info = {"kind": "checkpoint", "source": str(path), "weights_hash": ck["weights_hash"],
                "code_hash": _module_code_hash(module)}
        info.update({k: ck[k] for k in ("arch", "item_shape", "n_classes", "meta")})
        return LoadedModel(module, info)
    if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise ValueError(f"{where} holds a bare state_dict ({len(payload)} tensors) without the code "
                         f"of the model; {as_factory}")
    raise ValueError(f"{where} holds a {type(payload).__name__}, not a model; {_MODEL_FILES} "
                     "(a dict with arch, item_shape, n_classes, state_dict)")


@contextmanager
def _on_sys_path(folder: Path | None):
    """``folder`` first on ``sys.path`` for the block, so that a model file's own imports of its
    neighbours work as they do when the file is run as a script."""
    if folder is None:
        yield
        return
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        try:
            sys.path.remove(entry)
        except ValueError:
            pass


def _import_file(spec: str, path: Path) -> types.ModuleType:
    path = path.resolve()
    # One name per file: a second load of the same file re-runs it (picking up edits) in place
    # of the first, and two files called model.py never share a module.
    stem = re.sub(r"\W", "_", path.stem)
    name = f"_dldiag_model_{stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"model spec {spec!r}: {str(path)!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(module_spec)
    # in sys.modules while it runs: dataclasses, pickling and inspect.getsource look it up there
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - whatever the user's file raises
        sys.modules.pop(name, None)
        raise ValueError(f"model spec {spec!r}: importing {str(path)!r} raised "
                         f"{type(exc).__name__}: {_first_line(exc)}") from exc
    return module


def _from_factory(spec: str, file: Path | None, module_name: str | None, attr: str, weights) -> LoadedModel:
    if file is not None and not file.is_file():
        raise FileNotFoundError(f"model spec {spec!r}: file {str(file)!r} does not exist")
    with _on_sys_path(file.resolve().parent if file is not None else None):
        if file is not None:
            source = _import_file(spec, file)
            where = repr(str(file))
        else:
            where = module_name
            importlib.invalidate_caches()  # a package written since the last import is found
            try:
                source = importlib.import_module(module_name)
            except Exception as exc:  # noqa: BLE001 - ImportError, or whatever the module raises
                raise ValueError(f"model spec {spec!r}: cannot import {module_name} "
                                 f"({type(exc).__name__}: {_first_line(exc)})") from exc
        if not hasattr(source, attr):
            raise ValueError(f"model spec {spec!r}: {where} has no attribute {attr!r}; "
                             f"its callables: {_few(_callables(source)) or 'none'}")
        factory = getattr(source, attr)
        if not callable(factory):
            raise ValueError(f"model spec {spec!r}: {attr} is a {type(factory).__name__}, not a "
                             "function that returns the model")
        try:
            module = factory()
        except Exception as exc:  # noqa: BLE001 - whatever the user's factory raises
            raise ValueError(f"model spec {spec!r}: {attr}() raised {type(exc).__name__}: "
                             f"{_first_line(exc)}") from exc
    if not isinstance(module, nn.Module):
        raise ValueError(f"model spec {spec!r}: {attr}() returned a {type(module).__name__}, not a "
                         "torch nn.Module")
    if isinstance(module, torch.jit.ScriptModule):
        raise ValueError(_torchscript_message(f"model spec {spec!r}: {attr}() returned a TorchScript module"))
    if weights is not None:
        _load_weights(module, Path(weights).expanduser(), spec)
    module.eval()
    info = {
        "kind": "factory",
        "source": spec if weights is None else f"{spec} with weights {os.fspath(weights)}",
        "weights": None if weights is None else os.fspath(weights),
        "weights_hash": models.weights_hash(module),
        "code_hash": _module_code_hash(module),
    }
    return LoadedModel(module, info)


def _callables(source: types.ModuleType) -> list[str]:
    """Public callables of a module, those defined in it first."""
    public = [(n, v) for n, v in vars(source).items()
              if not n.startswith("_") and callable(v) and not isinstance(v, types.ModuleType)]
    own = [n for n, v in public if getattr(v, "__module__", None) == source.__name__]
    return own + [n for n, _ in public if n not in own]


_STATE_DICT = "weights= takes a dict of tensors, as torch.save(model.state_dict(), path) writes"


def _load_weights(module: nn.Module, path: Path, spec: str) -> None:
    where = f"weights file {str(path)!r}"
    if not path.is_file():
        raise FileNotFoundError(f"{where} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if _pickled_class(exc) is None:
            raise _unreadable(where, exc, _STATE_DICT) from exc
        raise ValueError(f"{where} holds a pickled {_pickled_class(exc)} object, not a state_dict; "
                         "save one with torch.save(model.state_dict(), path)") from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise _unreadable(where, exc, _STATE_DICT) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a dldiag (or similar) checkpoint holds one
    if not (isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise ValueError(f"{where} holds a {type(state).__name__} that is not a state_dict; {_STATE_DICT}")
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {list(state[k].shape)} in the file, {list(expected[k].shape)} in the model"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = [f"{what} ({len(keys)}): {_few(keys)}"
                for what, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                   ("shape mismatches", shapes)) if keys]
    if problems:
        raise ValueError(f"{where} does not fit the model of {spec!r}: {'; '.join(problems)}")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{where} does not fit the model of {spec!r}: {_first_line(exc)}") from exc
