"""A paper's analysed text, as the ranking space reads it: each field's terms with their counts.

    found = analyse(paper, surface)     # pure: title, abstract, ai_keywords -> PaperTerms

Terms are the stem 1..3-grams of `digest.text`, each named by a 64-bit id (`term_id`: the
first 8 bytes of its BLAKE2b hash), so an analysis can be stored as a few kilobytes of numbers
and read back without a vocabulary of strings. Analysing text is most of the cost of building a
run's space; `digest run` keeps each paper's analysis in the database (see `Store.save_terms`)
and analyses only the papers it has not seen. Two terms of one corpus share an id with a
chance of about 1 in 10^7 for a vocabulary of a few million terms.

`surface` counts which word each stem stood for in titles and abstracts, so related terms are
shown as a reader would write them ("quantization", not `quantiz`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from digest.text import content_words, ngrams, stem, stems
from digest.types import Paper

VERSION = 2  # bump when digest.text changes what a paper's terms are: stored analyses are redone
TERMS = np.dtype([("term", "<i8"), ("count", "<u4")])


def term_id(term: str) -> int:
    """The 64-bit id of a term, the same in every process."""
    digest = hashlib.blake2b(term.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def term_ids(terms: Iterable[str]) -> np.ndarray:
    """The ids of some terms, as int64."""
    return np.fromiter(map(term_id, terms), dtype=np.int64)


@dataclass(frozen=True)
class PaperTerms:
    """One paper's distinct terms per field (TERMS arrays: id, count)."""

    title: np.ndarray
    abstract: np.ndarray
    keywords: np.ndarray

    def to_bytes(self) -> tuple[bytes, bytes, bytes]:
        return self.title.tobytes(), self.abstract.tobytes(), self.keywords.tobytes()

    @classmethod
    def from_bytes(cls, title: bytes, abstract: bytes, keywords: bytes) -> PaperTerms:
        return cls(*(np.frombuffer(b, dtype=TERMS) for b in (title, abstract, keywords)))


def _counted(terms: list[str]) -> np.ndarray:
    counts = Counter(terms)
    out = np.empty(len(counts), dtype=TERMS)
    out["term"] = term_ids(counts)
    out["count"] = np.fromiter(counts.values(), dtype=np.uint32, count=len(counts))
    return out


def analyse(paper: Paper, surface: Counter[tuple[str, str]]) -> PaperTerms:
    """The terms of a paper's title, abstract and ai_keywords; adds to `surface` which word each
    stem was (a stem met only in ai_keywords is recorded as itself, with count 0)."""
    fields = []
    for text in (paper.title, paper.abstract):
        found = content_words(text)
        tokens = list(map(stem, found))
        surface.update(zip(tokens, found, strict=True))
        fields.append(_counted(ngrams(tokens)))
    keywords = []
    for k in paper.ai_keywords:
        tokens = stems(k)
        for s in tokens:
            surface[(s, s)] += 0
        keywords += ngrams(tokens)
    return PaperTerms(fields[0], fields[1], _counted(keywords))


def most_frequent_word(surface: Counter[tuple[str, str]]) -> dict[str, str]:
    """Per stem, the word seen most often behind it (the first seen among equals)."""
    best: dict[str, tuple[int, str]] = {}
    for (s, w), n in surface.items():  # in first-seen order
        if s not in best or n > best[s][0]:
            best[s] = (n, w)
    return {s: w for s, (_, w) in best.items()}
