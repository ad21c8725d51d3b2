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

MIN_SEEN = 2  # abstracts that must give a definition
MIN_SHARE = 0.2  # of all the definitions found for the same acronym or phrase
MOST = 3  # definitions kept
_ACRONYM = re.compile(r"[A-Za-z][A-Za-z0-9]{1,7}")


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


def expansions(acronym: str, abstracts: Iterable[str]) -> tuple[str, ...]:
    """The long forms the abstracts give for an acronym, most frequent first."""
    acronym = singular(acronym.strip())
    pattern = re.compile(r"((?:[\w-]+ ){1,8})\(\s*" + re.escape(acronym) + r"s?\s*[),;]")
    found: Counter[str] = Counter()
    for text in abstracts:
        for m in pattern.finditer(text):
            before = m.group(1).split()
            for n in range(1, len(before) + 1):  # the shortest run that fits
                words = before[-n:]
                if fits(acronym, [part for w in words for part in w.split("-") if part]):
                    found[" ".join(words).casefold()] += 1
                    break
    return _kept(found)


def abbreviations(phrase: str, abstracts: Iterable[str]) -> tuple[str, ...]:
    """The acronyms (three letters or more) the abstracts give for a phrase."""
    words = re.findall(r"\w+", phrase.casefold())
    if len(words) < 2:
        return ()
    spelled = r"[\s-]+".join(re.escape(w) for w in words)
    pattern = re.compile(spelled + r"\w*\s*\(\s*([A-Za-z][A-Za-z0-9-]{2,9})\s*\)", re.IGNORECASE)
    found: Counter[str] = Counter()
    for text in abstracts:
        for m in pattern.finditer(text):
            acronym = singular(m.group(1))
            if is_acronym(acronym) and len(acronym) >= 3 and fits(acronym, words):
                found[acronym] += 1
    return _kept(found)
