"""The ranking space of a run: the stored corpus as TF-IDF rows and per-field term counts.

    space = Space(corpus)            # once per run (from kept analyses: see `digest.terms`)
    space.rows_with(space.title, ["mixtur expert"])  -> rows whose title holds every key

Machinery only: what a paper is about for a reader is decided in `digest.model`. Rows are the
corpus papers in order; columns are the corpus's terms (stem 1..3-grams, `digest.text`), named
by their 64-bit ids. The TF-IDF matrix is scikit-learn's TfidfTransformer (sublinear tf, l2
rows) over the counts of title (twice), abstract and HF ai_keywords.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer

from digest.terms import TERMS, PaperTerms, analyse, most_frequent_word, term_ids
from digest.types import Paper

RELATED_MIN_DF = 3  # a word shown as "related" is in at least this many papers
RELATED_MAX_SHARE = 0.05  # ... and in at most this share of them ("model", "parameters" say little)


class Space:
    """The TF-IDF space of a corpus, with per-field term counts. Fit once per run."""

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
        per_field = [
            [getattr(a, name) for a in analysed] for name in ("title", "abstract", "keywords")
        ]
        entries = [np.concatenate(f) if f else np.zeros(0, dtype=TERMS) for f in per_field]
        # the columns are the corpus's term ids, ascending; each entry's column from one sort
        # (np.unique and searchsorted over a million ids each take seconds: numpy 2 hashes)
        ids = np.concatenate([e["term"] for e in entries])
        order = np.argsort(ids)
        ordered = ids[order]
        first = np.ones(len(ids), dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        self.ids = ordered[first]
        column = np.empty(len(ids), dtype=np.int32)
        column[order] = np.cumsum(first) - 1
        del ids, order, ordered, first  # tens of millions of entries on a large corpus
        shape = (len(self.papers), len(self.ids))
        ends = np.cumsum([len(e) for e in entries])
        self.title, self.abstract, self.keywords = (
            _counts(field, e, cols, shape)
            for field, e, cols in zip(per_field, entries, np.split(column, ends[:-1]), strict=True)
        )
        if len(self.ids):
            transformer = TfidfTransformer(sublinear_tf=True, norm="l2")
            counts = 2 * self.title + self.abstract + self.keywords
            self.matrix = sp.csr_matrix(transformer.fit_transform(counts), dtype=np.float32)
            self.idf = transformer.idf_
        else:
            self.matrix, self.idf = sp.csr_matrix(shape, dtype=np.float32), np.zeros(0)
        df = np.bincount(self.matrix.indices, minlength=len(self.ids))
        stems = list(words)
        at = self.columns(stems)
        self._word = {int(j): words[s] for j, s in zip(at, stems, strict=True) if j >= 0}
        # single words fit to show as "related": in a few papers, but not in most
        self.shown = np.zeros(len(self.ids), dtype=bool)
        self.shown[at[at >= 0]] = True
        self.shown &= (df >= RELATED_MIN_DF) & (df <= max(RELATED_MAX_SHARE * len(self.papers), 10))
        self.cache: dict[Any, Any] = {}  # per-run values of the model (`digest.model.topic`)

    def columns(self, terms: Sequence[str]) -> np.ndarray:
        """The column of each term; -1 for a term the corpus does not have."""
        if not len(self.ids):
            return np.full(len(terms), -1, dtype=np.int64)
        wanted = term_ids(terms)
        at = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)
        return np.where(self.ids[at] == wanted, at, -1)

    def word(self, j: int) -> str | None:
        """The word shown for the single-word term of column j (None for an n-gram)."""
        return self._word.get(j)

    def rows_with(self, field: sp.csc_matrix, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The rows whose field holds every key (ascending), and the least count of the keys."""
        rows: np.ndarray | None = None
        counts: np.ndarray | None = None
        for j in self.columns(keys).tolist():
            if j < 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            lo, hi = field.indptr[j], field.indptr[j + 1]
            order = np.argsort(field.indices[lo:hi])
            has, values = field.indices[lo:hi][order], field.data[lo:hi][order]
            if rows is None or counts is None:
                rows, counts = has, values
                continue
            rows, mine, theirs = np.intersect1d(rows, has, assume_unique=True, return_indices=True)
            counts = np.minimum(counts[mine], values[theirs])
        if rows is None or counts is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return rows.astype(np.int64), counts

    def vector(self, terms: Sequence[str]) -> Row:
        """The unit TF-IDF row of some terms; those the corpus lacks are ignored."""
        cols = self.columns(terms)
        at, counts = np.unique(cols[cols >= 0], return_counts=True)
        return Row(at, (1 + np.log(counts)) * self.idf[at]).unit()

    def summed(self, rows: np.ndarray) -> Row:
        """Some rows of the TF-IDF matrix added up."""
        picked = self.matrix[rows]
        return Row.sum(picked.indices, picked.data)


@dataclass(frozen=True)
class Row:
    """A sparse row of the space as two arrays: its columns (ascending, each once) and their
    values. A profile is a few hundred terms of a vocabulary of a million: plain numpy on its
    entries costs less than scipy's matrix objects."""

    cols: np.ndarray
    vals: np.ndarray

    @classmethod
    def sum(cls, cols: np.ndarray, vals: np.ndarray) -> Row:
        """Entries added up by column (by a sort: numpy 2's np.unique hashes, several times
        slower on these arrays)."""
        if not len(cols):
            return cls(np.zeros(0, dtype=np.int64), np.zeros(0))
        order = np.argsort(cols, kind="stable")
        ordered = cols[order]
        starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
        return cls(ordered[starts], np.add.reduceat(vals[order].astype(np.float64), starts))

    def plus(self, other: Row, weight: float = 1.0) -> Row:
        """This row plus `weight` x the other."""
        return Row.sum(
            np.concatenate([self.cols, other.cols]),
            np.concatenate([self.vals, weight * other.vals]),
        )

    def unit(self) -> Row:
        """Scaled to length 1 (unchanged when it is zero)."""
        norm = float(np.sqrt(np.dot(self.vals, self.vals)))
        return Row(self.cols, self.vals / norm) if norm else self

    def strongest(self, n: int) -> Row:
        """Its n largest values (and any equal to the n-th)."""
        if len(self.vals) <= n:
            return self
        keep = self.vals >= np.partition(self.vals, -n)[-n]
        return Row(self.cols[keep], self.vals[keep])


EMPTY = Row(np.zeros(0, dtype=np.int64), np.zeros(0))


def _counts(
    arrays: list[np.ndarray], entries: np.ndarray, cols: np.ndarray, shape: tuple[int, int]
) -> sp.csc_matrix:
    """One field's term counts, papers x terms (CSC: a term's papers are contiguous), from each
    paper's TERMS array, their concatenation `entries` and each entry's column."""
    rows = np.repeat(np.arange(len(arrays)), [len(a) for a in arrays])
    data = entries["count"].astype(np.float32)
    return sp.csc_matrix((data, (rows, cols)), shape=shape, dtype=np.float32)
