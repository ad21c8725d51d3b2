"""Rendering: templates -> the parts of an email (subject, text, HTML) and the MIME message.
No sending, no I/O beyond reading the templates once.

    renderer = Renderer(templates_dir)          # once per run: MJML compiled to a Jinja template
    rendered = renderer.render(view)            # per reader: Jinja fills subject, text and HTML
    data = message_bytes(rendered, headers)     # multipart/alternative, text first, then HTML

`message_bytes` writes the message itself (the email package's generator was most of a
digest's cost); `to_message` builds the same message with the email package and is the
reference it is tested against, byte for byte.

The MJML layout is compiled once (`mjml` package) into HTML that still holds the Jinja
statements (they sit in `<mj-raw>` blocks); Jinja then fills it per reader with autoescape on.
Everything from a paper (title, authors, abstract) is untrusted text: it is escaped in the HTML,
and the subject and other header values are stripped of CR, LF and NUL.
"""

from __future__ import annotations

import binascii
import random
import re
import sys
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from functools import lru_cache, partial
from pathlib import Path

import jinja2
from jinja2 import pass_environment
from jinja2.filters import do_wordwrap
from mjml import mjml_to_html

from digest.errors import ConfigError, Problem
from digest.papers import clean_text, link
from digest.rank import Ranked, quoted
from digest.types import Paper

PACKAGED = Path(__file__).parent / "templates"
SUMMARY_CHARS = 320
MAX_AUTHORS = 4
MAX_TITLE = 300
# One line per header, never folded or RFC 2047-encoded past what it needs (List-Unsubscribe).
MAX_LINE = 998
POLICY = SMTP.clone(max_line_length=MAX_LINE)
_HEADER_UNSAFE = re.compile(r"[\r\n\x00]+")


@dataclass(frozen=True)
class Link:
    """A labelled link under a paper (upvotes, stars, code, project, PDF); url may be empty."""

    label: str
    url: str = ""


@dataclass(frozen=True)
class Item:
    """One paper as the templates see it. Made by `item_of` (once per paper and reasons)."""

    id: str
    title: str
    url: str
    authors: str
    organization: str
    summary: str
    why: str
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class DigestView:
    """Everything a template needs for one reader's digest. Made by the pipeline."""

    name: str
    email: str
    date: str  # as shown: "Monday 10 August 2026"
    frequency: str
    keywords: str
    keywords_file: str
    unsubscribe_url: str
    items: tuple[Item, ...] = ()
    feed_url: str = ""

    @property
    def count(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class Rendered:
    """The three parts of one digest email."""

    subject: str
    text: str
    html: str
    # runs of whole lines the layout writes in every digest's HTML, in order: encoded once
    # per run (`message_bytes`); any text gives the same message, only slower or faster
    layout: tuple[str, ...] = ()


@dataclass(frozen=True)
class Headers:
    """The envelope of one digest message."""

    sender: str
    to: str
    date: datetime
    message_id: str
    list_id: str = ""
    unsubscribe: tuple[str, ...] = ()  # URLs for List-Unsubscribe: https:// and/or mailto:


def header_safe(value: str) -> str:
    """A header value that cannot start a new header: CR, LF and NUL become spaces."""
    return " ".join(_HEADER_UNSAFE.sub(" ", value).split())


def short_authors(authors: tuple[str, ...], limit: int = MAX_AUTHORS) -> str:
    """ "A, B, C" or "A, B, C, D et al." for long lists."""
    if len(authors) <= limit:
        return ", ".join(authors)
    return ", ".join(authors[: limit - 1]) + " et al."


def summary(paper: Paper, limit: int = SUMMARY_CHARS) -> str:
    """2-3 lines: HF's ai_summary when present, else the start of the abstract, cut at a word."""
    text = paper.ai_summary or paper.abstract
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("? "))
    if end > limit // 2:
        return cut[: end + 1]
    return cut.rsplit(" ", 1)[0] + " …"


