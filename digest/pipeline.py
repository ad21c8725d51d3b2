"""The only module that knows every stage. The dataflow, as a shell pipe:

    config | fetch | store new | rank per subscriber | render | claim, send, mark | feeds

Today: `fetch` (every source once, each stored in its own transaction). Each source's failure
is a value in the report, never a crash: the other sources still run and nothing already
stored changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from digest.config import Config
from digest.errors import FetchError
from digest.http import Http
from digest.papers import dedupe
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
