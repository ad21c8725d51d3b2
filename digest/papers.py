"""Identity and merging of papers: pure functions, no I/O.

The same paper reaches us from several sources (HF Daily Papers, an arXiv feed, a listing
snapshot). `canonical_id` gives it one key, `title_key` lets a source without ids (a snapshot)
find it, and `merge` keeps the best of each copy. `merge` is idempotent
(`merge(merge(a, b), b) == merge(a, b)`), which is what makes storing a batch twice a no-op.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from digest.types import Paper

# New-style ids (2404.01234, 0704.0001) and old-style ones (hep-th/9901001, math.GT/0309136).
_ARXIV_NEW = r"\d{4}\.\d{4,5}"
_ARXIV_OLD = r"[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}"
_ARXIV_ID = re.compile(rf"^(?P<id>{_ARXIV_NEW}|{_ARXIV_OLD})(?:v\d+)?$", re.IGNORECASE)
_OAI = re.compile(r"^oai:arxiv\.org:(?P<rest>.+)$", re.IGNORECASE)
_ARXIV_URL = re.compile(
    rf"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/(?P<id>{_ARXIV_NEW}|{_ARXIV_OLD})"
    r"(?:v\d+)?(?:\.pdf)?/?$",
    re.IGNORECASE,
)
_HF_URL = re.compile(rf"^https?://(?:www\.)?huggingface\.co/papers/(?P<id>{_ARXIV_NEW})/?$", re.I)
_DOI = re.compile(r"(?:doi:|https?://(?:dx\.)?doi\.org/)?(?P<doi>10\.\d{4,9}/\S+)$", re.I)
_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|ref|source)$", re.I)

# Kinds of canonical id, strongest first: a stronger id replaces a weaker one on merge.
_STRENGTH = {"arxiv": 0, "doi": 1, "url": 2, "title": 3}


def arxiv_id_of(value: str | None) -> str | None:
    """The version-less arXiv id in an id, `oai:` identifier or arXiv/HF paper URL, if any."""
    if not value:
        return None
    value = value.strip()
    if m := _OAI.match(value):
        value = m["rest"]
    for pattern in (_ARXIV_ID, _ARXIV_URL, _HF_URL):
        if m := pattern.match(value):
            return m["id"]
    return None


def doi_of(value: str | None) -> str | None:
    """The DOI in a `doi:` string or doi.org URL, lower-cased (DOIs are case-insensitive)."""
    if not value:
        return None
    m = _DOI.match(value.strip())
    return m["doi"].lower() if m else None


def normalise_url(url: str) -> str:
    """A URL without the differences that do not change the page (scheme, www, tracking, ...)."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if not _TRACKING.match(k)))
    path = parts.path.rstrip("/") or ""
    return urlunsplit(("https", host, path, query, ""))


def normalise_title(title: str) -> str:
    """Casefolded letters and digits only, single-spaced: what two copies of a title share."""
    text = unicodedata.normalize("NFKC", title).casefold()
    text = re.sub(r"[^\w\s]|_", " ", text)
    return " ".join(text.split())


def title_key(title: str) -> str:
    """A short stable key of the normalised title, for finding a paper that came without ids."""
    return hashlib.sha1(normalise_title(title).encode()).hexdigest()[:20]


def canonical_id(
    *, arxiv_id: str | None = None, doi: str | None = None, url: str | None = None, title: str
) -> str:
    """The paper's key: arXiv id, else `doi:`, else `url:`, else `title:` hash."""
    if arxiv_id:
        return arxiv_id
    if doi:
        return f"doi:{doi}"
    if url:
        return f"url:{normalise_url(url)}"
    return f"title:{title_key(title)}"


def id_kind(paper_id: str) -> str:
    """Which kind of canonical id this is: arxiv, doi, url or title."""
    prefix = paper_id.split(":", 1)[0]
    return prefix if prefix in ("doi", "url", "title") else "arxiv"


