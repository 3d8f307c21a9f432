"""dldiag: diagnose deep-learning classifiers from a small, smart sample of their data.

The library works without dash: data sets (:mod:`dldiag.datasets`), models
(:mod:`dldiag.models`), the streaming pass (:mod:`dldiag.activations`), query sets and
metrics (:mod:`dldiag.queries`, :mod:`dldiag.metrics`), samplers (:mod:`dldiag.sampling`)
and the cached workspace (:mod:`dldiag.artifacts`). The Dash app lives in ``dldiag.app``.
"""

__version__ = "0.1.0"
