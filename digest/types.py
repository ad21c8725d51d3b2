"""Frozen data that crosses stage boundaries.

Each type says who makes it and who reads it. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Paper:
    """One research paper.

    Made by the sources (`digest.sources.*`), merged by `digest.papers.merge`, stored and
    loaded by `digest.store`; read by ranking and rendering. `id` is the canonical id
    (`digest.papers.canonical_id`): the version-less arXiv id when there is one
    (`2404.01234`), else `doi:<doi>`, else `url:<normalised url>`, else `title:<hash>`.
    """

    id: str
    title: str
    abstract: str = ""
    url: str = ""
    arxiv_id: str | None = None
    doi: str | None = None
    authors: tuple[str, ...] = ()
    published: datetime | None = None
    upvotes: int | None = None
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    ai_summary: str | None = None
    ai_keywords: tuple[str, ...] = ()
    organization: str | None = None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceBatch:
    """What one source yielded in one fetch. Made by a source, read by the pipeline and store.

    `papers` may be new or already stored; `updates` (arXiv replacements) only update papers
    already stored and are never new; `problems` are item-level errors ("entry 4: no title"),
    each counted as one failed item while the rest of the batch is kept.
    """

    papers: tuple[Paper, ...] = ()
    updates: tuple[Paper, ...] = ()
    problems: tuple[str, ...] = ()
    not_modified: int = 0  # requests answered 304: nothing to parse, nothing changed


@dataclass(frozen=True)
class StoreResult:
    """What storing one batch did. Made by `Store.add_batch`, read by the pipeline and CLI."""

    new: int = 0
    seen: int = 0
    skipped: int = 0  # updates for papers this store never had


@dataclass(frozen=True)
class SourceReport:
    """The outcome of one source in one fetch: counts, or the error that stopped it."""

    name: str
    new: int = 0
    seen: int = 0
    failed: int = 0
    skipped: int = 0
    not_modified: int = 0
    error: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class FetchReport:
    """The outcome of fetching every source once. Made by `pipeline.fetch`, read by the CLI."""

    now: datetime
    sources: tuple[SourceReport, ...] = field(default_factory=tuple)

    @property
    def new(self) -> int:
        return sum(s.new for s in self.sources)

    @property
    def seen(self) -> int:
        return sum(s.seen for s in self.sources)

    @property
    def failed_sources(self) -> int:
        return sum(1 for s in self.sources if not s.ok)

    def summary(self) -> str:
        n = len(self.sources)
        ok = n - self.failed_sources
        return (
            f"{n} source{'s' if n != 1 else ''}: {ok} ok, {self.failed_sources} failed; "
            f"{self.new} new paper{'s' if self.new != 1 else ''}, {self.seen} already seen"
        )


@dataclass(frozen=True)
class DeliveryReport:
    """The outcome of one digest in one run. Made by `pipeline.deliver`, read by the CLI."""

    subscriber: str
    period: str
    status: str  # sent | deferred | failed | would-send (dry run)
    papers: int = 0
    detail: str = ""


@dataclass(frozen=True)
class RunReport:
    """One `digest run`: the fetch, each digest's fate, and why the run stopped if it did."""

    fetch: FetchReport
    deliveries: tuple[DeliveryReport, ...] = ()
    warnings: tuple[str, ...] = ()
    fatal: str | None = None
    feeds_written: int = 0
    dry_run: bool = False

    def count(self, status: str) -> int:
        return sum(1 for d in self.deliveries if d.status == status)

    def summary(self) -> str:
        n = len(self.fetch.sources)
        parts = [
            f"{n} source{'s' if n != 1 else ''}: {n - self.fetch.failed_sources} ok, "
            f"{self.fetch.failed_sources} failed",
            f"{self.fetch.new} new paper{'s' if self.fetch.new != 1 else ''}",
        ]
        digests = [
            f"{self.count('sent')} digests sent",
            f"{self.count('deferred')} deferred",
            f"{self.count('failed')} failed",
        ]
        if self.dry_run:
            n = self.count("would-send")
            s = "s" if n != 1 else ""
            return f"dry run, nothing fetched, sent or recorded: {n} digest{s} would be sent"
        return "; ".join(parts) + "; " + ", ".join(digests)

    @property
    def failure(self) -> str | None:
        """Why the run failed (exit 1): the transport went down, every source failed, or the
        server took none of the digests tried; None when it did its job."""
        if self.fatal is not None:
            return self.fatal
        if self.fetch.sources and self.fetch.failed_sources == len(self.fetch.sources):
            return "every source failed"
        tried = [d for d in self.deliveries if d.status in ("sent", "deferred", "failed")]
        if tried and not any(d.status == "sent" for d in tried):
            return "no digest could be delivered"
        return None
