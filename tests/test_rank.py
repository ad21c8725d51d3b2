"""Ranking: concepts meet across word forms, inclusion is absolute, reasons say why; bad input is safe."""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.papers import canonical_id
from digest.rank import (
    ABSTRACT_DECAY,
    KEYWORD_EVIDENCE,
    PHRASE_WORDS_EVIDENCE,
    PHRASE_WORDS_SHARE,
    TITLE_EVIDENCE,
    Profile,
    Space,
    _combine,
    _median,
    _plus,
    _Rows,
    _sum_rows,
    _unit,
    _Vec,
    concept,
    rank,
    rank_many,
)
from digest.types import Paper

ROOT = Path(__file__).parent.parent
FILLER = (
    "We study neural networks on standard benchmarks and report results on image classification, "
    "language modelling and reinforcement learning tasks with careful ablations."
)


def paper(title: str, abstract: str = FILLER, **kw: object) -> Paper:
    return Paper(id=canonical_id(title=title), title=title, abstract=abstract, **kw)  # type: ignore[arg-type]


CORPUS = [
    paper("Quantized Transformers at Scale", "We quantise weights to 4 bits. " + FILLER),
    paper(
        "On Quantizing Activations",
        "Quantizing activations of LLMs is hard. Quantization helps. " + FILLER,
    ),
    paper(
        "Learning a Reward Model from Human Preferences",
        "A reward model trained on preferences. " + FILLER,
    ),
    paper(
        "Reward Shaping for Robots",
        "We shape the reward of a robot; the model of the world is learned. " + FILLER,
    ),
    paper(
        "Speech Quantization for Keyword Spotting",
        "Quantization of speech models for speech recognition. " + FILLER,
    ),
    paper("Graph Neural Networks for Molecules", FILLER),
    paper("A Survey of Vision Transformers", FILLER),
    paper("Efficient Attention Kernels", FILLER),
]


def ranked_ids(profile: Profile, corpus: list[Paper] = CORPUS) -> list[tuple[str, bool]]:
    return [(r.paper.title, r.included) for r in rank(Space(corpus), corpus, profile)]


def included(profile: Profile, corpus: list[Paper] = CORPUS) -> list[str]:
    return [t for t, inc in ranked_ids(profile, corpus) if inc]


def test_word_forms_meet() -> None:
    """ "quantization" finds quantized, quantizing, quantise; British and American spellings meet."""
    got = included(Profile(keywords=("quantisation",)))
    assert "Quantized Transformers at Scale" in got and "On Quantizing Activations" in got


def test_a_phrase_is_one_concept() -> None:
    """ "reward model" matches the phrase, not a paper that has "reward" and "model" apart."""
    got = included(Profile(keywords=("reward model",)))
    assert got == ["Learning a Reward Model from Human Preferences"]


def test_exclude_removes_papers_about_it() -> None:
    """A paper about an excluded topic never appears, however well it matches."""
    got = included(Profile(keywords=("quantization",), exclude=("speech",)))
    assert "Speech Quantization for Keyword Spotting" not in got and got
    assert "Speech Quantization for Keyword Spotting" in included(
        Profile(keywords=("quantization",))
    )


def test_nothing_fits_means_no_digest() -> None:
    """Keywords that match nothing include nothing; empty keywords too; no crash."""
    assert included(Profile(keywords=("protein folding",))) == []
    assert included(Profile(keywords=())) == []
    assert included(Profile(keywords=("   ", "!!"))) == []


def test_max_items_caps_a_rich_day() -> None:
    """On a day where many papers fit, the digest holds max_items of them, best first."""
    corpus = [
        paper(f"Quantization Trick Number {i}", f"Quantization method {i}. " + FILLER)
        for i in range(12)
    ]
    corpus += CORPUS
    got = included(Profile(keywords=("quantization",), max_items=5), corpus)
    assert len(got) == 5


def test_trending_reorders_but_never_includes() -> None:
    """Upvotes move an included paper up; a hugely upvoted off-topic paper stays out."""
    hot = Paper(
        id="url:https://a.org/hot",
        title="Efficient Attention Kernels",
        abstract=FILLER,
        upvotes=5000,
        github_stars=90000,
    )
    warm = Paper(id="zzz", title=CORPUS[0].title, abstract=CORPUS[0].abstract, upvotes=300)
    corpus = [*CORPUS, hot, warm]
    result = rank(Space(corpus), corpus, Profile(keywords=("quantization",)))
    ids = [r.paper.id for r in result if r.included]
    assert hot.id not in ids
    assert ids.index("zzz") < ids.index(CORPUS[0].id)  # same text; "zzz" would sort last on a tie