def pdf_url(paper: Paper) -> str:
    """The arXiv PDF of a paper with an arXiv id (no version: the latest)."""
    return f"https://arxiv.org/pdf/{paper.arxiv_id}" if paper.arxiv_id else ""


def item_of(ranked: Ranked) -> Item:
    """A ranked paper as the templates show it; its text cleaned of control characters."""
    why = f"matched {quoted(ranked.matched)}" if ranked.matched else "close to your interests"
    if ranked.related:
        why += f"; also about {', '.join(ranked.related)}"
    return replace(_paper_item(ranked.paper), why=why)


@lru_cache(maxsize=20_000)
def _paper_item(p: Paper) -> Item:
    """What an item shows of its paper, made once per paper for all the readers who get it."""
    p = replace(
        p,
        title=clean_text(p.title),
        abstract=clean_text(p.abstract),
        ai_summary=clean_text(p.ai_summary) or None,
        authors=tuple(clean_text(a) for a in p.authors),
        organization=clean_text(p.organization) or None,
    )
    links: list[Link] = []
    if p.upvotes:
        links.append(
            Link(
                f"▲ {p.upvotes} upvotes",
                f"https://huggingface.co/papers/{p.arxiv_id}" if p.arxiv_id else "",
            )
        )
    if p.github_repo:
        stars = f" ★ {p.github_stars:,}" if p.github_stars else ""
        links.append(Link(f"Code{stars}", p.github_repo))
    if p.project_page:
        links.append(Link("Project page", p.project_page))
    if pdf := pdf_url(p):
        links.append(Link("PDF", pdf))
    title = p.title if len(p.title) <= MAX_TITLE else p.title[: MAX_TITLE - 1] + "…"
    return Item(
        id=p.id,
        title=title,
        url=link(p),
        authors=short_authors(p.authors),
        organization=p.organization or "",
        summary=summary(p),
        why="",
        links=tuple(links),
    )


class Renderer:
    """The templates of a run: MJML compiled once, then rendered per reader."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or PACKAGED
        sources = {}
        for name in ("digest.mjml", "digest.txt", "subject.txt"):
            path = self.folder / name
            try:
                sources[name] = path.read_text(encoding="utf-8")
            except OSError as e:
                raise ConfigError(
                    [Problem(str(path), "", f"cannot read template: {e.strerror or e}")]
                ) from e
        compiled = mjml_to_html(sources["digest.mjml"])
        if compiled.errors:
            problems = [
                Problem(str(self.folder / "digest.mjml"), "", f"MJML: {e}") for e in compiled.errors
            ]
            raise ConfigError(problems)
        html_env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
        text_env = jinja2.Environment(
            autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
        )
        # the same summaries are wrapped for every reader who gets them: once is enough
        wrapped = lru_cache(maxsize=100_000)(partial(do_wordwrap, text_env))
        text_env.filters["wordwrap"] = pass_environment(lambda _, s, *a, **k: wrapped(s, *a, **k))
        self.html = self._compile(html_env, compiled.html, "digest.mjml")
        self.layout = _layout_lines(compiled.html)
        self.text = self._compile(text_env, sources["digest.txt"], "digest.txt")
        self.subject = self._compile(text_env, sources["subject.txt"], "subject.txt")

    def _compile(self, env: jinja2.Environment, source: str, name: str) -> jinja2.Template:
        try:
            return env.from_string(source)
        except jinja2.TemplateSyntaxError as e:
            where = f"{self.folder / name}:{e.lineno}"
            raise ConfigError([Problem(where, "", f"template error: {e.message}")]) from e

    def render(self, view: DigestView) -> Rendered:
        """Subject, text and HTML of one digest."""
        values = {
            name: getattr(view, name)
            for name in (
                "name",
                "email",
                "date",
                "frequency",
                "keywords",
                "keywords_file",
                "unsubscribe_url",
                "items",
                "feed_url",
                "count",
            )
        }
        subject = header_safe(self.subject.render(values))
        preheader = "; ".join(i.title for i in view.items[:3]) or "Nothing new matched this time"
        text = self.text.render(values)
        html = self.html.render(values, subject=subject, preheader=preheader[:140])
        return Rendered(subject=subject, text=text, html=html, layout=self.layout)


_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
LAYOUT_LINES = 256  # characters of whole lines from which a run of the layout is encoded once


def _layout_lines(source: str) -> tuple[str, ...]:
    """The runs of whole lines between a template's Jinja tags (the text every digest has:
    most of an HTML digest is its head and styles), the longer ones."""
    runs = []
    for k, text in enumerate(_JINJA.split(source)):
        start = 0 if k == 0 else text.find("\n") + 1
        run = text[start : text.rfind("\n") + 1]
        if len(run) >= LAYOUT_LINES:
            runs.append(run)
    return tuple(runs)


def _quoted_printable_body(body: str) -> str:
    """A UTF-8 body as quoted-printable, by binascii (C) rather than the email package's Python
    encoder, which was most of the cost of a digest; a final newline as email's set_content."""
    body = body if body.endswith("\n") else body + "\n"
    return binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii")


