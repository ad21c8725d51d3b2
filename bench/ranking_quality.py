"""Ranking quality on readers the model was not tuned on, beside plain TF-IDF and BM25.

Two kinds of readers, each split into the readers the model's constants were tuned on (TUNE,
TUNE_CATEGORIES) and the others, reported apart ("held out"), per reader and per group:

- graded readers: the fourteen profiles with graded judgments (2 on topic, 1 partly, 0 not)
  of the three bundled listing snapshots (tests/fixtures/relevance/, examples/listings/). Each
  snapshot is one day's candidates, ranked in the space of the three as a store holds them and,
  with --history (when ../shared/data is there), over a history of 5,841 earlier HF papers too.
- arXiv-category readers (needs ../shared/data/arxiv_categories): for each of twelve arXiv
  categories, a reader whose keywords are the category's official name and one whose keywords
  were typed as a reader would (written before any measurement, never changed); relevant =
  arXiv filed the paper in that category. Each of 22 days is ranked over the days before it.

Metrics: nDCG@10 (gain 2^grade - 1) averaged over (day, reader) pairs with a relevant paper;
digest precision (share of included papers with grade >= 1) and recall (share of grade-2 papers
included), averaged over readers, and their F1; P@10 for category readers. Plain TF-IDF is the
cosine to the joined keywords (English stop words, sublinear tf, word 1-2 grams), BM25 (k1 1.2,
b 0.75) on the same words; their digests use the one threshold best on the tuning readers.

    python bench/ranking_quality.py [--history] [--per-reader]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.papers import normalise_title  # noqa: E402
from digest.rank import Profile, rank  # noqa: E402
from digest.sources.listing import parse_listing  # noqa: E402
from digest.space import Space  # noqa: E402
from digest.types import Paper  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
TUNE = ["alice", "carol", "erin", "kim", "mia", "oscar", "quinn"]  # the rest are held out
CATEGORIES = {  # category: (its official name's parts, keywords typed as a reader would)
    "cs.IT": (["Information Theory"], ["channel capacity", "coding", "MIMO", "wireless"]),
    "cs.GT": (["Game Theory"], ["mechanism design", "auctions", "Nash equilibrium", "incentives"]),
    "cs.GR": (["Graphics"], ["rendering", "mesh", "3D reconstruction", "Gaussian splatting"]),
    "cs.CE": (
        ["Computational Engineering", "Finance", "Science"],
        ["finite element", "simulation", "PDE", "financial"],
    ),
    "cs.RO": (["Robotics"], ["robot manipulation", "motion planning", "locomotion", "robot"]),
    "cs.MA": (["Multiagent Systems"], ["multi-agent", "agent coordination", "MARL"]),
    "cs.IR": (["Information Retrieval"], ["recommendation", "retrieval", "search engine", "RAG"]),
    "cs.HC": (["Human-Computer Interaction"], ["user study", "HCI", "interface", "participants"]),
    "cs.CY": (["Computers and Society"], ["ethics", "education", "policy", "societal impact"]),
    "cs.CR": (["Cryptography and Security"], ["security", "privacy", "attack", "jailbreak"]),
    "cs.MM": (["Multimedia"], ["audio-visual", "video", "multimedia"]),
    "cs.SD": (["Sound"], ["speech", "audio", "music", "TTS"]),
}
TUNE_CATEGORIES = ["cs.IT", "cs.GT", "cs.GR", "cs.CE", "cs.RO", "cs.MA"]
METHODS = ("model", "tfidf", "bm25")
# per method, per reader: (grades in ranked order, scores in that order, included or None, all grades)
Run = tuple[list[int], np.ndarray, np.ndarray | None, list[int]]


class Plain:
    """Plain TF-IDF cosine, or BM25, of a day's papers to the joined keywords."""

    def __init__(self, corpus: Sequence[Paper], bm25: bool = False) -> None:
        docs = [f"{p.title} {p.abstract}" for p in corpus]
        self.bm25 = bm25
        if bm25:
            self.vec = CountVectorizer(stop_words="english", ngram_range=(1, 2))
            counts = self.vec.fit_transform(docs)
            df = np.bincount(counts.indices, minlength=counts.shape[1])
            n = counts.shape[0]
            self.idf = np.log((n - df + 0.5) / (df + 0.5) + 1)
            self.avgdl = counts.sum() / n
        else:
            self.vec = TfidfVectorizer(stop_words="english", sublinear_tf=True, ngram_range=(1, 2))
            self.vec.fit(docs)

    def scores(self, papers: Sequence[Paper], keywords: Sequence[str]) -> np.ndarray:
        docs = [f"{p.title} {p.abstract}" for p in papers]
        query = self.vec.transform([" ".join(keywords)])
        if not self.bm25:
            return (normalize(self.vec.transform(docs)) @ normalize(query).T).toarray().ravel()
        counts = self.vec.transform(docs).tocsc().astype(float)
        length = np.asarray(counts.sum(axis=1)).ravel()
        out = np.zeros(len(docs))
        for j in query.indices:
            tf = counts[:, j].toarray().ravel()
            out += self.idf[j] * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / self.avgdl))
        return out


