"""Future purchases per customer: ``CustomerForecaster`` (an RNN over weekly purchase
histories, ``estimator``; its net in ``nets``) compared with ``BGNBD`` (``bgnbd``, maximum
likelihood, Fader, Hardie & Lee 2005). ``job`` is the customer job of ``shopml fit``.
"""

from __future__ import annotations

from shopml._lazy import lazy_names

__getattr__, __all__ = lazy_names(__name__, {
    "CustomerForecaster": "customers.estimator",
    "evaluate_holdout": "customers.estimator",
    "BGNBD": "customers.bgnbd",
})
