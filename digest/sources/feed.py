"""Any RSS 2.0 or Atom 1.0 feed (`type: feed`), arXiv listing feeds understood.

feedparser reads the bytes httpx fetched. A feed that is not well-formed XML (feedparser's
`bozo`) fails as a whole: a cut-off download yields entries too, and the last of them may be
cut mid-abstract, so nothing of it is stored and the next run fetches it again.

arXiv listing feeds (`rss.arxiv.org/rss/<cat>`, `/atom/<cat>`): the id `oai:arXiv.org:2404.01234v2`
gives the version-less arXiv id; the description's `arXiv:... Announce Type: new Abstract:`
prefix is cut off; `dc:creator` is one comma-joined string of authors; an
`arxiv:announce_type` of `replace`/`replace-cross` updates a stored paper and is never new.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import feedparser

from digest.config import SourceConfig
from digest.errors import ParseError
from digest.http import Http
from digest.papers import arxiv_id_of, canonical_id, clean_text, doi_of
from digest.types import Paper, SourceBatch

_ARXIV_PREFIX = re.compile(
    r"^\s*arXiv:\S+\s+Announce Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:\s*)?", re.IGNORECASE
)
UPDATE_TYPES = frozenset({"replace", "replace-cross", "absonly"})
# feedparser reports these for feeds that are still read correctly
_HARMLESS = (feedparser.CharacterEncodingOverride,)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("p", "br", "div", "li"):
            self.parts.append(" ")


def text_of(html: str | None) -> str:
    """Plain text of an HTML fragment (feedparser gives descriptions as HTML)."""
    if not html:
        return ""
    parser = _Text()
    parser.feed(html)
    parser.close()
    return clean_text("".join(parser.parts))


def split_authors(creator: str) -> tuple[str, ...]:
    """arXiv's `dc:creator` string as names: split on commas outside parentheses."""
    names, depth, current = list[str](), 0, list[str]()
    for ch in creator:
        depth += ch == "("
        depth -= ch == ")" and depth > 0
        if ch == "," and depth == 0:
            names.append("".join(current))
            current = []
        else:
            current.append(ch)
    names.append("".join(current))
    return tuple(n for n in (clean_text(x) for x in names) if n)


def _when(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC) if parsed else None


def entry_paper(entry: Any) -> tuple[Paper, bool]:
    """One feed entry as a Paper, and whether it only updates a stored paper (arXiv replace)."""
    title = clean_text(entry.get("title"))
    if not title:
        raise ValueError("no title")
    link, guid = entry.get("link") or "", entry.get("id") or ""
    arxiv_id = arxiv_id_of(guid) or arxiv_id_of(link)
    doi = (
        doi_of(entry.get("arxiv_doi"))
        or doi_of(entry.get("prism_doi"))
        or doi_of(entry.get("dc_identifier"))
        or doi_of(link)
    )
    raw = entry.get("summary") or ""
    if not raw and entry.get("content"):
        raw = entry["content"][0].get("value", "")
    abstract = text_of(raw)
    announce = (entry.get("arxiv_announce_type") or "").strip().lower()
    if m := _ARXIV_PREFIX.match(abstract):
        announce = announce or m["type"].lower()
        abstract = abstract[m.end() :]
    names = [a.get("name", "") for a in entry.get("authors") or [] if isinstance(a, dict)]
    if arxiv_id and len(names) == 1:
        authors = split_authors(names[0])
    else:
        authors = tuple(n for n in (clean_text(x) for x in names) if n)
    url = (
        f"https://arxiv.org/abs/{arxiv_id}"
        if arxiv_id
        else link or (guid if guid.startswith("http") else "")
    )
    tags = tuple(t.get("term") for t in entry.get("tags") or [] if t.get("term"))
    paper = Paper(
        id=canonical_id(arxiv_id=arxiv_id, doi=doi, url=url or None, title=title),
        title=title,
        abstract=abstract,
        url=url,
        arxiv_id=arxiv_id,
        doi=doi,
        authors=authors,
        published=_when(entry),
        categories=tags,
    )
    return paper, announce in UPDATE_TYPES


def parse_feed(body: bytes) -> SourceBatch:
    """The papers of an RSS/Atom document; raises ParseError when it is not a well-formed feed."""
    parsed = feedparser.parse(body)
    if parsed.get("bozo") and not isinstance(parsed.get("bozo_exception"), _HARMLESS):
        exc = parsed.get("bozo_exception")
        where = ""
        if hasattr(exc, "getLineNumber"):
            where = f" at line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
        head = body[:200].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")):
            raise ParseError("not a feed: the server sent an HTML page")
        raise ParseError(f"malformed feed{where}: {getattr(exc, 'getMessage', lambda: exc)()}")
    if not parsed.get("version"):
        raise ParseError("not an RSS or Atom feed")
    papers, updates, problems = list[Paper](), list[Paper](), list[str]()
    for i, entry in enumerate(parsed.entries):
        try:
            paper, is_update = entry_paper(entry)
        except ValueError as e:
            problems.append(f"entry {i + 1}: {e}")
            continue
        (updates if is_update else papers).append(paper)
    return SourceBatch(papers=tuple(papers), updates=tuple(updates), problems=tuple(problems))


class FeedSource:
    """`type: feed`: one RSS or Atom URL."""

    def __init__(self, config: SourceConfig) -> None:
        assert config.url is not None
        self.name = config.name
        self.url = config.url

    def fetch(self, http: Http, now: datetime) -> SourceBatch:
        body = http.get(self.url)
        if body is None:
            return SourceBatch(not_modified=1)
        return parse_feed(body)
