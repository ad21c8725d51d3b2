"""APScheduler wiring for `digest serve`: a cron trigger in the configured time zone.

    serve(load_config, job)    # blocks until SIGINT/SIGTERM

BlockingScheduler with `coalesce`, `max_instances=1` and a misfire grace of hours, so a late
wake-up still runs once. Catch-up after downtime is decided from the runs recorded in SQLite,
not from APScheduler's job store: if the latest scheduled time before now is later than the
latest recorded run, that run is made at start. The crontab may have a sixth, leading field
for seconds.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from digest.config import Config
from digest.store import Store

MISFIRE_GRACE = 6 * 3600


def trigger(cron: str, timezone: str) -> CronTrigger:
    """The cron trigger of a 5-field crontab line, or 6 fields with seconds first."""
    fields = cron.split()
    if len(fields) == 6:
        second, minute, hour, day, month, dow = fields
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=dow,
            timezone=timezone,
        )
    return CronTrigger.from_crontab(cron, timezone=timezone)


def last_fire_before(
    t: CronTrigger, now: datetime, horizon: timedelta = timedelta(days=8)
) -> datetime | None:
    """The latest time the trigger fired at or before now (within the horizon)."""
    fire = t.get_next_fire_time(None, now - horizon)
    last = None
    while fire is not None and fire <= now:
        last = fire
        fire = t.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return last


def missed_run(config: Config, now: datetime) -> datetime | None:
    """The scheduled time of a run that was missed (no run recorded since), if any."""
    last_fire = last_fire_before(trigger(config.schedule.cron, config.schedule.timezone), now)
    if last_fire is None:
        return None
    with Store(config.database) as store:
        last_run = store.last_run()
    return last_fire if last_run is None or last_run < last_fire else None


def serve(
    load: Callable[[], Config],
    job: Callable[[datetime], None],
    *,
    log: Callable[[str], None] = print,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Run `job(now)` on the config's schedule until SIGINT/SIGTERM; catch up first."""
    config = load()
    scheduler = BlockingScheduler(timezone=config.schedule.timezone)
    missed = missed_run(config, clock())
    if missed is not None:
        log(f"catching up the run scheduled at {missed.isoformat()}")
        job(clock())

    def fire() -> None:
        job(clock())

    scheduler.add_job(
        fire,
        trigger(config.schedule.cron, config.schedule.timezone),
        id="digest",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        log(f"received {signal.Signals(signum).name}, stopping")
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"serving: cron {config.schedule.cron!r} in {config.schedule.timezone}")
    scheduler.start()
    log("stopped")
