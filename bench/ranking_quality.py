"""Ranking quality: mean nDCG@10 and digest F1 of digest's ranking vs plain TF-IDF cosine.

Data: the three bundled listing snapshots (examples/listings/) and the six reader profiles with
graded judgments (shared/data/relevance/; a copy in tests/fixtures/relevance/ lets this run
without shared/). Two settings:

- per listing: each snapshot is one day's candidates, ranked in the TF-IDF space of all three
  (as the store would hold them), by `digest.rank.rank`, the function `digest rank` calls;
- all 165 at once: the real CLI, `digest fetch` of the three snapshots into a fresh database,
  then `digest rank <reader> --json` per reader (subscriber files made from the profiles).

Metrics (shared/data/README.md): nDCG@10 with gain 2^grade - 1, averaged over the (day,
reader) pairs that have a relevant paper; digest precision = share of included papers with
grade >= 1, recall = share of grade-2 papers included, each averaged over readers, and their F1.
Plain TF-IDF: cosine to the joined keywords (English stop words, sublinear tf, word 1-2 grams);
its digest is the papers above the one cosine threshold that is best on these same lines
(optimistic for it), capped at max_items like ours.

    python bench/ranking_quality.py [--max-items 10]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.papers import normalise_title  # noqa: E402
from digest.rank import Profile, Space, rank  # noqa: E402
from digest.sources.listing import parse_listing  # noqa: E402
from digest.types import Paper  # noqa: E402

LISTINGS = sorted((ROOT / "examples" / "listings").glob("*.txt"))
Run = tuple[list[int], list[bool], list[int]]  # grades in ranked order, included, all grades


def relevance_dir() -> Path:
    shared = ROOT.parent / "shared" / "data" / "relevance"
    return shared if shared.is_dir() else ROOT / "tests" / "fixtures" / "relevance"


def load() -> tuple[list[list[Paper]], list[dict[str, Any]], dict[str, dict[str, int]]]:
    listings = [list(parse_listing(p.read_text()).papers) for p in LISTINGS]
    rel = relevance_dir()
    profiles = json.loads((rel / "profiles.json").read_text())
    qrels = {}
    for line in (rel / "qrels.jsonl").read_text().splitlines():
        d = json.loads(line)
        qrels[normalise_title(d["title"])] = d["grades"]
    return listings, profiles, qrels


def ndcg10(ordered: list[int], grades: list[int]) -> float | None:
    def dcg(gs: list[int]) -> float:
        return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gs[:10]))

    ideal = dcg(sorted(grades, reverse=True))
    return None if ideal == 0 else dcg(ordered) / ideal


def evaluate(runs: list[Run]) -> dict[str, float]:
    ndcgs, precisions, recalls = [], [], []
    for ordered, included, grades in runs:
        if (n := ndcg10(ordered, grades)) is not None:
            ndcgs.append(n)
        picked = [g for g, inc in zip(ordered, included, strict=True) if inc]
        precisions.append(sum(g >= 1 for g in picked) / len(picked) if picked else 1.0)
        must = sum(g == 2 for g in grades)
        recalls.append(sum(g == 2 for g in picked) / must if must else 1.0)
    p, r = float(np.mean(precisions)), float(np.mean(recalls))
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"ndcg": float(np.mean(ndcgs)), "f1": f1, "p": p, "r": r}


def plain_runs(
    corpus: list[Paper], days: list[list[Paper]], keywords: list[str], grade: Any, max_items: int
) -> dict[float, list[Run]]:
    vec = TfidfVectorizer(stop_words="english", sublinear_tf=True, ngram_range=(1, 2))
    vec.fit([f"{p.title} {p.abstract}" for p in corpus])
    query = normalize(vec.transform([" ".join(keywords)]))
    out: dict[float, list[Run]] = {}
    for day in days:
        scores = normalize(vec.transform([f"{p.title} {p.abstract}" for p in day])) @ query.T
        scores = scores.toarray().ravel()
        order = np.argsort(-scores, kind="stable")
        for t in np.round(np.arange(0.0, 0.5, 0.01), 2):
            inc = [bool(scores[i] >= t) and k < max_items for k, i in enumerate(order)]
            out.setdefault(float(t), []).append(
                ([grade(day[i]) for i in order], inc, [grade(p) for p in day])
            )
    return out


def cli_runs(profiles: list[dict[str, Any]], grade_of: Any, max_items: int) -> list[Run]:
    """`digest fetch` + `digest rank --json` per reader, in a temporary folder."""
    now = "2026-08-10T07:00:00+00:00"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "subscribers").mkdir()
        for prof in profiles:
            sub = {
                "name": prof["id"],
                "email": f"{prof['id']}@example.org",
                "keywords": prof["keywords"],
                "max_items": max_items,
            }
            (folder / "subscribers" / f"{prof['id']}.yaml").write_text(yaml.safe_dump(sub))
        sources = [
            {"name": f"s{i}", "type": "listing", "path": str(p)} for i, p in enumerate(LISTINGS)
        ]
        (folder / "config.yaml").write_text(yaml.safe_dump({"sources": sources}))
        digest = [sys.executable, "-m", "digest", "--config", str(folder / "config.yaml")]
        subprocess.run([*digest, "fetch", "--now", now], check=True, capture_output=True)
        runs = []
        for prof in profiles:
            out = subprocess.run(
                [*digest, "rank", prof["id"], "--now", now, "--json"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            items = json.loads(out)
            grades = [grade_of(i["title"], prof["id"]) for i in items]
            runs.append((grades, [i["included"] for i in items], grades))
    return runs


def measure(
    max_items: int = 10, with_cli: bool = False
) -> dict[str, tuple[dict[str, float], dict[str, float]]]:
    """{setting: (digest's figures, plain TF-IDF's figures)}."""
    listings, profiles, qrels = load()
    corpus = list({p.id: p for day in listings for p in day}.values())
    space = Space(corpus)

    def grade_of(title: str, who: str) -> int:
        return qrels[normalise_title(title)][who]

    settings = {"per listing (3 days)": listings}
    if with_cli:
        settings["all 165 at once (CLI)"] = [corpus]
    results = {}
    for label, days in settings.items():
        ours: list[Run] = []
        plain: dict[float, list[Run]] = {}
        for prof in profiles:

            def grade(p: Paper, who: str = prof["id"]) -> int:
                return grade_of(p.title, who)

            if label.startswith("per listing"):
                profile = Profile(keywords=tuple(prof["keywords"]), max_items=max_items)
                for day in days:
                    ranked = rank(space, day, profile)
                    ours.append(
                        (
                            [grade(r.paper) for r in ranked],
                            [r.included for r in ranked],
                            [grade(p) for p in day],
                        )
                    )
            for t, runs in plain_runs(corpus, days, prof["keywords"], grade, max_items).items():
                plain.setdefault(t, []).extend(runs)
        if not label.startswith("per listing"):
            ours = cli_runs(profiles, grade_of, max_items)
        best = max((evaluate(r) for r in plain.values()), key=lambda m: m["f1"])
        results[label] = (evaluate(ours), best)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-items", type=int, default=10)
    args = parser.parse_args()
    results = measure(args.max_items, with_cli=True)
    print(f"max_items={args.max_items}; 165 papers in 3 listings; 6 readers")
    print("| set | method | nDCG@10 | digest F1 | precision | recall |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, (ours, plain) in results.items():
        for name, m in (("digest", ours), ("plain TF-IDF, best threshold", plain)):
            print(
                f"| {label} | {name} | {m['ndcg']:.3f} | {m['f1']:.3f} | {m['p']:.3f} | {m['r']:.3f} |"
            )


if __name__ == "__main__":
    main()
