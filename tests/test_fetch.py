"""`digest fetch` end to end: a real loopback HTTP server, a real SQLite file, the real CLI."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import FIXTURES, fixture_bytes, free_port, hf_api
from httpserver import Reply, sequence, static

from digest.store import Store

NOW = "2025-08-20T07:45:00+00:00"  # a Wednesday
ATOM = "application/atom+xml"


def stored(tmp_path: Path) -> Store:
    return Store(tmp_path / "state" / "digest.sqlite3")


def test_hf_paging_and_counts(server, make_config, cli, tmp_path: Path) -> None:
    """HF is asked ?date= for each listing day and paged with p until an empty page."""
    server.routes["/api/daily_papers"] = hf_api(
        {"2025-08-19": "hf/2025-05-22.json", "2025-08-20": "hf/2025-08-20.json"}
    )
    make_config(
        [
            {
                "name": "hf",
                "type": "hf_daily",
                "url": server.url("/api/daily_papers"),
                "lookback_days": 2,
            }
        ]
    )
    result = cli("fetch", "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "hf: 41 new, 0 already seen, 0 failed" in result.output  # 27 + 14 papers
    asked = [(r.query["date"], r.query["p"]) for r in server.hits("/api/daily_papers")]
    assert asked == [
        ("2025-08-19", "0"),
        ("2025-08-19", "1"),
        ("2025-08-19", "2"),
        ("2025-08-19", "3"),
        ("2025-08-20", "0"),
        ("2025-08-20", "1"),
        ("2025-08-20", "2"),
    ]
    assert re.search(r"1 sources?: 1 ok, 0 failed; 41 new papers, 0 already seen", result.output)
    with stored(tmp_path) as store:
        assert store.count() == 41


def test_same_paper_from_hf_and_arxiv_is_stored_once(
    server, make_config, cli, tmp_path: Path
) -> None:
    """2508.13167 arrives from HF and from the arXiv Atom listing: one row, two sources, HF extras kept."""
    server.routes["/api/daily_papers"] = hf_api({"2025-08-20": "hf/2025-08-20.json"})
    server.routes["/atom/cs.AI"] = static(
        fixture_bytes("arxiv/atom_cs.AI_2025-08-20_86entries.xml"), ATOM
    )
    make_config(
        [
            {
                "name": "hf",
                "type": "hf_daily",
                "url": server.url("/api/daily_papers"),
                "lookback_days": 1,
            },
            {"name": "arxiv-ai", "type": "feed", "url": server.url("/atom/cs.AI")},
        ]
    )
    result = cli("fetch", "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "hf: 14 new, 0 already seen, 0 failed" in result.output
    assert "arxiv-ai: 85 new, 1 already seen, 0 failed" in result.output
    with stored(tmp_path) as store:
        assert store.count() == 14 + 85
        assert set(store.sources_of("2508.13167")) == {"hf", "arxiv-ai"}
        paper = store.paper("2508.13167")
        assert paper is not None and paper.upvotes is not None and "cs.AI" in paper.categories


def test_snapshot_paper_is_rekeyed_when_hf_brings_its_arxiv_id(
    server, make_config, cli, tmp_path: Path
) -> None:
    """The Chimera paper, first seen in a snapshot (no id), becomes 2406.04320 when HF lists it."""
    server.routes["/api/daily_papers"] = hf_api({"2024-06-13": "hf/2024-06-13.json"})
    make_config(
        [
            {"name": "snap", "type": "listing", "path": str(FIXTURES / "listings/trending-2.txt")},
            {
                "name": "hf",
                "type": "hf_daily",
                "url": server.url("/api/daily_papers"),
                "lookback_days": 1,
            },
        ]
    )
    result = cli("fetch", "--now", "2024-06-13T08:00:00+00:00")
    assert result.exit_code == 0, result.output
    assert "snap: 67 new" in result.output and "hf: 20 new, 1 already seen" in result.output
    with stored(tmp_path) as store:
        paper = store.paper("2406.04320")
        assert paper is not None and paper.title.startswith("Chimera: Effectively Modeling")
        assert set(store.sources_of("2406.04320")) == {"snap", "hf"}


def test_conditional_get_round_trip(server, make_config, cli, tmp_path: Path) -> None:
    """The stored ETag is sent back; the 304 costs nothing and changes nothing."""
    server.routes["/rss/cs.LG"] = static(
        fixture_bytes("arxiv/rss_cs.LG_2026-04-27_trimmed3_distill.xml"),
        "application/rss+xml",
        etag='"v1"',
    )
    make_config([{"name": "lg", "type": "feed", "url": server.url("/rss/cs.LG")}])
    first = cli("fetch", "--now", "2026-04-27T07:00:00+00:00")
    assert "lg: 3 new, 0 already seen, 0 failed" in first.output
    second = cli("fetch", "--now", "2026-04-28T07:00:00+00:00")
    assert second.exit_code == 0
    assert "lg: 0 new, 0 already seen, 0 failed, 1 not modified" in second.output
    hits = server.hits("/rss/cs.LG")
    assert "if-none-match" not in hits[0].headers and hits[1].headers["if-none-match"] == '"v1"'
    assert hits[0].headers["user-agent"].startswith("digest/")


def test_429_then_200_is_retried(server, make_config, cli) -> None:
    """A 429 with Retry-After is waited out and asked again."""
    body = fixture_bytes("arxiv/rss_cs.AI_2026-04-27_trimmed3_distill.xml")
    server.routes["/rss"] = sequence(
        Reply(429, b"slow down", {"Retry-After": "1"}), Reply(200, body)
    )
    make_config([{"name": "ai", "type": "feed", "url": server.url("/rss")}])
    result = cli("fetch", "--now", "2026-04-27T07:00:00+00:00")
    assert result.exit_code == 0, result.output
    assert "ai: 3 new" in result.output
    assert len(server.hits("/rss")) == 2


def test_dead_source_beside_a_live_one(server, make_config, cli, tmp_path: Path) -> None:
    """An unreachable server fails its source in one line; the live source is stored; exit 0."""
    server.routes["/rss"] = static(fixture_bytes("arxiv/rss_cs.AI_2026-04-27_trimmed3_distill.xml"))
    dead = f"http://127.0.0.1:{free_port()}/feed"
    make_config(
        [
            {"name": "dead", "type": "feed", "url": dead},
            {"name": "live", "type": "feed", "url": server.url("/rss")},
        ]
    )
    result = cli("fetch", "--now", "2026-04-27T07:00:00+00:00")
    assert result.exit_code == 0, result.output
    assert "dead: failed: cannot connect" in result.stderr and dead in result.stderr
    assert "live: 3 new" in result.output
    assert "2 sources: 1 ok, 1 failed; 3 new papers" in result.output


def test_every_source_failing_exits_1(server, make_config, cli) -> None:
    """404, 500 (after retries) and a timeout: each named; the run exits 1 with one reason."""
    server.routes["/500"] = lambda r: Reply(500, b"boom")
    server.routes["/slow"] = lambda r: Reply(200, b"late", delay=3)
    make_config(
        [
            {"name": "missing", "type": "feed", "url": server.url("/404")},
            {"name": "broken", "type": "feed", "url": server.url("/500")},
            {"name": "slow", "type": "feed", "url": server.url("/slow")},
        ],
        fetch={"timeout": 0.5},
    )
    result = cli("fetch", "--now", "2026-04-27T07:00:00+00:00")
    assert result.exit_code == 1
    assert f"missing: failed: HTTP 404 Not Found from {server.url('/404')}" in result.stderr
    assert f"broken: failed: HTTP 500 from {server.url('/500')}" in result.stderr
    assert "slow: failed: read timed out" in result.stderr
    assert "digest: error: every source failed" in result.stderr
    assert len(server.hits("/404")) == 1 and len(server.hits("/500")) == 3


def test_huge_response_is_cut_off(server, make_config, cli) -> None:
    """A response over max_response_mb fails its source without reading it all."""
    server.routes["/big"] = lambda r: Reply(200, b"x" * 3_000_000)
    make_config(
        [{"name": "big", "type": "feed", "url": server.url("/big")}], fetch={"max_response_mb": 1}
    )
    result = cli("fetch", "--now", "2026-04-27T07:00:00+00:00")
    assert result.exit_code == 1
    assert "big: failed: response too large (3,000,000 bytes > 1,000,000)" in result.stderr


def test_malformed_inputs_change_nothing_stored(server, make_config, cli, tmp_path: Path) -> None:
    """After good fetches, a truncated feed, an HTML error page and a wrapped HF archive fail
    one line each and leave every stored row as it was."""
    atom = fixture_bytes("arxiv/atom_cs.AI_2025-08-20_86entries.xml")
    server.routes["/atom"] = sequence(
        Reply(200, atom), Reply(200, fixture_bytes("arxiv/atom_cs.AI_TRUNCATED_malformed.xml"))
    )
    server.routes["/api/daily_papers"] = sequence(
        Reply(200, fixture_bytes("hf/2025-08-20.json")),
        Reply(200, b"[]"),
        Reply(200, b"<!DOCTYPE html><html><body>Bad gateway</body></html>"),
    )
    make_config(
        [
            {"name": "arxiv", "type": "feed", "url": server.url("/atom")},
            {
                "name": "hf",
                "type": "hf_daily",
                "url": server.url("/api/daily_papers"),
                "lookback_days": 1,
            },
        ]
    )
    assert cli("fetch", "--now", NOW).exit_code == 0
    with stored(tmp_path) as store:
        before = [(p, store.first_seen(p.id)) for p in store.papers()]
    result = cli("fetch", "--now", "2025-08-21T07:45:00+00:00")
    assert result.exit_code == 1
    assert "arxiv: failed: malformed feed at line" in result.stderr
    assert "hf: failed: 2025-08-21 page 0: not JSON (an HTML page)" in result.stderr
    with stored(tmp_path) as store:
        assert [(p, store.first_seen(p.id)) for p in store.papers()] == before


def test_listing_problems_are_failed_items(make_config, cli, tmp_path: Path) -> None:
    """A snapshot with a dangling title stores the rest and counts one failed item."""
    text = fixture_bytes("listings/trending-1.txt").decode()
    (tmp_path / "snap.txt").write_text(text.rsplit("\n\n", 1)[0])  # drop the last abstract
    make_config(
        [
            {"name": "snap", "type": "listing", "path": "snap.txt"},
            {"name": "gone", "type": "listing", "path": "missing.txt"},
        ]
    )
    result = cli("fetch", "--now", NOW)
    assert result.exit_code == 0
    assert "snap: 71 new, 0 already seen, 1 failed" in result.output
    assert "warning: snap: line" in result.stderr and "title without an abstract" in result.stderr
    assert "gone: failed: cannot read" in result.stderr


def test_bad_now_is_a_usage_error(make_config, cli) -> None:
    """--now without an offset, or not a time at all, exits 2 with the expected form."""
    make_config([])
    assert cli("fetch", "--now", "2026-08-10T07:00:00").exit_code == 2
    result = cli("fetch", "--now", "tomorrow")
    assert result.exit_code == 2 and "2026-08-10T07:00:00+00:00" in result.stderr


def test_offline_example_fetches_the_bundled_listings(cli, tmp_path: Path) -> None:
    """The Quickstart's offline config stores the three bundled snapshots: 165 distinct papers."""
    import shutil

    root = Path(__file__).parent.parent
    shutil.copytree(root / "examples", tmp_path / "examples")
    shutil.copytree(root / "subscribers", tmp_path / "subscribers")
    result = cli("--config", "examples/offline.yaml", "fetch", "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "3 sources: 3 ok, 0 failed; 165 new papers, 43 already seen" in result.output
    assert (tmp_path / "state" / "offline.sqlite3").exists()


def test_help_explains_the_commands(cli) -> None:
    """`digest --help` lists the commands; `fetch --help` explains --now."""
    result = cli("--help")
    assert result.exit_code == 0
    assert "check" in result.output and "fetch" in result.output
    assert "--now" in cli("fetch", "--help").output


def test_listing_from_a_url(server, make_config, cli) -> None:
    """A listing source may be a URL; it is fetched like any other."""
    server.routes["/trending.txt"] = static(fixture_bytes("listings/trending-2.txt"), "text/plain")
    make_config([{"name": "snap", "type": "listing", "url": server.url("/trending.txt")}])
    result = cli("fetch", "--now", NOW)
    assert result.exit_code == 0 and "snap: 67 new, 0 already seen, 0 failed" in result.output


def test_retry_after_too_long_fails_now(server, make_config, cli) -> None:
    """A 429 asking for an hour is not slept on: the source fails this run, naming the wait."""
    server.routes["/rss"] = lambda r: Reply(429, b"", {"Retry-After": "3600"})
    make_config([{"name": "ai", "type": "feed", "url": server.url("/rss")}])
    result = cli("fetch", "--now", NOW)
    assert result.exit_code == 1
    assert "ai: failed: HTTP 429 from" in result.stderr and "retry after 3600 s" in result.stderr
    assert len(server.hits("/rss")) == 1
