"""Ranking: papers + a reader's profile -> ranked papers with reasons. Pure: no I/O, deterministic.

    space = Space(corpus)                       # once per run: TF-IDF fitted on the stored corpus
    ranked = rank(space, candidates, profile)   # per reader

Everything is read from one scikit-learn TF-IDF space over stem 1..3-grams (`digest.text`:
"quantization", "quantized" and "quantise" meet), fitted on title (twice) + abstract +
ai_keywords with sublinear tf. A reader's keywords are *concepts*: a quoted phrase is one
n-gram, not a bag of its words.

- **Evidence** (0..1) that the paper is about one of the keywords, from where the concept
  occurs: in the title 1.0; in the HF ai_keywords 0.8; n times in the abstract 1 - 0.6^n; the
  words of a phrase apart in the title, 0.6 x the share of the phrase's idf they carry (when
  that share is at least 0.6). Concepts combine as a noisy-or; a followed author gives 1.0.
- **Topic similarity**, relative: the cosine between the paper and the profile vector (the
  concepts' unit vectors summed, so each keyword counts the same, plus liked papers), divided
  by the median cosine of the corpus papers that carry one of the keywords in their title
  (an evenly spaced TOPIC_SAMPLE of them when there are more), i.e. what an on-topic paper
  looks like in this space. 1.0 means "as close as a typical
  on-topic paper". For ordering, the profile is widened by the centroid of those papers
  (Rocchio feedback), which brings in the topic's other vocabulary.

A paper is **included** when its evidence is at least `threshold` (0.5: a keyword in the title,
twice in the abstract, or two keywords once each) and its relative similarity at least
`MIN_RELATIVE` (0.3), up to `max_items`. Both are ratios that do not depend on the day, the
corpus size or the number of keywords, so a poor day gives a short digest or none and a rich
day a full one. Trending signals (HF upvotes, GitHub stars) add at most `trend_weight` to
papers already included: they reorder a digest and never bring a paper into it.

Measured in bench/ranking_quality.py; the figures are in the README.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse import _sparsetools  # the C loops behind scipy's CSR indexing and products
from sklearn.feature_extraction.text import TfidfTransformer

from digest.config import RankingConfig, Subscriber
from digest.terms import TERMS, PaperTerms, analyse, most_frequent_word, term_ids
from digest.text import MAX_NGRAM, ngrams, stems, words
from digest.types import Paper

TITLE_EVIDENCE = 1.0
KEYWORD_EVIDENCE = 0.8
ABSTRACT_DECAY = 0.6  # n mentions in the abstract: 1 - 0.6^n
PHRASE_WORDS_EVIDENCE = 0.6
PHRASE_WORDS_SHARE = 0.6  # ... counted when they carry at least this share
THRESHOLD = 0.5
MIN_RELATIVE = 0.3
FEEDBACK = 0.5  # weight of the on-topic centroid in the ordering profile
MAX_RELATIVE = 3.0  # relative similarity is capped for ordering
TREND_WEIGHT = 0.25
RELATED = 3  # related terms shown per paper
EXPLAINED = 20  # the top papers of a ranking get related terms; the rest only matched keywords
RELATED_MIN_DF = 3  # ... among those in at least 3 papers (not one paper's own acronym)
TOPIC_SAMPLE = 1000  # on-topic papers a reader's similarity is calibrated on, at most
SHORT = 64  # entries up to which two vectors are added in Python (see `_plus`)
STAGE = 256  # readers whose numbers are worked out before their rankings (see `rank_many`)


@dataclass(frozen=True)
class Profile:
    """What a reader wants. Made by `profile_of` from a subscriber file, read by `rank`."""

    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    liked: tuple[str, ...] = ()  # paper ids
    max_items: int = 10
    threshold: float = THRESHOLD
    trend_weight: float = TREND_WEIGHT


@dataclass(frozen=True)
class Ranked:
    """One candidate's place for one reader. Made by `rank`, read by the CLI and rendering."""

    paper: Paper
    score: float
    evidence: float
    relevance: float  # similarity relative to a typical on-topic paper
    included: bool
    matched: tuple[str, ...]  # the reader's keywords (or followed author) found, strongest first
    related: tuple[str, ...]  # the top terms it shares with the reader's topic

    @property
    def reasons(self) -> tuple[str, ...]:
        """What made it score: matched keywords, then related terms."""
        return self.matched + self.related


@dataclass(frozen=True)
class Concept:
    """One keyword as the space sees it."""

    text: str  # as the reader wrote it
    keys: tuple[str, ...]  # the stem n-grams that must all be present (one, unless > 3 words)
    terms: tuple[str, ...]  # all its 1..3-grams, for its TF-IDF vector
    words: tuple[str, ...]  # its distinct stems


