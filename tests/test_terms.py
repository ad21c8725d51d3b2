"""Analysed terms kept between runs: a space built from kept analyses ranks exactly as one
built from the text; analyses follow text changes and the corpus; a term's id is stable."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from conftest import FIXTURES

from digest import model, pipeline
from digest.config import load_config
from digest.rank import Profile, rank
from digest.sources.hf_daily import parse_page
from digest.space import Space
from digest.store import Store
from digest.terms import analyse, term_id

T0 = datetime(2025, 10, 3, 7, 0, tzinfo=UTC)
DAYS = [
    "2024-05-27",
    "2024-06-13",
    "2025-03-17",
    "2025-05-22",
    "2025-08-20",
    "2026-06-03",
    "api_response_2026-06-12",
    "2025-10-03",
]
PROFILES = [
    Profile(keywords=("reinforcement learning", "agents")),
    Profile(keywords=("video generation",), max_items=5),
    Profile(keywords=("diffusion", '"image editing"', "benchmark")),
]


def stored(tmp_path: Path, corpus_max: int = 1000) -> tuple[pipeline.Config, Store]:
    """A config and a store holding eight real HF days (179 papers), stored a day apart."""
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump(
            {"database": "digest.sqlite3", "sources": [], "ranking": {"corpus_max": corpus_max}}
        )
    )
    config = load_config(tmp_path / "config.yaml")
    store = Store(config.database)
    for n, day in enumerate(DAYS):
        papers, _ = parse_page((FIXTURES / "hf" / f"{day}.json").read_bytes())
        store.add_batch("hf", papers, T0 - timedelta(days=len(DAYS) - 1 - n))
    return config, store


def rankings(space: Space, store: Store) -> list[list[tuple[str, float, tuple[str, ...]]]]:
    candidates = store.papers(since=T0 - timedelta(days=1))
    return [
        [(r.paper.id, r.score, r.reasons) for r in rank(space, candidates, profile)]
        for profile in PROFILES
    ]


def test_a_space_from_kept_analyses_ranks_as_one_from_the_text(tmp_path: Path) -> None:
    """The run keeps every corpus paper's analysis; the next space reads them and ranks the
    same, reasons and related words included."""
    config, store = stored(tmp_path)
    fresh = pipeline.build_space(config, store, T0, keep=True)
    assert store.db.execute("SELECT count(*) FROM paper_terms").fetchone()[0] == store.count()
    assert store.db.execute("SELECT count(*) FROM words").fetchone()[0] > 100
    again = pipeline.build_space(config, store, T0)
    assert any(rankings(again, store))
    assert rankings(again, store) == rankings(fresh, store)
    assert rankings(again, store) == rankings(Space(store.papers()), store)


def test_analyses_follow_text_changes_and_the_corpus(tmp_path: Path) -> None:
    """A paper whose text changes loses its kept analysis; papers out of the corpus too."""
    config, store = stored(tmp_path, corpus_max=100)
    pipeline.build_space(config, store, T0, keep=True)
    kept = store.terms()
    assert len(kept) == 100 < store.count()
    newest = store.papers()[-1]
    assert newest.id in kept
    changed = replace(newest, abstract=newest.abstract + " We also study zorblaxes.")
    store.add_batch("hf", [changed], T0)
    assert newest.id not in store.terms()
    space = pipeline.build_space(config, store, T0, keep=True)
    assert model.matches(space, "zorblax") == 1
    assert newest.id in store.terms()
    assert len(store.terms()) == 100


def test_a_read_only_space_keeps_nothing(tmp_path: Path) -> None:
    """`digest rank` and `preview` build the space without writing to the database."""
    config, store = stored(tmp_path)
    pipeline.build_space(config, store, T0)
    assert store.terms() == {}


def test_term_ids_are_the_same_in_every_process() -> None:
    """Kept analyses are read by later processes: ids must not depend on hash seeds."""
    code = "from digest.terms import term_id; print(term_id('mixtur expert'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == term_id("mixtur expert")
    assert term_id("mixtur expert") != term_id("mixtur")


def test_keyword_only_stems_are_known_words() -> None:
    """A stem met only in ai_keywords is shown as itself; a text word wins when there is one."""
    papers, _ = parse_page((FIXTURES / "hf" / "2025-10-03.json").read_bytes())
    surface: Counter[tuple[str, str]] = Counter()
    for p in papers:
        analyse(p, surface)
    assert any(n == 0 for n in surface.values())
    assert all(n > 0 for (s, w), n in surface.items() if s != w)


def test_the_c_stemmer_stems_as_the_snowball_reference() -> None:
    """snowballstemmer hands out PyStemmer's C stemmer when it is installed (it is a dependency,
    for speed); kept analyses and keywords must stem the same with either, so the two
    packages' pins must give the same Snowball release."""
    from snowballstemmer.english_stemmer import EnglishStemmer

    from digest import text

    assert type(text._stemmer).__module__ == "Stemmer"
    reference = EnglishStemmer()
    found = set()
    for day in DAYS:
        papers, _ = parse_page((FIXTURES / "hf" / f"{day}.json").read_bytes())
        for p in papers:
            found.update(text.words(f"{p.title} {p.abstract} {' '.join(p.ai_keywords)}"))
    assert len(found) > 5000
    assert [text._stemmer.stemWord(w) for w in sorted(found)] == [
        reference.stemWord(w) for w in sorted(found)
    ]
