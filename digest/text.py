"""Text analysis shared by the ranking: words -> normalised stems -> n-grams. Pure, no I/O.

"quantization", "quantized", "quantizing" and "quantise" all become `quantiz`: British -ise/-yse
spellings are mapped to -ize/-yze, then the Snowball English stemmer runs, except that agent
nouns keep their "-er" ("adapters" -> `adapter`, not `adapt` as in "adaptation"; "transformer"
stays apart from "transformation"). Stop words are dropped before n-grams are formed, so the
phrase "mixture of experts" is the bigram `mixtur expert` in keywords and abstracts alike.
LaTeX commands and math markers are reduced to their words.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

MAX_NGRAM = 3
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?(?:-[^\W_]+(?:'[^\W_]+)?)*")  # a word or a compound
_LATEX = re.compile(r"\\[a-zA-Z]+|[${}^_~\\]")
_BRITISH = re.compile(r"(?<=\w{3})(i|y)s(e|ed|es|ing|ation|ations|ational|er|ers)$")
_STOP = frozenset(ENGLISH_STOP_WORDS) - {"system", "bill", "fire", "interest"}
_stemmer = snowballstemmer.stemmer("english")


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return _LATEX.sub(" ", text).replace("'s ", " ")


def words(text: str) -> list[str]:
    """Casefolded words of a text; hyphenated words split ("post-training" -> post, training)."""
    return _WORD.findall(_clean(text))


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The normalised stem of one casefolded word."""
    word = _BRITISH.sub(r"\1z\2", word)
    if word.endswith(("er", "ers")) and len(word) > 5:
        return word.removesuffix("s")
    return str(_stemmer.stemWord(word))


def _meaningful(word: str) -> bool:
    return word not in _STOP and (len(word) > 1 or word.isdigit())


def content_words(text: str) -> list[str]:
    """The words of a text that carry meaning: stop words and single letters dropped, except in
    a hyphenated compound that would keep fewer than two words without them ("out-of-domain"
    stays out, of, domain rather than becoming "domain"; "mixture-of-experts" is mixture,
    experts, as "mixture of experts" is)."""
    out: list[str] = []
    for token in _TOKEN.findall(_clean(text)):
        parts = token.split("-")
        kept = [w for w in parts if _meaningful(w)]
        out += parts if len(parts) > 1 and len(kept) < 2 else kept
    return out


def stems(text: str) -> list[str]:
    """The stems of a text's content words, in order."""
    return [stem(w) for w in content_words(text)]


def ngrams(tokens: list[str], n_max: int = MAX_NGRAM) -> list[str]:
    """Every 1..n_max-gram of the tokens, joined by spaces (unigrams first, then bigrams...)."""
    out = list(tokens)
    for n in range(2, n_max + 1):
        out += map(" ".join, zip(*(tokens[i:] for i in range(n)), strict=False))
    return out


def analyse(text: str) -> list[str]:
    """The terms of a text as the TF-IDF space sees it: stem 1..3-grams."""
    return ngrams(stems(text))
