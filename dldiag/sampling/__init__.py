"""Samplers of the latent space: fit once, then sample instantly.

The eight techniques of the report (Sections IV and V-C) behind one contract
(:class:`Sampler`), plus the weighted variant of the three likelihood-ratio samplers::

    s = make_sampler("max-margin").fit(latent, y_true, y_pred, seed=0)
    idx = s.sample(0.05, j=0.7)          # sorted unique int64 indices, floor(0.05 N + 0.5) of them

========================  ==========================================================  =======
name                      what it does                                                module
========================  ==========================================================  =======
random                    uniform without replacement                                 _simple
stratified-cm             confusion-matrix cells, proportional, largest remainder     _simple
latent-grid               5 PCA dims x 2 bins = 32 cells, equal allocation            _simple
vas                       visualization-aware sampling by interchange                 _vas
eb-tree                   explicable boundary tree on predicted labels                _ebtree
gmm-full, gmm-spherical   variational GMM clusters sorted by likelihood ratio, j      _ratio
max-margin                calibrated linear SVM classes sorted by likelihood ratio    _ratio
\\*-weighted               the three above, drawn with probability ~ 1 / ratio         _ratio
========================  ==========================================================  =======
"""

from __future__ import annotations

from ._base import NotFittedError, Sampler, allocate, sample_size
from ._ebtree import EBTreeSampler
from ._ratio import (
    GMMFullSampler,
    GMMFullWeightedSampler,
    GMMSphericalSampler,
    GMMSphericalWeightedSampler,
    MaxMarginSampler,
    MaxMarginWeightedSampler,
)
from ._simple import LatentGridSampler, RandomSampler, StratifiedCMSampler
from ._vas import VASSampler

__all__ = [
    "SAMPLER_NAMES",
    "SAMPLERS",
    "make_sampler",
    "Sampler",
    "NotFittedError",
    "allocate",
    "sample_size",
]

SAMPLERS: dict[str, type[Sampler]] = {
    cls.name: cls
    for cls in (
        RandomSampler,
        StratifiedCMSampler,
        VASSampler,
        EBTreeSampler,
        LatentGridSampler,
        GMMFullSampler,
        GMMSphericalSampler,
        MaxMarginSampler,
        GMMFullWeightedSampler,
        GMMSphericalWeightedSampler,
        MaxMarginWeightedSampler,
    )
}
SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)


def make_sampler(name: str, **params) -> Sampler:
    """A new, unfitted sampler by registry name.

    Parameters
    ----------
    name : str
        One of :data:`SAMPLER_NAMES`.
    **params
        The sampler's keyword-only parameters; validated when ``fit`` or ``sample`` starts.

    Raises
    ------
    ValueError
        If ``name`` is not registered (the message lists the names).
    TypeError
        If a parameter does not exist for that sampler.

    Examples
    --------
    >>> make_sampler("latent-grid", spill="equal")
    make_sampler('latent-grid', n_components=5, n_bins=2, spill='equal')
    """
    if name not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(map(repr, SAMPLER_NAMES))}; got {name!r}")
    return SAMPLERS[name](**params)