def test_followed_author_and_reasons() -> None:
    """A followed author's paper is included with the author as the reason; keywords are reasons."""
    by_her = paper("Graph Networks Again", FILLER, authors=("Ada Lovelace", "B. Author"))
    corpus = [*CORPUS, by_her]
    result = {
        r.paper.title: r
        for r in rank(
            Space(corpus), corpus, Profile(keywords=("reward model",), authors=("ada lovelace",))
        )
    }
    assert result["Graph Networks Again"].included
    assert result["Graph Networks Again"].matched == ("author: Ada Lovelace",)
    assert result["Learning a Reward Model from Human Preferences"].matched == ("reward model",)


def test_liked_papers_join_the_profile() -> None:
    """A liked paper's vocabulary lifts similar papers in the order."""
    corpus = [
        *CORPUS,
        paper(
            "Molecular Graph Transformers",
            "Graph neural networks for molecules and proteins. " + FILLER,
        ),
    ]
    liked = Profile(keywords=("proteins",), liked=(CORPUS[5].id,))
    order = [r.paper.title for r in rank(Space(corpus), corpus, liked)]
    assert order.index("Graph Neural Networks for Molecules") < order.index(
        "A Survey of Vision Transformers"
    )


def test_awkward_papers_do_not_crash() -> None:
    """One paper, no abstract, LaTeX, non-English and right-to-left titles rank without errors."""
    odd = [
        paper("$\\mathcal{O}(n)$ Quantization with $a<b$", ""),
        paper("量子化されたニューラルネットワーク", ""),
        paper("تكميم الشبكات العصبية", "نحن ندرس التكميم"),
        paper("Ünïcödé Quantisierung", "Über die Quantisierung."),
    ]
    for corpus in ([odd[0]], odd):
        result = rank(Space(corpus), corpus, Profile(keywords=("quantization",)))
        assert len(result) == len(corpus)
        assert all(r.score == r.score for r in result)  # no NaN
    assert rank(Space([]), [], Profile(keywords=("x",))) == []


@settings(max_examples=30, deadline=None)
@given(st.permutations(CORPUS), st.integers(1, 4))
def test_ranking_is_a_deterministic_capped_permutation(order: list[Paper], cap: int) -> None:
    """Any order of the same candidates gives the same ranking: a permutation, at most max_items included."""
    profile = Profile(keywords=("quantization", "reward model"), max_items=cap)
    a = rank(Space(CORPUS), order, profile)
    b = rank(Space(CORPUS), list(reversed(order)), profile)
    assert a == b
    assert sorted(r.paper.id for r in a) == sorted(p.id for p in CORPUS)
    assert sum(r.included for r in a) <= cap


def test_quality_floor_on_the_bundled_listings() -> None:
    """On the real listings and judgments, nDCG@10 and digest F1 stay above plain TF-IDF's."""
    sys.path.insert(0, str(ROOT / "bench"))
    from ranking_quality import measure

    ours, plain = measure(max_items=10)["per listing (3 days)"]
    assert ours["ndcg"] >= plain["ndcg"] and ours["f1"] >= plain["f1"]
    assert ours["ndcg"] >= 0.9 and ours["f1"] >= 0.85


