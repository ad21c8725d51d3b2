"""The only module that knows every stage. The dataflow, as a shell pipe:

    config | fetch | store new | rank per subscriber | render | claim, send, mark | feeds

Today: `fetch` (every source once, each stored in its own transaction) and `rank` (one TF-IDF
space per run over the stored corpus, then each subscriber's candidates). Each source's
failure is a value in the report, never a crash: the other sources still run and nothing
already stored changes.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parseaddr
from urllib.parse import quote, urljoin

from digest.config import Config, Subscriber
from digest.errors import FetchError
from digest.http import Http
from digest.papers import dedupe
from digest.rank import Ranked, Space, profile_of, quoted, rank
from digest.render import DigestView, Item, item_of
from digest.sources import make_source
from digest.store import Store
from digest.tokens import unsubscribe_token
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


def unsubscribe_links(config: Config, secret: bytes | None, subscriber_id: str) -> tuple[str, ...]:
    """The reader's unsubscribe links: https under feeds.site_url, and mailto to the sender."""
    token = unsubscribe_token(secret, subscriber_id) if secret else "preview"
    links = []
    if config.feeds.site_url:
        links.append(urljoin(config.feeds.site_url, f"unsubscribe?token={token}"))
    sender = parseaddr(config.delivery.from_)[1]
    if sender:
        links.append(f"mailto:{sender}?subject={quote(f'unsubscribe {token}')}")
    return tuple(links)


def digest_view(
    config: Config,
    subscriber: Subscriber,
    items: tuple[Item, ...],
    now: datetime,
    secret: bytes | None,
) -> DigestView:
    """What the templates show one reader for the digest due at `now`."""
    tz = zoneinfo.ZoneInfo(subscriber.timezone or config.schedule.timezone)
    local = now.astimezone(tz)
    path = config.subscribers / f"{subscriber.id}.yaml"
    try:
        keywords_file = str(path.relative_to(config.base_dir))
    except ValueError:
        keywords_file = str(path)
    links = unsubscribe_links(config, secret, subscriber.id)
    site = config.feeds.site_url
    return DigestView(
        name=subscriber.name,
        email=subscriber.email,
        date=f"{local:%A} {local.day} {local:%B %Y}",
        frequency=subscriber.frequency,
        keywords=quoted(subscriber.keywords) or "no keywords yet",
        keywords_file=keywords_file,
        unsubscribe_url=links[0] if links else "",
        items=items,
        feed_url=urljoin(site, f"{subscriber.id}.xml") if site else "",
    )


def included_items(ranked: list[Ranked]) -> tuple[Item, ...]:
    """The papers a digest holds, as the templates show them."""
    return tuple(item_of(r) for r in ranked if r.included)
