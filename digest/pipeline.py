"""The only module that knows every stage. The dataflow, as a shell pipe:

    config | fetch | store new | rank per subscriber | render | claim, send, mark | feeds

Today: `fetch` (every source once, each stored in its own transaction) and `rank` (one TF-IDF
space per run over the stored corpus, then each subscriber's candidates). Each source's
failure is a value in the report, never a crash: the other sources still run and nothing
already stored changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from digest.config import Config, Subscriber
from digest.errors import FetchError
from digest.http import Http
from digest.papers import dedupe
from digest.rank import Ranked, Space, profile_of, rank
from digest.sources import make_source
from digest.store import Store
from digest.types import FetchReport, SourceReport


def make_http(config: Config, store: Store) -> Http:
    """The run's HTTP client, with the stored validators for conditional GET."""
    f = config.fetch
    return Http(
        timeout=f.timeout,
        max_bytes=int(f.max_response_mb * 1_000_000),
        attempts=f.attempts,
        user_agent=f.user_agent,
        validators=store.validators(),
    )


def fetch(
    config: Config,
    store: Store,
    now: datetime,
    *,
    progress: Callable[[SourceReport], None] | None = None,
) -> FetchReport:
    """Fetch every source once at logical time `now` and store what is new."""
    reports = []
    with make_http(config, store) as http:
        for source_config in config.sources:
            source = make_source(source_config)
            http.validators_seen.clear()
            try:
                batch = source.fetch(http, now)
                result = store.add_batch(
                    source.name,
                    dedupe(list(batch.papers)),
                    now,
                    updates=dedupe(list(batch.updates)),
                    validators=http.validators_seen,
                )
                report = SourceReport(
                    name=source.name,
                    new=result.new,
                    seen=result.seen,
                    skipped=result.skipped,
                    failed=len(batch.problems),
                    not_modified=batch.not_modified,
                    problems=batch.problems,
                )
            except FetchError as e:
                report = SourceReport(name=source.name, error=str(e))
            reports.append(report)
            if progress:
                progress(report)
    return FetchReport(now=now, sources=tuple(reports))


def window_start(config: Config, subscriber: Subscriber, now: datetime) -> datetime:
    """The oldest first-seen time of a subscriber's candidates (at least a week for weekly)."""
    days = config.ranking.window_days
    if subscriber.frequency == "weekly":
        days = max(days, 7)
    return now - timedelta(days=days)


def build_space(config: Config, store: Store, now: datetime) -> Space:
    """The TF-IDF space of the stored corpus (papers first seen in `corpus_days` up to now)."""
    return Space(store.papers(since=now - timedelta(days=config.ranking.corpus_days), until=now))


def rank_subscriber(
    config: Config, space: Space, store: Store, subscriber: Subscriber, now: datetime
) -> list[Ranked]:
    """A subscriber's candidates (stored papers first seen in their window up to now), ranked."""
    candidates = store.papers(since=window_start(config, subscriber, now), until=now)
    return rank(space, candidates, profile_of(subscriber, config.ranking))
