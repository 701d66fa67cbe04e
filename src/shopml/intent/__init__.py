"""Purchase intent: ``PurchaseIntentModel`` (P(session ends in a purchase) from its events,
``estimator``) and ``IntentClassifier`` (from the UCI summary features, ``tabular``); their
networks are in ``nets``.

Names load lazily, so importing one model does not import the torch code of the others.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "PurchaseIntentModel": "estimator",
    "IntentClassifier": "tabular",
    "cross_validate_intent": "tabular",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(f"shopml.intent.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'shopml.intent' has no attribute {name!r}")
