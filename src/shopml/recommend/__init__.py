"""Next-item recommendation: SASRec and Caser (``models``, nets in ``nets``), baselines, and
the shared estimator contract (``base``; tests in ``testing``).

Example:
    >>> from shopml.recommend import MostPopular, sequences_from_lists
    >>> MostPopular().fit(sequences_from_lists([["a", "b"], ["b"]])).recommend([["a"]], k=1)[0][0]["item_id"]
    'b'
"""

from shopml.recommend.base import SequentialRecommender, sequences_from_lists
from shopml.recommend.baselines import ItemKNN, Markov, MostPopular, Repurchase
from shopml.recommend.models import CaserRecommender, SASRecRecommender

__all__ = ["SequentialRecommender", "SASRecRecommender", "CaserRecommender", "MostPopular", "ItemKNN", "Markov", "Repurchase",
           "sequences_from_lists"]
