"""Purchase intent: ``PurchaseIntentModel`` (P(session ends in a purchase) from its events,
``estimator``) and ``IntentClassifier`` (from the UCI summary features, ``tabular``); their
networks are in ``nets``.
"""

from __future__ import annotations

from shopml._lazy import lazy_names

__getattr__, __all__ = lazy_names(__name__, {
    "PurchaseIntentModel": "intent.estimator",
    "IntentClassifier": "intent.tabular",
    "cross_validate_intent": "intent.tabular",
})
