"""hypothesis strategies for papers, shared by the property tests."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from digest.papers import canonical_id
from digest.types import Paper

words = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N")), min_size=1, max_size=8
)
titles = st.lists(words, min_size=1, max_size=6).map(" ".join)
texts = st.lists(words, max_size=20).map(" ".join)
names = st.lists(words, min_size=1, max_size=3).map(" ".join)
arxiv_ids = st.builds(
    lambda a, b: f"{a:04d}.{b:05d}", st.integers(1000, 2699), st.integers(0, 99999)
)


@st.composite
def papers(draw: st.DrawFn, title: st.SearchStrategy[str] = titles) -> Paper:
    t = draw(title)
    arxiv_id = draw(st.none() | arxiv_ids)
    url = draw(
        st.none() | st.sampled_from(["https://example.org/a", "https://blog.example.org/b/"])
    )
    return Paper(
        id=canonical_id(arxiv_id=arxiv_id, url=url, title=t),
        title=t,
        abstract=draw(texts),
        url=url or "",
        arxiv_id=arxiv_id,
        authors=tuple(draw(st.lists(names, max_size=4))),
        published=draw(st.none() | st.just(datetime(2026, 5, 1, tzinfo=UTC))),
        upvotes=draw(st.none() | st.integers(0, 500)),
        github_stars=draw(st.none() | st.integers(0, 50_000)),
        ai_summary=draw(st.none() | texts.filter(bool)),
        ai_keywords=tuple(draw(st.lists(words, max_size=4, unique=True))),
        categories=tuple(draw(st.lists(st.sampled_from(["cs.LG", "cs.CL", "cs.AI"]), unique=True))),
    )


# a few shared titles so that batches contain the same paper from different sources
batch_titles = (
    st.sampled_from(["Attention Is All You Need", "LoRA: Low-Rank Adaptation", "Q"]) | titles
)
batches = st.lists(papers(batch_titles), max_size=12)
