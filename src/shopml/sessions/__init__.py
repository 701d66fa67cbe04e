"""Next click in a session: ``SessionRecommender`` (GRU4Rec, ``estimator``; its net in ``nets``,
its loop in ``train``) and the baselines ``PopularityRecommender``, ``MarkovRecommender`` and
``VSKNNRecommender`` (``baselines``). ``job`` is the session job of ``shopml fit``.

Names load lazily, so importing one model does not import the torch code of the others.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "SessionRecommender": "estimator",
    "load_session_model": "estimator",
    "session_model": "estimator",
    "PopularityRecommender": "baselines",
    "MarkovRecommender": "baselines",
    "VSKNNRecommender": "baselines",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(f"shopml.sessions.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'shopml.sessions' has no attribute {name!r}")
