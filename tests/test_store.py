"""SQLite store: one row per paper across sources, first_seen kept, batches idempotent."""

from __future__ import annotations

import sqlite3
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from strategies import batches

from digest.errors import StoreError
from digest.http import Validators
from digest.papers import canonical_id, link
from digest.store import MIGRATIONS, Claim, Mark, Store
from digest.types import Paper

T0 = datetime(2026, 8, 10, 7, 0, tzinfo=UTC)


def dump(store: Store) -> list[tuple[object, ...]]:
    """Every row of every table, for comparing database states."""
    rows: list[tuple[object, ...]] = []
    for (table,) in store.db.execute(
        "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
    ):
        rows += [(table, *r) for r in store.db.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]
    return rows


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=batches)
def test_storing_the_same_batch_twice_changes_nothing(batch: list[Paper], tmp_path: Path) -> None:
    """A second store of one batch, even later, adds no row and changes no value."""
    with Store(":memory:") as store:
        first = store.add_batch("src", batch, T0, validators={"u": Validators("e1")})
        before = dump(store)
        again = store.add_batch(
            "src", batch, T0 + timedelta(days=1), validators={"u": Validators("e1")}
        )
        assert dump(store) == before
        assert again.new == 0
        assert again.seen == len(batch)
        assert first.new == store.count()


def test_same_paper_from_two_sources_is_one_row_with_both_sources() -> None:
    """A snapshot paper (title key) and the HF copy (arXiv id) become one row, re-keyed to the arXiv id."""
    snap = Paper(
        id=canonical_id(title="Chimera: A Model"), title="Chimera: A Model", abstract="short"
    )
    hf = Paper(
        id="2406.04320", title="Chimera: a model", abstract="longer abstract", arxiv_id="2406.04320"
    )
    with Store(":memory:") as store:
        assert store.add_batch("snapshot", [snap], T0).new == 1
        assert store.add_batch("hf", [hf], T0 + timedelta(hours=1)).seen == 1
        assert store.count() == 1
        stored = store.paper("2406.04320")
        assert stored is not None and stored.abstract == "longer abstract"
        assert store.first_seen("2406.04320") == T0
        assert set(store.sources_of("2406.04320")) == {"snapshot", "hf"}


def test_papers_with_one_title_but_different_arxiv_ids_stay_apart() -> None:
    """Equal titles do not merge two papers whose arXiv ids differ."""
    a = Paper(id="2401.00001", title="Introduction", arxiv_id="2401.00001")
    b = Paper(id="2401.00002", title="Introduction", arxiv_id="2401.00002")
    with Store(":memory:") as store:
        assert store.add_batch("s", [a, b], T0).new == 2


def test_updates_change_stored_papers_and_never_add() -> None:
    """An arXiv replacement updates a stored paper; one for an unknown paper is skipped."""
    p = Paper(id="2401.00001", title="T", arxiv_id="2401.00001", abstract="v1")
    with Store(":memory:") as store:
        store.add_batch("s", [p], T0)
        replaced = Paper(id="2401.00001", title="T", arxiv_id="2401.00001", abstract="v2 is longer")
        unknown = Paper(id="2001.00001", title="Old", arxiv_id="2001.00001")
        result = store.add_batch("s", [], T0, updates=[replaced, unknown])
        assert (result.new, result.seen, result.skipped) == (0, 1, 1)
        assert store.count() == 1
        assert store.paper("2401.00001").abstract == "v2 is longer"  # type: ignore[union-attr]


def test_feed_keys_are_forgotten_when_a_feed_would_change() -> None:
    """A reader's feed key goes when a digest of theirs is sent or a paper in one of their
    digests changes its id, title or link; an upvote or an abstract change keeps it."""
    a = Paper(id="2401.00001", title="Sparse", arxiv_id="2401.00001", abstract="v1", upvotes=1)
    b = Paper(id="2401.00002", title="Dense", arxiv_id="2401.00002")
    with Store(":memory:") as store:
        store.add_batch("s", [a, b], T0)
        store.claim(
            [
                Claim("ann", "2024-01-01", "ann@x", "<1@x>", b"m", ((a.id, "why"),)),
                Claim("ben", "2024-01-01", "ben@x", "<2@x>", b"m", ((b.id, "why"),)),
            ],
            T0,
        )
        store.save_feed_keys({"ann": "k1", "ben": "k2", "cat": "k3"})
        store.mark_many(
            [Mark("ann", "2024-01-01", "sent"), Mark("ben", "2024-01-01", "deferred")], T0
        )
        assert store.feed_keys() == {"ben": "k2", "cat": "k3"}
        store.mark("ben", "2024-01-01", "sent", T0)
        store.save_feed_keys({"ann": "k1", "ben": "k2"})
        store.add_batch("s", [], T0, updates=[replace(a, upvotes=9, abstract="v2 is longer")])
        assert store.feed_keys() == {"ann": "k1", "ben": "k2", "cat": "k3"}
        store.add_batch("s", [], T0, updates=[replace(a, title="Sparse attention")])
        assert store.feed_keys() == {"ben": "k2", "cat": "k3"}


