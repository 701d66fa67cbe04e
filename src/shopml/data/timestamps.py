"""Timestamps of any common shape to ``Datetime("us", "UTC")``, vectorized.

Read without a format (``timestamp_format=None``):

* typed Parquet/JSON datetimes and dates (naive ones are taken as UTC);
* ISO-8601 with ``T`` or a space: ``2024-05-01``, ``2024-05-01 10:00``,
  ``2024-05-01T10:00:00.5``, with a zone ``Z``, ``+01:00``, ``+0100`` or a trailing
  zone word ``UTC`` / ``GMT`` (the REES46 export writes ``2019-10-01 00:00:00 UTC``);
* US slash dates ``M/D/YYYY H:MM[:SS]`` (the UCI Online Retail original); the column is
  read day-first instead when some value's first field exceeds 12 and no second field does;
* unix epochs, the unit told apart *per value* by magnitude: below 1e11 seconds, below
  1e14 milliseconds, below 1e17 microseconds, else nanoseconds (1e11 s is the year 5138
  and 1e11 ms is 1973, so real logs are never ambiguous). A column mixing units is read
  value by value and gets a ``mixed_epoch_units`` warning.

``timestamp_format`` (strftime, e.g. ``%d.%m.%Y %H:%M``) reads anything else. Naive times
are UTC. A value that cannot be read raises DataError at its row.

Example:
    >>> import polars as pl
    >>> df = pl.DataFrame({"timestamp": ["2019-10-01 00:00:00 UTC", "12/1/2010 8:26"]})
    >>> parse_timestamp(df, Source())[0].to_list()[1]
    datetime.datetime(2010, 12, 1, 8, 26, tzinfo=zoneinfo.ZoneInfo(key='UTC'))
"""

from __future__ import annotations

import polars as pl

from shopml.data.validate import Source, first_true, warning_at
from shopml.errors import ConfigError, DataError

__all__ = ["parse_timestamp"]

_UTC = pl.Datetime("us", "UTC")
_UNIT_NAMES = ("seconds", "milliseconds", "microseconds", "nanoseconds")


def parse_timestamp(df: pl.DataFrame, source: Source, fmt: str | None = None) -> tuple[pl.Series, list[dict]]:
    """The ``timestamp`` column as UTC datetimes plus warnings (mixed epoch units)."""
    s = df["timestamp"]
    if isinstance(s.dtype, pl.Datetime):
        return _utc(s).dt.cast_time_unit("us").alias("timestamp"), []
    if s.dtype == pl.Date:
        return s.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("timestamp"), []
    if fmt is not None:
        return _with_format(df, source, fmt), []
    if s.dtype.is_numeric():
        parsed, warnings = _from_epoch(df, s, source)
        return parsed, warnings
    if s.dtype != pl.String:
        raise DataError(f"unsupported timestamp type {s.dtype}", path=source.path, column="timestamp")
    text = s.str.strip_chars()
    sample = text.drop_nulls().head(1)
    numeric = sample.len() > 0 and sample.cast(pl.Float64, strict=False).is_not_null().all()
    if numeric:
        parsed, warnings = _from_epoch(df, text.cast(pl.Float64, strict=False), source)
    else:
        parsed, warnings = _from_text(text), []
    idx = first_true(df, parsed.is_null() & s.is_not_null())
    if idx is not None:
        what = "unix time" if numeric else "ISO-8601 or M/D/YYYY time; pass timestamp_format"
        raise source.error(df, idx, "timestamp", f"unparsable timestamp {s[idx]!r} (expected {what})")
    return parsed.alias("timestamp"), warnings


def _utc(x: pl.Series) -> pl.Series:
    return x.dt.convert_time_zone("UTC") if x.dtype.time_zone else x.dt.replace_time_zone("UTC")


def _with_format(df: pl.DataFrame, source: Source, fmt: str) -> pl.Series:
    s = df["timestamp"]
    text = (s if s.dtype == pl.String else s.cast(pl.String)).str.strip_chars()
    try:
        parsed = _utc(text.str.to_datetime(fmt, strict=False, time_unit="us"))
    except pl.exceptions.PolarsError as exc:
        raise ConfigError(f"timestamp_format {fmt!r} is not a usable strftime format: "
                          f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}") from None
    idx = first_true(df, parsed.is_null() & s.is_not_null())
    if idx is not None:
        raise source.error(df, idx, "timestamp", f"timestamp {s[idx]!r} does not match timestamp_format {fmt!r}")
    return parsed.alias("timestamp")


