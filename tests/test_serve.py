"""`digest serve`: fires on its cron, catches up a run missed while down, stops on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from conftest import FIXTURES

from digest.schedule import last_fire_before, trigger
from digest.store import Store

ROOT = Path(__file__).parent.parent


def setup(tmp_path: Path, cron: str) -> Path:
    shutil.copytree(ROOT / "subscribers", tmp_path / "subscribers")
    shutil.copy(FIXTURES / "listings" / "trending-1.txt", tmp_path / "t1.txt")
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "sources": [{"name": "t1", "type": "listing", "path": "t1.txt"}],
                "schedule": {"cron": cron, "timezone": "UTC"},
            }
        )
    )
    return config


def runs(tmp_path: Path) -> list[str]:
    db = tmp_path / "state" / "digest.sqlite3"
    if not db.exists():
        return []
    with Store(db) as store:
        return [r[0] for r in store.db.execute("SELECT at FROM runs ORDER BY at")]


def serve(config: Path, tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "DIGEST_SECRET": "s"}
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_serve_fires_on_schedule_and_stops_on_sigterm(tmp_path: Path) -> None:
    """With a cron every 2 seconds, serve runs (catch-up, then scheduled) and ends cleanly on SIGTERM."""
    config = setup(tmp_path, "*/2 * * * * *")
    proc = serve(config, tmp_path)
    try:
        assert wait_for(lambda: len(runs(tmp_path)) >= 3, 30), runs(tmp_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "serving: cron '*/2 * * * * *' in UTC" in err and "received SIGTERM, stopping" in err
    assert "6 digests sent" in out  # the first run delivers; later ones find nothing new
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 6


def test_serve_catches_up_a_missed_run(tmp_path: Path) -> None:
    """A daily run scheduled an hour ago, with the last recorded run two days old, is made at start."""
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    config = setup(tmp_path, f"{hour_ago.minute} {hour_ago.hour} * * *")
    env = {**os.environ, "DIGEST_SECRET": "s"}
    two_days = (datetime.now(UTC) - timedelta(days=2)).isoformat(timespec="seconds")
    subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), "run", "--now", two_days],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    assert len(runs(tmp_path)) == 1
    proc = serve(config, tmp_path)
    try:
        assert wait_for(lambda: len(runs(tmp_path)) == 2, 30)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "catching up the run scheduled at" in err


def test_no_catch_up_when_the_last_run_is_recent(tmp_path: Path) -> None:
    """When the latest scheduled time already has a run, serve just waits for the next one."""
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    config = setup(tmp_path, f"{hour_ago.minute} {hour_ago.hour} * * *")
    env = {**os.environ, "DIGEST_SECRET": "s"}
    subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), "run"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    proc = serve(config, tmp_path)
    assert not wait_for(lambda: len(runs(tmp_path)) > 1, 3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "catching up" not in err


def test_last_fire_before() -> None:
    """The latest cron time at or before a moment, in the schedule's time zone."""
    t = trigger("0 7 * * *", "Europe/Paris")
    now = datetime(2026, 8, 10, 6, 0, tzinfo=UTC)  # 08:00 in Paris
    assert last_fire_before(t, now) == datetime(2026, 8, 10, 5, 0, tzinfo=UTC)
