"""Ranking judged by arXiv's own categories: a reader per category, keywords = its official name.

Papers: the real arXiv listings and API answers (shared/data/arxiv/, else the copies in
tests/fixtures/arxiv/). For each category below, a reader whose keywords are the parts of the
category's official name ("Computer Vision and Pattern Recognition" -> "Computer Vision",
"Pattern Recognition"); a paper is relevant when arXiv lists it in that category. Nobody chose
the keywords to suit the method. Printed beside plain TF-IDF (best threshold, as in
ranking_quality.py); max_items 10 caps recall for the larger categories.

    python bench/arxiv_categories.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ranking_quality import evaluate, plain_runs  # noqa: E402

from digest.papers import dedupe  # noqa: E402
from digest.rank import Profile, Space, rank  # noqa: E402
from digest.sources.feed import parse_feed  # noqa: E402

NAMES = {
    "cs.CL": "Computation and Language",
    "cs.CV": "Computer Vision and Pattern Recognition",
    "cs.RO": "Robotics",
    "cs.CR": "Cryptography and Security",
    "cs.IR": "Information Retrieval",
    "cs.SE": "Software Engineering",
    "cs.AR": "Hardware Architecture",
    "cs.MA": "Multiagent Systems",
    "cs.CY": "Computers and Society",
}


def papers() -> list:
    shared = ROOT.parent / "shared" / "data" / "arxiv"
    folder = shared if shared.is_dir() else ROOT / "tests" / "fixtures" / "arxiv"
    found = []
    for path in sorted(folder.rglob("*.xml")):
        if "TRUNCATED" in path.name or "SYNTHETIC" in path.name:
            continue
        batch = parse_feed(path.read_bytes())
        found += [*batch.papers, *batch.updates]
    return dedupe(found)


def main() -> None:
    corpus = papers()
    space = Space(corpus)
    ours, plain = [], {}
    for category, name in NAMES.items():
        keywords = [k.strip() for k in name.split(" and ")]

        def grade(p, c=category):  # type: ignore[no-untyped-def]
            return 2 if c in p.categories else 0

        ranked = rank(space, corpus, Profile(keywords=tuple(keywords), max_items=10))
        ours.append(
            (
                [grade(r.paper) for r in ranked],
                [r.included for r in ranked],
                [grade(p) for p in corpus],
            )
        )
        for t, runs in plain_runs(corpus, [corpus], keywords, grade, 10).items():
            plain.setdefault(t, []).extend(runs)
    best = max((evaluate(r) for r in plain.values()), key=lambda m: m["f1"])
    print(f"{len(corpus)} arXiv papers, {len(NAMES)} category readers")
    print("| method | nDCG@10 | digest F1 | precision | recall |")
    print("| --- | --- | --- | --- | --- |")
    for label, m in (("digest", evaluate(ours)), ("plain TF-IDF, best threshold", best)):
        print(f"| {label} | {m['ndcg']:.3f} | {m['f1']:.3f} | {m['p']:.3f} | {m['r']:.3f} |")


if __name__ == "__main__":
    main()
