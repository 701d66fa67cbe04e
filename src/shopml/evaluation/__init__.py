"""Evaluation: ranking and point metrics (:mod:`shopml.evaluation.metrics`) and protocols.

Example:
    >>> from shopml.evaluation import hit_rate
    >>> hit_rate([1, 20], 10)
    0.5
"""

from shopml.evaluation.metrics import (  # __all__: one list of the public names, kept in metrics
    __all__,
    auc,
    hit_rate,
    log_loss,
    mae,
    mrr,
    ndcg,
    rank_all,
    recall,
    rmse,
    target_ranks,
    wape,
)
