"""The two calls that take a user from their own model and data to the app.

>>> import dldiag
>>> ws = dldiag.from_model(model, (x, y), class_names=["benign", "malignant"])  # doctest: +SKIP
>>> dldiag.launch(ws)                                                            # doctest: +SKIP
"""

from __future__ import annotations

__all__ = ["from_model", "launch"]


def from_model(model, data, *, layers=None, latent=None, class_names=None, transform=None, output=None,
               weights=None, batch_size: int = 256, cache_dir=None, name: str | None = None,
               feature_names=None, show_progress: bool = True):
    """A :class:`~dldiag.artifacts.Workspace` for any torch classifier and labelled data set.

    Parameters
    ----------
    model : nn.Module or str
        An ``nn.Module``; a ``torch.export`` program (``.pt2``); ``"FILE.py:FACTORY"`` or
        ``"package.module:FACTORY"`` (a function returning the module, with ``weights``); a
        dldiag checkpoint. See :func:`dldiag.model_spec.load_model`. The model is never trained
        or changed: passes run replicas of a snapshot, in eval mode, without gradients.
    data : (x, y), Dataset, DataLoader or str
        Arrays or tensors; a map-style torch ``Dataset`` yielding ``(x, y)``; a ``DataLoader``
        (its dataset); or a spec (``digits``, ``fashion-mnist``, ``idx:DIR``, ``npz:FILE``,
        ``folder:DIR``, ``h5:FILE``). See :func:`dldiag.datasets.as_dataset`. Items are images
        (C, H, W) of any size or feature vectors; data from a ``Dataset``, ``folder:`` or ``h5:``
        is read batch by batch and never held in memory whole.
    layers : sequence of str, optional
        Diagnosed layers by module name (``"NAME"``: its output, ``"NAME:input"``: its input);
        default: the rule of :func:`dldiag.models.default_layers`.
    latent : str, optional
        The latent layer; default: the input of the final linear layer.
    class_names : sequence of str, optional
        One per class (default: from the data, else ``"0"``, ``"1"``, …).
    transform : callable, optional
        Applied to each batch (a float32 tensor) before the model: the normalisation it was
        trained with. Part of the cache key by its code (see :func:`dldiag.artifacts.callable_key`).
    output : int, str or callable, optional
        Picks the logits from a model that returns a tuple or dict.
    weights : path, optional
        A ``state_dict`` file for a factory spec.
    batch_size : int
        Items per forward pass.
    cache_dir : path, optional
        Cache folder (default ``$DLDIAG_CACHE`` or ``cache/``).
    name : str, optional
        The data set's name in the app and the cache (default: derived from the data).
    feature_names : sequence of str, optional
        For feature vectors: one name per feature, used when the app describes an item.
    show_progress : bool
        Progress bar of the full pass (computed once, then cached).

    Returns
    -------
    Workspace
    """
    from .artifacts import load_workspace

    return load_workspace(data, model=model, weights=weights, layers=layers, latent=latent,
                          class_names=class_names, transform=transform, output=output, name=name,
                          feature_names=feature_names, batch_size=batch_size, cache_dir=cache_dir,
                          show_progress=show_progress)


def _in_jupyter() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def launch(workspace, *, host: str = "127.0.0.1", port: int = 8050, mode: str | None = None,
           height: int = 900, **app_kwargs):
    """Show the app for ``workspace``: inline in a Jupyter notebook, else serve it and print the URL.

    In Jupyter (Dash's own Jupyter support) the server runs in a thread of the kernel and the
    call returns at once; elsewhere it serves until interrupted (Ctrl-C). Projections and fits
    not in the cache yet are built by a background process; the page marks them as computing
    and switches to them when they arrive.

    Parameters
    ----------
    workspace : Workspace
    host, port : str, int
        Where to serve (default: this machine only, port 8050).
    mode : {"inline", "external", "tab"}, optional
        Jupyter display mode (default inline); ignored outside Jupyter.
    height : int
        Height of the inline frame in pixels.
    **app_kwargs
        Passed to :func:`dldiag.app.create_app` (e.g. ``samplers``, ``default_layer``).

    Returns
    -------
    dash.Dash
        The app (in Jupyter, while it serves).
    """
    from .app import create_app

    app_kwargs.setdefault("default_projection", "umap" if workspace.has_projection("umap") else "pca")
    app_kwargs.setdefault("background", True)
    app = create_app(workspace, **app_kwargs)
    if _in_jupyter():
        app.run(jupyter_mode=mode or "inline", jupyter_height=height, host=host, port=port)
        return app
    print(f"dldiag: serving {workspace.dataset.name} at http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    app.run(host=host, port=port, debug=False, use_reloader=False)
    return app
