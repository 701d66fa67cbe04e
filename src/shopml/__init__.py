"""shopml: deep learning for e-commerce event logs.

Three jobs, one toolkit:

* ``shopml.recommend`` ranks the next items for a user (Caser CNN, SASRec, baselines);
* ``shopml.sessions``, ``shopml.intent`` and ``shopml.customers`` (also ``shopml.behaviour``)
  predict the next click and purchase intent of a session, and
  forecasts customers' future purchases (session RNN, customer RNN, BG/NBD);
* ``shopml.pricing`` models demand (monotone in price), estimates elasticities and
  optimizes prices under constraints.
"""

from shopml.errors import (
    ArtifactError,
    ConfigError,
    DataError,
    InfeasibleError,
    NotFittedError,
    ShopMLError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "ShopMLError",
    "DataError",
    "ConfigError",
    "NotFittedError",
    "ArtifactError",
    "InfeasibleError",
]
