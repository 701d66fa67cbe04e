"""Next click in a session: ``SessionRecommender`` (GRU4Rec, ``estimator``; its net in ``nets``,
its loop in ``train``) and the baselines ``PopularityRecommender``, ``MarkovRecommender`` and
``VSKNNRecommender`` (``baselines``). ``job`` is the session job of ``shopml fit``.
"""

from __future__ import annotations

from shopml._lazy import lazy_names

__getattr__, __all__ = lazy_names(__name__, {
    "SessionRecommender": "sessions.estimator",
    "load_session_model": "sessions.estimator",
    "session_model": "sessions.estimator",
    "PopularityRecommender": "sessions.baselines",
    "MarkovRecommender": "sessions.baselines",
    "VSKNNRecommender": "sessions.baselines",
})