def link(paper: Paper) -> str:
    """The page a reader should open: the arXiv abstract page when there is an arXiv id."""
    if paper.arxiv_id and not paper.url.startswith("https://huggingface.co/papers/"):
        return f"https://arxiv.org/abs/{paper.arxiv_id}"
    if paper.url:
        return paper.url
    return "https://arxiv.org/search/?" + urlencode({"query": paper.title, "searchtype": "title"})


def clean_text(text: str | None) -> str:
    """Text with control characters removed and white space folded to single spaces.

    Folding first removes the common ones (newlines, tabs); the characters are looked at one
    by one only when some that are not printable are left (a soft hyphen, a NUL)."""
    if not text:
        return ""
    text = " ".join(text.split())
    if text.isprintable():  # no Cc, Cf, Zl or Zp character is
        return text
    text = "".join(" " if unicodedata.category(c) in _CONTROL else c for c in text)
    return " ".join(text.split())


_CONTROL = ("Cc", "Cf", "Zl", "Zp")


def same_paper(a: Paper, b: Paper) -> bool:
    """Whether two copies can be one paper: equal ids, or equal titles with no conflicting id."""
    if a.id == b.id:
        return True
    if a.arxiv_id and b.arxiv_id:
        return a.arxiv_id == b.arxiv_id
    if a.doi and b.doi:
        return a.doi == b.doi
    if id_kind(a.id) == id_kind(b.id) == "url":
        return False  # two pages with different addresses are two items, whatever their titles
    return title_key(a.title) == title_key(b.title)


def _first(old: str | None, new: str | None) -> str | None:
    return old if old else new


def _longer(old: str, new: str) -> str:
    return new if len(new) > len(old) else old


def _max(old: int | None, new: int | None) -> int | None:
    if old is None:
        return new
    if new is None:
        return old
    return max(old, new)


def _union(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    return old + tuple(x for x in new if x not in old)


def merge(old: Paper, new: Paper) -> Paper:
    """One paper from two copies of it, keeping the best of each field.

    The strongest id wins; text fields keep the longer (a snapshot's abstract may be cut with
    "..."); counters keep the larger (upvotes and stars only grow); lists are united; anything
    else keeps what was known first and fills in what was missing.
    """
    stronger = new if _STRENGTH[id_kind(new.id)] < _STRENGTH[id_kind(old.id)] else old
    return replace(
        old,
        id=stronger.id,
        title=_longer(old.title, new.title),
        abstract=_longer(old.abstract, new.abstract),
        url=stronger.url or old.url or new.url,
        arxiv_id=_first(old.arxiv_id, new.arxiv_id),
        doi=_first(old.doi, new.doi),
        authors=new.authors if len(new.authors) > len(old.authors) else old.authors,
        published=old.published or new.published,
        upvotes=_max(old.upvotes, new.upvotes),
        github_repo=_first(old.github_repo, new.github_repo),
        github_stars=_max(old.github_stars, new.github_stars),
        project_page=_first(old.project_page, new.project_page),
        ai_summary=_first(old.ai_summary, new.ai_summary),
        ai_keywords=_union(old.ai_keywords, new.ai_keywords),
        organization=_first(old.organization, new.organization),
        categories=_union(old.categories, new.categories),
    )


def dedupe(papers: list[Paper]) -> list[Paper]:
    """The papers with copies of one paper merged into the first copy, order kept."""
    out: list[Paper] = []
    by_id: dict[str, int] = {}
    by_title: dict[str, int] = {}
    for paper in papers:
        i = by_id.get(paper.id)
        if i is None:
            j = by_title.get(title_key(paper.title))
            i = j if j is not None and same_paper(out[j], paper) else None
        if i is None:
            i = len(out)
            out.append(paper)
        else:
            out[i] = merge(out[i], paper)
        by_id[out[i].id] = by_id[paper.id] = i
        by_title.setdefault(title_key(paper.title), i)
    return out
