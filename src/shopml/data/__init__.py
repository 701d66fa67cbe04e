"""The data layer: events, validation, quality, sequences, public readers, simulators.

Names are imported on first use (PEP 562 ``__getattr__``), so ``import shopml.data`` is
cheap and a submodule that is missing or broken only fails the names that need it.

==================  ==========================================================
module              names
==================  ==========================================================
``events``          read_events, load_events, map_event_types, EVENT_SCHEMA
``validate``        validate_events
``quality``         quality_report
``raw``             read_raw, read_taobao, read_otto, read_yoochoose_clicks, read_diginetica_views
``sequences``       IdMap, Sequences, build_sequences, leave_one_out, temporal_split, sessionize
``public``          read_beauty, read_sessions, read_prefix_targets, read_session_split, SessionSplit,
                    read_online_shoppers, read_cdnow, read_oj, read_table
``simulate``        simulate_shop, simulate_events, simulate_market, SimulatedShop, ShopTruth
==================  ==========================================================

Example:
    >>> from shopml.data import simulate_shop, build_sequences
    >>> build_sequences(simulate_shop(n_users=10, n_items=20, seed=0).events).n_users
    10
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "events": ("read_events", "load_events", "map_event_types", "EVENT_SCHEMA"),
    "validate": ("validate_events",),
    "quality": ("quality_report",),
    "raw": ("read_raw", "read_taobao", "read_otto", "read_yoochoose_clicks", "read_diginetica_views"),
    "sequences": ("IdMap", "Sequences", "build_sequences", "leave_one_out", "temporal_split", "sessionize"),
    "public": ("read_beauty", "read_sessions", "read_prefix_targets", "read_session_split", "SessionSplit",
               "read_online_shoppers", "read_cdnow", "read_oj", "read_table"),
    "simulate": ("simulate_shop", "simulate_events", "simulate_market", "SimulatedShop", "ShopTruth"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'shopml.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"shopml.data.{module}"), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
