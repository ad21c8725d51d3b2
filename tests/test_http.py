"""HTTP details that need no server: Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from digest.http import parse_retry_after


def test_retry_after_in_seconds_or_as_a_date() -> None:
    """Retry-After is delta-seconds or an HTTP date; garbage is ignored."""
    now = datetime(2026, 8, 10, 7, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    later = format_datetime(datetime(2026, 8, 10, 7, 0, 30, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