def _encoded(body: str) -> str:
    """A body as quoted-printable with CRLF line ends, as a message holds it."""
    return _crlf(_quoted_printable_body(body))


_encoded_layout = lru_cache(maxsize=64)(_encoded)  # the layout's runs, once per run


def _quoted_printable_crlf(body: str, layout: tuple[str, ...] = ()) -> str:
    """`_encoded(body)`, the runs of `layout` found at line starts in order encoded once
    (measured: ~60% of a digest's HTML, and of its encoding time).

    Quoted-printable encodes each line apart from the others: whole lines encoded in pieces
    give the whole's encoding. Not with a CR in the body: binascii then decides the line
    ends of its output from the first line end of its input."""
    if not layout or "\r" in body:
        return _encoded(body)
    out, at = [], 0
    for lines in layout:
        i = body.find(lines, at)
        if i < 0 or (i and body[i - 1] != "\n"):
            continue
        if i > at:  # the text before the run ends a line: encoded as a body of its own
            out.append(_encoded(body[at:i]))
        out.append(_encoded_layout(lines))
        at = i + len(lines)
    if at < len(body) or not out:  # with the final newline a body is given
        out.append(_encoded(body[at:]))
    return "".join(out)


def _quoted_printable(body: str, subtype: str) -> EmailMessage:
    """A text/<subtype> UTF-8 part, quoted-printable."""
    part = EmailMessage(policy=SMTP)
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(_quoted_printable_body(body))
    return part


def _header_fields(rendered: Rendered, headers: Headers) -> list[tuple[str, str]]:
    """The message's headers before the MIME ones, in order."""
    fields = [
        ("From", header_safe(headers.sender)),
        ("To", header_safe(headers.to)),
        ("Subject", rendered.subject),
        ("Date", format_datetime(headers.date)),
        ("Message-ID", header_safe(headers.message_id)),
    ]
    if headers.list_id:
        fields.append(("List-Id", header_safe(headers.list_id)))
    if headers.unsubscribe:
        fields.append(
            ("List-Unsubscribe", ", ".join(f"<{header_safe(u)}>" for u in headers.unsubscribe))
        )
        if any(u.startswith("https://") for u in headers.unsubscribe):
            fields.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return fields


def to_message(rendered: Rendered, headers: Headers) -> EmailMessage:
    """The RFC 5322 message, by the email package: multipart/alternative with the text part
    first, then the HTML (the reference `message_bytes` is checked against)."""
    msg = EmailMessage(policy=SMTP)  # bodies are encoded now, in lines of at most 76
    for name, value in _header_fields(rendered, headers):
        msg[name] = value
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = "multipart/alternative"  # the boundary is chosen at serialisation
    msg.attach(_quoted_printable(rendered.text, "plain"))
    msg.attach(_quoted_printable(rendered.html, "html"))
    msg.policy = POLICY  # headers are written at serialisation: up to 998 characters, unfolded
    return msg


