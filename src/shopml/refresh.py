"""Refresh a run with items that have no interactions yet, without retraining.

A shop lists new products every week. :func:`add_items_to_run` loads a run, hands the new
items and their features to every component that can take them
(:meth:`~shopml.recommend.base.SequentialRecommender.add_items`: SASRec, Caser and GRU4Rec
with item features score them through their features; models without features rank them
after every item they know), and writes the run again, signed, atomically. A running ``shopml serve``
picks it up on ``POST /v1/admin/reload``.

Example (not run: needs a run folder):
    ``add_items_to_run("runs/shop", read_item_features("new_items.json"))``
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from shopml.errors import ConfigError
from shopml.runs import load_run, save_run

__all__ = ["add_items_to_run"]

log = logging.getLogger(__name__)


def add_items_to_run(path, item_features, *, out=None, items=None) -> dict:
    """Add the items of ``item_features`` the run does not know (or only ``items``) to every
    component that takes new items; write the run to ``out`` (default: in place). Returns
    ``{"added", "components", "out"}``."""
    path = Path(path)
    run = load_run(path)
    known = set(run.items)
    wanted = [str(i) for i in (items if items is not None else item_features.item_tokens)]
    new = [i for i in dict.fromkeys(wanted) if i not in known]
    takers = {name: c for name, c in run.components.items() if hasattr(c, "add_items")}
    if not takers:
        raise ConfigError(f"{path}: the run has no component that takes new items (a recommend job)")
    for name, comp in takers.items():
        comp.add_items(new, item_features)
        log.info("refresh: %s now has %d items", name, comp.n_items_)
    users = json.loads((path / "ids" / "users.json").read_text())
    m = run.manifest
    target = Path(out) if out is not None else path
    save_run(target, components=run.components, params=m.get("params"), metrics=m.get("metrics"),
             data={**m.get("data", {}), "items_added": m.get("data", {}).get("items_added", 0) + len(new)},
             skipped=m.get("skipped"), extras=run.extras, items=list(run.items) + new, users=users)
    return {"added": len(new), "components": sorted(takers), "out": str(target)}
