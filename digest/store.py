"""SQLite storage: papers, where they came from and when first seen, HTTP validators.

The schema lives in `MIGRATIONS` below, one SQL script per version; `PRAGMA user_version`
says how many have been applied. The database runs in WAL mode so a reader (`digest rank`)
never blocks a writer (`digest run`).

A paper is one row whatever the number of sources that reported it: rows are found by
any canonical id a copy of the paper ever came with (`paper_ids`), then by arXiv id or DOI,
then by normalised title (`papers.title_key`) when no id conflicts, and merged with `digest.papers.merge`. `first_seen` is the logical time (`--now`)
of the fetch that first stored the paper and never changes.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zlib
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zstandard

from digest.errors import StoreError
from digest.http import Validators
from digest.papers import link, merge, same_paper, title_key
from digest.terms import VERSION as TERMS_VERSION
from digest.terms import PaperTerms
from digest.types import Paper, StoreResult

BUSY_TIMEOUT = 30.0  # seconds a connection waits for another process's write lock

MIGRATIONS: tuple[str, ...] = (
    # 1: papers, their sources, HTTP validators
    """
    CREATE TABLE papers (
        pk           INTEGER PRIMARY KEY,
        id           TEXT NOT NULL UNIQUE,     -- canonical id (digest.papers.canonical_id)
        title_key    TEXT NOT NULL,            -- hash of the normalised title
        title        TEXT NOT NULL,
        abstract     TEXT NOT NULL DEFAULT '',
        url          TEXT NOT NULL DEFAULT '',
        arxiv_id     TEXT,
        doi          TEXT,
        authors      TEXT NOT NULL DEFAULT '[]',   -- JSON array of names
        published    TEXT,                         -- ISO 8601, as the source gave it
        upvotes      INTEGER,
        github_repo  TEXT,
        github_stars INTEGER,
        project_page TEXT,
        ai_summary   TEXT,
        ai_keywords  TEXT NOT NULL DEFAULT '[]',   -- JSON array
        organization TEXT,
        categories   TEXT NOT NULL DEFAULT '[]',   -- JSON array
        first_seen   TEXT NOT NULL                 -- UTC ISO 8601: --now of the first fetch
    );
    CREATE INDEX papers_title_key ON papers (title_key);
    CREATE INDEX papers_arxiv_id ON papers (arxiv_id);
    CREATE INDEX papers_doi ON papers (doi);
    CREATE INDEX papers_first_seen ON papers (first_seen);

    -- which sources reported each paper, and when each first did
    CREATE TABLE paper_sources (
        paper      INTEGER NOT NULL REFERENCES papers (pk) ON DELETE CASCADE,
        source     TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        PRIMARY KEY (paper, source)
    ) WITHOUT ROWID;

    -- every canonical id a copy of a paper arrived with (a snapshot's title:, a blog's url:,
    -- the arXiv id), so a copy is found again after its row was re-keyed to a stronger id
    CREATE TABLE paper_ids (
        id    TEXT PRIMARY KEY,
        paper INTEGER NOT NULL REFERENCES papers (pk) ON DELETE CASCADE
    ) WITHOUT ROWID;

    -- ETag / Last-Modified of the last stored response of each URL, for conditional GET
    CREATE TABLE http_cache (
        url           TEXT PRIMARY KEY,
        etag          TEXT,
        last_modified TEXT
    ) WITHOUT ROWID;
    """,
    # 2: the delivery ledger, opt-outs and runs
    """
    -- one digest per reader and period (YYYY-MM-DD daily, YYYY-Www weekly); claimed as
    -- 'sending' and committed before the server is contacted, 'sent' after its 250
    CREATE TABLE digests (
        subscriber   TEXT NOT NULL,
        period       TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'deferred', 'failed')),
        recipient    TEXT NOT NULL,
        message_id   TEXT NOT NULL,
        message      BLOB NOT NULL,            -- the exact bytes sent, resent as they are
        attempts     INTEGER NOT NULL DEFAULT 0,
        created      TEXT NOT NULL,            -- --now of the run that claimed it
        updated      TEXT NOT NULL,
        next_attempt TEXT,                     -- for 'deferred'
        error        TEXT,
        PRIMARY KEY (subscriber, period)
    ) WITHOUT ROWID;
    CREATE INDEX digests_status ON digests (status);

    -- the papers of each digest, in order, with why they were picked (for the reader's feed)
    CREATE TABLE digest_papers (
        subscriber TEXT NOT NULL,
        period     TEXT NOT NULL,
        paper      INTEGER NOT NULL REFERENCES papers (pk),
        position   INTEGER NOT NULL,
        why        TEXT NOT NULL,
        PRIMARY KEY (subscriber, period, paper),
        FOREIGN KEY (subscriber, period) REFERENCES digests (subscriber, period) ON DELETE CASCADE
    ) WITHOUT ROWID;

    CREATE TABLE optouts (
        subscriber TEXT PRIMARY KEY,
        at         TEXT NOT NULL
    ) WITHOUT ROWID;

    -- every `digest run`: its logical time and its summary line (serve catches up from these)
    CREATE TABLE runs (
        at       TEXT NOT NULL,
        finished TEXT NOT NULL,
        summary  TEXT NOT NULL
    );
    CREATE INDEX runs_at ON runs (at);
    """,
    # 3: each paper's analysed terms, so a run analyses only the papers it has not seen
    """
    -- digest.terms.PaperTerms of the papers of the last run's ranking corpus (TERMS arrays);
    -- removed when a paper's text changes or it leaves the corpus, redone when missing
    CREATE TABLE paper_terms (
        paper    INTEGER PRIMARY KEY REFERENCES papers (pk) ON DELETE CASCADE,
        version  INTEGER NOT NULL,             -- digest.terms.VERSION
        title    BLOB NOT NULL,
        abstract BLOB NOT NULL,
        keywords BLOB NOT NULL
    );

    -- how often each word stood behind each stem in analysed titles and abstracts (related
    -- terms are shown as the most frequent; the first seen, by rowid, among equals)
    CREATE TABLE words (
        stem TEXT NOT NULL,
        word TEXT NOT NULL,
        n    INTEGER NOT NULL,
        PRIMARY KEY (stem, word)
    );
    """,
    # 4: which reader feeds are up to date
    """
    -- per reader: the key of what their feed was last written from besides the ledger and the
    -- papers (digest.pipeline.feed_key). Removed when a digest of theirs is sent or a paper in
    -- one of their digests changes what a feed shows of it: their feed is then written again.
    CREATE TABLE feeds (
        subscriber TEXT PRIMARY KEY,
        key        TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX digest_papers_paper ON digest_papers (paper);
    """,
    # 5: messages kept compressed
    """
    -- how digests.message is kept: 'zlib' (`pack`) from this version on; rows claimed before
    -- keep the message as sent ('identity')
    ALTER TABLE digests ADD COLUMN encoding TEXT NOT NULL DEFAULT 'identity';
    """,
    # 6: messages kept by zstd
    """
    -- digests.message is 'zstd' (`pack`) from this version on; rows claimed before keep 'zlib'
    -- or 'identity'. No table changes: the version stops an older digest, which would not
    -- read these rows, from opening the file.
    """,
)

_JSON_FIELDS = ("authors", "ai_keywords", "categories")
_COLUMNS = tuple(f.name for f in fields(Paper))


@dataclass(frozen=True)
class Claim:
    """One digest as it is claimed: its message and its papers, (paper id, why), in order.
    A staged claim (the message already in an outbox file) may leave `message` empty: then
    `packed` holds the message for the ledger."""

    subscriber: str
    period: str
    recipient: str
    message_id: str
    message: bytes
    papers: tuple[tuple[str, str], ...]
    packed: bytes | None = None  # the message as the ledger keeps it (`pack`), when made already
    staged: str | None = None  # the outbox file holding the message ahead of the claim, if any


def pack(message: bytes) -> bytes:
    """A message as the ledger keeps it ('zstd'): Zstandard at level 1, a quarter of the size
    (the run's process, which writes the ledger, saves three quarters of the bytes). Made where
    the message is, in the worker processes of a large run. zlib at its fastest level, used
    before, took four times as long for the same size (~130 against ~33 us a digest)."""
    return _ZSTD.compress(message)


_ZSTD = zstandard.ZstdCompressor(level=1)  # frames carry their size: decompress needs no bound


@dataclass(frozen=True)
class Mark:
    """A digest's new state."""

    subscriber: str
    period: str
    status: str  # sending | sent | deferred | failed
    error: str | None = None
    next_attempt: datetime | None = None


def iso(when: datetime) -> str:
    """A timestamp as stored: UTC, ISO 8601, seconds precision."""
    if when.tzinfo is None:
        raise ValueError("timestamps must carry a UTC offset")
    return when.astimezone(UTC).isoformat(timespec="seconds")


def _row_values(paper: Paper) -> list[Any]:
    values: list[Any] = []
    for name, value in zip(_COLUMNS, astuple(paper), strict=True):
        if name in _JSON_FIELDS:
            value = json.dumps(list(value), ensure_ascii=False)
        elif name == "published" and value is not None:
            value = value.isoformat()
        values.append(value)
    return values


def _paper(row: sqlite3.Row) -> Paper:
    data = {name: row[name] for name in _COLUMNS}
    for name in _JSON_FIELDS:
        data[name] = tuple(json.loads(data[name]))
    if data["published"]:
        data["published"] = datetime.fromisoformat(data["published"])
    return Paper(**data)


class Store:
    """One SQLite database file. Use as a context manager or call `close()`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT)
            self.db.row_factory = sqlite3.Row
            self._use_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open database {path}: {e}") from e

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _use_wal(self) -> None:
        """WAL journal mode, which the file keeps: set by the first process to open it. Two
        processes opening a new file at once may both try, and SQLite answers one "database is
        locked" at once rather than wait (a deadlock, for its busy timeout): it tries again,
        as the busy timeout would (not stamina: its test mode drops the waits this needs)."""
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                self.db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self) -> None:
        """The schema brought up to date, one transaction per migration. The version is read
        again under the write lock: another process opening the same new file at the same
        moment (`digest serve` and a `digest run`) may have applied it meanwhile."""
        while (version := self._version()) < len(MIGRATIONS):
            with self.transaction() as db:
                if self._version() != version:
                    continue  # applied by the other process
                for statement in MIGRATIONS[version].split(";\n"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {version + 1}")

    def _version(self) -> int:
        """The file's schema version (refused when a newer digest made it)."""
        version: int = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database {self.path} has schema version {version}; this digest knows "
                f"{len(MIGRATIONS)}: upgrade digest"
            )
        return version

    # --- papers ------------------------------------------------------------------------------

    def _find(self, paper: Paper) -> sqlite3.Row | None:
        row = self.db.execute(
            "SELECT p.* FROM paper_ids i JOIN papers p ON p.pk = i.paper WHERE i.id = ?",
            (paper.id,),
        ).fetchone()
        if row is not None:
            return row  # type: ignore[no-any-return]
        for column, value in (("arxiv_id", paper.arxiv_id), ("doi", paper.doi)):
            if value:
                row = self.db.execute(
                    f"SELECT * FROM papers WHERE {column} = ?", (value,)
                ).fetchone()
                if row is not None:
                    return row  # type: ignore[no-any-return]
        for row in self.db.execute(
            "SELECT * FROM papers WHERE title_key = ?", (title_key(paper.title),)
        ):
            if same_paper(_paper(row), paper):
                return row  # type: ignore[no-any-return]
        return None

    def _upsert(self, paper: Paper, source: str, now: str, *, may_add: bool) -> str:
        """Store one paper: 'new', 'seen' (merged into a stored row) or 'skipped'."""
        row = self._find(paper)
        if row is None:
            if not may_add:
                return "skipped"
            columns = ", ".join(_COLUMNS)
            marks = ", ".join("?" * len(_COLUMNS))
            cur = self.db.execute(
                f"INSERT INTO papers ({columns}, title_key, first_seen) VALUES ({marks}, ?, ?)",
                [*_row_values(paper), title_key(paper.title), now],
            )
            pk, key, result = cur.lastrowid, paper.id, "new"
        else:
            old = _paper(row)
            merged = merge(old, paper)
            pk, key, result = row["pk"], merged.id, "seen"
            if merged != old:
                assignments = ", ".join(f"{c} = ?" for c in _COLUMNS)
                self.db.execute(
                    f"UPDATE papers SET {assignments}, title_key = ? WHERE pk = ?",
                    [*_row_values(merged), title_key(merged.title), pk],
                )
                self.db.execute("DELETE FROM paper_terms WHERE paper = ?", (pk,))
                if (merged.id, merged.title, link(merged)) != (old.id, old.title, link(old)):
                    self.db.execute(
                        "DELETE FROM feeds WHERE subscriber IN"
                        " (SELECT subscriber FROM digest_papers WHERE paper = ?)",
                        (pk,),
                    )
        self.db.executemany(
            "INSERT OR IGNORE INTO paper_ids (id, paper) VALUES (?, ?)", [(paper.id, pk), (key, pk)]
        )
        self.db.execute(
            "INSERT OR IGNORE INTO paper_sources (paper, source, first_seen) VALUES (?, ?, ?)",
            (pk, source, now),
        )
        return result

    def add_batch(
        self,
        source: str,
        papers: Iterable[Paper],
        now: datetime,
        *,
        updates: Iterable[Paper] = (),
        validators: Mapping[str, Validators] | None = None,
    ) -> StoreResult:
        """Store one source's papers and its HTTP validators in one transaction.

        `updates` only change papers already stored. Storing the same batch again changes
        nothing (`merge` is idempotent and `first_seen` is kept).
        """
        counts = {"new": 0, "seen": 0, "skipped": 0}
        stamp = iso(now)
        try:
            with self.transaction():
                for paper in papers:
                    counts[self._upsert(paper, source, stamp, may_add=True)] += 1
                for paper in updates:
                    counts[self._upsert(paper, source, stamp, may_add=False)] += 1
                for url, v in (validators or {}).items():
                    self.db.execute(
                        "INSERT OR REPLACE INTO http_cache (url, etag, last_modified) VALUES (?, ?, ?)",
                        (url, v.etag, v.last_modified),
                    )
        except sqlite3.Error as e:
            raise StoreError(f"cannot store papers from {source}: {e}") from e
        return StoreResult(**counts)

    def papers(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        newest: int | None = None,
    ) -> list[Paper]:
        """Stored papers first seen in [since, until] (only the `newest` ones), oldest first."""
        query, args = "SELECT * FROM papers WHERE 1", list[str | int]()
        if since is not None:
            query, args = query + " AND first_seen >= ?", [*args, iso(since)]
        if until is not None:
            query, args = query + " AND first_seen <= ?", [*args, iso(until)]
        query += " ORDER BY first_seen DESC, pk DESC"
        if newest is not None:
            query, args = query + " LIMIT ?", [*args, newest]
        return [_paper(r) for r in self.db.execute(query, args)][::-1]

    def last_seen(self) -> datetime | None:
        """When the newest stored paper was first seen (the --now of the last fetch that brought
        one), or None for an empty store."""
        row = self.db.execute("SELECT MAX(first_seen) FROM papers").fetchone()
        return datetime.fromisoformat(row[0]) if row[0] else None

    def paper(self, paper_id: str) -> Paper | None:
        """One stored paper by canonical id."""
        row = self.db.execute("SELECT * FROM papers WHERE id = ?", (paper_id,)).fetchone()
        return _paper(row) if row else None

    def first_seen(self, paper_id: str) -> datetime | None:
        """When this store first saw the paper (the --now of that fetch)."""
        row = self.db.execute("SELECT first_seen FROM papers WHERE id = ?", (paper_id,)).fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    def sources_of(self, paper_id: str) -> dict[str, datetime]:
        """The sources that reported a paper, each with when it first did."""
        rows = self.db.execute(
            "SELECT s.source, s.first_seen FROM paper_sources s JOIN papers p ON p.pk = s.paper "
            "WHERE p.id = ? ORDER BY s.first_seen, s.source",
            (paper_id,),
        )
        return {r[0]: datetime.fromisoformat(r[1]) for r in rows}

    # --- analysed terms (digest.terms) ---------------------------------------------------------

    def terms(self) -> dict[str, PaperTerms]:
        """Every kept analysis of the current version, by paper id."""
        rows = self.db.execute(
            "SELECT p.id, t.title, t.abstract, t.keywords FROM paper_terms t"
            " JOIN papers p ON p.pk = t.paper WHERE t.version = ?",
            (TERMS_VERSION,),
        )
        return {r[0]: PaperTerms.from_bytes(r[1], r[2], r[3]) for r in rows}

    def word_counts(self) -> Counter[tuple[str, str]]:
        """(stem, word) -> how often, in the order first seen."""
        rows = self.db.execute("SELECT stem, word, n FROM words ORDER BY rowid")
        return Counter({(r[0], r[1]): r[2] for r in rows})

    def save_terms(
        self,
        analysed: Mapping[str, PaperTerms],
        surface: Counter[tuple[str, str]],
        keep: Collection[str],
    ) -> None:
        """Keep these papers' analyses and count their words, and drop the analyses of papers
        not in `keep` (the corpus), in one transaction."""
        try:
            with self.transaction() as db:
                db.executemany(
                    "INSERT OR REPLACE INTO paper_terms (paper, version, title, abstract, keywords)"
                    " SELECT pk, ?, ?, ?, ? FROM papers WHERE id = ?",
                    [(TERMS_VERSION, *t.to_bytes(), pid) for pid, t in analysed.items()],
                )
                db.executemany(
                    "INSERT INTO words (stem, word, n) VALUES (?, ?, ?)"
                    " ON CONFLICT (stem, word) DO UPDATE SET n = n + excluded.n",
                    [(st, w, n) for (st, w), n in surface.items()],
                )
                kept = set(keep)
                gone = [
                    (pk,)
                    for pk, pid in db.execute(
                        "SELECT t.paper, p.id FROM paper_terms t JOIN papers p ON p.pk = t.paper"
                    )
                    if pid not in kept
                ]
                db.executemany("DELETE FROM paper_terms WHERE paper = ?", gone)
        except sqlite3.Error as e:
            raise StoreError(f"cannot keep analysed terms: {e}") from e

    def count(self) -> int:
        """How many papers are stored."""
        return int(self.db.execute("SELECT count(*) FROM papers").fetchone()[0])

    # --- HTTP validators ---------------------------------------------------------------------

    def validators(self) -> dict[str, Validators]:
        """Every stored ETag / Last-Modified, by full URL."""
        return {
            r["url"]: Validators(r["etag"], r["last_modified"])
            for r in self.db.execute("SELECT * FROM http_cache")
        }

    # --- the delivery ledger -------------------------------------------------------------------

    def digest(self, subscriber: str, period: str) -> sqlite3.Row | None:
        """The ledger row of one reader's digest for one period, if any."""
        row = self.db.execute(
            "SELECT * FROM digests WHERE subscriber = ? AND period = ?", (subscriber, period)
        ).fetchone()
        return row  # type: ignore[no-any-return]

    @staticmethod
    def message(row: sqlite3.Row) -> bytes:
        """The message of a ledger row, as it is sent."""
        data: bytes = row["message"]
        encoding = row["encoding"]
        if encoding == "zstd":
            return zstandard.ZstdDecompressor().decompress(data)
        return zlib.decompress(data) if encoding == "zlib" else data

    def claimed(self, periods: Collection[str]) -> set[tuple[str, str]]:
        """(reader, period) of every digest in the ledger for these periods, whatever its state
        (one query for all the readers of a run)."""
        marks = ", ".join("?" * len(periods))
        rows = self.db.execute(
            f"SELECT subscriber, period FROM digests WHERE period IN ({marks})", list(periods)
        )
        return {(r[0], r[1]) for r in rows}

    def digests(self, *statuses: str) -> list[sqlite3.Row]:
        """Ledger rows in these states, oldest first."""
        marks = ", ".join("?" * len(statuses))
        return list(
            self.db.execute(
                f"SELECT * FROM digests WHERE status IN ({marks}) ORDER BY created, subscriber",
                statuses,
            )
        )

    def claim(self, claims: Sequence[Claim], now: datetime) -> None:
        """Record digests as 'sending' with their messages and papers, committed at once (one
        transaction for them all)."""
        stamp = iso(now)
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO digests (subscriber, period, status, recipient, message_id, message,"
                " encoding, attempts, created, updated)"
                " VALUES (?, ?, 'sending', ?, ?, ?, 'zstd', 1, ?, ?)",
                [
                    (
                        c.subscriber,
                        c.period,
                        c.recipient,
                        c.message_id,
                        pack(c.message) if c.packed is None else c.packed,
                        stamp,
                        stamp,
                    )
                    for c in claims
                ],
            )
            db.executemany(
                "INSERT INTO digest_papers (subscriber, period, paper, position, why) "
                "SELECT ?, ?, pk, ?, ? FROM papers WHERE id = ?",
                [
                    (c.subscriber, c.period, position, why, paper_id)
                    for c in claims
                    for position, (paper_id, why) in enumerate(c.papers)
                ],
            )

    def unclaim(self, digests: Sequence[tuple[str, str]]) -> None:
        """Forget claimed digests that were never sent: (reader, period), with their papers."""
        with self.transaction() as db:
            db.executemany("DELETE FROM digests WHERE subscriber = ? AND period = ?", digests)

    def mark(
        self,
        subscriber: str,
        period: str,
        status: str,
        now: datetime,
        *,
        error: str | None = None,
        next_attempt: datetime | None = None,
        attempt: bool = False,
    ) -> None:
        """Move a digest to a new state (committed at once)."""
        self.mark_many(
            [Mark(subscriber, period, status, error, next_attempt)], now, attempt=attempt
        )

    def mark_many(self, marks: Sequence[Mark], now: datetime, *, attempt: bool = False) -> None:
        """Move digests to new states, in one transaction."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE digests SET status = ?, updated = ?, error = ?, next_attempt = ?,"
                " attempts = attempts + ? WHERE subscriber = ? AND period = ?",
                [
                    (
                        m.status,
                        iso(now),
                        m.error,
                        iso(m.next_attempt) if m.next_attempt else None,
                        int(attempt),
                        m.subscriber,
                        m.period,
                    )
                    for m in marks
                ],
            )
            sent = [(m.subscriber,) for m in marks if m.status == "sent"]
            db.executemany("DELETE FROM feeds WHERE subscriber = ?", sent)

    def feed_keys(self) -> dict[str, str]:
        """Per reader whose feed is up to date: the key it was written with."""
        return dict(self.db.execute("SELECT subscriber, key FROM feeds").fetchall())

    def save_feed_keys(self, keys: Mapping[str, str]) -> None:
        """Record feeds just written, with their keys."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO feeds (subscriber, key) VALUES (?, ?)", keys.items()
            )

    def taken(self, since: datetime) -> dict[str, set[str]]:
        """Per reader, the ids of the papers first seen since `since` that are in their digests
        sent or still on their way (one query for every reader of a run)."""
        rows = self.db.execute(
            "SELECT d.subscriber, p.id FROM digest_papers d JOIN digests g USING (subscriber, period)"
            " JOIN papers p ON p.pk = d.paper"
            " WHERE g.status IN ('sent', 'sending', 'deferred') AND p.first_seen >= ?",
            (iso(since),),
        )
        out: dict[str, set[str]] = {}
        for subscriber, paper_id in rows:
            out.setdefault(subscriber, set()).add(paper_id)
        return out

    def delivered_links(
        self, subscriber: str, limit: int
    ) -> list[tuple[str, str, str, datetime, str]]:
        """The papers of this reader's sent digests, newest digest first, as their feed shows
        them: (id, title, link, when, why). Not whole papers: decoding their JSON fields was
        over half the cost of a feed."""
        rows = self.db.execute(
            "SELECT p.id, p.title, p.url, p.arxiv_id, g.updated, d.why"
            " FROM digest_papers d JOIN digests g USING (subscriber, period)"
            " JOIN papers p ON p.pk = d.paper WHERE d.subscriber = ? AND g.status = 'sent'"
            " ORDER BY g.period DESC, d.position LIMIT ?",
            (subscriber, limit),
        )
        return [
            (
                i,
                title,
                link(Paper(i, title, url=url, arxiv_id=arxiv)),
                datetime.fromisoformat(w),
                why,
            )
            for i, title, url, arxiv, w, why in rows
        ]

    def recent(self, limit: int, until: datetime) -> list[tuple[Paper, datetime]]:
        """The newest stored papers (by first seen) up to `until`, with when they were first seen."""
        rows = self.db.execute(
            "SELECT * FROM papers WHERE first_seen <= ? ORDER BY first_seen DESC, pk DESC LIMIT ?",
            (iso(until), limit),
        )
        return [(_paper(r), datetime.fromisoformat(r["first_seen"])) for r in rows]

    # --- opt-outs and runs ---------------------------------------------------------------------

    def opt_out(self, subscriber: str, now: datetime) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO optouts (subscriber, at) VALUES (?, ?)",
                (subscriber, iso(now)),
            )

    def opt_in(self, subscriber: str) -> bool:
        """Lift an opt-out; whether there was one."""
        with self.transaction() as db:
            return (
                db.execute("DELETE FROM optouts WHERE subscriber = ?", (subscriber,)).rowcount > 0
            )

    def opted_out(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT subscriber FROM optouts")}

    def record_run(self, at: datetime, finished: datetime, summary: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (at, finished, summary) VALUES (?, ?, ?)",
                (iso(at), iso(finished), summary),
            )

    def last_run(self) -> datetime | None:
        """The logical time of the latest recorded run."""
        row = self.db.execute("SELECT max(at) FROM runs").fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None
