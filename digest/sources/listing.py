"""Plain-text snapshots of the Hugging Face trending page (`type: listing`, a file or a URL).

The format (`../shared/data/README.md`): a header (`new`, `Get trending papers in your email
inbox!`, `Subscribe`, `byAK and the research community`), a day line such as `Mar 11` (no
year), then per paper a title paragraph, a blank line and an abstract paragraph. Snapshots carry
no ids: papers are keyed by their normalised title until another source gives the arXiv id.

A title with no abstract after it (a "dangling" title) is one failed item; the other papers of
the snapshot are kept.
"""

from __future__ import annotations

import re
from datetime import datetime

from digest.config import SourceConfig
from digest.errors import FetchError, ParseError
from digest.http import Http
from digest.papers import canonical_id, clean_text
from digest.types import Paper, SourceBatch

_DAY = re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]* \d{1,2}$")
MAX_TITLE = 400  # characters; a longer paragraph is an abstract


def paragraphs(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each blank-line separated paragraph, lines joined."""
    out: list[tuple[int, str]] = []
    start, lines = 0, list[str]()
    for number, line in enumerate([*text.splitlines(), ""], start=1):
        if line.strip():
            if not lines:
                start = number
            lines.append(line.strip())
        elif lines:
            out.append((start, " ".join(lines)))
            lines = []
    return out


def _looks_like_title(text: str) -> bool:
    return len(text) <= MAX_TITLE and not text.endswith((".", "...", "…"))


def parse_listing(text: str) -> SourceBatch:
    """The papers of a snapshot; raises ParseError when the text is not a snapshot at all."""
    if text.lstrip().lower().startswith(("<!doctype", "<html")):
        raise ParseError("not a listing snapshot: got an HTML page")
    paras = paragraphs(text)
    day_at = next((i for i, (_, p) in enumerate(paras) if _DAY.match(p)), None)
    if day_at is None:
        raise ParseError("not a listing snapshot: no day line such as 'Mar 11'")
    body = paras[day_at + 1 :]
    papers, problems = [], []
    i = 0
    while i < len(body):
        line, title = body[i]
        nxt = body[i + 1][1] if i + 1 < len(body) else None
        after = body[i + 2][1] if i + 2 < len(body) else None
        dangling = nxt is None or (
            _looks_like_title(nxt)
            and (after is None or not _looks_like_title(after))
            and len(nxt) < len(title) * 4
        )
        if not _looks_like_title(title):
            problems.append(
                f"line {line}: a paragraph where a title was expected: {title[:60]!r}..."
            )
            i += 1
            continue
        if dangling:
            problems.append(f"line {line}: title without an abstract: {title[:80]!r}")
            i += 1
            continue
        assert nxt is not None
        title = clean_text(title)
        papers.append(Paper(id=canonical_id(title=title), title=title, abstract=clean_text(nxt)))
        i += 2
    if not papers and not problems:
        raise ParseError("listing snapshot holds no papers")
    return SourceBatch(papers=tuple(papers), problems=tuple(problems))


class ListingSource:
    """`type: listing`: a snapshot read from `path` or fetched from `url`."""

    def __init__(self, config: SourceConfig) -> None:
        self.name = config.name
        self.url = config.url
        self.path = config.path

    def fetch(self, http: Http, now: datetime) -> SourceBatch:
        if self.path is not None:
            try:
                text = self.path.read_text(encoding="utf-8")
            except OSError as e:
                raise FetchError(f"cannot read {self.path}: {e.strerror or e}") from e
            except UnicodeDecodeError as e:
                raise ParseError(f"{self.path} is not UTF-8 text: {e}") from e
        else:
            assert self.url is not None
            body = http.get(self.url)
            if body is None:
                return SourceBatch(not_modified=1)
            text = body.decode("utf-8", errors="replace")
        return parse_listing(text)
