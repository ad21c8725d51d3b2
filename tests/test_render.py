"""The digest a reader opens: email parts, MIME message, feeds, preview; hostile text stays text."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import stat
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import formataddr
from pathlib import Path

import feedparser
import pytest
from browser import layout, screenshot
from conftest import FIXTURES, fixture_bytes
from hypothesis import example, given, settings
from hypothesis import strategies as st

from digest.errors import ConfigError
from digest.feeds import FeedEntry, build_feed, write_feed
from digest.papers import canonical_id
from digest.rank import Profile, rank
from digest.render import (
    DigestView,
    Headers,
    Renderer,
    _quoted_printable_body,
    _quoted_printable_crlf,
    header_safe,
    item_of,
    message_bytes,
    to_message,
)
from digest.render import _crlf as crlf
from digest.sources.hf_daily import parse_page
from digest.space import Space
from digest.types import Paper

ROOT = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("DIGEST_REGENERATE") == "1"
NOW = datetime(2025, 10, 3, 7, 0, tzinfo=UTC)
HOSTILE_TITLES = [
    "<script>alert('x')</script> Quantization",
    'Quantization <img src=x onerror="alert(1)">',
    "Quantization & Pruning: $a<b$ and \\mathcal{O}(n) bounds",
    "Quantization\r\nBcc: victim@example.org\x00\x07 injected",
    "Quantization " + "very long title " * 120,
    "تكميم Quantization للشبكات العصبية",
]


def view(items: tuple, name: str = "Alice Example") -> DigestView:
    return DigestView(
        name=name,
        email="alice@example.org",
        date="Friday 3 October 2025",
        frequency="daily",
        keywords='"video generation", diffusion',
        keywords_file="subscribers/alice.yaml",
        unsubscribe_url="https://digest.example.org/unsubscribe?token=YWxpY2U.0123",
        items=items,
        feed_url="https://digest.example.org/alice.xml",
    )


def hf_items(keywords: tuple[str, ...], max_items: int = 10) -> tuple:
    papers, _ = parse_page(fixture_bytes("hf/2025-10-03.json"))
    ranked = rank(Space(papers), papers, Profile(keywords=keywords, max_items=max_items))
    return tuple(item_of(r) for r in ranked if r.included)


def headers() -> Headers:
    return Headers(
        sender="Paper Digest <digest@example.org>",
        to="Alice Example <alice@example.org>",
        date=NOW,
        message_id="<2025-10-03.abc@example.org>",
        list_id="Paper digest <digest.example.org>",
        unsubscribe=(
            "https://digest.example.org/unsubscribe?token=YWxpY2U.0123",
            "mailto:digest@example.org?subject=unsubscribe%20YWxpY2U.0123",
        ),
    )


def normalised(raw: bytes) -> str:
    """An .eml with its Date, Message-ID and MIME boundary replaced by fixed markers."""
    text = raw.decode().replace("\r\n", "\n")
    boundary = re.search(r'boundary="([^"]+)"', text)
    if boundary:
        text = text.replace(boundary.group(1), "BOUNDARY")
    text = re.sub(r"^Date: .*$", "Date: DATE", text, flags=re.M)
    return re.sub(r"^Message-ID: .*$", "Message-ID: MESSAGE-ID", text, flags=re.M)


RENDERER = Renderer()
GOLDEN_ITEMS = hf_items(("video generation", "diffusion"))


def test_golden_eml() -> None:
    """The whole message for a fixed reader and day matches the reviewed golden file
    (DIGEST_REGENERATE=1 rewrites it)."""
    items = hf_items(("video generation", "diffusion"))
    assert len(items) >= 3
    raw = message_bytes(Renderer().render(view(items)), headers())
    golden = GOLDEN / "alice-2025-10-03.eml"
    if REGENERATE:
        golden.write_text(normalised(raw))
    assert normalised(raw) == golden.read_text()


def test_message_structure_and_headers() -> None:
    """multipart/alternative, text then HTML, the contract's headers, List-Unsubscribe unfolded."""
    raw = message_bytes(Renderer().render(view(hf_items(("diffusion",)))), headers())
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe"):
        assert msg[name]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    line = next(x for x in raw.decode().splitlines() if x.startswith("List-Unsubscribe:"))
    assert line.endswith("unsubscribe%20YWxpY2U.0123>") and "=?" not in line
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for item in hf_items(("diffusion",)):
        assert item.url in text and item.url in html  # every paper links to its page in both parts
        assert item.url.startswith(("https://huggingface.co/papers/", "https://arxiv.org/abs/"))