def test_rank_command_json(cli, tmp_path: Path) -> None:
    """`digest rank alice --json` prints the contract's fields; included papers have reasons."""
    shutil.copytree(ROOT / "subscribers", tmp_path / "subscribers")
    shutil.copy(FIXTURES / "listings" / "trending-1.txt", tmp_path / "t1.txt")
    (tmp_path / "config.yaml").write_text("sources: [{name: t1, type: listing, path: t1.txt}]\n")
    now = "2026-08-10T07:00:00+00:00"
    assert cli("fetch", "--now", now).exit_code == 0
    result = cli("rank", "alice", "--now", now, "--json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert len(items) == 72
    for item in items:
        assert {"id", "title", "url", "score", "included", "reasons"} <= item.keys()
        assert isinstance(item["score"], float) and item["url"].startswith("https://")
    picked = [i for i in items if i["included"]]
    assert picked and all(i["reasons"] for i in picked)
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    text = cli("rank", "alice", "--now", now)
    assert text.exit_code == 0 and "in the next digest" in text.output and "matched:" in text.output
    # a week later the window holds nothing: no digest
    later = cli("rank", "alice", "--now", "2026-08-20T07:00:00+00:00", "--json")
    assert json.loads(later.stdout) == []


def test_rank_unknown_subscriber_and_check_warnings(cli, tmp_path: Path) -> None:
    """An unknown subscriber is a usage error; `check` warns of keywords matching no stored paper."""
    (tmp_path / "subscribers").mkdir()
    (tmp_path / "subscribers" / "zoe.yaml").write_text(
        'name: Zoe\nemail: zoe@example.org\nkeywords: [quantization, "flow matching"]\n'
    )
    shutil.copy(FIXTURES / "listings" / "trending-1.txt", tmp_path / "t1.txt")
    (tmp_path / "config.yaml").write_text("sources: [{name: t1, type: listing, path: t1.txt}]\n")
    assert cli("rank", "nobody").exit_code == 2
    assert cli("fetch").exit_code == 0
    result = cli("check")
    assert result.exit_code == 0
    assert (
        "subscribers/zoe.yaml: keywords: 'flow matching' matches none of the 72 papers ranked "
        "against (first seen in the 90 days up to the last fetch)" in result.stderr
    )
    assert "'quantization'" not in result.stderr


WITH_AUTHOR = [*CORPUS, paper("Graph Networks Again", FILLER, authors=("Ada Lovelace",))]
SPACE = Space(WITH_AUTHOR)


@settings(max_examples=60)
@given(
    keywords=st.lists(
        st.sampled_from(["quantization", "reward model", "speech", "nothing of the sort", "zz"]),
        max_size=3,
    ),
    threshold=st.sampled_from([0.0, 0.5, 0.9]),
    authors=st.sampled_from([(), ("ada lovelace",), ("nobody at all",)]),
    max_items=st.integers(1, 10),
)
def test_included_only_is_the_digest(
    keywords: list[str], threshold: float, authors: tuple[str, ...], max_items: int
) -> None:
    """rank(..., included_only=True), used by `digest run`, gives exactly the included papers:
    for keywords no paper carries too (with a threshold of 0, every paper can be included), and
    with followed authors."""
    profile = Profile(
        keywords=tuple(keywords), authors=authors, threshold=threshold, max_items=max_items
    )
    everything = rank(SPACE, WITH_AUTHOR, profile)
    assert rank(SPACE, WITH_AUTHOR, profile, included_only=True) == [
        r for r in everything if r.included
    ]


@pytest.mark.parametrize("stage", [1, 3, 256])
def test_many_readers_at_once_rank_as_each_alone(
    stage: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rank_many (used by `digest run`) gives each reader what rank gives them alone, with the
    papers they already have left out, however many readers it works out at once."""
    monkeypatch.setattr("digest.rank.STAGE", stage)
    profiles = [
        Profile(keywords=("quantization",)),
        Profile(keywords=("reward model",), authors=("ada lovelace",)),
        Profile(keywords=("quantization", "speech"), exclude=("transformer",), max_items=2),
        Profile(keywords=("nothing of the sort",)),
        Profile(keywords=("quantization",), max_items=1),
    ]
    taken = [set(), {CORPUS[2].id}, {CORPUS[0].id, CORPUS[4].id}, set(), set()]
    space = Space(CORPUS)
    for included_only in (False, True):
        together = list(
            rank_many(space, CORPUS, profiles, taken=taken, included_only=included_only)
        )
        alone = [
            rank(
                Space(CORPUS),
                [p for p in CORPUS if p.id not in have],
                profile,
                included_only=included_only,
            )
            for profile, have in zip(profiles, taken, strict=True)
        ]
        assert together == alone
    assert any(together) and not together[3]
    assert len([r for r in together[4] if r.included]) == 1 < len(together[0])


def test_sparse_helpers_agree_with_scipy() -> None:
    """The products over stored entries give what scipy's sparse products give."""
    space = Space(CORPUS)
    n_terms = space.matrix.shape[1]
    rng = np.random.default_rng(1)
    rows = np.array([4, 0, 2, 2, 7])
    cols = np.sort(rng.choice(n_terms, size=n_terms // 3, replace=False))
    v = _Vec(cols, rng.random(len(cols)).astype(np.float32))
    v_csr = sp.csr_matrix((v.vals, v.cols, [0, len(cols)]), shape=(1, n_terms))
    m = space.matrix[rows]
    picked = _Rows.of(space.matrix, rows)  # scipy's C loop, called directly
    for mine, scipys in zip(picked, (m.indptr, m.indices, m.data), strict=True):
        assert np.array_equal(mine, scipys) and mine.dtype == scipys.dtype
    assert all(len(a) == 0 for a in _Rows.of(space.matrix, rows[:0])[1:])
    dense = rng.random(n_terms)
    assert np.array_equal(picked.times(dense), m @ dense)  # the same products, to the bit
    assert np.array_equal(picked.tail(2).times(dense), m[2:] @ dense)
    products, at = space.dots(picked, v, m.indices)
    assert np.allclose(products, (m @ v_csr.T).toarray().ravel(), atol=1e-6) and products.any()
    assert np.array_equal(at, v_csr.toarray().ravel()[m.indices])
    assert m.nnz * 256 >= n_terms
    total = _sum_rows(m)  # summed in a dense array
    wide = sp.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], 10**9))
    by_sorting = _sum_rows(wide)  # few entries for so many terms: by sorting
    assert np.array_equal(total.cols, by_sorting.cols)
    assert np.array_equal(total.vals, by_sorting.vals)
    assert np.allclose(
        sp.csr_matrix((total.vals, total.cols, [0, len(total.cols)]), shape=(1, n_terms)).toarray(),
        np.asarray(m.sum(axis=0)),
        atol=1e-5,
    )
    both = _plus(total, v)
    assert np.allclose(
        sp.csr_matrix((both.vals, both.cols, [0, len(both.cols)]), shape=(1, n_terms)).toarray(),
        np.asarray(m.sum(axis=0)) + v_csr.toarray(),
        atol=1e-5,
    )
    assert np.isclose(np.linalg.norm(_unit(both).vals), 1.0)
    empty = _Vec(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
    assert not any(a.any() for a in space.dots(picked, empty, m.indices))
    assert not space._dense.any()  # the scratch array is left clean
    # the rows summed: a few entries in the run's scratch array, many in a new one
    two = _Rows(np.array([0, 2], dtype=picked.indptr.dtype), picked.indices, picked.data)
    for rows_summed, few in ((two, True), (picked, False)):  # a few entries, then many
        with space.summed(rows_summed) as total:
            end = rows_summed.indptr[-1]
            wanted = np.bincount(picked.indices[:end], picked.data[:end], minlength=n_terms)
            assert np.array_equal(total, wanted) and total.any()  # in entry order: to the bit
            assert (total is space._sums) == few
        assert not space._sums.any()
    with space.summed(picked.tail(2)) as total:  # a view from the third row on
        rest = m[2:]
        assert np.array_equal(total, np.bincount(rest.indices, rest.data, minlength=n_terms))
    with space.marked(m.indices[:3]) as marks:  # the columns marked, for the block
        assert set(np.flatnonzero(marks)) == set(m.indices[:3])
    assert not space._marks.any()


@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=40))
def test_median_is_numpys(values: list[float]) -> None:
    """The median of one partition is numpy's, to the bit, for odd and even counts."""
    a = np.array(values)
    assert _median(a) == float(np.median(a))


