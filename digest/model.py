"""The ranking model: how much a paper is about what a reader asked for. Pure, no I/O.

Each keyword is a *topic*, worked out once per run over the whole corpus (`topic`):

- **forms**: the keyword, plus the expansions of an acronym and the acronym of a phrase that
  the corpus's abstracts define (`digest.acronyms`: "MoE" <-> "mixture of experts"). A phrase
  is one unit: "anomaly detection" is the bigram, never "detection" alone; a hyphenated
  compound keeps its small words ("out-of-domain" is out, of, domain; not "domain").
- **evidence** (0..1) that a paper is about it, from where a form occurs: in the title 1.0;
  in the HF ai_keywords 0.8; n times in the abstract 1 - 0.5^n.
- **vector**: the keyword's own TF-IDF terms plus FEEDBACK x the centroid of the corpus papers
  most about it (title, ai_keywords or twice in the abstract; pseudo-relevance feedback: the
  topic's other vocabulary, its FEEDBACK_TERMS strongest terms), unit length.

A reader's profile is the sum of their topics' vectors (and of the papers they liked). For
each candidate:

    evidence  = noisy-or of the topics' evidence (a followed author gives 1.0)
    relative  = cosine(paper, profile) / median cosine of the topics' own papers
    score     = evidence + SIMILARITY_WEIGHT x min(relative, MAX_RELATIVE)

A paper is **included** when evidence >= MIN_EVIDENCE and relative >= MIN_RELATIVE, best
first, up to max_items; an excluded keyword's evidence >= MIN_EVIDENCE takes it out. Both
thresholds are ratios that do not depend on the day, the corpus size or the number of
keywords, so a poor day gives a short digest or none. Trending signals (HF upvotes, GitHub
stars) add at most `trend_weight` to included papers: they reorder a digest, never fill it.

Every constant below was kept because it helped readers it was not tuned on (the split and the
figures: docs/ranking.md, `python bench/ranking_quality.py`). Tried and left out, because they
did not carry over: weighing broad keywords down by idf (better on the readers tuned on, worse
on the others), subtracting the corpus mean from the feedback centroid, a reader score that is
the mean or the best of the topics' similarities instead of one profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digest.acronyms import abbreviations, expansions, is_acronym
from digest.space import EMPTY, Row, Space
from digest.text import MAX_NGRAM, ngrams, stems

TITLE_EVIDENCE = 1.0  # a form in the title: the paper is about it
KEYWORD_EVIDENCE = 0.8  # in HF's ai_keywords: nearly as telling
ABSTRACT_DECAY = 0.5  # n mentions in the abstract: 1 - 0.5^n (one passing mention is 0.5)
MIN_EVIDENCE = 0.5  # included: a form in the title or ai_keywords, or once in the abstract
MIN_RELATIVE = 0.6  # ... and at least 0.6 as close to the profile as its topics' own papers
SIMILARITY_WEIGHT = 3.0  # order mostly by closeness to the topic, evidence breaking near-ties
MAX_RELATIVE = 3.0  # a paper three times as close as a typical one gains nothing more
FEEDBACK = 3.0  # weight of the topic's papers' centroid beside the keyword's own terms
FEEDBACK_TERMS = 100  # the centroid's strongest terms kept (the rest is every topic's noise)
SEEDS = 100  # at most this many of a topic's papers (evenly spaced) make its centroid
DEFINITIONS = 100  # abstracts read for an acronym's definitions (authors define it every time)


@dataclass(frozen=True)
class Topic:
    """One keyword over the corpus. Made by `topic`, read by `score`."""

    keyword: str
    forms: tuple[str, ...]  # the keyword and the acronyms or expansions found for it
    rows: np.ndarray  # corpus rows with evidence, ascending
    evidence: np.ndarray  # their evidence
    seeds: np.ndarray  # corpus rows most about it, ascending
    terms: tuple[str, ...]  # its forms' own terms (stem 1..3-grams), for `vector`


def keys(text: str) -> tuple[str, ...] | None:
    """The stem n-grams a text must hold to match a keyword (one, unless it has more than
    MAX_NGRAM words); None when it has no content word. Spaced words that are mostly small
    words are read as a compound ("out of domain" as "out-of-domain")."""
    tokens = stems(text)
    if len(text.split()) > 1 and len(tokens) < 2:
        tokens = stems("-".join(text.split()))
    if not tokens:
        return None
    n = min(len(tokens), MAX_NGRAM)
    return tuple(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def forms(space: Space, keyword: str) -> tuple[str, ...]:
    """The keyword and what the corpus's abstracts define as the same thing (an acronym's
    expansions, a phrase's acronym), read from at most DEFINITIONS abstracts that hold it."""
    found = keys(keyword)
    acronym = is_acronym(keyword)
    if found is None or not (acronym or len(keyword.split()) > 1):
        return (keyword,)
    rows, _ = space.rows_with(space.abstract, found)
    abstracts = [space.papers[r].abstract for r in rows[:DEFINITIONS]]
    return (keyword, *(expansions if acronym else abbreviations)(keyword, abstracts))


def topic(space: Space, keyword: str) -> Topic | None:
    """A keyword's topic over the corpus (made once per run: readers share keywords); None when
    it has no content word."""
    cache_key = ("topic", keyword)
    if cache_key not in space.cache:
        space.cache[cache_key] = _topic(space, keyword)
    found: Topic | None = space.cache[cache_key]
    return found


