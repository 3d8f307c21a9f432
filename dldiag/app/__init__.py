"""The Dash app: a latent-space view with sampler controls and linked diagnosis panels, and a
second tab with the report's Figs. 4–7 and Table IV for the loaded data set (``?tab=experiments``).

This package is the only part of dldiag that imports dash. Build an app with
:func:`create_app`::

    from dldiag.artifacts import load_workspace
    from dldiag.app import create_app

    app = create_app(load_workspace("digits"), default_projection="pca")
    app.run()

or let it prepare the workspace in the background while the page shows progress::

    from dldiag.app import Warmup, create_app
    app = create_app(warmup=Warmup("fashion-mnist"))

Modules: :mod:`.state` (view state and URL), :mod:`.service` (questions to a workspace),
:mod:`.figures` (pure figure builders), :mod:`.views` (state to figures), :mod:`.layout`
(pure layout builders), :mod:`.callbacks`, :mod:`.export` (HTML report), :mod:`.prepare`
(warm-up), :mod:`.thumbnails`.
"""

from __future__ import annotations

import threading
from pathlib import Path

from dash import Dash, html

from .. import density
from ..cache import ArrayCache, default_cache_dir
from . import figures as F
from .callbacks import AppContext, register, register_boot
from .jobs import jobs_manager
from .layout import build_layout, loading_layout
from .prepare import Ready, Warmup, prepare_workspace
from .state import AppMeta

__all__ = ["create_app", "Warmup", "prepare_workspace", "ASSETS"]

#: The app's CSS and client-side JS (repository root ``assets/``).
ASSETS = Path(__file__).resolve().parents[2] / "assets"

_PLACEHOLDER_META = AppMeta(dataset="", n_items=0, class_names=("a", "b"), layers=("layer",),
                            latent_layer="layer", samplers=("random",))


def create_app(workspace=None, *, warmup: Warmup | None = None, title: str = "dldiag",
               default_projection: str = "umap", default_layer: str | None = None,
               samplers=None, projections=None, sample_cache_dir=None, background: bool = False,
               jobs_dir=None, **dash_kwargs) -> Dash:
    """Build the Dash app for a workspace (or for one being prepared by ``warmup``).

    Parameters
    ----------
    workspace : Workspace, optional
        A loaded workspace; its projections and sampler fits are read from (or added to) its cache.
    warmup : Warmup, optional
        Instead of ``workspace``: the app serves a loading page with progress until
        ``warmup`` is ready (its thread starts with the first request, or call ``start()``).
    title : str
        Browser title and header.
    default_projection : {"umap", "tsne", "pca"}
        Projection of a view without ``projection=`` in its URL.
    default_layer : str, optional
        Layer of a view without ``layer=`` (default: the latent layer).
    samplers, projections : sequence of str, optional
        Restrict the choices offered (default: all).
    sample_cache_dir : path, optional
        A separate cache folder for the sample passes' aggregates and scores (default: the
        workspace's cache).
    background : bool
        With ``workspace``: build the projections and fits not cached yet in a background
        process (the page marks them as computing and switches to them when they arrive),
        instead of building each when it is first asked for.
    jobs_dir : path, optional
        Where background jobs (a selection's exact answer) keep their progress and results
        (default: ``jobs/`` in the workspace's cache folder). Every server worker must be
        given the same folder.
    **dash_kwargs
        Passed to :class:`dash.Dash`.

    Returns
    -------
    dash.Dash
        ``app.server`` is the Flask server (for a WSGI server).
    """
    if (workspace is None) == (warmup is None):
        raise ValueError("give exactly one of workspace or warmup")
    provider = warmup if warmup is not None else Ready(workspace, background=background, projections=projections,
                                                        samplers=samplers)
    sample_cache = ArrayCache(sample_cache_dir) if sample_cache_dir is not None else None
    context = AppContext(provider, sample_cache=sample_cache, samplers=samplers, projections=projections,
                         default_layer=default_layer, default_projection=default_projection)
    dash_kwargs.setdefault("assets_folder", str(ASSETS))
    if jobs_dir is None:  # beside the workspace's cache, which every worker of one server shares
        cache_dir = workspace.cache.directory.parent if workspace is not None else warmup.kwargs.get("cache_dir")
        jobs_dir = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "jobs"
    dash_kwargs.setdefault("background_callback_manager", jobs_manager(jobs_dir))
    app = Dash(__name__, title=title, update_title=None, **dash_kwargs)

    def serve_layout():
        if provider.ready:
            meta, _ = context.get()
            return build_layout(meta, title=title, pending=provider.pending())
        return loading_layout(provider.status())

    app.layout = serve_layout
    app.validation_layout = html.Div([build_layout(_PLACEHOLDER_META, title=title), loading_layout({})])
    register(app, context, title=title)
    register_boot(app, provider)
    if workspace is not None and F.uses_density(workspace.n_items):
        # compiled beside the server's start, so the first density view is drawn warm
        counts = F.density_category_counts(len(workspace.dataset.class_names))
        threading.Thread(target=density.warm_up, args=(counts,), name="dldiag-density-warm-up", daemon=True).start()
    if warmup is not None:
        app.server.before_request(lambda: warmup.start())
    return app
