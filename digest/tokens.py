"""Signed per-reader tokens (unsubscribe links) and unguessable Message-IDs, by HMAC-SHA256.

The secret comes from $DIGEST_SECRET, else from a file beside the database (`<db>.secret`),
generated once with 32 random bytes and readable by its owner only. A token is
`<base64url(subscriber id)>.<first 32 hex digits of HMAC(secret, "unsubscribe:" + id)>`:
anyone can read whose it is, nobody can forge one for another reader.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_ENV = "DIGEST_SECRET"


def secret_path(database: Path) -> Path:
    return database.with_name(database.name + ".secret")


def load_secret(database: Path, *, create: bool = True) -> bytes | None:
    """The signing secret: $DIGEST_SECRET, else the file beside the database (made if asked)."""
    if value := os.environ.get(SECRET_ENV):
        return value.encode()
    path = secret_path(database)
    if path.exists():
        return path.read_text().strip().encode()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip().encode()


def _mac(secret: bytes, purpose: str, value: str, digits: int = 32) -> str:
    return hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:digits]


def unsubscribe_token(secret: bytes, subscriber_id: str) -> str:
    """The token that unsubscribes one reader."""
    name = base64.urlsafe_b64encode(subscriber_id.encode()).decode().rstrip("=")
    return f"{name}.{_mac(secret, 'unsubscribe', subscriber_id)}"


def verify_token(secret: bytes, token: str) -> str | None:
    """The subscriber id of a genuine token, or None for a forged or damaged one."""
    name, _, mac = token.strip().partition(".")
    try:
        subscriber_id = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    expected = _mac(secret, "unsubscribe", subscriber_id)
    return subscriber_id if hmac.compare_digest(mac, expected) else None


def message_id(secret: bytes, subscriber_id: str, period: str, domain: str) -> str:
    """The same unguessable Message-ID for a reader's digest of a period, every time."""
    return f"<{period}.{_mac(secret, 'message-id', f'{subscriber_id}/{period}', 24)}@{domain}>"
