"""What every benchmark module shares: the result type and the peak-memory reading."""

from __future__ import annotations

import resource
from dataclasses import dataclass, field

__all__ = ["BenchmarkResult", "peak_rss_mb"]


@dataclass
class BenchmarkResult:
    """One benchmark's output: ``dataset`` (a one-line name), ``rows`` (one dict per model,
    the table) and ``extra`` (run-wide facts: settings, timings, notes), written by the CLI
    as ``{"dataset", "rows", **extra}``.

    Example:
        >>> BenchmarkResult("tiny", [{"model": "pop", "hr@10": 0.5}]).extra
        {}
    """

    dataset: str
    rows: list[dict]
    extra: dict = field(default_factory=dict)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB).

    Example:
        >>> peak_rss_mb() > 0
        True
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
