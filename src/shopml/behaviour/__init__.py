"""User behaviour prediction, one name for three task folders: :mod:`shopml.sessions` (what a
session clicks next), :mod:`shopml.intent` (whether it buys) and :mod:`shopml.customers` (how
much a customer will buy in the coming weeks). The names below are kept here for code that
imported them from ``shopml.behaviour``.

Example:
    >>> from shopml.behaviour import BGNBD
    >>> BGNBD.__name__
    'BGNBD'
"""

from __future__ import annotations

from shopml._lazy import lazy_names

__getattr__, __all__ = lazy_names(__name__, {
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
})