def hostile_items() -> tuple:
    papers = [
        Paper(
            id=canonical_id(title=t),
            title=t,
            abstract=f"Quantization study {i}. <b>bold</b> & x<y",
            authors=("<svg onload=alert(1)>", "Ann O'Neil"),
        )
        for i, t in enumerate(HOSTILE_TITLES)
    ]
    ranked = rank(Space(papers), papers, Profile(keywords=("quantization",), max_items=20))
    return tuple(item_of(r) for r in ranked if r.included)


def test_hostile_text_stays_text_everywhere() -> None:
    """<script>, onerror=, &, LaTeX, control characters, CR/LF, 2,000-character and RTL titles:
    escaped in the HTML, plain in the text part, never a new header in the subject."""
    items = hostile_items()
    assert len(items) == len(HOSTILE_TITLES)
    rendered = Renderer().render(view(items))
    assert "<script>alert" not in rendered.html and "<img src=x" not in rendered.html
    assert "<svg" not in rendered.html
    assert "&lt;script&gt;alert" in rendered.html and "onerror=&#34;alert(1)&#34;" in rendered.html
    assert "$a&lt;b$" in rendered.html and "Ann O&#39;Neil" in rendered.html
    assert "<script>alert('x')</script> Quantization" in rendered.text
    assert "\r" not in rendered.subject and "\n" not in rendered.subject
    raw = message_bytes(rendered, headers())
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Bcc"] is None
    assert "\x00" not in rendered.text and "\x07" not in rendered.text
    assert "\x00" not in rendered.html


HOSTILE = hostile_items()


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(
        [
            "Alice Example",
            "Zoë Müller",
            "Dr. Who",
            "O'Brien, Pat",
            "Bob",
            "",
            "Ann\rLee",
            "Ann\r\nLee",
        ]
    )
    | st.text(max_size=40),
    subject_from_hostile=st.booleans(),
    unsubscribe=st.sampled_from([(), headers().unsubscribe, headers().unsubscribe[1:]]),
    list_id=st.sampled_from(["", "Paper digest <digest.example.org>"]),
)
def test_written_messages_are_the_email_packages(
    name: str, subject_from_hostile: bool, unsubscribe: tuple[str, ...], list_id: str
) -> None:
    """`message_bytes` writes plain headers itself and leaves the rest to the email package:
    byte for byte what `to_message(...).as_bytes()` gives, boundary aside."""
    items = HOSTILE if subject_from_hostile else GOLDEN_ITEMS
    rendered = RENDERER.render(view(items, name=name))
    to = formataddr((header_safe(name), "alice@example.org"))
    envelope = replace(headers(), to=to, unsubscribe=unsubscribe, list_id=list_id)
    assert normalised(message_bytes(rendered, envelope)) == normalised(
        to_message(rendered, envelope).as_bytes()
    )


@given(st.text(alphabet="\r\na=", max_size=30))
def test_every_line_end_becomes_crlf(text: str) -> None:
    """CRLF, a lone CR and a lone LF each end one line, as the email package's generator reads
    them; each becomes CRLF, and nothing else changes."""
    assert crlf(text) == re.sub(r"\r\n|\r|\n", "\r\n", text)


_LINE_TEXT = st.text(alphabet=st.sampled_from("ab =\t.é€\r\n\x00"), max_size=90)
_LINE_TEXT |= st.sampled_from(["", " ", "a" * 75 + " ", "=" * 30, "x" * 200, "\r\r", " \r\n"])
_RUNS = st.lists(_LINE_TEXT.map(lambda t: t + "\n"), min_size=1, max_size=3).map("".join)


@settings(max_examples=300)
@given(
    layout=st.lists(_RUNS, max_size=3),
    pieces=st.lists(st.tuples(_LINE_TEXT, st.integers(0, 3)), max_size=6),
)
@example(layout=["=\n"], pieces=[("", 0), ("\r\r\r", 3)])  # CRs: encoded in one go only
def test_the_layout_encoded_apart_gives_the_whole_encoding(
    layout: list[str], pieces: list[tuple[str, int]]
) -> None:
    """An HTML body encoded with its layout's runs of whole lines encoded once is the body
    encoded in one go: runs at line starts or not, missing, repeated, out of order, between
    text with spaces before line ends, long lines, CRs, or none."""
    body = "".join(text + (layout[k] if k < len(layout) else "") for text, k in pieces)
    assert _quoted_printable_crlf(body, tuple(layout)) == crlf(_quoted_printable_body(body))


