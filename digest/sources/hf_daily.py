"""The Hugging Face Daily Papers JSON API (`type: hf_daily`).

For each of the last `lookback_days` listing days up to `now` (weekdays: HF lists no papers on
Saturdays and Sundays), GET `<url>?date=YYYY-MM-DD&p=N` for N = 0, 1, ... until a page is
empty. The response is a bare JSON array of `{paper: {...}, ...}` items (see
`../shared/data/README.md`); the fields were added over time, so every one but `id` and
`title` is optional.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from digest.config import SourceConfig
from digest.errors import ParseError
from digest.http import Http
from digest.papers import canonical_id, clean_text
from digest.types import Paper, SourceBatch

MAX_PAGES = 50  # a day has a few dozen papers; this only stops a server that ignores `p`


def listing_days(now: datetime, lookback_days: int) -> list[date]:
    """The last `lookback_days` weekdays up to and including now's (UTC) date, oldest first."""
    days: list[date] = []
    day = now.astimezone(UTC).date() if now.tzinfo else now.date()
    while len(days) < lookback_days:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return days[::-1]


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_str(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def paper_of(item: dict[str, Any]) -> Paper:
    """One API item as a Paper; raises ValueError when it has no paper id or title."""
    p = item.get("paper")
    if not isinstance(p, dict):
        raise ValueError("no 'paper' object")
    pid, title = _opt_str(p.get("id")), clean_text(p.get("title") or item.get("title"))
    if not pid or not title:
        raise ValueError("paper without id or title")
    authors = tuple(
        clean_text(a.get("name"))
        for a in p.get("authors") or []
        if isinstance(a, dict) and _opt_str(a.get("name"))
    )
    org = p.get("organization") or item.get("organization")
    keywords = p.get("ai_keywords") or []
    arxiv_id = pid if pid[:4].isdigit() else None
    return Paper(
        id=canonical_id(arxiv_id=arxiv_id, url=f"https://huggingface.co/papers/{pid}", title=title),
        title=title,
        abstract=clean_text(p.get("summary") or item.get("summary")),
        url=f"https://huggingface.co/papers/{pid}",
        arxiv_id=arxiv_id,
        authors=authors,
        published=_time(p.get("publishedAt")),
        upvotes=_opt_int(p.get("upvotes")),
        github_repo=_opt_str(p.get("githubRepo")),
        github_stars=_opt_int(p.get("githubStars")),
        project_page=_opt_str(p.get("projectPage")),
        ai_summary=clean_text(p.get("ai_summary")) or None,
        ai_keywords=tuple(clean_text(k) for k in keywords if isinstance(k, str) and k.strip()),
        organization=_opt_str(org.get("fullname") or org.get("name"))
        if isinstance(org, dict)
        else None,
    )


def parse_page(body: bytes) -> tuple[list[Paper], list[str]]:
    """The papers of one API page and the problems of the items that could not be read.

    Raises ParseError when the body is not a JSON array of objects at all.
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        start = body[:60].decode("utf-8", "replace").strip()
        hint = " (an HTML page)" if start.lower().startswith(("<!doctype", "<html")) else ""
        raise ParseError(f"not JSON{hint}: {e}") from e
    if not isinstance(data, list):
        keys = ", ".join(list(data)[:5]) if isinstance(data, dict) else type(data).__name__
        raise ParseError(f"expected a JSON array of papers, got an object ({keys})")
    if data and not any(isinstance(x, dict) for x in data):
        raise ParseError(
            f"expected a JSON array of objects, got an array of {type(data[0]).__name__}"
        )
    papers, problems = [], []
    for i, item in enumerate(data):
        try:
            if not isinstance(item, dict):
                raise ValueError(f"a {type(item).__name__}, not an object")
            papers.append(paper_of(item))
        except ValueError as e:
            problems.append(f"item {i}: {e}")
    return papers, problems


class HFDailySource:
    """`type: hf_daily`: the HF Daily Papers API, one request per listing day and page."""

    def __init__(self, config: SourceConfig) -> None:
        assert config.url is not None
        self.name = config.name
        self.url = config.url
        self.lookback_days = config.lookback_days

    def fetch(self, http: Http, now: datetime) -> SourceBatch:
        papers: list[Paper] = []
        problems: list[str] = []
        not_modified = 0
        for day in listing_days(now, self.lookback_days):
            seen_ids: set[str] = set()
            for page in range(MAX_PAGES):
                params = {"date": day.isoformat(), "p": str(page)}
                body = http.get(self.url, params)
                if body is None:
                    not_modified += 1
                    continue
                try:
                    found, bad = parse_page(body)
                except ParseError as e:
                    raise ParseError(f"{day} page {page}: {e}") from e
                if not found and not bad:
                    http.forget(self.url, params)  # an empty page may fill later: ask afresh
                    break
                problems += [f"{day} page {page}: {p}" for p in bad]
                if found and {p.id for p in found} <= seen_ids:
                    break  # the server ignores `p`: this page repeats an earlier one
                seen_ids |= {p.id for p in found}
                papers += found
        return SourceBatch(
            papers=tuple(papers), problems=tuple(problems), not_modified=not_modified
        )