def _from_epoch(df: pl.DataFrame, s: pl.Series, source: Source) -> tuple[pl.Series, list[dict]]:
    """Epoch numbers -> UTC datetimes, each value's unit from its own magnitude."""
    frame = pl.DataFrame({"v": s})
    a = pl.col("v").abs()
    unit = pl.when(a < 1e11).then(0).when(a < 1e14).then(1).when(a < 1e17).then(2).otherwise(3)
    v = pl.col("v")
    if s.dtype.is_integer():
        v = v.cast(pl.Int64)
        us = (pl.when(a < 1e11).then(v * 1_000_000).when(a < 1e14).then(v * 1_000)
              .when(a < 1e17).then(v).otherwise(v // 1_000))
    else:
        scale = pl.when(a < 1e11).then(1e6).when(a < 1e14).then(1e3).when(a < 1e17).then(1.0).otherwise(1e-3)
        us = (v * scale).round()
        # Values beyond the Int64 range of microseconds are unreadable, not wrapped around.
        us = pl.when(us.abs() < 9.2e18).then(us).otherwise(None).cast(pl.Int64, strict=False)
    out = frame.select(us=us, unit=pl.when(v.is_not_null()).then(unit))
    parsed = out["us"].cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("timestamp")
    return parsed, _mixed_units(df, out["unit"], source)


def _mixed_units(df: pl.DataFrame, unit: pl.Series, source: Source) -> list[dict]:
    counts = unit.drop_nulls().value_counts(sort=True)
    if counts.height < 2:
        return []
    major = int(counts[0, 0])
    minority = (unit != major).fill_null(False)
    n = int(minority.sum())
    what = ", ".join(f"{int(c):,} in {_UNIT_NAMES[int(u)]}" for u, c in counts.iter_rows())
    idx = int(minority.arg_true()[0])
    return [warning_at("mixed_epoch_units", n, f"the timestamp column mixes epoch units ({what}); "
                       "each value was read in the unit its magnitude implies", df, idx, source)]


def _from_text(text: pl.Series) -> pl.Series:
    """Date-time strings -> UTC datetimes. Polars infers one format from the data; rows it
    cannot read (other formats, zone words) get a second pass over the accepted variants."""
    first = pl.Series("timestamp", [None] * text.len(), dtype=_UTC)
    sample = text.drop_nulls().head(1)
    # Inference only for ISO dates: on slash dates polars guesses day-first, the wrong
    # order for US logs; those go through the explicit variants below.
    if sample.len() and sample.str.contains(r"^\d{4}-\d{2}-\d{2}").all():
        try:
            first = _utc(text.str.to_datetime(strict=False, time_unit="us"))
        except pl.exceptions.PolarsError:
            pass
    if first.null_count() == text.null_count():
        return first
    t = (text.str.replace(r"(?i)\s*(UTC|GMT|Z)$", "Z")
         .str.replace(r"\s+([+-]\d{2}:?\d{2})$", "${1}")
         .str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T"))
    variants = [first, _utc(t.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_unit="us")),
                _utc(t.str.to_datetime("%Y-%m-%dT%H:%M%#z", strict=False, time_unit="us"))]
    for fmt in ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        variants.append(_utc(t.str.to_datetime(fmt, strict=False, time_unit="us")))
    first_field, second_field = ("%d", "%m") if _day_first(t) else ("%m", "%d")
    for rest in (" %H:%M:%S", " %H:%M", ""):
        fmt = f"{first_field}/{second_field}/%Y{rest}"
        variants.append(_utc(t.str.to_datetime(fmt, strict=False, time_unit="us")))
    return pl.select(pl.coalesce(variants)).to_series().alias("timestamp")


def _day_first(t: pl.Series) -> bool:
    """Slash dates are month-first (US, the UCI original) unless the data says otherwise."""
    parts = t.str.extract_groups(r"^(\d{1,2})/(\d{1,2})/\d{4}")
    a, b = parts.struct.field("1").cast(pl.Int32, strict=False), parts.struct.field("2").cast(pl.Int32, strict=False)
    return bool((a > 12).any()) and not bool((b > 12).any())
