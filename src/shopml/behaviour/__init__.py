"""User behaviour prediction, one name for three task folders: :mod:`shopml.sessions` (what a
session clicks next), :mod:`shopml.intent` (whether it buys) and :mod:`shopml.customers` (how
much a customer will buy in the coming weeks). The names below are kept here for code that
imported them from ``shopml.behaviour``.

Names load lazily, so importing one model does not import torch code of the others.

Example:
    >>> from shopml.behaviour import BGNBD
    >>> BGNBD.__name__
    'BGNBD'
"""

from __future__ import annotations

import importlib

_NAMES = {
    "SessionRecommender": "sessions.estimator",
    "load_session_model": "sessions.estimator",
    "PopularityRecommender": "sessions.baselines",
    "MarkovRecommender": "sessions.baselines",
    "VSKNNRecommender": "sessions.baselines",
    "PurchaseIntentModel": "intent.estimator",
    "CustomerForecaster": "customers.estimator",
    "evaluate_holdout": "customers.estimator",
    "BGNBD": "customers.bgnbd",
    "IntentClassifier": "intent.tabular",
    "cross_validate_intent": "intent.tabular",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(f"shopml.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'shopml.behaviour' has no attribute {name!r}")