def test_a_feed_reads_the_links_of_what_was_sent() -> None:
    """`delivered_links` (what a feed shows): id, title, the link a reader should open (for
    papers with and without an arXiv id or a URL), when it was sent and why; only sent digests,
    newest first, each in its order."""
    papers = [
        Paper(id="2401.00001", title="Sparse", arxiv_id="2401.00001", url="https://x.org/p"),
        Paper(id="url:https://y.org/q", title="Dense", url="https://y.org/q"),
        Paper(id="title:abc", title="No link at all"),
    ]
    later = T0.replace(day=T0.day + 1)
    with Store(":memory:") as store:
        store.add_batch("s", papers, T0)
        picks = tuple((p.id, f"why {i}") for i, p in enumerate(papers))
        store.claim([Claim("ann", "2024-01-01", "ann@x", "<1@x>", b"m", picks[:2])], T0)
        store.claim([Claim("ann", "2024-01-02", "ann@x", "<2@x>", b"m", picks[2:])], T0)
        store.claim([Claim("ann", "2024-01-03", "ann@x", "<3@x>", b"m", picks[:1])], T0)
        store.mark_many(
            [Mark("ann", "2024-01-01", "sent"), Mark("ann", "2024-01-02", "sent")], later
        )
        assert store.delivered_links("ann", 10) == [
            ("title:abc", "No link at all", link(papers[2]), later, "why 2"),
            ("2401.00001", "Sparse", "https://arxiv.org/abs/2401.00001", later, "why 0"),
            ("url:https://y.org/q", "Dense", "https://y.org/q", later, "why 1"),
        ]


def test_messages_are_kept_compressed_and_read_back_as_sent() -> None:
    """The ledger keeps messages compressed by zstd; rows claimed before that (zlib, and before
    that identity) read back as they were stored."""
    message = b"From: a@x\r\n\r\n" + b"<p>same paper, same words</p>\r\n" * 200
    with Store(":memory:") as store:
        store.claim([Claim("ann", "2024-01-01", "ann@x", "<1@x>", message, ())], T0)
        row = store.digest("ann", "2024-01-01")
        assert row is not None and row["encoding"] == "zstd"
        assert len(row["message"]) < len(message) / 4
        assert Store.message(row) == message
        for stored, encoding in ((zlib.compress(message), "zlib"), (b"as sent", "identity")):
            store.db.execute(
                "UPDATE digests SET message = ?, encoding = ? WHERE subscriber = 'ann'",
                (stored, encoding),
            )
            row = store.digest("ann", "2024-01-01")
            assert row is not None
            assert Store.message(row) == (b"as sent" if encoding == "identity" else message)


def test_schema_is_migrated_by_user_version(tmp_path: Path) -> None:
    """A new file gets every migration; a file from a newer digest is refused with a clear error."""
    path = tmp_path / "d.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="upgrade digest"):
        Store(path)


def test_two_processes_opening_a_new_file_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (`digest serve` beside a `digest run` or a test's poll) may migrate a new
    file between this one reading its version and taking the write lock: nothing is applied
    twice ("table already exists")."""
    path = tmp_path / "d.sqlite3"
    transaction = Store.transaction
    raced = []

    @contextmanager
    def other_process_first(self: Store) -> Iterator[sqlite3.Connection]:
        if not raced:
            raced.append(True)
            Store(path).close()  # the other process opens the file and migrates it meanwhile
        with transaction(self) as db:
            yield db

    monkeypatch.setattr(Store, "transaction", other_process_first)
    with Store(path) as store:
        assert raced
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert store.last_run() is None


def test_many_opening_a_new_file_at_once(tmp_path: Path) -> None:
    """Connections opening one new file at the same moment (threads here, processes in use: a
    `digest serve` and a `digest run`) all get it, in WAL mode, migrated once. Before, 83 of
    120 such opens failed: "database is locked" from the WAL switch, which SQLite does not
    wait for, or "table ... already exists" from a migration applied twice."""
    failed: list[str] = []
    for trial in range(20):
        path = tmp_path / f"{trial}.sqlite3"
        start = threading.Barrier(6)

        def open_it(path: Path = path, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                Store(path).close()
            except StoreError as e:
                failed.append(str(e))

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()
    assert failed == []


def test_papers_window_by_first_seen() -> None:
    """papers(since, until) selects by when this store first saw them, not publication date."""
    with Store(":memory:") as store:
        store.add_batch("s", [Paper(id="2401.00001", title="A", arxiv_id="2401.00001")], T0)
        store.add_batch(
            "s", [Paper(id="2401.00002", title="B", arxiv_id="2401.00002")], T0 + timedelta(days=8)
        )
        recent = store.papers(since=T0 + timedelta(days=1))
        assert [p.id for p in recent] == ["2401.00002"]
        assert len(store.papers()) == 2
