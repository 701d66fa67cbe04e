"""Keyed pseudonymization of user ids (HMAC-SHA256).

User ids are replaced at ingestion by ``HMAC-SHA256(key, raw_id)`` truncated to 16 bytes
(32 hex chars), so artifacts never hold a raw id, yet the same user maps to the same
pseudonym wherever the same key is used (training, serving).

The key comes from, in order: the ``SHOPML_KEY`` environment variable (hex), the file named
by ``SHOPML_KEY_FILE``, or ``~/.config/shopml/key``; the file is created with a random key
(mode 0600) on first use.

Example:
    >>> k = bytes(32)
    >>> pseudonymize(["alice", "bob"], key=k)[0] == pseudonymize(["alice"], key=k)[0]
    True
    >>> len(pseudonymize(["alice"], key=k)[0])
    32
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Iterable

from shopml.errors import ConfigError

__all__ = ["load_key", "pseudonymize", "pseudonymize_one", "key_fingerprint"]

_DIGEST_BYTES = 16


def _key_file() -> Path:
    env = os.environ.get("SHOPML_KEY_FILE")
    return Path(env) if env else Path.home() / ".config" / "shopml" / "key"


def load_key() -> bytes:
    """Return the pseudonymization key, generating and saving one on first use."""
    env = os.environ.get("SHOPML_KEY")
    if env:
        try:
            key = bytes.fromhex(env.strip())
        except ValueError:
            raise ConfigError("SHOPML_KEY must be a hex string") from None
        if len(key) < 16:
            raise ConfigError("SHOPML_KEY must hold at least 16 bytes (32 hex characters)")
        return key
    path = _key_file()
    if path.exists():
        try:
            return bytes.fromhex(path.read_text().strip())
        except ValueError:
            raise ConfigError(f"{path}: the key file is not a hex string") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
    return key


def pseudonymize_one(raw_id, key: bytes | None = None) -> str:
    """Pseudonym of one raw id (``str(raw_id)`` is hashed)."""
    key = load_key() if key is None else key
    return hmac.new(key, str(raw_id).encode(), hashlib.sha256).digest()[:_DIGEST_BYTES].hex()


def pseudonymize(raw_ids: Iterable, key: bytes | None = None) -> list[str]:
    """Pseudonyms of many ids; hashes each distinct id once (ids repeat a lot in event logs)."""
    key = load_key() if key is None else key
    raw = [str(r) for r in raw_ids]
    cache = {u: pseudonymize_one(u, key) for u in set(raw)}
    return [cache[u] for u in raw]


def key_fingerprint(key: bytes | None = None) -> str:
    """A short, non-reversible fingerprint of the key, stored in manifests to detect a
    run served with the wrong key."""
    key = load_key() if key is None else key
    return hashlib.sha256(b"shopml-key-fingerprint" + key).hexdigest()[:16]
