"""Parsing each source type from real captured responses: every era, every flavour, bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from conftest import fixture_bytes

from digest.errors import ParseError
from digest.sources.feed import parse_feed, split_authors
from digest.sources.hf_daily import listing_days, parse_page
from digest.sources.listing import parse_listing


@pytest.mark.parametrize(
    "day", ["2024-05-27", "2024-06-13", "2025-03-17", "2025-05-22", "2025-10-03", "2026-06-03"]
)
def test_hf_days_of_every_era_parse(day: str) -> None:
    """Each era of the HF response shape gives papers with arXiv ids, titles, abstracts, authors."""
    papers, problems = parse_page(fixture_bytes(f"hf/{day}.json"))
    assert problems == []
    assert papers and all(p.arxiv_id and p.id == p.arxiv_id for p in papers)
    assert all(p.title and p.abstract and p.authors for p in papers)
    assert all(p.url == f"https://huggingface.co/papers/{p.id}" for p in papers)
    assert all(p.upvotes is not None for p in papers)


def test_hf_keeps_the_fields_later_eras_added() -> None:
    """ai_summary, ai_keywords, github repo and stars, project page and organization are kept."""
    papers, _ = parse_page(fixture_bytes("hf/2025-10-03.json"))
    first = papers[0]
    assert first.id == "2510.02283"
    assert first.github_repo == "https://github.com/justincui03/Self-Forcing-Plus-Plus"
    assert first.github_stars == 1
    assert first.project_page == "https://self-forcing-plus-plus.github.io/"
    assert first.organization == "ByteDance Seed"
    assert "diffusion models" in first.ai_keywords
    assert first.ai_summary and first.ai_summary.startswith("A method is proposed")
    assert first.authors[0] == "Justin Cui"
    assert any(p.ai_summary for p in papers) and any(p.github_stars for p in papers)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("hf/malformed_repr_strings.json", "array of str"),
        ("hf/malformed_wrapped.json", "got an object (status, date, count, data)"),
    ],
)
def test_hf_malformed_archives_are_clear_errors(name: str, message: str) -> None:
    """Files an archiver wrote wrongly fail with a message saying what is wrong."""
    with pytest.raises(ParseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_page(fixture_bytes(name))


def test_hf_html_error_page_is_named() -> None:
    """An HTML page where JSON was expected says so."""
    with pytest.raises(ParseError, match="not JSON \\(an HTML page\\)"):
        parse_page(b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>")


def test_hf_bad_items_are_counted_not_fatal() -> None:
    """An item without id or title is one problem; its neighbours are kept."""
    papers, problems = parse_page(
        b'[{"paper": {"id": "2401.00001", "title": "A"}}, {"paper": {}}, 3]'
    )
    assert [p.id for p in papers] == ["2401.00001"]
    assert problems == ["item 1: paper without id or title", "item 2: a int, not an object"]


def test_listing_days_are_the_last_weekdays() -> None:
    """lookback_days counts listing days (weekdays) back from now's UTC date."""
    monday = datetime(2026, 8, 10, 7, 0, tzinfo=UTC)
    assert listing_days(monday, 2) == [date(2026, 8, 7), date(2026, 8, 10)]
    assert listing_days(datetime(2026, 8, 9, 23, 0, tzinfo=UTC), 1) == [date(2026, 8, 7)]


def test_arxiv_rss_and_atom_listings() -> None:
    """arXiv feeds give version-less ids, split authors, clean abstracts and categories."""
    rss = parse_feed(fixture_bytes("arxiv/rss_cs.AI_2026-04-27_trimmed3_distill.xml"))
    atom = parse_feed(
        fixture_bytes("arxiv/atom_listing_cs.AI_2025-08-20_trimmed7_zotero-arxiv-daily.xml")
    )
    assert len(rss.papers) == 3 and len(atom.papers) == 7
    first = rss.papers[0]
    assert first.id == "2604.21935" and first.url == "https://arxiv.org/abs/2604.21935"
    assert first.authors == ("Michael Cooper", "Samuel Cooper")
    assert first.abstract.startswith("Although language models")
    assert first.categories == ("cs.AI", "cs.LG")
    assert first.published == datetime(2026, 4, 27, 4, 0, tzinfo=UTC)
    assert all(not p.abstract.startswith("arXiv:") for p in atom.papers)