def evidence_of_one(space: Space, rows: np.ndarray, text: str) -> np.ndarray:
    """The evidence rule for one keyword, read column by column (dense): the definition the
    batched `Space.evidence` must follow."""
    c = concept(text)
    assert c is not None
    title, abstract, keywords = (
        m[rows].toarray() for m in (space.title, space.abstract, space.keywords)
    )

    def counts(m: np.ndarray, term: str) -> np.ndarray:
        j = int(space.columns([term])[0])
        return m[:, j] if j >= 0 else np.zeros(len(rows), dtype=np.float32)

    def least(m: np.ndarray) -> np.ndarray:
        return np.min([counts(m, k) for k in c.keys], axis=0)

    parts = [
        TITLE_EVIDENCE * (least(title) > 0),
        KEYWORD_EVIDENCE * (least(keywords) > 0),
        1.0 - ABSTRACT_DECAY ** least(abstract),
    ]
    cols = space.columns(c.words)
    weights = np.array([space.idf[j] if j >= 0 else 0.0 for j in cols])
    if len(c.words) > 1 and weights.sum() > 0:
        share = np.column_stack([counts(title, w) > 0 for w in c.words]) @ weights / weights.sum()
        parts.append(PHRASE_WORDS_EVIDENCE * share * (share >= PHRASE_WORDS_SHARE))
    return np.asarray(np.maximum.reduce(parts), dtype=np.float64)


