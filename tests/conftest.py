"""Shared fixtures: a real loopback HTTP server, fixture files, a config on disk, the CLI."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import stamina
import yaml
from click.testing import CliRunner, Result
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

from httpserver import FixtureServer, Reply, Request

from digest.cli import main

FIXTURES = Path(__file__).parent / "fixtures"

# no test fails on time: hypothesis's per-example deadline (200 ms) is off for every property
settings.register_profile("digest", deadline=None)
settings.load_profile("digest")


@pytest.fixture(autouse=True)
def _no_retry_sleep() -> Iterator[None]:
    """Retries happen (up to 3 attempts) but without backoff sleeps."""
    with stamina.set_testing(True, attempts=3, cap=True):
        yield


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    s = FixtureServer()
    yield s
    s.close()


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def hf_api(days: dict[str, str], page_size: int = 10):  # type: ignore[no-untyped-def]
    """A handler imitating the HF API: ?date=D&p=N pages of a fixture day; [] past the end."""

    def handle(request: Request) -> Reply:
        name = days.get(request.query.get("date", ""))
        items = json.loads(fixture_bytes(name)) if name else []
        page = int(request.query.get("p", "0"))
        chunk = items[page * page_size : (page + 1) * page_size]
        return Reply(200, json.dumps(chunk).encode(), {"Content-Type": "application/json"})

    return handle


def free_port() -> int:
    """A loopback port with nothing listening on it (a dead source)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def make_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a config.yaml (and subscribers/) under tmp_path; returns its path."""

    def make(sources: list[dict[str, object]], **extra: object) -> Path:
        (tmp_path / "subscribers").mkdir(exist_ok=True)
        data = {"database": "state/digest.sqlite3", "sources": sources, **extra}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return make


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the real `digest` command in-process from tmp_path; returns click's Result."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return run
