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

from digest import model
from digest.config import RankingConfig, Subscriber
from digest.space import Row, Space
from digest.text import stem, stems, words
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
    position = {p.id: i for i, p in enumerate(papers)}
    for k, profile in enumerate(profiles):
        kept = np.ones(len(papers), dtype=bool)
        kept[[position[i] for i in (taken[k] if taken else ()) if i in position]] = False
        keep = np.flatnonzero(kept)
        yield _ranking(
            space,
            [papers[i] for i in keep] if len(keep) < len(papers) else papers,
            rows[keep],
            [names[i] for i in keep] if names else [],
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
    names: list[set[str]],
    profile: Profile,
    included_only: bool,
) -> list[Ranked]:
    """One reader's ranking of some candidates (`names`: each one's authors as `_name`s, or
    nothing when no reader follows an author)."""
    if not len(rows):
        return []
    topics = _topics(space, profile.keywords)
    presence = model.evidence(topics, rows)
    evidence = model.combined(presence)
    followed = {_name(a) for a in profile.authors}
    by_author = np.array([not followed.isdisjoint(n) for n in names], dtype=bool)
    if not followed:
        by_author = np.zeros(len(rows), dtype=bool)
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
    eligible = (model.eligible(evidence, relative, profile.threshold) | by_author) & ~blocked
    trend = np.array([_trend(papers[i]) for i in needed])
    score = model.score(evidence, relative) + eligible * profile.trend_weight * trend
    score = np.where(blocked, -1.0, score)
    # candidates are sorted by id, so the position breaks ties on the id
    order = sorted(range(len(needed)), key=lambda i: (-round(float(score[i]), 9), i))
    included = set([i for i in order if eligible[i]][: profile.max_items])
    explained = included | (
        set() if included_only else set(order[: max(profile.max_items, EXPLAINED)])
    )
    own = {s for t in topics for f in t.forms for s in stems(f)}  # the keywords' own stems
    shown = sorted(explained)
    related = dict(zip(shown, _related(space, reader, rows[needed[shown]], own), strict=True))
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
            related=related.get(i, ()),
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


def _related(space: Space, reader: Row, rows: np.ndarray, own: set[str]) -> list[tuple[str, ...]]:
    """Per corpus row: the single words, other than the keywords' own, that add most to the
    paper's closeness to the reader's profile (words found in a few papers, but not in most)."""
    row_of, cols, values = model.products(space, reader, rows)
    shared = values > 0  # terms of the paper that the profile has
    row_of, cols, values = row_of[shared], cols[shared], values[shared]
    out: list[tuple[str, ...]] = []
    for k in range(len(rows)):
        mine = row_of == k
        found: list[str] = []
        for _, j in sorted(zip(-values[mine], cols[mine].tolist(), strict=True)):
            word = space.word(j) if space.shown[j] else None
            if word and not word.isdigit() and stem(word) not in own and word not in found:
                found.append(word)
                if len(found) == RELATED:
                    break
        out.append(tuple(found))
    return out


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
