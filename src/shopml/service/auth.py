"""API keys with scopes, read from the environment or a JSON file.

Keys travel in the ``X-API-Key`` header. A request without a known key gets 401; a known
key lacking the endpoint's scope gets 403. Keys are kept only as sha256 digests in memory.

Sources, in order: the ``api_keys`` argument of ``create_app``; ``SHOPML_API_KEYS``
(``"KEY1:recommend,sessions;KEY2:*"``); the JSON file named by ``SHOPML_API_KEYS_FILE``
(``{"KEY1": ["recommend", "sessions"], "KEY2": ["*"]}``).

Example:
    >>> keys = ApiKeys.parse("k1:recommend;k2:*")
    >>> keys.scopes_of("k1"), "pricing" in keys.scopes_of("k2")
    (frozenset({'recommend'}), True)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from shopml.errors import ConfigError

__all__ = ["ApiKeys", "SCOPES", "HEADER"]

HEADER = "X-API-Key"
SCOPES = frozenset({"recommend", "sessions", "pricing", "admin"})


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeys:
    """Known keys (as sha256 digests) and the scopes each grants."""

    by_digest: dict[str, frozenset[str]]

    @classmethod
    def from_mapping(cls, mapping: dict[str, object]) -> "ApiKeys":
        """Build from ``{key: scopes}``; scopes is a list/set of names or ``"*"`` for all."""
        out = {}
        for key, scopes in mapping.items():
            if not isinstance(key, str) or len(key) < 8:
                raise ConfigError("API keys must be strings of at least 8 characters")
            names = [scopes] if isinstance(scopes, str) else list(scopes)
            granted = SCOPES if "*" in names else frozenset(names)
            unknown = granted - SCOPES
            if unknown:
                raise ConfigError(f"unknown API key scope(s) {sorted(unknown)}; known: {sorted(SCOPES)}")
            out[_digest(key)] = frozenset(granted)
        return cls(out)

    @classmethod
    def parse(cls, text: str) -> "ApiKeys":
        """Parse ``"KEY:scope,scope;KEY2:*"`` (the SHOPML_API_KEYS format)."""
        mapping = {}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            key, sep, scopes = part.partition(":")
            if not sep:
                raise ConfigError("SHOPML_API_KEYS entries look like KEY:scope1,scope2 (or KEY:*)")
            mapping[key.strip()] = [s.strip() for s in scopes.split(",") if s.strip()]
        return cls.from_mapping(mapping) if mapping else cls({})

    @classmethod
    def from_env(cls) -> "ApiKeys":
        """Keys from SHOPML_API_KEYS, else from the JSON file in SHOPML_API_KEYS_FILE."""
        text = os.environ.get("SHOPML_API_KEYS")
        if text:
            return cls.parse(text)
        path = os.environ.get("SHOPML_API_KEYS_FILE")
        if path:
            try:
                return cls.from_mapping(json.loads(Path(path).read_text()))
            except (OSError, json.JSONDecodeError, AttributeError) as e:
                raise ConfigError(f"{path}: cannot read API keys ({e})") from None
        return cls({})

    def scopes_of(self, key: str | None) -> frozenset[str] | None:
        """Scopes granted to ``key``, or None when the key is unknown."""
        if not key:
            return None
        return self.by_digest.get(_digest(key))

    def __len__(self) -> int:
        return len(self.by_digest)
