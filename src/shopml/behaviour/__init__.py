"""User behaviour prediction: what a session clicks next and whether it buys, and how much a
customer will buy in the coming weeks.

* ``SessionRecommender`` (``sessions``): GRU4Rec-style session RNN; baselines
  ``PopularityRecommender``, ``MarkovRecommender`` and ``VSKNNRecommender`` (``knn``).
* ``PurchaseIntentModel`` (``session_intent``): P(session ends in a purchase), a second head
  on a session GRU over items, event types and dwell times.
* ``CustomerForecaster`` (``customers``): RNN over weekly purchase histories, compared with
  ``BGNBD`` (``bgnbd``, maximum likelihood, Fader, Hardie & Lee 2005).
* ``IntentClassifier`` (``tabular``): neural model on the UCI online-shoppers features.

Names load lazily, so importing one model does not import torch code of the others.

Example:
    >>> from shopml.behaviour import BGNBD
    >>> BGNBD.__name__
    'BGNBD'
"""

from __future__ import annotations

import importlib

_NAMES = {
    "SessionRecommender": "sessions",
    "load_session_model": "sessions",
    "PopularityRecommender": "knn",
    "MarkovRecommender": "knn",
    "VSKNNRecommender": "knn",
    "PurchaseIntentModel": "session_intent",
    "CustomerForecaster": "customers",
    "evaluate_holdout": "customers",
    "BGNBD": "bgnbd",
    "IntentClassifier": "tabular",
    "cross_validate_intent": "tabular",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(f"shopml.behaviour.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'shopml.behaviour' has no attribute {name!r}")