# Header values the email package writes as they are: printable ASCII with no encoded-word
# marker; addresses as a plain name of letters, digits and spaces with a plain address.
_PLAIN = re.compile(r"[\x20-\x7e]*")
_ADDRESS = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+"
_PLAIN_ADDRESS = re.compile(rf"(?:[A-Za-z0-9]+(?: [A-Za-z0-9]+)* <{_ADDRESS}>|{_ADDRESS})")
_PLAIN_ID = re.compile(rf"<{_ADDRESS}>")


def _plain(name: str, value: str) -> bool:
    """Whether a header value is written as it is (an empty one is not: the email package
    writes "Subject:" with no space after the colon)."""
    if not value or len(name) + 2 + len(value) > MAX_LINE or "=?" in value:
        return False
    if name in ("From", "To"):
        return _PLAIN_ADDRESS.fullmatch(value) is not None
    if name == "Message-ID":
        return _PLAIN_ID.fullmatch(value) is not None
    return _PLAIN.fullmatch(value) is not None


@lru_cache(maxsize=4096)
def _folded(name: str, value: str) -> str:
    """One header as the email package writes it (parsed, RFC 2047-encoded where needed,
    folded): made once per distinct value (a run's From, Date, List-Id and most subjects are
    shared by many digests)."""
    return POLICY.fold_binary(name, SMTP.header_store_parse(name, value)[1]).decode("ascii")


def _header_line(name: str, value: str) -> str:
    """One header as the email package writes it. A plain value is written as it is. A subject
    whose only text that is not plain is its last word (a title cut with "…", most often) is its
    plain words, then that word as the email package encodes it after a plain word: the
    package writes plain words of an unfolded header as they are and encodes each other word
    on its own, and subjects differ from digest to digest where their last words do not (the
    email package's parse and fold was ~120 us a subject)."""
    if _plain(name, value):
        return f"{name}: {value}\n"
    head, _, last = value.rpartition(" ")
    if name == "Subject" and head and _plain(name, head):
        word = _folded(name, f"x {last}")  # "Subject: x <encoded word>\r\n"
        line = f"{name}: {head} {word[len(name) + 4 :]}"
        if len(line) < _UNFOLDED:  # so neither is folded (an encoded word splits in one line)
            return line
    return _folded(name, value)


_UNFOLDED = MAX_LINE - 100  # lines this long are left to the email package (it may fold them)


def message_bytes(rendered: Rendered, headers: Headers) -> bytes:
    """`to_message(rendered, headers).as_bytes()` (boundary aside), written directly: plain
    header values as they are, the others as the email package folds them, bodies by binascii.
    This saves most of a digest's cost, which was header parsing and generation."""
    # the text whole; the HTML's layout once per run. Not line by line: that was slower in a
    # run's order (175 against 155-159 us a digest): each of ~300 lines cost a cache lookup
    text = _encoded(rendered.text)
    html = _quoted_printable_crlf(rendered.html, rendered.layout)
    boundary = "=" * 15 + f"{random.randrange(sys.maxsize):019d}" + "=="
    while f"--{boundary}" in text or f"--{boundary}" in html:  # as the email package does
        boundary += "="
    lines = [_header_line(name, value) for name, value in _header_fields(rendered, headers)]
    lines += [
        "MIME-Version: 1.0\n",
        f'Content-Type: multipart/alternative; boundary="{boundary}"\n',
        "\n",
    ]
    parts = [_crlf("".join(lines))]  # the bodies' lines already end in CRLF
    for subtype, body in (("plain", text), ("html", html)):
        parts += [
            f"--{boundary}\r\n",
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n',
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "\r\n",
            body,
            "\r\n",
        ]
    parts += [f"--{boundary}--\r\n"]
    return "".join(parts).encode("ascii")


def _crlf(text: str) -> str:
    """Every line end (CRLF, CR or LF: what the email package's generator takes as one) made
    CRLF; by str.replace, three times faster than one regular expression."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