def test_arxiv_replacements_are_updates_and_titleless_entries_problems() -> None:
    """replace-cross becomes an update, an entry without a title a problem, a DOI is kept."""
    batch = parse_feed(fixture_bytes("arxiv/SYNTHETIC_rss_cs.CL_spec-based_all-news-ai.xml"))
    assert [p.id for p in batch.papers] == ["2607.11111", "2607.22222", "2607.33333"]
    assert [p.id for p in batch.updates] == ["2203.01250"]
    assert batch.problems == ("entry 5: no title",)
    assert batch.papers[1].doi == "10.1234/example.2607.22222"
    assert batch.papers[2].abstract == "Abstract only, no arXiv prefix and no announce type at all."


def test_authors_with_commas_in_affiliations() -> None:
    """dc:creator commas inside parentheses do not split a name."""
    assert split_authors("A. One (MIT, USA), B. Two,  C. Three") == (
        "A. One (MIT, USA)",
        "B. Two",
        "C. Three",
    )


def test_weekend_feed_is_empty_not_an_error() -> None:
    """arXiv's weekend feed has a channel and no items: zero papers."""
    batch = parse_feed(fixture_bytes("arxiv/rss_cs.CL_weekend_empty_2026-08-01_all-news-ai.xml"))
    assert batch.papers == () and batch.problems == ()


def test_truncated_feed_fails_whole_with_its_position() -> None:
    """A cut-off download is not well-formed XML: the source fails, naming line and column."""
    with pytest.raises(
        ParseError, match=r"malformed feed at line \d+, column \d+: no element found"
    ):
        parse_feed(fixture_bytes("arxiv/atom_cs.AI_TRUNCATED_malformed.xml"))


@pytest.mark.parametrize(
    "body",
    [b"<!DOCTYPE html><html><head><title>Error</title></head><body><p>oops</body></html>", b"{}"],
)
def test_non_feeds_are_refused(body: bytes) -> None:
    """An HTML error page or JSON is not a feed."""
    with pytest.raises(ParseError):
        parse_feed(body)


def test_generic_feeds() -> None:
    """Blog RSS and Atom with tag: ids give URL-keyed items; an HF-papers feed gives arXiv ids."""
    blog = parse_feed(fixture_bytes("feeds/rss_bair_blog_distill.xml"))
    assert blog.papers[0].id == "url:https://bair.berkeley.edu/blog/2026/04/20/grasp"
    assert "<" not in blog.papers[0].abstract
    reddit = parse_feed(
        fixture_bytes("feeds/atom_reddit_LocalLLaMA_top_2026-07-13_ai-weekly-radar.xml")
    )
    assert len(reddit.papers) == 25 and reddit.papers[0].authors == ("/u/entsnack",)
    hf = parse_feed(fixture_bytes("feeds/rss_hf_daily_papers_feedgen_2026-04-30_brevio-ai.xml"))
    assert hf.papers[0].id == "2604.21003"


def test_listing_snapshot() -> None:
    """A snapshot gives title + abstract pairs keyed by title, header skipped."""
    batch = parse_listing(fixture_bytes("listings/trending-1.txt").decode())
    assert len(batch.papers) == 72 and batch.problems == ()
    first = batch.papers[0]
    assert (
        first.title == "Multi-Task Zero-Shot Action Recognition with Prioritised Data Augmentation"
    )
    assert first.id.startswith("title:") and first.abstract.startswith("Zero-Shot Learning (ZSL)")


def test_listing_with_dangling_titles() -> None:
    """A title without its abstract, mid-file or at the end, is one problem; the rest is kept."""
    paragraphs = fixture_bytes("listings/trending-1.txt").decode().split("\n\n")
    broken = "\n\n".join(paragraphs[:12] + paragraphs[13:-1])  # two abstracts removed
    batch = parse_listing(broken)
    assert len(batch.papers) == 70
    assert len(batch.problems) == 2
    assert all("title without an abstract" in p for p in batch.problems)
    assert batch.problems[0].startswith("line 23:")


def test_not_a_listing() -> None:
    """Text with no day line, or an HTML page, is not a snapshot."""
    with pytest.raises(ParseError, match="no day line"):
        parse_listing("hello\n\nworld\n")
    with pytest.raises(ParseError, match="HTML page"):
        parse_listing("<html><body>404</body></html>")
