"""Business rules applied at request time, after scoring and before the top-k, so that ``k``
items come back whenever ``k`` items are eligible.

* ``exclude``: item ids never returned (out of stock, withdrawn);
* ``price_range``: ``(low, high)``, either end None; an item with no known price is not
  eligible, because nobody can vouch that it is in range (a range with low above high is
  empty: nothing is eligible);
* ``max_per_category``: at most this many items of one category in a slate (items without a
  category are not capped);
* ``pinned``: shown first, in the given order, when eligible;
* ``boost``: added to an item's score (in the model's score units) before ranking;
* ``new_slots``: at least this many slots (after the pins) go to the best-scored eligible
  items with no interactions yet (added by ``add_items``), when there are any, so a product
  listed today is shown today. In full-catalogue ranking a new item seldom outscores the
  items that have sales, even with its features (the cold-start benchmark), and a shop
  usually wants some exposure for it anyway. They take their place in the slate by score.

Example:
    >>> import torch
    >>> r = Rules(max_per_category=1, pinned=("c",))
    >>> scores = torch.tensor([float("-inf"), 3.0, 2.0, 1.0, 0.5])
    >>> r.select(scores, torch.ones(5, dtype=torch.bool), 3, ["", "x", "x", "y", "z"], {"c": 3})
    [3, 1, 4]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from shopml.errors import ConfigError

__all__ = ["Rules"]


@dataclass(frozen=True)
class Rules:
    exclude: tuple[str, ...] = ()
    price_range: tuple[float | None, float | None] | None = None
    max_per_category: int | None = None
    pinned: tuple[str, ...] = ()
    boost: dict = field(default_factory=dict)
    new_slots: int = 0

    def __post_init__(self) -> None:
        if self.new_slots < 0:
            raise ConfigError(f"new_slots must be >= 0, got {self.new_slots}")
        if self.max_per_category is not None and self.max_per_category < 1:
            raise ConfigError(f"max_per_category must be >= 1, got {self.max_per_category}")
        if self.price_range is not None:
            lo, hi = self.price_range
            if (lo is not None and not math.isfinite(lo)) or (hi is not None and not math.isfinite(hi)):
                raise ConfigError("price_range bounds must be finite numbers or None")
        for item, delta in self.boost.items():
            if not math.isfinite(float(delta)):
                raise ConfigError(f"boost of {item!r} must be a finite number")

    @classmethod
    def from_options(cls, *, exclude=None, price_min=None, price_max=None, max_per_category=None,
                     pinned=None, boost=None, new_slots=None) -> "Rules | None":
        """Rules from request or command-line options (None when none is set). ``boost`` is a
        mapping, or ``"item=delta"`` strings as the CLI and the query string give them.

        Example:
            >>> Rules.from_options(boost=["a=2.5"], price_max=10).boost
            {'a': 2.5}
            >>> Rules.from_options() is None
            True
        """
        if isinstance(boost, (list, tuple)):
            pairs = {}
            for b in boost:
                item, sep, delta = str(b).rpartition("=")
                try:
                    pairs[item] = float(delta)
                except ValueError:
                    raise ConfigError(f"boost {str(b)[:40]!r}: expected ITEM=NUMBER") from None
                if not sep or not item:
                    raise ConfigError(f"boost {str(b)[:40]!r}: expected ITEM=NUMBER")
            boost = pairs
        if not (exclude or price_min is not None or price_max is not None or max_per_category is not None
                or pinned or boost or new_slots):
            return None
        price_range = None if price_min is None and price_max is None else (price_min, price_max)
        return cls(exclude=tuple(exclude or ()), price_range=price_range, max_per_category=max_per_category,
                   pinned=tuple(pinned or ()), boost=dict(boost or {}), new_slots=int(new_slots or 0))

    def eligible(self, index: dict[str, int], prices: torch.Tensor, n: int) -> torch.Tensor:
        """Bool ``[n + 1]``: items the rules allow (column 0, padding, never); ``prices``
        ``[n + 1]`` with NaN where an item's price is not known."""
        ok = torch.ones(n + 1, dtype=torch.bool)
        ok[0] = False
        ok[[index[i] for i in map(str, self.exclude) if i in index]] = False
        if self.price_range is not None:
            lo, hi = self.price_range
            known = ~torch.isnan(prices)
            ok &= known & (prices >= (lo if lo is not None else -math.inf)) & (prices <= (hi if hi is not None else math.inf))
        return ok

    def boosted(self, scores: torch.Tensor, index: dict[str, int]) -> torch.Tensor:
        """``scores`` ``[B, n + 1]`` with the boosts added (in place)."""
        for item, delta in self.boost.items():
            j = index.get(str(item))
            if j is not None:
                scores[:, j] += float(delta)
        return scores

    def key(self) -> tuple:
        """A hashable identity: requests with equal rules share one eligibility mask."""
        pr = None if self.price_range is None else tuple(self.price_range)
        return (tuple(self.exclude), pr, self.max_per_category, tuple(self.pinned),
                tuple(sorted((str(i), float(d)) for i, d in self.boost.items())), self.new_slots)

    def select(self, scores: torch.Tensor, ok: torch.Tensor, k: int, categories: list[str],
               index: dict[str, int], fresh: torch.Tensor | None = None) -> list[int]:
        """Indices of one slate (see :meth:`select_many`)."""
        return self.select_many(scores[None, :], ok, k, categories, index, fresh)[0]

    def select_many(self, scores: torch.Tensor, ok: torch.Tensor, k: int, categories: list[str],
                    index: dict[str, int], fresh: torch.Tensor | None = None) -> list[list[int]]:
        """Indices of one slate per row of ``scores [R, n + 1]``: eligible pinned items first,
        then the best-scored eligible items, at most ``max_per_category`` per category.
        ``categories[j]`` is item ``j``'s category (index 0 is padding); ``ok [n + 1]`` holds
        the eligibility; ``fresh [n + 1]`` marks the items with no interactions yet (for
        ``new_slots``). One batched top-k serves every row; the best few x k items nearly
        always fill a capped slate, and a row the cap starves falls back to a full sort."""
        masked = scores.masked_fill(~ok[None, :], -math.inf)
        pins = [index[i] for i in map(str, self.pinned) if i in index]
        fill = [_Fill(masked, min(k + len(pins), masked.shape[1]))]
        if self.new_slots and fresh is not None:
            fill.insert(0, _Fill(masked.masked_fill(~fresh[None, :], -math.inf), self.new_slots))
        finite = torch.isfinite(masked)
        pin_ok = finite[:, pins].tolist() if pins else [[] for _ in range(len(masked))]
        cap = self.max_per_category
        out = []
        for b in range(len(masked)):
            chosen: list[int] = []
            count: dict[str, int] = {}

            def take(j: int) -> None:
                c = categories[j]
                if j in chosen or (cap is not None and c and count.get(c, 0) >= cap):
                    return
                chosen.append(j)
                count[c] = count.get(c, 0) + 1

            for j, allowed in zip(pins, pin_ok[b]):
                if allowed and len(chosen) < k:
                    take(j)
            n_first = len(chosen)
            if len(fill) == 2:  # the new items' quota, then the rest
                fill[0].into(b, take, chosen, min(k, len(chosen) + self.new_slots))
            fill[-1].into(b, take, chosen, k)
            if len(fill) == 2:  # a new item takes its place by score, after the pins
                row = masked[b]
                chosen[n_first:] = sorted(chosen[n_first:], key=lambda j: -float(row[j]))
            out.append(chosen)
        return out


class _Fill:
    """Candidates of :meth:`Rules.select_many` for one source (every eligible item, or the new
    ones): one batched top-k of a few x the slots, and a full sort for a row the cap starves."""

    def __init__(self, masked: torch.Tensor, slots: int):
        self.masked = masked
        self.n_ok = torch.isfinite(masked).sum(1).tolist()
        self.width = min(8 * slots, masked.shape[1])
        top = masked.topk(self.width, dim=1)
        self.values, self.indices = top.values.tolist(), top.indices.tolist()

    def into(self, b: int, take, chosen: list[int], until: int) -> None:
        """``take`` row ``b``'s best candidates until ``chosen`` holds ``until`` items."""
        for v, j in zip(self.values[b], self.indices[b]):
            if len(chosen) >= until or v == -math.inf:
                return
            take(j)
        if len(chosen) < until and self.n_ok[b] > self.width:  # the cap starved the top: walk everything
            for j in torch.argsort(self.masked[b], descending=True)[: self.n_ok[b]].tolist():
                if len(chosen) >= until:
                    return
                take(j)
