"""Acronyms and their expansions, learned from how abstracts define them. Pure, no I/O.

    expansions("MoE", abstracts)               -> ("mixture of experts", ...)
    abbreviations("mixture of experts", abstracts) -> ("MoE",)

Authors define an acronym the first time they use it: "... a sparse mixture of experts (MoE)
layer ...". The long form is the shortest run of words before the parenthesis whose letters
hold the acronym's letters in order, starting with its first letter (after Schwartz & Hearst,
"A simple algorithm for identifying abbreviation definitions in biomedical text", 2003). A
definition counts when at least MIN_SEEN abstracts give it and it is at least MIN_SHARE of the
definitions found: a reader's "SSM" then also finds "state space model", and "mixture of
experts" also finds "MoE". Acronyms of two letters are never learned from a phrase ("RM" for
"reward model" would match far more than it means).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

MIN_SEEN = 2  # abstracts that must give a definition
MIN_SHARE = 0.2  # of all the definitions found for the same acronym or phrase
MOST = 3  # definitions kept
_ACRONYM = re.compile(r"[A-Za-z][A-Za-z0-9]{1,7}")
_DEFINED = r"\(\s*([{first}][A-Za-z0-9-]{{1,9}})\s*[),;]"  # "(MoE)", "(SSMs;"
_PLAIN = re.compile(r"[\w-]+")


def is_acronym(keyword: str) -> bool:
    """Whether a keyword is written as an acronym: one short word with two capitals or more
    ("MoE", "SSM", "LoRA", "CLIP"; not "Mamba" or "int4")."""
    word = keyword.strip()
    return bool(_ACRONYM.fullmatch(word)) and sum(c.isupper() for c in word) >= 2


def singular(acronym: str) -> str:
    """ "SSMs" -> "SSM"; other acronyms unchanged."""
    if len(acronym) > 2 and acronym.endswith("s") and acronym[:-1].isupper():
        return acronym[:-1]
    return acronym


def fits(acronym: str, words: list[str]) -> bool:
    """Whether some words can spell the acronym: its first letter starts the first word, the
    others follow in order, and there are not many more words than letters."""
    letters = [c for c in acronym.casefold() if c.isalnum()]
    if not words or not letters or words[0][:1].casefold() != letters[0]:
        return False
    if len(words) > len(letters) + 2:
        return False
    text = " ".join(words).casefold()
    at = 0
    for c in letters:
        at = text.find(c, at)
        if at < 0:
            return False
        at += 1
    return True


def _kept(found: Counter[str]) -> tuple[str, ...]:
    total = sum(found.values())
    return tuple(
        form for form, n in found.most_common(MOST) if n >= MIN_SEEN and n >= MIN_SHARE * total
    )


@lru_cache(maxsize=64)
def _defined(first: str) -> re.Pattern[str]:
    """The pattern of a parenthesised acronym starting with a letter ("(MoE)", "(SSMs;")."""
    return re.compile(_DEFINED.format(first=re.escape(first.lower() + first.upper())))


def _words_before(text: str, at: int) -> list[str]:
    """The words just before a position (at most eight, hyphenated words split, casefolded; a
    word with punctuation ends the run)."""
    before: list[str] = []
    for word in reversed(text[:at].rsplit(None, 8)[-8:]):
        if not _PLAIN.fullmatch(word):
            break
        before[:0] = [part for part in word.casefold().split("-") if part]
    return before


def expansions(acronym: str, abstracts: Iterable[str]) -> tuple[str, ...]:
    """The long forms the abstracts give for an acronym, most frequent first: for each
    definition, the shortest run of words before it that can spell it."""
    acronym = singular(acronym.strip())
    found: Counter[str] = Counter()
    for text in abstracts:
        if acronym not in text:
            continue
        for m in _defined(acronym[0]).finditer(text):
            if singular(m.group(1)) != acronym:
                continue
            before = _words_before(text, m.start())
            fitting = (before[-n:] for n in range(1, len(before) + 1))
            words = next((w for w in fitting if fits(acronym, w)), None)
            if words:
                found[" ".join(words)] += 1
    return _kept(found)


def abbreviations(phrase: str, abstracts: Iterable[str]) -> tuple[str, ...]:
    """The acronyms (three letters or more) the abstracts give for a phrase (its last word may
    be plural: "state space models (SSMs)")."""
    words = [part for w in phrase.casefold().split() for part in w.split("-") if part]
    if len(words) < 2:
        return ()
    found: Counter[str] = Counter()
    for text in abstracts:
        for m in _defined(words[0][0]).finditer(text):
            acronym = singular(m.group(1))
            if len(acronym) < 3 or not is_acronym(acronym) or not fits(acronym, words):
                continue
            tail = _words_before(text, m.start())[-len(words) :]
            if tail[:-1] == words[:-1] and tail[-1:] and tail[-1].startswith(words[-1]):
                found[acronym] += 1
    return _kept(found)