def ndcg10(ordered: Sequence[int], grades: Sequence[int]) -> float | None:
    def dcg(gs: Sequence[int]) -> float:
        return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gs[:10]))

    ideal = dcg(sorted(grades, reverse=True))
    return None if ideal == 0 else dcg(ordered) / ideal


def _digest(scores: np.ndarray, threshold: float, max_items: int = 10) -> np.ndarray:
    """Papers at or above the threshold, best first, up to max_items (scores in ranked order)."""
    return (scores >= threshold) & (np.arange(len(scores)) < max_items)


def _pr(runs: list[Run], threshold: float | None) -> tuple[float, float]:
    ps, rs = [], []
    for ordered, scores, inc, grades in runs:
        picked_mask = inc if threshold is None else _digest(scores, threshold)
        picked = [g for g, i in zip(ordered, picked_mask, strict=True) if i]
        ps.append(sum(g >= 1 for g in picked) / len(picked) if picked else 1.0)
        must = sum(g == 2 for g in grades)
        rs.append(sum(g == 2 for g in picked) / must if must else 1.0)
    return float(np.mean(ps)), float(np.mean(rs))


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def figures(
    runs: dict[str, dict[str, list[Run]]], tune: Sequence[str], readers: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per method: nDCG@10, P@10, digest F1 over `readers`, and each reader's (nDCG, P@10, F1).
    A baseline's digest threshold is the one best for the `tune` readers."""
    out: dict[str, dict[str, Any]] = {}
    for method, per in runs.items():
        threshold = None
        if method != "model":
            pool = np.concatenate([s for r in tune for _, s, _, _ in per[r]])
            grid = np.unique(np.quantile(pool, np.linspace(0.5, 0.999, 60)))

            def tuned(t: float, per: dict[str, list[Run]] = per) -> float:
                return _f1(*np.mean([_pr(per[r], t) for r in tune], axis=0))

            threshold = float(max(grid, key=tuned))
        rows = {}
        for r in readers:
            nd = [n for o, _, _, g in per[r] if (n := ndcg10(o, g)) is not None]
            p10 = [sum(x >= 1 for x in o[:10]) / 10 for o, _, _, g in per[r] if any(g)]
            p, rec = _pr(per[r], threshold)
            rows[r] = (float(np.mean(nd)) if nd else math.nan, float(np.mean(p10 or [0])), p, rec)
        p = float(np.mean([v[2] for v in rows.values()]))
        rec = float(np.mean([v[3] for v in rows.values()]))
        out[method] = {
            "ndcg": float(np.nanmean([v[0] for v in rows.values()])),
            "p10": float(np.mean([v[1] for v in rows.values()])),
            "f1": _f1(p, rec),
            "rows": {r: (v[0], v[1], _f1(v[2], v[3])) for r, v in rows.items()},
        }
    return out


def _runs(
    days: Sequence[tuple[Space, list[Paper], list[Paper]]],
    readers: dict[str, tuple[list[str], list[str]]],
    grade: Callable[[Paper, str], int],
) -> dict[str, dict[str, list[Run]]]:
    """Every method's ranking of every day for every reader: days are (space, corpus, papers)."""
    runs: dict[str, dict[str, list[Run]]] = {m: {r: [] for r in readers} for m in METHODS}
    for space, corpus, day in days:
        plain, bm25 = Plain(corpus), Plain(corpus, bm25=True)
        for who, (keywords, exclude) in readers.items():
            grades = [grade(p, who) for p in day]
            ranked = rank(space, day, Profile(keywords=tuple(keywords), exclude=tuple(exclude)))
            runs["model"][who].append(
                (
                    [grade(r.paper, who) for r in ranked],
                    np.array([r.score for r in ranked]),
                    np.array([r.included for r in ranked]),
                    grades,
                )
            )
            for name, method in (("tfidf", plain), ("bm25", bm25)):
                scores = method.scores(day, keywords)
                order = np.argsort(-scores, kind="stable")
                runs[name][who].append(([grades[i] for i in order], scores[order], None, grades))
    return runs


def history() -> list[Paper]:
    """5,841 HF Daily Papers from 2024-05 to 2025-12 (../shared/data/hf), or none."""
    path = SHARED / "hf" / "daily_papers_archive_2024-05-27_to_2025-12-31.jsonl.gz"
    if not path.exists():
        return []
    papers = {}
    with gzip.open(path, "rt") as f:
        for line in f:
            for item in json.loads(line)["papers"]:
                p = item["paper"]
                papers[p["id"]] = Paper(
                    id=p["id"],
                    title=p["title"],
                    abstract=p.get("summary", ""),
                    ai_keywords=tuple(p.get("ai_keywords") or ()),
                )
    return list(papers.values())


def graded(with_history: bool = False) -> dict[str, dict[str, dict[str, Any]]]:
    """{"tuned on": figures, "held out": figures} of the graded readers."""
    folder = ROOT / "tests" / "fixtures" / "relevance"
    profiles = json.loads((folder / "profiles.json").read_text())
    qrels = {}
    for line in (folder / "qrels.jsonl").read_text().splitlines():
        item = json.loads(line)
        qrels[normalise_title(item["title"])] = item["grades"]
    listings = [
        list(parse_listing(p.read_text()).papers)
        for p in sorted((ROOT / "examples" / "listings").glob("*.txt"))
    ]
    judged = list({p.id: p for day in listings for p in day}.values())
    earlier = (
        [p for p in history() if normalise_title(p.title) not in qrels] if with_history else []
    )
    corpus = earlier + judged
    space = Space(corpus)
    readers = {p["id"]: (p["keywords"], p.get("exclude", [])) for p in profiles}
    runs = _runs(
        [(space, corpus, day) for day in listings],
        readers,
        lambda p, who: qrels[normalise_title(p.title)][who],
    )
    held_out = [r for r in readers if r not in TUNE]
    return {"tuned on": figures(runs, TUNE, TUNE), "held out": figures(runs, TUNE, held_out)}


def categories() -> dict[str, dict[str, dict[str, Any]]]:
    """{"tuned on": figures, "held out": figures} of the arXiv-category readers (both kinds)."""
    path = SHARED / "arxiv_categories" / "arxiv_cs_2026-06-01_to_2026-07-01.jsonl.gz"
    by_day: dict[str, list[Paper]] = {}
    with gzip.open(path, "rt") as f:
        for line in f:
            r = json.loads(line)
            by_day.setdefault(r["listing_date"], []).append(
                Paper(
                    id=r["id"],
                    title=r["title"],
                    abstract=r["abstract"],
                    categories=tuple(r["categories"]),
                )
            )
    days = [by_day[d] for d in sorted(by_day)]
    readers = {}
    for category, (name, typed) in CATEGORIES.items():
        readers[f"{category} name"] = (name, [])
        readers[f"{category} typed"] = (typed, [])
    ranked = []
    for k in range(1, len(days), 3):  # every third day, over the days before it (a month store)
        corpus = [p for day in days[: k + 1] for p in day]
        ranked.append((Space(corpus), corpus, days[k]))
    runs = _runs(ranked, readers, lambda p, who: 2 if who.split()[0] in p.categories else 0)
    tune = [r for r in readers if r.split()[0] in TUNE_CATEGORIES]
    held_out = [r for r in readers if r not in tune]
    return {"tuned on": figures(runs, tune, tune), "held out": figures(runs, tune, held_out)}


def table(title: str, results: dict[str, dict[str, dict[str, Any]]], per_reader: bool) -> None:
    print(
        f"\n{title}\n| readers | method | nDCG@10 | P@10 | digest F1 |\n| --- | --- | --- | --- | --- |"
    )
    for group, by_method in results.items():
        for method, m in by_method.items():
            print(f"| {group} | {method} | {m['ndcg']:.3f} | {m['p10']:.3f} | {m['f1']:.3f} |")
    held = results["held out"]
    below = [
        r
        for r in held["model"]["rows"]
        if held["model"]["rows"][r][0] < held["tfidf"]["rows"][r][0]
    ]
    print(f"held-out readers with nDCG@10 below plain TF-IDF: {len(below)} {below}")
    if per_reader:
        print("| reader | " + " | ".join(f"{m} nDCG / P@10 / F1" for m in METHODS) + " |")
        for group in results.values():
            for r in group["model"]["rows"]:
                cells = " | ".join(
                    "{:.2f} / {:.2f} / {:.2f}".format(*group[m]["rows"][r]) for m in METHODS
                )
                print(f"| {r} | {cells} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--history", action="store_true", help="graded readers over 5,841 earlier papers too"
    )
    parser.add_argument("--per-reader", action="store_true", help="a row per reader")
    args = parser.parse_args()
    table("graded readers, 3 listings (165 papers)", graded(), args.per_reader)
    if args.history and history():
        table("graded readers, over 5,841 earlier HF papers", graded(True), args.per_reader)
    if (SHARED / "arxiv_categories").is_dir():
        table("arXiv-category readers, 8 days over the days before", categories(), args.per_reader)
    else:
        print("\n(no ../shared/data/arxiv_categories: category readers skipped)")


if __name__ == "__main__":
    main()
