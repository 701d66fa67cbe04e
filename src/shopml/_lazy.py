"""Lazy package names: ``from shopml.sessions import SessionRecommender`` imports only the
module that defines it, so importing one model does not import the torch code of the others."""

from __future__ import annotations

import importlib


def lazy_names(package: str, names: dict[str, str]):
    """``(__getattr__, __all__)`` for ``package``, where ``names`` maps a public name to the
    module (relative to ``shopml``'s package root, dotted) that defines it.

    Example:
        >>> getattr_, all_ = lazy_names("shopml.customers", {"BGNBD": "customers.bgnbd"})
        >>> getattr_("BGNBD").__name__, all_
        ('BGNBD', ['BGNBD'])
    """

    def __getattr__(name: str):
        if name in names:
            return getattr(importlib.import_module(f"shopml.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(names)