def test_a_digest_encodes_most_of_its_layout_once() -> None:
    """The runs kept from the compiled layout are found at line starts of a rendered digest
    and make most of its HTML."""
    rendered = RENDERER.render(view(GOLDEN_ITEMS))
    found = [run for run in rendered.layout if ("\n" + run) in rendered.html]
    assert sum(map(len, found)) > len(rendered.html) / 2


_PLAIN_WORDS = st.text(alphabet=st.sampled_from("aZ09:()\"'=?_.,-<>@"), min_size=1, max_size=12)
_ODD_WORDS = st.text(
    alphabet=st.sampled_from("ab…é€“”漢\xa0\u2009=?_()\"'.:"), min_size=1, max_size=12
)


@settings(max_examples=300)
@given(
    head=st.lists(_PLAIN_WORDS, max_size=25)
    | st.integers(0, 1000).map(lambda n: ["x" * n])
    | st.integers(150, 250).map(lambda n: ["word"] * n),  # folded past 998 characters
    tail=st.lists(
        _PLAIN_WORDS | _ODD_WORDS | st.sampled_from(["=?utf-8?q?=E2=80=A6?=", "é=?", "…" * 400]),
        min_size=1,
        max_size=3,
    ),
)
def test_subjects_are_written_as_the_email_package_writes_them(
    head: list[str], tail: list[str]
) -> None:
    """Subjects of plain words then words that are not (a title cut with "…": its last word is
    encoded apart from the plain words before it), of any length: byte for byte the message
    `to_message(...).as_bytes()` gives, boundary aside."""
    rendered = replace(
        RENDERER.render(view(GOLDEN_ITEMS)), subject=header_safe(" ".join(head + tail))
    )
    assert normalised(message_bytes(rendered, headers())) == normalised(
        to_message(rendered, headers()).as_bytes()
    )


def test_html_stays_under_gmail_clipping_at_30_papers() -> None:
    """30 papers with every field make well under 100 KB of HTML."""
    papers, _ = parse_page(fixture_bytes("hf/2025-10-03.json"))
    ranked = rank(Space(papers), papers, Profile(keywords=("model",), max_items=30))
    items = tuple(item_of(r) for r in ranked[:30])
    assert len(items) == 30
    html = Renderer().render(view(items)).html
    assert len(html.encode()) < 100_000


def test_feeds_are_valid_stable_and_escaped(tmp_path: Path) -> None:
    """feedparser reads the feed with bozo 0; rebuilding with nothing new leaves the bytes alone."""
    items = hostile_items()
    entries = [
        FeedEntry(
            guid=i.id,
            title=i.title,
            link=i.url,
            description=f"{i.summary} Why: {i.why}",
            published=datetime(2026, 8, 10 + n % 3, 7, tzinfo=UTC),
        )
        for n, i in enumerate(items)
    ]

    def build(es: list[FeedEntry]) -> bytes:
        return build_feed(
            title="Alice's papers",
            description="d",
            self_url="https://d.org/alice.xml",
            site_url="https://d.org/",
            entries=es,
        )

    first = build(entries)
    parsed = feedparser.parse(first)
    assert parsed.bozo == 0
    assert [e.id for e in parsed.entries] == [
        e.guid for e in sorted(entries, key=lambda e: (-e.published.timestamp(), e.guid))
    ]
    assert all(
        "<script" not in e.description and "<img" not in e.description for e in parsed.entries
    )
    assert parsed.entries[0].published.endswith("+0000")
    path = tmp_path / "public" / "alice.xml"
    assert write_feed(path, first) is True
    stamp = path.stat().st_mtime_ns
    assert write_feed(path, build(list(reversed(entries)))) is False  # same entries, any order
    assert path.stat().st_mtime_ns == stamp and path.read_bytes() == first


