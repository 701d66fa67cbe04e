"""Future purchases per customer: ``CustomerForecaster`` (an RNN over weekly purchase
histories, ``estimator``; its net in ``nets``) compared with ``BGNBD`` (``bgnbd``, maximum
likelihood, Fader, Hardie & Lee 2005). ``job`` is the customer job of ``shopml fit``.

Names load lazily, so importing one model does not import the torch code of the others.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "CustomerForecaster": "estimator",
    "evaluate_holdout": "estimator",
    "BGNBD": "bgnbd",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(f"shopml.customers.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'shopml.customers' has no attribute {name!r}")