@lru_cache(maxsize=100_000)
def concept(text: str) -> Concept | None:
    """The concept of one keyword or quoted phrase; None when it has no content word (made once
    per keyword text: many readers share keywords)."""
    tokens = stems(text)
    if not tokens:
        return None
    n = min(len(tokens), MAX_NGRAM)
    keys = tuple(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return Concept(text, keys, tuple(ngrams(tokens)), tuple(dict.fromkeys(tokens)))


@dataclass(frozen=True)
class Fields:
    """Per-field term counts (papers x terms, CSC: one term's papers are contiguous)."""

    title: sp.csc_matrix
    abstract: sp.csc_matrix
    keywords: sp.csc_matrix


class Space:
    """The TF-IDF space of a corpus, with per-field term counts for evidence. Fit once per run."""

    def __init__(
        self,
        corpus: Sequence[Paper],
        analysed: Sequence[PaperTerms] | None = None,
        words: Mapping[str, str] | None = None,
    ) -> None:
        """`analysed`: each paper's terms, when kept from an earlier run (`digest.terms`), with
        `words`, the word shown for each stem; else both are made from the papers here."""
        self.papers = list(corpus)
        self.row = {p.id: i for i, p in enumerate(self.papers)}
        if analysed is None or words is None:
            surface: Counter[tuple[str, str]] = Counter()
            analysed = [analyse(p, surface) for p in self.papers]
            words = most_frequent_word(surface)
        fields = []
        for name in ("title", "abstract", "keywords"):
            arrays = [getattr(a, name) for a in analysed]
            entries = np.concatenate(arrays) if arrays else np.zeros(0, dtype=TERMS)
            rows = np.repeat(
                np.arange(len(arrays)), np.fromiter(map(len, arrays), np.int64, len(arrays))
            )
            fields.append((rows, entries))
        # columns: the corpus's term ids, ascending; each entry's column from one argsort
        ids = np.concatenate([entries["term"] for _, entries in fields])
        order = np.argsort(ids)
        ordered = ids[order]
        first = _run_starts(ordered)
        self.ids = ordered[first]
        column = np.empty(len(ids), dtype=np.int32)
        column[order] = np.cumsum(first) - 1
        del ids, order, ordered, first
        shape = (len(self.papers), len(self.ids))
        starts = np.cumsum([0] + [len(entries) for _, entries in fields])
        self.title, self.abstract, self.keywords = (
            sp.csc_matrix(
                (entries["count"].astype(np.float32), (rows, column[start:end])),
                shape=shape,
                dtype=np.float32,
            )
            for (rows, entries), start, end in zip(fields, starts[:-1], starts[1:], strict=True)
        )
        del fields
        transformer = TfidfTransformer(sublinear_tf=True, norm="l2")
        if len(self.ids):
            counts = sp.csr_matrix(2 * self.title + self.abstract + self.keywords)
            self.matrix = sp.csr_matrix(transformer.fit_transform(counts), dtype=np.float32)
            self.idf = transformer.idf_
        else:
            self.matrix, self.idf = sp.csr_matrix(shape, dtype=np.float32), np.zeros(0)
        self.df = np.bincount(self.matrix.indices, minlength=len(self.ids))
        # single words (stems) by column, shown as the word most often behind them
        stems_known = list(words)
        at = self.columns(stems_known)
        self._word = {int(j): words[st] for j, st in zip(at, stems_known, strict=True) if j >= 0}
        # terms fit to show as "related": single words found in a few papers at least
        self.shown = np.zeros(len(self.ids), dtype=bool)
        self.shown[at[at >= 0]] = True
        self.shown &= self.df >= RELATED_MIN_DF
        # per keyword, shared by the readers of a run who have it
        self._vectors: dict[tuple[str, ...], _Vec] = {}
        self._dense = np.zeros(len(self.ids), dtype=np.float64)
        self._sums = np.zeros(len(self.ids), dtype=np.float64)  # see `summed`
        self._marks = np.zeros(len(self.ids), dtype=bool)  # see `marked`
        self._titled: dict[str, np.ndarray] = {}  # by keyword text: hashing a Concept costs
        self._column_of: dict[str, int] = {}  # see `known`
        self._pool: tuple[frozenset[str], _Pool] | None = None

    def columns(self, terms: Sequence[str]) -> np.ndarray:
        """The column of each term; -1 for a term the corpus does not have."""
        wanted = term_ids(terms)
        at = np.searchsorted(self.ids, wanted)
        at[at == len(self.ids)] = 0
        found = self.ids[at] == wanted if len(self.ids) else np.zeros(len(wanted), dtype=bool)
        return np.where(found, at, -1)

    def known(self, terms: Sequence[str]) -> np.ndarray:
        """`columns`, kept per term for the run (readers share keywords' terms): the terms not
        met yet are looked up together."""
        new = [t for t in dict.fromkeys(terms) if t not in self._column_of]
        if new:
            self._column_of.update(zip(new, self.columns(new).tolist(), strict=True))
        return np.fromiter(map(self._column_of.__getitem__, terms), np.int64, len(terms))

    def column(self, term: str) -> int | None:
        """The column of one term, or None."""
        j = int(self.known([term])[0])
        return j if j >= 0 else None

    def word(self, j: int) -> str:
        """The word shown for the single-word term of column j."""
        return self._word[j]

    def vector(self, terms: Sequence[str]) -> _Vec:
        """The unit TF-IDF vector of some terms (terms unknown to the corpus are ignored)."""
        key = tuple(terms)
        if key not in self._vectors:
            self._make_vectors([key])
        return self._vectors[key]

    def prepare(self, concepts: Iterable[Concept]) -> None:
        """The vectors and title rows of the concepts not met yet, worked out together (measured:
        29-32 -> 12-14 us a keyword, most of it looking up its terms' columns one at a time)."""
        new = {c.text: c for c in concepts if c.text not in self._titled}.values()
        self._make_vectors([key for key in {c.terms: 1 for c in new} if key not in self._vectors])
        self._find_titled(list(new))

    def _make_vectors(self, todo: list[tuple[str, ...]]) -> None:
        """Each term list's vector: what TfidfTransformer(sublinear_tf=True, norm="l2") does to
        one row, for all the lists at once (the same float operations, element by element)."""
        cols = self.known([t for terms in todo for t in terms])
        owner = np.repeat(np.arange(len(todo)), [len(terms) for terms in todo])
        key = np.sort(owner[cols >= 0] * max(len(self.ids), 1) + cols[cols >= 0])
        first = _run_starts(key)
        starts = np.flatnonzero(first)
        counts = np.diff(np.append(starts, len(key)))  # a term's count in its list
        key = key[first]
        owner, cols = np.divmod(key, max(len(self.ids), 1))
        weights = ((1.0 + np.log(counts)) * self.idf[cols]).astype(np.float32)
        bounds = np.searchsorted(owner, np.arange(len(todo) + 1))
        squares = weights.astype(np.float64) ** 2
        # summed one list at a time: np.add.reduceat associates the terms of a sum otherwise
        lengths = [
            np.sqrt(np.sum(squares[lo:hi])) if hi > lo else 1.0 for lo, hi in pairwise(bounds)
        ]
        weights = (weights / np.repeat(lengths, np.diff(bounds))).astype(np.float32)
        for terms, lo, hi in zip(todo, bounds[:-1], bounds[1:], strict=True):
            self._vectors[terms] = _Vec(cols[lo:hi], weights[lo:hi])

    def dots(self, m: _Rows, v: _Vec, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each of some rows of the TF-IDF matrix dotted with `v`, in one pass of scipy's C
        loop, and `v`'s value at each column of `at` (0 where it has none): `v` is spread over
        a vocabulary-long array kept for the run, then cleared."""
        self._dense[v.cols] = v.vals
        try:
            return m.times(self._dense), self._dense[at]
        finally:
            self._dense[v.cols] = 0.0

    @contextmanager
    def summed(self, m: _Rows) -> Iterator[np.ndarray]:
        """Some rows of the TF-IDF matrix added up (float64, in entry order), as a
        vocabulary-long array for the block. A few entries are added into an array kept for
        the run and cleared at the end of the block; many into a new one (measured: clearing
        costs what allocating and zeroing 1.2 million floats does at about 50,000 entries)."""
        cols = m.indices[m.indptr[0] : m.indptr[-1]]
        if len(cols) * 24 >= len(self.ids):
            total = np.zeros(len(self.ids), dtype=np.float64)
            m.added_to(total)
            yield total
            return
        m.added_to(self._sums)
        try:
            yield self._sums
        finally:
            self._sums[cols] = 0.0

    @contextmanager
    def marked(self, cols: np.ndarray) -> Iterator[np.ndarray]:
        """A vocabulary-long array, True at `cols`, for the block (kept for the run, cleared)."""
        self._marks[cols] = True
        try:
            yield self._marks
        finally:
            self._marks[cols] = False

    def _column(self, m: sp.csc_matrix, term: str) -> np.ndarray:
        """One term's counts over the rows of `m`, read straight from the CSC arrays."""
        out = np.zeros(m.shape[0], dtype=np.float32)
        j = self.column(term)
        if j is not None:
            lo, hi = m.indptr[j], m.indptr[j + 1]
            out[m.indices[lo:hi]] = m.data[lo:hi]
        return out

    def fields(self, rows: np.ndarray) -> Fields:
        """The per-field term counts of some corpus rows (what `evidence` reads)."""
        return Fields(self.title[rows], self.abstract[rows], self.keywords[rows])

    def evidence(
        self, fields: Fields, concepts: Sequence[Concept]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per concept: the rows of `fields` with evidence that the paper is about it (ascending)
        and that evidence (0..1). All the concepts at once: the columns of all their terms are
        read in one go, and the parts are combined by sorting (concept, row) pairs."""
        n = fields.title.shape[0]
        if not n or not concepts:
            return [(np.zeros(0, dtype=np.int64), np.zeros(0)) for _ in concepts]
        keys = [len(c.keys) for c in concepts]
        key_of = np.repeat(np.arange(len(concepts)), keys)
        key_cols = self.known([key for c in concepts for key in c.keys])
        n_keys = np.array(keys, dtype=np.int64)

        def least(m: sp.csc_matrix) -> tuple[np.ndarray, np.ndarray]:
            """(concept x n + row, the least count of its keys) where every key is present."""
            known = key_cols >= 0
            group, counts, _ = _entries(m, key_cols[known], key_of[known], n)
            starts, size = _groups(group)
            full = size == n_keys[group[starts] // n]
            return group[starts][full], np.minimum.reduceat(counts, starts)[full]

        title, _ = least(fields.title)
        kw, _ = least(fields.keywords)
        abstract, mentions = least(fields.abstract)
        parts = [
            (title, np.full(len(title), TITLE_EVIDENCE)),
            (kw, np.full(len(kw), KEYWORD_EVIDENCE)),
            (abstract, (1.0 - ABSTRACT_DECAY**mentions).astype(np.float64)),
        ]
        # the words of a phrase apart in the title: the share of the phrase's idf they carry
        phrases = [i for i, c in enumerate(concepts) if len(c.words) > 1]
        word_of = np.repeat(
            np.array(phrases, dtype=np.int64), [len(concepts[i].words) for i in phrases]
        )
        word_cols = self.known([w for i in phrases for w in concepts[i].words])
        known = word_cols >= 0
        weights = self.idf[word_cols[known]]
        total = np.bincount(word_of[known], weights, minlength=len(concepts))
        group, _, slot = _entries(fields.title, word_cols[known], word_of[known], n)
        starts, _ = _groups(group)
        where = group[starts]
        share = np.add.reduceat(weights[slot], starts) / total[where // n]
        parts.append((where, PHRASE_WORDS_EVIDENCE * share * (share >= PHRASE_WORDS_SHARE)))
        # the strongest part per (concept, row)
        group = np.concatenate([g for g, _ in parts])
        values = np.concatenate([v for _, v in parts])
        order = np.argsort(group, kind="stable")
        group, values = group[order], values[order]
        starts, _ = _groups(group)
        best = np.maximum.reduceat(values, starts) if len(starts) else values[:0]
        group = group[starts]
        keep = best > 0
        group, best = group[keep], best[keep]
        owner, rows = np.divmod(group, n)
        bounds = np.searchsorted(owner, np.arange(len(concepts) + 1))
        return [(rows[lo:hi], best[lo:hi]) for lo, hi in pairwise(bounds)]

    def pool(self, candidates: Sequence[Paper]) -> _Pool:
        """The candidates as readers share them (the last set asked for is kept: successive
        calls for the same day's papers reuse each keyword's evidence)."""
        key = frozenset(p.id for p in candidates)
        if self._pool is None or self._pool[0] != key:
            self._pool = (key, _Pool(self, candidates))
        return self._pool[1]

    def in_title(self, c: Concept) -> np.ndarray:
        """The corpus rows whose title holds the concept (kept for the readers who share it)."""
        if c.text not in self._titled:
            self._find_titled([c])
        return self._titled[c.text]

    def _find_titled(self, concepts: list[Concept]) -> None:
        """`in_title` of some concepts: the rows holding every key (the columns' rows,
        intersected)."""
        cols = iter(self.known([key for c in concepts for key in c.keys]).tolist())
        m = self.title
        for c in concepts:
            found = None
            for j in (next(cols) for _ in c.keys):
                if j < 0:
                    rows = np.zeros(0, dtype=np.int64)
                else:
                    lo, hi = m.indptr[j], m.indptr[j + 1]
                    rows = np.sort(m.indices[lo:hi][m.data[lo:hi] > 0]).astype(np.int64)
                found = rows if found is None else np.intersect1d(found, rows, assume_unique=True)
            self._titled[c.text] = found if found is not None else np.zeros(0, dtype=np.int64)

    def matches(self, text: str) -> int:
        """How many papers of the corpus hold this keyword at all (for `digest check`)."""
        c = concept(text)
        if c is None or not self.papers:
            return 0
        found = np.min(
            [
                self._column(self.title, k)
                + self._column(self.abstract, k)
                + self._column(self.keywords, k)
                for k in c.keys
            ],
            axis=0,
        )
        return int(np.count_nonzero(found))


def _trend(paper: Paper) -> float:
    """0..1 from HF upvotes and GitHub stars, log-scaled (100 upvotes or 1,000 stars give 1)."""
    up = math.log1p(paper.upvotes or 0) / math.log1p(100)
    stars = math.log1p(paper.github_stars or 0) / math.log1p(1000)
    return min(1.0, max(up, stars))


def _name(name: str) -> str:
    return " ".join(words(name))


class _Vec(NamedTuple):
    """A sparse row: ascending column numbers and their values.

    A reader's profile is a few hundred terms of a vocabulary of over a million: numpy on the
    stored entries avoids scipy's per-call checks. Arithmetic follows scipy's dtypes (float32
    sums; a unit vector is float64), so results are the ones scipy gave."""

    cols: np.ndarray
    vals: np.ndarray


def _combine(cols: np.ndarray, vals: np.ndarray, dtype: np.dtype) -> _Vec:
    """Entries added up per column (in the order given, in float64), columns ascending. By a
    stable sort: numpy 2's np.unique hashes, which is many times slower on these arrays."""
    order = np.argsort(cols, kind="stable")
    ordered = cols[order]
    first = _run_starts(ordered)
    group = np.empty(len(cols), dtype=np.int64)
    group[order] = np.cumsum(first) - 1
    sums = np.bincount(group, weights=vals, minlength=int(first.sum()))
    return _Vec(ordered[first], sums.astype(dtype))


def _entries(
    m: sp.csc_matrix, cols: np.ndarray, owner: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stored entries of some columns of `m` (n rows) as (owner of their column x n + row,
    value, which of `cols`), sorted by the first (stable: a group keeps the order of `cols`)."""
    picked = m[:, cols]
    which = np.repeat(np.arange(len(cols)), np.diff(picked.indptr))
    group = owner.astype(np.int64)[which] * n + picked.indices
    order = np.argsort(group, kind="stable")
    return group[order], picked.data[order], which[order]


def _groups(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each run of equal numbers starts in a sorted array, and its length (none in an
    empty array: numpy's reduceat needs at least one start, so give it an empty group)."""
    if not len(ordered):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(_run_starts(ordered))
    return starts, np.diff(np.append(starts, len(ordered)))


def _run_starts(ordered: np.ndarray) -> np.ndarray:
    """Per element of a sorted array: whether it differs from the one before (starts a run)."""
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return first


def _plus(a: _Vec, b: _Vec) -> _Vec:
    """a + b (a float32 sum is rounded once, as float32 addition does). Short vectors (a
    reader's keywords) are added in Python: the same float64 sums in the same order, without
    the dozen numpy calls of `_combine`."""
    dtype = np.result_type(a.vals, b.vals)
    if len(a.cols) + len(b.cols) <= SHORT:
        sums: dict[int, float] = {}
        for col, value in zip(
            a.cols.tolist() + b.cols.tolist(), a.vals.tolist() + b.vals.tolist(), strict=True
        ):
            sums[col] = sums.get(col, 0.0) + value
        cols = sorted(sums)
        return _Vec(
            np.array(cols, dtype=np.result_type(a.cols, b.cols)),
            np.array([sums[col] for col in cols], dtype=np.float64).astype(dtype),
        )
    return _combine(
        np.concatenate([a.cols, b.cols]),
        np.concatenate([a.vals, b.vals]),
        dtype,
    )


def _unit(v: _Vec) -> _Vec:
    """`v` scaled to length 1 (unchanged when it is zero)."""
    norm = float(np.sqrt(np.dot(v.vals, v.vals)))
    return _Vec(v.cols, v.vals.astype(np.float64) * (1 / norm)) if norm else v


def _sum_rows(m: sp.csr_matrix) -> _Vec:
    """The rows of `m` added up, as one row (float32). Many entries are summed in a
    vocabulary-long array, a few by sorting; in entry order either way."""
    n_terms = m.shape[1]
    if m.nnz * 256 < n_terms:  # measured: sorting ~4,000 entries costs what the array does
        return _combine(m.indices, m.data, np.dtype(np.float32))
    sums = np.bincount(m.indices, weights=m.data, minlength=n_terms)
    cols = np.flatnonzero(sums)  # tf-idf values are positive: no sum is 0
    return _Vec(cols, sums[cols].astype(np.float32))


class _Pool:
    """One set of candidates, with what every reader of a run shares about them: their TF-IDF
    rows, their per-field counts, and each keyword's evidence (computed once per keyword)."""

    def __init__(self, space: Space, candidates: Sequence[Paper]) -> None:
        self.space = space
        self.papers = sorted(
            {p.id: p for p in candidates if p.id in space.row}.values(), key=lambda p: p.id
        )
        self.position = {p.id: i for i, p in enumerate(self.papers)}
        self.rows = np.array([space.row[p.id] for p in self.papers], dtype=np.int64)
        self.fields = space.fields(self.rows)
        self.trend = np.array([_trend(p) for p in self.papers])
        self._evidence: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # by keyword text
        self._authors: list[set[str]] | None = None

    def prepare(self, concepts: Iterable[Concept]) -> None:
        """Work out the evidence of the concepts not known yet, all at once."""
        new = list({c.text: c for c in concepts if c.text not in self._evidence}.values())
        if new:
            found = self.space.evidence(self.fields, new)
            self._evidence.update(zip((c.text for c in new), found, strict=True))

    def _sparse(self, c: Concept) -> tuple[np.ndarray, np.ndarray]:
        """The candidates with evidence of the concept, and that evidence (made once)."""
        if c.text not in self._evidence:
            self.prepare([c])
        return self._evidence[c.text]

    def evidence(self, c: Concept) -> np.ndarray:
        """Per candidate: the evidence that it is about the concept (kept sparse between readers)."""
        out = np.zeros(len(self.papers), dtype=np.float64)
        where, values = self._sparse(c)
        out[where] = values
        return out

    def any_evidence(self, concepts: Iterable[Concept]) -> bool:
        """Whether any candidate carries evidence of any of the concepts (without it, and
        without a followed author, no paper reaches a threshold above 0)."""
        return any(len(self._sparse(c)[0]) for c in concepts)

    def by_author(self, followed: set[str]) -> np.ndarray:
        """Per candidate: whether one of its authors is followed."""
        if not followed:
            return np.zeros(len(self.papers), dtype=bool)
        if self._authors is None:
            self._authors = [{_name(a) for a in p.authors} for p in self.papers]
        return np.array([not names.isdisjoint(followed) for names in self._authors], dtype=bool)


class _Rows(NamedTuple):
    """Some rows of a CSR matrix, as scipy's arrays: row i's entries are at indptr[i] up to
    indptr[i + 1] of indices (columns) and data. Worked on by scipy's C loops, called directly:
    its matrix objects check and convert their arguments on every call, which cost more than
    the arithmetic for a reader's few rows."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @classmethod
    def of(cls, m: sp.csr_matrix, rows: np.ndarray) -> _Rows:
        """The rows of `m` at `rows`, copied (what `m[rows]` does, in the same C loop)."""
        index = m.indices.dtype  # every index array of one call the same type: none converted
        rows = rows.astype(index, copy=False)
        indptr = np.zeros(len(rows) + 1, dtype=index)
        np.cumsum(m.indptr[rows + 1] - m.indptr[rows], out=indptr[1:])
        indices = np.empty(indptr[-1], dtype=index)
        data = np.empty(indptr[-1], dtype=m.data.dtype)
        if len(rows):
            _sparsetools.csr_row_index(
                len(rows),
                rows,
                m.indptr.astype(index, copy=False),
                m.indices,
                m.data,
                indices,
                data,
            )
        return cls(indptr, indices, data)

    def times(self, dense: np.ndarray) -> np.ndarray:
        """Each row dotted with a dense float64 vector (what `m @ dense` does)."""
        out = np.zeros(len(self.indptr) - 1, dtype=np.float64)
        _sparsetools.csr_matvec(
            len(out), len(dense), self.indptr, self.indices, self.data, dense, out
        )
        return out

    def added_to(self, total: np.ndarray) -> None:
        """The rows added into a float64 vector, entry by entry in order (the rows, read as
        the columns of a CSC matrix, times a vector of ones)."""
        rows = len(self.indptr) - 1
        _sparsetools.csc_matvec(
            len(total), rows, self.indptr, self.indices, self.data, np.ones(rows), total
        )

    def tail(self, k: int) -> _Rows:
        """The rows from the k-th on (a view: their entries stay where they are)."""
        return _Rows(self.indptr[k:], self.indices, self.data)


class _Similar(NamedTuple):
    """What `_similarities` finds for the candidates a reader needs."""

    relative: np.ndarray  # similarity relative to a typical on-topic paper (for inclusion)
    ordering: np.ndarray  # the widened profile's, relative (for ordering)
    rows: _Rows  # the candidates' TF-IDF rows
    weights: np.ndarray  # the widened profile's value at each of their entries (for reasons)


def _similarities(
    pool: _Pool, concepts: list[Concept], liked: Sequence[str], needed: np.ndarray
) -> _Similar:
    """For the candidates at `needed`: relative similarity (for inclusion) and the widened one
    (for ordering), and the widened profile at their terms (for reasons). The profile is
    calibrated on the on-topic papers (at most TOPIC_SAMPLE of them, evenly spaced through the
    corpus). The ordering profile is the reader's profile p plus FEEDBACK x the on-topic
    centroid, unit length.

    With s the on-topic rows' sum and w = FEEDBACK / |s|, a row x's widened cosine is
    (x.p + w x.s) / |p + w s|, and |s|^2 and p.s are sums over the on-topic rows of x.s and x.p:
    every quantity is a product of rows with a vector."""
    space = pool.space
    profile = _Vec(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
    for c in concepts:
        profile = _plus(profile, space.vector(c.terms))
    liked_rows = np.array([space.row[i] for i in liked if i in space.row], dtype=np.int64)
    if len(liked_rows):
        profile = _plus(profile, _unit(_sum_rows(space.matrix[liked_rows])))
    profile = _unit(profile)
    topic_rows = np.unique(np.concatenate([space.in_title(c) for c in concepts] + [liked_rows]))
    if len(topic_rows) > TOPIC_SAMPLE:
        topic_rows = topic_rows[
            np.linspace(0, len(topic_rows) - 1, TOPIC_SAMPLE).round().astype(int)
        ]
    # the candidates' rows, then the on-topic papers': one selection, one product per vector
    k = len(needed)
    rows = (
        np.concatenate([pool.rows[needed], topic_rows]) if len(profile.cols) else pool.rows[needed]
    )
    picked = _Rows.of(space.matrix, rows)
    split = picked.indptr[k]
    # copied: views would keep the on-topic rows alive as long as the result (`rank_many`)
    candidates = _Rows(
        picked.indptr[: k + 1].copy(), picked.indices[:split].copy(), picked.data[:split].copy()
    )
    # the profile's value at the candidates' terms (for reasons), while it is spread out
    similarity, at_profile = space.dots(picked, profile, candidates.indices)
    cosine, on_topic = similarity[:k], similarity[k:]
    if not len(on_topic):
        return _Similar(np.ones(k), cosine, candidates, at_profile)
    reference = _median(on_topic) or 1.0
    with space.summed(picked.tail(k)) as total:
        products = picked.times(total)
        at_candidates = total[candidates.indices]
    by_candidate, by_total = products[:k], products[k:]
    length2 = float(by_total.sum())  # |s|^2
    if not length2:  # on-topic papers without terms: nothing to widen by
        return _Similar(cosine / reference, cosine / reference, candidates, at_profile)
    weight = FEEDBACK / math.sqrt(length2)
    norm = math.sqrt(
        float(np.dot(profile.vals, profile.vals))
        + 2 * weight * float(on_topic.sum())
        + weight * weight * length2
    )
    wide = (cosine + weight * by_candidate) / norm
    wide_reference = _median((on_topic + weight * by_total) / norm) or 1.0
    weights = (at_profile + weight * at_candidates) / norm
    return _Similar(cosine / reference, wide / wide_reference, candidates, weights)


def _median(a: np.ndarray) -> float:
    """`np.median` of a non-empty array, to the bit (the middle value, or the mean of the two
    middle ones), without its checks: one partition."""
    half = len(a) // 2
    if len(a) % 2:
        return float(np.partition(a, half)[half])
    part = np.partition(a, (half - 1, half))
    return float((part[half - 1] + part[half]) / 2)


def rank(
    space: Space, candidates: Sequence[Paper], profile: Profile, *, included_only: bool = False
) -> list[Ranked]:
    """Every candidate of the space's corpus (or only the included ones), best first, with
    evidence, inclusion and reasons.

    Deterministic: ties break on the paper id. Candidates unknown to the space are left out.
    """
    return next(rank_many(space, candidates, [profile], included_only=included_only))


def rank_many(
    space: Space,
    candidates: Sequence[Paper],
    profiles: Sequence[Profile],
    *,
    taken: Sequence[Collection[str]] | None = None,
    included_only: bool = False,
) -> Iterator[list[Ranked]]:
    """`rank` for many readers of the same candidates, one ranking per profile, in order, less
    the ids in each reader's `taken`. What every reader shares (the candidates' rows and counts,
    each keyword's evidence, vector and on-topic papers) is computed once. With `included_only`,
    a reader none of whose candidates carries enough evidence costs almost nothing, and
    similarities are computed only for the candidates that could be included.

    With `included_only`, in two stages over STAGE readers at a time: their numbers (evidence,
    similarities), then their rankings (order, reasons); each stage's code and data stay in
    the processor's caches (measured: ~10% less time than reader by reader)."""
    pool = space.pool(candidates)
    pool.prepare(
        c for p in profiles for c in map(concept, (*p.keywords, *p.exclude)) if c is not None
    )
    stage = STAGE if included_only else 1  # else a reader's numbers cover every candidate
    for lo in range(0, len(profiles), stage):
        part = range(lo, min(lo + stage, len(profiles)))
        screened = [_screened_out(pool, profiles[k], included_only) for k in part]
        # the keywords of the readers who get as far as similarities, worked out together
        space.prepare(
            c
            for k, skip in zip(part, screened, strict=True)
            if not skip
            for c in _concepts(profiles[k])
        )
        scored = [
            None if skip else _scored(pool, profiles[k], taken[k] if taken else (), included_only)
            for k, skip in zip(part, screened, strict=True)
        ]
        for k, one in zip(part, scored, strict=True):
            yield _ranking(pool, profiles[k], one, included_only) if one else []


class _Scored(NamedTuple):
    """One reader's numbers for the candidates at `needed` (see `_scored`)."""

    concepts: list[Concept]
    followed: set[str]
    presence: np.ndarray  # per concept x candidate (all candidates)
    needed: np.ndarray
    evidence: np.ndarray
    by_author: np.ndarray
    eligible: np.ndarray
    score: np.ndarray
    similar: _Similar


def _concepts(profile: Profile) -> list[Concept]:
    """A reader's keywords as concepts (those with a content word)."""
    return [c for c in map(concept, profile.keywords) if c is not None]


def _screened_out(pool: _Pool, profile: Profile, included_only: bool) -> bool:
    """Whether a reader's ranking of included papers is empty for want of evidence (most
    readers with no digest): no candidate carries any of their keywords, none is by an author
    they follow, and the threshold is above 0."""
    screened = included_only and profile.threshold > 0 and not profile.authors
    return screened and not pool.any_evidence(_concepts(profile))


def _scored(
    pool: _Pool, profile: Profile, taken: Collection[str], included_only: bool
) -> _Scored | None:
    """One reader's evidence, similarities and scores for the pool's candidates that are
    not in `taken` (only those that could be included, with `included_only`); None when
    there are none. Readers `_screened_out` are left out before."""
    concepts = _concepts(profile)
    n = len(pool.papers)
    available = np.ones(n, dtype=bool)
    available[[i for pid in taken if (i := pool.position.get(pid)) is not None]] = False
    excluded = [c for c in map(concept, profile.exclude) if c is not None]

    presence = np.array([pool.evidence(c) for c in concepts]).reshape(len(concepts), n)
    evidence = 1.0 - np.prod(1.0 - presence, axis=0)
    followed = {_name(a) for a in profile.authors}
    by_author = pool.by_author(followed)
    evidence = np.where(by_author, 1.0, evidence)
    blocked = np.zeros(n, dtype=bool)
    for c in excluded:
        blocked |= pool.evidence(c) >= THRESHOLD
    if included_only:
        needed = np.flatnonzero(available & (evidence >= profile.threshold) & ~blocked)
    else:
        needed = np.flatnonzero(available)
    if not len(needed):
        return None

    similar = _similarities(pool, concepts, profile.liked, needed)
    relative, ordering = similar.relative, similar.ordering
    evidence, by_author, blocked = evidence[needed], by_author[needed], blocked[needed]
    eligible = (evidence >= profile.threshold) & ((relative >= MIN_RELATIVE) | by_author) & ~blocked
    trend = pool.trend[needed]
    score = evidence + np.minimum(ordering, MAX_RELATIVE) + eligible * profile.trend_weight * trend
    score = np.where(blocked, -1.0, score)
    return _Scored(
        concepts, followed, presence, needed, evidence, by_author, eligible, score, similar
    )


def _ranking(pool: _Pool, profile: Profile, scored: _Scored, included_only: bool) -> list[Ranked]:
    """One reader's ranking from their numbers: best first, with inclusion and reasons."""
    concepts, followed, presence, needed, evidence, by_author, eligible, score, similar = scored
    # candidates are sorted by id, so the position breaks ties on the id
    order = sorted(range(len(needed)), key=lambda i: (-round(float(score[i]), 9), i))
    included = set([i for i in order if eligible[i]][: profile.max_items])
    # related terms for the papers a reader may look at: the digest and the next few
    shown = sorted(
        included if included_only else set(order[: max(profile.max_items, EXPLAINED)]) | included
    )
    related = dict(zip(shown, _related(pool.space, similar, shown, concepts), strict=True))
    return [
        Ranked(
            paper=pool.papers[needed[i]],
            score=round(float(score[i]), 4),
            evidence=round(float(evidence[i]), 4),
            relevance=round(float(similar.relative[i]), 4),
            included=i in included,
            matched=_matched(
                pool.papers[needed[i]],
                concepts,
                presence[:, needed[i]],
                followed if by_author[i] else set(),
            ),
            related=related.get(i, ()),
        )
        for i in order
        if i in included or not included_only
    ]


def quoted(terms: Sequence[str]) -> str:
    """Keywords for display: phrases in quotes, comma-separated (`"reward model", RLHF`)."""
    return ", ".join(f'"{t}"' if " " in t else t for t in terms)


def _matched(
    paper: Paper, concepts: list[Concept], presence: np.ndarray, followed: set[str]
) -> tuple[str, ...]:
    """A followed author, then the reader's keywords found in the paper, strongest first."""
    found = [f"author: {a}" for a in paper.authors if _name(a) in followed][:1] if followed else []
    if not presence.any():
        return tuple(found)
    for j in np.argsort(-presence, kind="stable"):
        if presence[j] > 0:
            found.append(concepts[j].text.strip())
    return tuple(found)


def _related(
    space: Space, similar: _Similar, shown: list[int], concepts: list[Concept]
) -> list[tuple[str, ...]]:
    """Per candidate at `shown` (ascending): the terms, other than the keywords, that add most
    to its similarity (single words found in at least RELATED_MIN_DF papers), as words."""
    m, weights = similar.rows, similar.weights
    n = len(m.indptr) - 1
    row = np.repeat(np.arange(n), np.diff(m.indptr))
    picked = np.zeros(n, dtype=bool)
    picked[shown] = True
    keep = np.flatnonzero(picked[row] & (weights != 0))
    keep = keep[space.shown[m.indices[keep]]]
    if concepts:  # the keywords' own terms: the columns of their vectors
        own = np.concatenate([space.vector(c.terms).cols for c in concepts])
        with space.marked(own) as theirs:
            keep = keep[~theirs[m.indices[keep]]]
    where, cols, values = row[keep], m.indices[keep], m.data[keep] * weights[keep]
    # entries are in row order and `shown` ascends: each candidate's are one stretch
    starts = np.searchsorted(where, shown, side="left").tolist()
    ends = np.searchsorted(where, shown, side="right").tolist()
    out = []
    for lo, hi in zip(starts, ends, strict=True):
        weight, at = values[lo:hi], cols[lo:hi]
        if len(weight) > RELATED:  # the RELATED largest, and any equal to the last of them
            pick = weight >= np.partition(weight, len(weight) - RELATED)[len(weight) - RELATED]
            weight, at = weight[pick], at[pick]
        top = sorted(zip(-weight, map(space.word, at.tolist()), strict=True))[:RELATED]
        out.append(tuple(w for _, w in top))  # ties: alphabetical
    return out


def profile_of(subscriber: Subscriber, settings: RankingConfig) -> Profile:
    """The ranking profile of a subscriber under the config's ranking settings."""
    return Profile(
        keywords=subscriber.keywords,
        exclude=subscriber.exclude,
        authors=subscriber.authors,
        liked=subscriber.liked,
        max_items=subscriber.max_items,
        threshold=settings.threshold,
        trend_weight=settings.trend_weight,
    )
