"""Which digests are due for whom at a logical time: pure decisions, no I/O.

A reader's period is the local date (daily) or ISO week (weekly) of `now` in their time zone
(their `timezone`, else the schedule's). A digest is due once per period, at the first run at or
after the reader's `send_at` (no `send_at`: at the first run of the period). A weekly digest
thus goes out at the first run of each ISO week and holds the best of at least the last 7 days.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from digest.config import Subscriber


def local_time(subscriber: Subscriber, now: datetime, default_tz: str) -> datetime:
    return now.astimezone(zoneinfo.ZoneInfo(subscriber.timezone or default_tz))


def period_of(subscriber: Subscriber, now: datetime, default_tz: str) -> str:
    """`2026-08-10` for a daily reader, `2026-W33` for a weekly one."""
    local = local_time(subscriber, now, default_tz)
    if subscriber.frequency == "weekly":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.date().isoformat()


def is_due(subscriber: Subscriber, now: datetime, default_tz: str) -> bool:
    """Whether this reader's send time for the current period has come."""
    if subscriber.send_at is None:
        return True
    return local_time(subscriber, now, default_tz).time() >= subscriber.send_at
