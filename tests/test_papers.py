"""Identity and merging of papers: canonical ids, title keys, and merge's invariants."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st
from strategies import papers

from digest.papers import (
    arxiv_id_of,
    canonical_id,
    clean_text,
    dedupe,
    doi_of,
    merge,
    normalise_title,
    normalise_url,
    title_key,
)
from digest.types import Paper


def test_arxiv_ids_lose_their_version_wherever_they_come_from() -> None:
    """oai: ids, abs/pdf links and HF paper pages all give the version-less arXiv id."""
    assert arxiv_id_of("oai:arXiv.org:2404.01234v2") == "2404.01234"
    assert arxiv_id_of("https://arxiv.org/abs/2404.01234v3") == "2404.01234"
    assert arxiv_id_of("http://arxiv.org/pdf/2404.01234v1.pdf") == "2404.01234"
    assert arxiv_id_of("https://huggingface.co/papers/2508.13167") == "2508.13167"
    assert arxiv_id_of("oai:arXiv.org:hep-th/9901001v1") == "hep-th/9901001"
    assert arxiv_id_of("https://example.org/papers/2404.01234") is None
    assert arxiv_id_of("tag:www.producthunt.com,2005:Post/1191340") is None


def test_canonical_id_prefers_arxiv_then_doi_then_url_then_title() -> None:
    """The strongest id a paper has becomes its key."""
    t = "A Title"
    assert (
        canonical_id(arxiv_id="2404.01234", doi="10.1/x", url="https://a.org", title=t)
        == "2404.01234"
    )
    assert canonical_id(doi="10.1/x", url="https://a.org", title=t) == "doi:10.1/x"
    assert canonical_id(url="http://www.A.org/p/?utm_source=x", title=t) == "url:https://a.org/p"
    assert canonical_id(title=t) == f"title:{title_key(t)}"
    assert doi_of("https://doi.org/10.1234/ABC.5") == "10.1234/abc.5"


def test_titles_meet_across_case_punctuation_and_spacing() -> None:
    """Two renderings of one title share a key; different titles do not."""
    assert normalise_title("  LoRA:  Low-Rank\nAdaptation ") == "lora low rank adaptation"
    assert title_key("LoRA: Low-Rank Adaptation") == title_key("lora low rank  adaptation")
    assert title_key("LoRA") != title_key("QLoRA")
    assert normalise_url("HTTPS://Example.org:443/a/") == "https://example.org/a"


def test_merge_keeps_the_best_of_each_copy() -> None:
    """A snapshot copy and an HF copy merge into the arXiv id, the longer abstract, the max upvotes."""
    snap = Paper(id=canonical_id(title="T"), title="T", abstract="cut short...")
    hf = Paper(
        id="2401.00001",
        title="T",
        abstract="cut short and then the rest.",
        arxiv_id="2401.00001",
        url="https://huggingface.co/papers/2401.00001",
        upvotes=3,
        ai_keywords=("x",),
    )
    merged = merge(snap, hf)
    assert merged.id == "2401.00001" and merged.arxiv_id == "2401.00001"
    assert merged.abstract == "cut short and then the rest."
    assert merged.url == "https://huggingface.co/papers/2401.00001"
    assert merge(merged, Paper(id="2401.00001", title="T", upvotes=1)).upvotes == 3


@given(papers(), papers())
def test_merge_is_idempotent(a: Paper, b: Paper) -> None:
    """Merging the same copy again changes nothing."""
    once = merge(a, b)
    assert merge(once, b) == once
    assert merge(once, once) == once


@given(papers())
def test_dedupe_merges_copies_of_one_paper(p: Paper) -> None:
    """A batch holding one paper twice (e.g. two listing days) becomes one paper."""
    assert dedupe([p, p]) == [p]


@given(
    st.text(alphabet=st.characters(codec=None), max_size=60)
    | st.sampled_from(
        ["a\u00adb", "x\x00y\u2028z", "tab\there\n", "non\u00a0breaking", "\u200bzero", " "]
    )
)
def test_clean_text_is_control_characters_out_then_spaces_folded(text: str) -> None:
    """The fast path (fold, then look at characters only when some are not printable) gives
    what the definition gives: every Cc, Cf, Zl, Zp character a space, white space folded."""
    spaced = "".join(
        " " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text
    )
    assert clean_text(text) == " ".join(spaced.split())
