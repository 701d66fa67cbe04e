"""Moved to :mod:`shopml.pricing.price_book` (the price book is part of the pricing job);
this name stays so older imports keep working."""

from shopml.pricing.price_book import DEFAULT_LAST_WEEKS, DEFAULT_MAX_CHANGE, PriceBook

__all__ = ["PriceBook", "DEFAULT_LAST_WEEKS", "DEFAULT_MAX_CHANGE"]