def _topic(space: Space, keyword: str) -> Topic | None:
    named = forms(space, keyword)
    spelled = [k for k in map(keys, named) if k]
    if not spelled:
        return None
    n = len(space.papers)
    evidence = np.zeros(n, dtype=np.float64)
    seeded = np.zeros(n, dtype=bool)
    for form in spelled:
        rows, _ = space.rows_with(space.title, form)
        evidence[rows] = TITLE_EVIDENCE
        seeded[rows] = True
        rows, _ = space.rows_with(space.keywords, form)
        evidence[rows] = np.maximum(evidence[rows], KEYWORD_EVIDENCE)
        seeded[rows] = True
        rows, counts = space.rows_with(space.abstract, form)
        evidence[rows] = np.maximum(evidence[rows], 1.0 - ABSTRACT_DECAY**counts)
        seeded[rows[counts >= 2]] = True
    rows = np.flatnonzero(evidence)
    seeds = np.flatnonzero(seeded)
    if len(seeds) > SEEDS:
        seeds = seeds[np.linspace(0, len(seeds) - 1, SEEDS).round().astype(np.int64)]
    terms = tuple(term for form in spelled for key in form for term in ngrams(key.split()))
    return Topic(keyword, named, rows, evidence[rows], seeds, terms)


def vector(space: Space, topic: Topic) -> Row:
    """A topic's vector: its own terms plus FEEDBACK x its papers' centroid, unit length (made
    once per run, and only for the readers who get as far as similarities)."""
    cache_key = ("vector", topic.keyword)
    if cache_key not in space.cache:
        own = space.vector(topic.terms)
        widened = own.plus(centroid(space, topic.seeds), FEEDBACK) if len(topic.seeds) else own
        space.cache[cache_key] = widened.unit()
    found: Row = space.cache[cache_key]
    return found


def centroid(space: Space, rows: np.ndarray) -> Row:
    """The unit centroid of some corpus rows, cut to its FEEDBACK_TERMS strongest terms."""
    return space.summed(rows).strongest(FEEDBACK_TERMS).unit()


def evidence(topics: list[Topic], rows: np.ndarray) -> np.ndarray:
    """Per topic x corpus row at `rows`: the topic's evidence there (0 where it has none)."""
    out = np.zeros((len(topics), len(rows)))
    for i, t in enumerate(topics):
        at = np.minimum(np.searchsorted(t.rows, rows), max(len(t.rows) - 1, 0))
        if len(t.rows):
            out[i] = np.where(t.rows[at] == rows, t.evidence[at], 0.0)
    return out


def combined(presence: np.ndarray) -> np.ndarray:
    """The topics' evidence per paper combined as a noisy-or: each adds what the others lack."""
    out: np.ndarray = 1.0 - np.prod(1.0 - presence, axis=0)
    return out


def profile(space: Space, topics: list[Topic], liked_rows: np.ndarray) -> Row:
    """A reader's profile: their topics' vectors summed, and the centroid of what they liked."""
    total = EMPTY
    for t in topics:
        total = total.plus(vector(space, t))
    if len(liked_rows):
        total = total.plus(space.summed(liked_rows).unit())
    return total.unit()


def relative(space: Space, reader: Row, topics: list[Topic], rows: np.ndarray) -> np.ndarray:
    """Each row's cosine with a reader's profile, relative to the median cosine of the topics'
    own papers (1.0: as close as a typical paper about them; at most SEEDS of them, evenly
    spaced). Both sets of cosines come from one product."""
    seeds = np.unique(np.concatenate([t.seeds for t in topics] or [np.zeros(0, np.int64)]))
    if len(seeds) > SEEDS:
        seeds = seeds[np.linspace(0, len(seeds) - 1, SEEDS).round().astype(np.int64)]
    cosine = _cosines(space, reader, np.concatenate([rows, seeds]))
    reference = float(np.median(cosine[len(rows) :])) if len(seeds) else 0.0
    return cosine[: len(rows)] / (reference or 1.0)


def matches(space: Space, keyword: str) -> int:
    """How many corpus papers hold a keyword anywhere, as the model matches it (`digest check`)."""
    found = topic(space, keyword)
    return len(found.rows) if found else 0


def products(
    space: Space, reader: Row, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each stored entry of some corpus rows times a profile's value at its column (0 where it
    has none): (which of `rows`, column, product), in row order."""
    picked = space.matrix[rows]
    row_of = np.repeat(np.arange(len(rows)), np.diff(picked.indptr))
    if not len(reader.cols):
        return row_of, picked.indices, np.zeros(picked.nnz)
    at = np.minimum(np.searchsorted(reader.cols, picked.indices), len(reader.cols) - 1)
    values = np.where(reader.cols[at] == picked.indices, picked.data * reader.vals[at], 0.0)
    return row_of, picked.indices, values


def _cosines(space: Space, reader: Row, rows: np.ndarray) -> np.ndarray:
    """The dot product of some corpus rows with a profile."""
    row_of, _, values = products(space, reader, rows)
    return np.bincount(row_of, weights=values, minlength=len(rows))


def score(evidence: np.ndarray, relative: np.ndarray) -> np.ndarray:
    """The order of a reader's papers: evidence plus weighted, capped relative similarity."""
    out: np.ndarray = evidence + SIMILARITY_WEIGHT * np.minimum(relative, MAX_RELATIVE)
    return out


def eligible(evidence: np.ndarray, relative: np.ndarray, threshold: float) -> np.ndarray:
    """Which papers may be in the digest (before the cap of max_items)."""
    return (evidence >= threshold) & (relative >= MIN_RELATIVE)
