"""Ranking quality: mean nDCG@10 and digest F1 of digest's ranking vs plain TF-IDF cosine.

Data: the three listing snapshots (examples/listings/), the six reader profiles and graded
judgments (shared/data/relevance/, copied to tests/fixtures/relevance/ so this runs without
shared/). Each listing is one day: papers are ranked per listing (the corpus the TF-IDF space is
fitted on is all three listings, as the store would hold them), and also all 165 at once.

Metrics (shared/data/README.md): nDCG@10 with gain 2^grade - 1, averaged over (listing, profile)
pairs that have a relevant paper; digest precision = share of included papers with grade >= 1,
recall = share of grade-2 papers included, each averaged over profiles, F1 of the two averages.
Plain TF-IDF: cosine to the joined keywords (English stop words, sublinear tf, word 1-2 grams);
its digest is the top papers above the single cosine threshold that is best on these same lines
(optimistic for it), capped at max_items like ours.

    python bench/ranking_quality.py [--max-items 10]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.papers import normalise_title  # noqa: E402
from digest.rank import Profile, Space, rank  # noqa: E402
from digest.sources.listing import parse_listing  # noqa: E402


def data_dir() -> Path:
    shared = ROOT.parent / "shared" / "data" / "relevance"
    return shared if shared.is_dir() else ROOT / "tests" / "fixtures" / "relevance"


def load() -> tuple[list[list], list[dict], dict[str, dict[str, int]]]:
    listings = [
        list(parse_listing(p.read_text()).papers)
        for p in sorted((ROOT / "examples" / "listings").glob("*.txt"))
    ]
    rel = data_dir()
    profiles = json.loads((rel / "profiles.json").read_text())
    qrels = {}
    for line in (rel / "qrels.jsonl").read_text().splitlines():
        d = json.loads(line)
        qrels[normalise_title(d["title"])] = d["grades"]
    return listings, profiles, qrels


def ndcg10(grades_in_order: list[int], all_grades: list[int]) -> float | None:
    def dcg(gs: list[int]) -> float:
        return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gs[:10]))

    ideal = dcg(sorted(all_grades, reverse=True))
    return None if ideal == 0 else dcg(grades_in_order) / ideal


def evaluate(runs: list[tuple[list[int], list[bool], list[int]]]) -> tuple[float, float, float, float]:
    """runs: per (day, profile): grades in ranked order, included flags, all grades."""
    ndcgs, precisions, recalls = [], [], []
    for ordered, included, grades in runs:
        n = ndcg10(ordered, grades)
        if n is not None:
            ndcgs.append(n)
        picked = [g for g, inc in zip(ordered, included) if inc]
        precisions.append(sum(g >= 1 for g in picked) / len(picked) if picked else 1.0)
        must = sum(g == 2 for g in grades)
        recalls.append(sum(g == 2 for g in picked) / must if must else 1.0)
    p, r = float(np.mean(precisions)), float(np.mean(recalls))
    return float(np.mean(ndcgs)), 2 * p * r / (p + r) if p + r else 0.0, p, r


def plain_scores(corpus: list, days: list[list], keywords: list[str]) -> list[np.ndarray]:
    vec = TfidfVectorizer(stop_words="english", sublinear_tf=True, ngram_range=(1, 2))
    vec.fit([p.title + " " + p.abstract for p in corpus])
    q = normalize(vec.transform([" ".join(keywords)]))
    return [
        (normalize(vec.transform([p.title + " " + p.abstract for p in day])) @ q.T).toarray().ravel()
        for day in days
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-items", type=int, default=10)
    args = parser.parse_args()
    listings, profiles, qrels = load()
    corpus = {p.id: p for day in listings for p in day}
    everything = [list(corpus.values())]
    space = Space(list(corpus.values()))

    def grade(p, who: str) -> int:
        return qrels[normalise_title(p.title)][who]

    rows = []
    for label, days in (("per listing (3 days)", listings), ("all 165 at once", everything)):
        ours, plain_by_threshold = [], {}
        for prof in profiles:
            who = prof["id"]
            profile = Profile(keywords=tuple(prof["keywords"]), max_items=args.max_items)
            for day in days:
                ranked = rank(space, day, profile)
                ours.append(
                    ([grade(r.paper, who) for r in ranked], [r.included for r in ranked],
                     [grade(p, who) for p in day])
                )
            for day, scores in zip(days, plain_scores(list(corpus.values()), days, prof["keywords"])):
                order = np.argsort(-scores, kind="stable")
                for t in np.arange(0.0, 0.5, 0.01):
                    inc = [scores[i] >= t for i in order]
                    inc = [x and k < args.max_items for k, x in enumerate(inc)]
                    plain_by_threshold.setdefault(round(t, 2), []).append(
                        ([grade(day[i], who) for i in order], inc, [grade(p, who) for p in day])
                    )
        best_t, plain = max(
            ((t, evaluate(r)) for t, r in plain_by_threshold.items()), key=lambda x: x[1][1]
        )
        rows.append((label, evaluate(ours), plain, best_t))

    print(f"max_items={args.max_items}; {len(corpus)} papers, {len(profiles)} profiles")
    print(f"{'set':<22} {'method':<28} {'nDCG@10':>8} {'F1':>6} {'P':>6} {'R':>6}")
    for label, o, p, t in rows:
        print(f"{label:<22} {'digest':<28} {o[0]:8.3f} {o[1]:6.3f} {o[2]:6.3f} {o[3]:6.3f}")
        print(f"{'':<22} {f'plain TF-IDF (best t={t:.2f})':<28} {p[0]:8.3f} {p[1]:6.3f} {p[2]:6.3f} {p[3]:6.3f}")


if __name__ == "__main__":
    main()
