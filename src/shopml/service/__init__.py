"""HTTP service over a run folder (FastAPI + uvicorn): see :func:`create_app`.

The app is imported lazily so ``shopml.service.engine`` (used by the demo and the CLI)
does not pull in FastAPI.
"""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from shopml.service.app import create_app

        return create_app
    raise AttributeError(f"module 'shopml.service' has no attribute {name!r}")