def test_evidence_of_many_keywords_at_once_is_each_ones_evidence() -> None:
    """Evidence worked out for many keywords together (as a run does for all its readers) is
    what the rule gives each alone: single words, phrases, long phrases (all their 3-grams
    must be present), phrases with unknown words, words unknown to the corpus, repeats."""
    space = Space(CORPUS)
    rows = np.array([5, 0, 1, 2, 3, 4, 6, 7])
    texts = [
        "quantization",
        "reward model",
        "learning a reward model from human preferences",
        "reward model from human preferences with quantization",  # the last 3-gram is nowhere
        "human preferences reward",
        "quantized zebra",
        "zebra",
        "quantization",
        "model",
        "neural networks on standard benchmarks",
    ]
    fields = space.fields(rows)
    batched = space.evidence(fields, [concept(t) for t in texts])  # type: ignore[misc]
    found = 0
    for text, (where, values) in zip(texts, batched, strict=True):
        dense = np.zeros(len(rows))
        dense[where] = values
        assert np.allclose(dense, evidence_of_one(space, rows, text), atol=1e-12), text
        assert np.all(values > 0) and np.all(np.diff(where) > 0)
        found += len(where)
    assert found > 10
    assert space.evidence(space.fields(rows[:0]), [concept("model")])[0][0].size == 0  # type: ignore[list-item]


def test_title_holders_are_the_rows_with_every_key_in_the_title() -> None:
    """`in_title` (the columns' rows intersected) is the rows whose title counts every key of
    the keyword, read from the dense title counts."""
    space = Space(CORPUS)
    title = space.title.toarray()
    texts = [
        "quantization",
        "reward model",
        "human preferences reward",
        "zebra",
        "model",
        "learning a reward model from human preferences",  # three 3-grams, all in one title
        "shaping reward model from human preferences",  # the first 3-gram in no title
    ]
    concepts = [concept(text) for text in texts]
    together = Space(CORPUS)  # every concept's rows found in one go, as `rank_many` does
    together.prepare(c for c in concepts if c is not None)
    for text, c in zip(texts, concepts, strict=True):
        assert c is not None
        cols = space.columns(list(c.keys))
        dense = np.flatnonzero(
            np.min([title[:, j] if j >= 0 else np.zeros(len(title)) for j in cols], axis=0) > 0
        )
        assert np.array_equal(space.in_title(c), dense), text
        assert np.array_equal(together.in_title(c), dense), text
    assert len(space.in_title(concept("quantization"))) >= 2  # type: ignore[arg-type]
    assert len(space.in_title(concept("learning a reward model from human preferences"))) == 1  # type: ignore[arg-type]


def test_keyword_vectors_made_together_are_made_alone() -> None:
    """A keyword's unit TF-IDF vector is the same, to the bit, whether it is made alone or
    with many others at once (`Space.prepare`): sublinear counts times idf, over the length."""
    texts = [
        "quantization",
        "reward model",
        "reward model reward",  # a term twice beside another: 1 + log 2 against 1
        "zebra",  # no term the corpus has
        "learning a reward model from human preferences",  # 12 terms
        "zebra reward",
        "reward model",  # again
    ]
    concepts = [c for c in map(concept, texts) if c is not None]
    space = Space(CORPUS)
    together = Space(CORPUS)
    together.prepare(concepts)
    for c in concepts:
        counts = Counter(int(j) for j in space.columns(c.terms) if j >= 0)
        cols = np.array(sorted(counts), dtype=np.int64)
        weights = ((1.0 + np.log([counts[j] for j in cols])) * space.idf[cols]).astype(np.float32)
        if len(cols):
            length = np.sqrt(np.sum(weights.astype(np.float64) ** 2))
            weights = (weights / length).astype(np.float32)
        for made in (together.vector(c.terms), space.vector(c.terms)):  # together, then alone
            assert np.array_equal(made.cols, cols) and made.cols.dtype == np.int64, c.text
            assert np.array_equal(made.vals, weights) and made.vals.dtype == np.float32, c.text
    assert len(together.vector(concepts[4].terms).cols) >= 8
    assert not len(together.vector(concepts[3].terms).cols)


@given(
    st.lists(st.tuples(st.integers(0, 30), st.floats(0.0, 1.0, width=32)), max_size=40),
    st.lists(st.tuples(st.integers(0, 30), st.floats(0.0, 1.0, width=32)), max_size=40),
)
def test_short_vectors_add_up_as_long_ones(a: list, b: list) -> None:
    """`_plus` of short vectors (added in Python) is bit for bit what `_combine` (numpy) gives."""

    def vec(entries: list) -> _Vec:
        unique = dict(entries)
        cols = np.array(sorted(unique), dtype=np.int64)
        return _Vec(cols, np.array([unique[c] for c in cols], dtype=np.float32))

    x, y = vec(a), vec(b)
    short = _plus(x, y)
    long = _combine(
        np.concatenate([x.cols, y.cols]), np.concatenate([x.vals, y.vals]), short.vals.dtype
    )
    assert np.array_equal(short.cols, long.cols) and short.cols.dtype == long.cols.dtype
    assert np.array_equal(short.vals, long.vals) and short.vals.dtype == np.float32
