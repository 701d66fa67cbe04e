"""The one exception tree of shopml.

Every error a user can cause derives from :class:`ShopMLError`; the CLI turns it into
one line on stderr and exit code 2, the HTTP service into a 4xx answer.

    ShopMLError
    ├── DataError          bad input data: names the file, row and column
    ├── ConfigError        bad parameter or option value
    ├── NotFittedError     predict/recommend/save before fit
    ├── ArtifactError      a run folder that is missing, corrupted or mismatched
    ├── InfeasibleError    a pricing request no price can satisfy
    └── TrainingError      a fit whose loss stopped being finite (diverged)

Example:
    >>> try:
    ...     raise DataError("bad timestamp", path="e.csv", row=3, column="timestamp")
    ... except ShopMLError as e:
    ...     print(e)
    e.csv: row 3, column 'timestamp': bad timestamp
"""

from __future__ import annotations

__all__ = [
    "ShopMLError",
    "DataError",
    "ConfigError",
    "NotFittedError",
    "ArtifactError",
    "InfeasibleError",
    "TrainingError",
]


class ShopMLError(Exception):
    """Base class of every error a user of shopml can cause."""


class DataError(ShopMLError, ValueError):
    """Invalid input data. The message names where: file, row (1-based line) and column."""

    def __init__(self, message: str, *, path=None, row: int | None = None, column: str | None = None):
        self.path, self.row, self.column, self.reason = path, row, column, message
        where = []
        if path is not None:
            where.append(str(path))
        loc = []
        if row is not None:
            loc.append(f"row {row}")
        if column is not None:
            loc.append(f"column {column!r}")
        prefix = ": ".join(x for x in [", ".join(where), ", ".join(loc)] if x)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConfigError(ShopMLError, ValueError):
    """An invalid parameter value or option."""


class NotFittedError(ShopMLError, RuntimeError):
    """The estimator is used before ``fit``."""


class ArtifactError(ShopMLError):
    """A saved run or model that cannot be loaded safely (missing, corrupt, mismatched)."""


class InfeasibleError(ShopMLError, ValueError):
    """A pricing request whose constraints no price can satisfy."""


class TrainingError(ShopMLError, RuntimeError):
    """Training diverged: the loss became NaN or infinite. Silently keeping such weights gave
    a model that predicts nothing, so the fit stops and says so."""
