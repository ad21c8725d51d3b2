"""Ranking: papers + a reader's profile -> ranked papers with reasons. Pure: no I/O, deterministic.

    space = Space(corpus)                       # once per run (`digest.space`)
    ranked = rank(space, candidates, profile)   # per reader

The rule (what makes a paper right for a reader) is `digest.model`; this module applies it to
a reader's candidates: excludes, followed authors, the cap of max_items, trending signals, and
the reasons shown beside each paper (the keywords it matched, and the words it shares with the
reader's topics).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from digest import model
from digest.config import RankingConfig, Subscriber
from digest.space import Space
from digest.text import words
from digest.types import Paper

THRESHOLD = model.MIN_EVIDENCE
TREND_WEIGHT = 0.25
RELATED = 3  # related words shown per paper
EXPLAINED = 20  # the top papers of a full ranking get related words; the rest only keywords


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
    relevance: float  # similarity relative to a typical paper of the reader's topics
    included: bool
    matched: tuple[str, ...]  # the reader's keywords (or followed author) found, strongest first
    related: tuple[str, ...]  # words it shares with the reader's topics

    @property
    def reasons(self) -> tuple[str, ...]:
        """What made it score: matched keywords, then related words."""
        return self.matched + self.related


def rank(
    space: Space, candidates: Sequence[Paper], profile: Profile, *, included_only: bool = False
) -> list[Ranked]:
    """Every candidate of the space's corpus (or only the included ones), best first, with
    evidence, inclusion and reasons. Deterministic: ties break on the paper id. Candidates
    unknown to the space are left out."""
    return next(rank_many(space, candidates, [profile], included_only=included_only))


def rank_many(
    space: Space,
    candidates: Sequence[Paper],
    profiles: Sequence[Profile],
    *,
    taken: Sequence[Collection[str]] | None = None,
    included_only: bool = False,
) -> Iterator[list[Ranked]]:
    """`rank` for many readers of the same candidates, less the ids in each reader's `taken`.
    Keywords' topics are shared through the space. With `included_only`, similarities are
    worked out only for the candidates with enough evidence to be included."""
    papers = sorted({p.id: p for p in candidates if p.id in space.row}.values(), key=lambda p: p.id)
    rows = np.array([space.row[p.id] for p in papers], dtype=np.int64)
    names = (
        [{_name(a) for a in p.authors} for p in papers] if any(p.authors for p in profiles) else []
    )
    for k, profile in enumerate(profiles):
        left = taken[k] if taken else ()
        keep = np.array([p.id not in left for p in papers], dtype=bool)
        followed = {_name(a) for a in profile.authors}
        by_author = np.array([not followed.isdisjoint(n) for n in names], dtype=bool)
        yield _ranking(
            space,
            [p for p, ok in zip(papers, keep, strict=True) if ok],
            rows[keep],
            by_author[keep] if followed else np.zeros(int(keep.sum()), dtype=bool),
            profile,
            included_only,
        )


def _topics(space: Space, keywords: Sequence[str]) -> list[model.Topic]:
    return [t for t in (model.topic(space, k) for k in keywords) if t is not None]


def _name(name: str) -> str:
    return " ".join(words(name))


def _ranking(
    space: Space,
    papers: list[Paper],
    rows: np.ndarray,
    by_author: np.ndarray,
    profile: Profile,
    included_only: bool,
) -> list[Ranked]:
    """One reader's ranking of some candidates (`by_author`: whether one of their authors is
    followed)."""
    topics = _topics(space, profile.keywords)
    presence = model.evidence(topics, rows)
    evidence = model.combined(presence)
    followed = {_name(a) for a in profile.authors}
    evidence = np.where(by_author, 1.0, evidence)
    blocked = np.zeros(len(rows), dtype=bool)
    for t in _topics(space, profile.exclude):
        blocked |= model.evidence([t], rows)[0] >= model.MIN_EVIDENCE
    needed = (
        np.flatnonzero(~blocked & (evidence >= profile.threshold))
        if included_only
        else (np.arange(len(rows)))
    )
    if not len(needed):
        return []
    liked = np.array([space.row[i] for i in profile.liked if i in space.row], dtype=np.int64)
    reader = model.profile(space, topics, liked)
    relative = model.relative(space, reader, topics, rows[needed])
    evidence, by_author, blocked = evidence[needed], by_author[needed], blocked[needed]
    eligible = (
        model.eligible(evidence, relative, profile.threshold) | (by_author & (evidence > 0))
    ) & ~blocked
    trend = np.array([_trend(papers[i]) for i in needed])
    score = model.score(evidence, relative) + eligible * profile.trend_weight * trend
    score = np.where(blocked, -1.0, score)
    # candidates are sorted by id, so the position breaks ties on the id
    order = sorted(range(len(needed)), key=lambda i: (-round(float(score[i]), 9), i))
    included = set([i for i in order if eligible[i]][: profile.max_items])
    explained = included | (
        set() if included_only else set(order[: max(profile.max_items, EXPLAINED)])
    )
    own = {w for t in topics for f in t.forms for w in words(f)}
    return [
        Ranked(
            paper=papers[needed[i]],
            score=round(float(score[i]), 4),
            evidence=round(float(evidence[i]), 4),
            relevance=round(float(relative[i]), 4),
            included=i in included,
            matched=_matched(
                papers[needed[i]],
                topics,
                presence[:, needed[i]],
                followed if by_author[i] else set(),
            ),
            related=_related(space, reader, rows[needed[i]], own) if i in explained else (),
        )
        for i in order
        if i in included or not included_only
    ]


def _trend(paper: Paper) -> float:
    """0..1 from HF upvotes and GitHub stars, log-scaled (100 upvotes or 1,000 stars give 1)."""
    up = math.log1p(max(paper.upvotes or 0, 0)) / math.log1p(100)
    stars = math.log1p(max(paper.github_stars or 0, 0)) / math.log1p(1000)
    return min(1.0, max(up, stars))


def _matched(
    paper: Paper, topics: list[model.Topic], presence: np.ndarray, followed: set[str]
) -> tuple[str, ...]:
    """A followed author, then the reader's keywords found in the paper, strongest first."""
    found = [f"author: {a}" for a in paper.authors if _name(a) in followed][:1]
    for j in np.argsort(-presence, kind="stable"):
        if presence[j] > 0:
            found.append(topics[j].keyword.strip())
    return tuple(found)


def _related(space: Space, reader: sp.csr_matrix, row: int, own: set[str]) -> tuple[str, ...]:
    """The single words, other than the keywords' own, that add most to a paper's closeness to
    the reader's profile (words found in a few papers, but not in most)."""
    _, cols, values = model.products(space, reader, np.array([row]))
    shared = values > 0  # terms of the paper that the profile has
    out: list[str] = []
    for _, j in sorted(zip(-values[shared], cols[shared].tolist(), strict=True)):
        word = space.word(j) if space.shown[j] else None
        if word and word not in own and not word.isdigit() and word not in out:
            out.append(word)
            if len(out) == RELATED:
                break
    return tuple(out)


def quoted(terms: Sequence[str]) -> str:
    """Keywords for display: phrases in quotes, comma-separated (`"reward model", RLHF`)."""
    return ", ".join(f'"{t}"' if " " in t else t for t in terms)


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
