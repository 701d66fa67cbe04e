"""Warm refresh of a fitted next-item model (``shopml fit --warm-start``): the histories as
they are now, over an item map that extends the model's, so every known item keeps its row.
Mixed into :class:`shopml.recommend.base.SequentialRecommender`; a model that trains
overrides :meth:`Refreshing._refresh_indices` (SASRec and Caser continue from their weights).
"""

from __future__ import annotations

import numpy as np

from shopml.errors import DataError

__all__ = ["Refreshing"]


class Refreshing:
    """``refresh`` for every recommender (see the module docstring)."""

    def refresh(self, sequences, *, rows=None, epochs: int = 2, lr_scale: float = 0.3, item_features=None,
                item_prices: dict | None = None, item_categories: dict | None = None,
                item_quantities: dict | None = None) -> "Refreshing":
        """Warm start on newer data: ``sequences`` are the histories as they are now, over an
        item map that extends the model's (:meth:`~shopml.data.sequences.IdMap.extended`, so
        every known item keeps its row). New items join through :meth:`add_items`; latest
        prices, categories and units per purchase replace the old ones; the stored histories become ``sequences``.
        Neural models then train ``epochs`` more epochs at ``lr_scale`` x their learning rate
        on the history rows ``rows`` (the users with new events plus a replay sample; default
        all) from their current weights;
        counting models, which cost seconds, are refitted on everything. Returns self.

        Example:
            >>> from shopml.data.sequences import sequences_from_lists
            >>> from shopml.recommend.baselines import MostPopular
            >>> m = MostPopular().fit(sequences_from_lists([["a", "b"], ["b"]]))
            >>> seqs = sequences_from_lists([["a", "b"], ["b"], ["c", "c", "c"]])
            >>> m.refresh(seqs).item_ids_, m.predict([["a"]], k=1)
            (['a', 'b', 'c'], [['c']])
        """
        self._check_fitted()
        ids = sequences.item_map.to_list()
        if ids[: len(self.item_ids_)] != self.item_ids_:
            raise DataError("refresh needs histories over an item map that extends the model's "
                            "(IdMap.extended): a known item changed its index")
        self.add_items(ids[len(self.item_ids_):], item_features, item_prices=item_prices,
                       item_categories=item_categories)
        for i, price in (item_prices or {}).items():
            if str(i) in self._item_index:
                self.item_prices_[self._item_index[str(i)]] = float(price)
        qty = self._quantities()
        for i, q in (item_quantities or {}).items():
            if str(i) in self._item_index:
                qty[self._item_index[str(i)]] = float(q)
        self.item_quantities_ = qty
        for i, cat in (item_categories or {}).items():
            if str(i) in self._item_index:
                self.item_categories_[self._item_index[str(i)] - 1] = str(cat)
        old_users = list(self.user_ids_)
        indptr = np.asarray(sequences.indptr, dtype=np.int64)
        items = np.asarray(sequences.items, dtype=np.int64)
        self._keep_histories(sequences)
        self._remap_users(old_users)
        self.pop_ = np.bincount(items, minlength=self.n_items_ + 1).astype(np.float64)
        self.pop_[0] = 0.0
        rows = np.arange(len(indptr) - 1) if rows is None else np.asarray(rows, dtype=np.int64)
        self.fit_info_ = {**self._refresh_indices(indptr, items, rows, int(epochs), float(lr_scale)), "mode": "warm"}
        self.n_model_items_ = self.n_items_
        return self

    def _refresh_indices(self, indptr, items, rows, epochs: int, lr_scale: float) -> dict:
        """Hook of :meth:`refresh`: counting models refit on every history."""
        return {**(self._fit_indices(indptr, items, None) or {}), "rows": len(indptr) - 1, "refit": True}