def test_a_feed_replaced_again_reuses_its_files(tmp_path: Path) -> None:
    """From the second replacement on, a version is written into the hidden spare, which then
    takes the feed's name while the feed's file becomes the spare: no file is created or freed.
    Every version lands whole, readable as any new file, and a link left by a run that stopped
    midway is cleared."""
    path = tmp_path / "public" / "alice.xml"
    spare = path.with_name(".alice.xml.spare")
    versions = [f"<rss>{n}</rss>".encode() * (n + 1) for n in range(5)]
    assert write_feed(path, versions[0]) and not spare.exists()
    assert write_feed(path, versions[1])
    assert spare.read_bytes() == versions[0]
    for version in versions[2:]:
        was_spare, was_feed = spare.open("rb"), path.open("rb")  # open: their inodes stay theirs
        with was_spare, was_feed:
            assert write_feed(path, version)
            assert path.read_bytes() == version == was_spare.read()  # written into the spare
            assert path.stat().st_ino == os.fstat(was_spare.fileno()).st_ino
            assert spare.stat().st_ino == os.fstat(was_feed.fileno()).st_ino
    assert sorted(p.name for p in path.parent.iterdir()) == [".alice.xml.spare", "alice.xml"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # as open() makes files
    os.link(path, path.with_name(".alice.xml.old"))  # stopped between the renames
    assert write_feed(path, versions[0]) and path.read_bytes() == versions[0]
    assert sorted(p.name for p in path.parent.iterdir()) == [".alice.xml.spare", "alice.xml"]


def test_custom_templates_folder(tmp_path: Path) -> None:
    """A templates folder of the reader's own replaces the packaged one; a broken one is named."""
    folder = tmp_path / "t"
    shutil.copytree(ROOT / "templates", folder)
    (folder / "subject.txt").write_text("Custom: {{ count }}\n")
    assert Renderer(folder).render(view(())).subject == "Custom: 0"
    (folder / "digest.txt").write_text("{% for x in %}")
    with pytest.raises(ConfigError, match=r"digest\.txt:1: template error"):
        Renderer(folder)


@pytest.mark.parametrize(("width", "dark"), [(375, False), (1200, False), (375, True)])
def test_screenshots_fit_the_screen(tmp_path: Path, width: int, dark: bool) -> None:
    """Real Chromium renders the digest at phone and desktop widths: no horizontal scroll, every
    title visible. The PNGs are kept in docs/ (DIGEST_REGENERATE=1 refreshes them)."""
    items = hf_items(
        ("video generation", "diffusion", "reinforcement learning", "agents"), max_items=12
    )
    html = Renderer().render(view(items + hostile_items()[-2:])).html
    facts = layout(html, width)
    assert facts["scrollWidth"] <= facts["viewport"], facts
    assert len(facts["titles"]) == len(items) + 2
    assert all(t["visible"] for t in facts["titles"]), facts["titles"]
    page = tmp_path / "digest.html"
    page.write_text(html, encoding="utf-8")
    png = tmp_path / f"digest-{width}{'-dark' if dark else ''}.png"
    screenshot(page, png, width, dark=dark)
    assert png.stat().st_size > 10_000
    if REGENERATE:
        shutil.copy(png, ROOT / "docs" / png.name)


def test_preview_writes_html_and_records_nothing(cli, tmp_path: Path) -> None:
    """`digest preview` writes the reader's HTML; no outbox, no secret, the database unchanged."""
    shutil.copytree(ROOT / "subscribers", tmp_path / "subscribers")
    shutil.copy(FIXTURES / "listings" / "trending-1.txt", tmp_path / "t1.txt")
    (tmp_path / "config.yaml").write_text(
        "sources: [{name: t1, type: listing, path: t1.txt}]\nfeeds: {site_url: 'https://d.example.org/'}\n"
    )
    now = "2026-08-10T07:00:00+00:00"
    assert cli("fetch", "--now", now).exit_code == 0
    db = tmp_path / "state" / "digest.sqlite3"
    before = db.read_bytes()
    result = cli("preview", "alice", "--now", now, "--output", "alice.html")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "alice.html").read_text()
    assert "Quantization" in html and "subscribers/alice.yaml" in html
    assert "https://d.example.org/unsubscribe?token=" in html
    assert db.read_bytes() == before
    assert not (tmp_path / "outbox").exists()
    assert not list((tmp_path / "state").glob("*.secret"))
    assert (
        cli("preview", "alice", "--now", now, "--output", "-")
        .output.lstrip()
        .startswith("<!doctype html>")
    )
