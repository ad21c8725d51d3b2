"""Scale: `digest run` for many readers over a large history, to the outbox, end to end.

Builds a scenario in a temporary folder, then runs the real CLI as a subprocess on fresh copies
of it (--repeat times, alternating the two sizes: this machine's speed drifts by a third within
minutes) and prints a table: median wall time and range, peak RSS, digests per second, the
marginal cost of one more digest beside one MJML compile, and SMTP messages per second on one
reused connection versus one per message.

- history: N papers stored with first-seen times spread from 90 to 8 days ago (older than the
  readers' 7-day window: they shape the TF-IDF space, the new papers are the candidates);
- new: M papers served as one HF Daily Papers day by an HTTP server on 127.0.0.1 (fetched by
  the run itself);
- readers: R subscriber files with 2-4 keywords each.

As in a store that has run before (the steady state of a daily run), the analyses of the
history's newest 20,000 papers (the ranking corpus) are kept, the readers' files are parsed
already (`<database>.subscribers.json`), and every reader's feed exists before the run, with
the spare file a feed has once it was replaced (`digest.feeds.write_feed`): the run analyses
only the new papers and rewrites only the feeds that change. `--first-run` leaves all three
out: the run also analyses the whole corpus, parses every file and writes every feed.

Papers are recombined from real text (the HF archive in ../shared/data/hf when present, else the
bundled listing snapshots): titles and abstracts are made of real sentences and phrases, shuffled,
with fresh ids. Readers' keywords are drawn from the real HF ai_keywords / frequent title phrases.

    python bench/scale.py [--history 100000] [--new 1000] [--readers 10000] [--smtp 2000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest.mock import patch

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.config import SETTLED_NS, load_config, load_subscribers  # noqa: E402
from digest.feeds import spare_of  # noqa: E402
from digest.pipeline import parsed_subscribers, write_feeds  # noqa: E402
from digest.render import Renderer  # noqa: E402
from digest.sources.listing import parse_listing  # noqa: E402
from digest.store import Store  # noqa: E402
from digest.terms import analyse  # noqa: E402
from digest.types import Paper  # noqa: E402

NOW = datetime(2026, 8, 10, 7, 0, tzinfo=UTC)  # a Monday
DIGEST = [sys.executable, "-m", "digest"]
ARCHIVE = (
    ROOT.parent
    / "shared"
    / "data"
    / "hf"
    / "daily_papers_archive_2024-05-27_to_2025-12-31.jsonl.gz"
)


def real_text() -> tuple[list[str], list[str], list[str]]:
    """Titles, abstract sentences and keyword phrases from real papers."""
    titles: list[str] = []
    sentences: list[str] = []
    keywords: list[str] = []
    if ARCHIVE.exists():
        with gzip.open(ARCHIVE, "rt") as f:
            for line in f:
                for item in json.loads(line)["papers"]:
                    p = item["paper"]
                    titles.append(p["title"])
                    sentences += [
                        s.strip() + "." for s in p.get("summary", "").split(". ") if s.strip()
                    ]
                    keywords += p.get("ai_keywords") or []
    else:
        for path in sorted((ROOT / "examples" / "listings").glob("*.txt")):
            for p in parse_listing(path.read_text()).papers:
                titles.append(p.title)
                sentences += [s.strip() + "." for s in p.abstract.split(". ") if s.strip()]
                keywords += [w for w in p.title.lower().split() if len(w) > 6]
    return titles, sentences, sorted(set(keywords))


def synthetic_paper(
    rng: random.Random, n: int, titles: list[str], sentences: list[str], prefix: str
) -> Paper:
    a, b = rng.choice(titles), rng.choice(titles)
    title = " ".join(a.split()[: len(a.split()) // 2] + b.split()[len(b.split()) // 2 :])
    abstract = " ".join(rng.choices(sentences, k=rng.randint(5, 9)))
    pid = f"{prefix}{n:05d}"
    return Paper(
        id=pid,
        title=title,
        abstract=abstract,
        arxiv_id=pid,
        url=f"https://huggingface.co/papers/{pid}",
        authors=("A. Author", "B. Author"),
        upvotes=rng.randint(0, 120),
    )


def hf_item(p: Paper) -> dict[str, object]:
    """A paper as the HF Daily Papers API lists it."""
    return {
        "paper": {
            "id": p.id,
            "title": p.title,
            "summary": p.abstract,
            "upvotes": p.upvotes,
            "authors": [{"name": a} for a in p.authors],
        },
        "title": p.title,
    }


def serve(body: bytes) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            page = body if "p=0" in self.path and "date=2026-08-10" in self.path else b"[]"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/api/daily_papers"


def build(
    folder: Path, history: int, new: int, readers: int, seed: int = 7, steady: bool = True
) -> ThreadingHTTPServer:
    """The scenario in `folder` (its config is `folder/config.yaml`), and the running server
    of its new papers (see the module's docstring)."""
    rng = random.Random(seed)
    titles, sentences, keywords = real_text()
    started = time.perf_counter()
    with Store(folder / "state" / "digest.sqlite3") as store:
        batch: list[Paper] = []
        for n in range(history):
            batch.append(synthetic_paper(rng, n, titles, sentences, "2601."))
            if len(batch) == 5000 or n == history - 1:
                day = NOW - timedelta(days=8 + 82 * n / max(history, 1))
                store.add_batch("history", batch, day)
                batch = []
        # steady state: earlier runs kept the analyses of the corpus (the newest 20,000 papers)
        corpus = store.papers(newest=20_000) if steady else []
        surface: Counter[tuple[str, str]] = Counter()
        store.save_terms(
            {p.id: analyse(p, surface) for p in corpus}, surface, keep=[p.id for p in corpus]
        )
    fresh = [synthetic_paper(rng, n, titles, sentences, "2608.") for n in range(new)]
    httpd, url = serve(json.dumps([hf_item(p) for p in fresh]).encode())
    subs = folder / "subscribers"
    subs.mkdir()
    for r in range(readers):
        picked = rng.sample(keywords, rng.randint(2, 4))
        (subs / f"r{r:05d}.yaml").write_text(
            yaml.safe_dump(
                {"name": f"Reader {r}", "email": f"r{r}@example.org", "keywords": picked}
            )
        )
    (folder / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "sources": [{"name": "hf", "type": "hf_daily", "url": url, "lookback_days": 1}],
                "delivery": {"from": "Digest <digest@example.org>"},
                "feeds": {"site_url": "https://digest.example.org/"},
            }
        )
    )
    if steady:  # the run before wrote every reader's feed (empty: nothing was sent yet)
        config = load_config(folder / "config.yaml")
        # and kept the parsed subscriber files: it ran a day after they were written, when
        # they had long settled (here they are seconds old)
        with patch("digest.config.SETTLED_NS", 0):
            subscribers, _ = load_subscribers(config, cache=parsed_subscribers(config))
        with Store(config.database) as store:
            write_feeds(config, store, subscribers, NOW - timedelta(days=1))
        for feed in config.feeds.dir.glob("*.xml"):  # and replaced each once before that
            shutil.copyfile(feed, spare_of(feed))
    os.sync()  # the run starts with the scenario on disk, not with its writes still pending
    print(
        f"built: {history:,} stored, {new:,} new, {readers:,} readers in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return httpd


def _tree_pss_mb(pid: int) -> float:
    """Proportional set size of a process and its descendants, in MB (shared pages of forked
    workers counted once in all); 0 when /proc does not say."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total / 1024


def run_cli(config: Path) -> tuple[float, float, float, float, str]:
    """Wall seconds, peak RSS of the largest process and peak memory of the whole process tree
    (PSS, sampled every 0.1 s) in MB, CPU seconds of every process of the run (user + system:
    the run's and its workers', which it waits for), and the summary line of one `digest run`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # output to files, not pipes: a pipe nobody reads while sampling fills up and blocks the run
    with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*DIGEST, "--config", str(config), "run", "--now", NOW.isoformat()],
            stdout=out_file,
            stderr=err_file,
            env={**os.environ, "DIGEST_SECRET": "bench"},
        )
        peak_tree = 0.0
        while proc.poll() is None:
            peak_tree = max(peak_tree, _tree_pss_mb(proc.pid))
            time.sleep(0.1)
        wall = time.perf_counter() - started
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if proc.returncode != 0:
        raise SystemExit(f"digest run failed: {err[-2000:]}")
    return wall, after.ru_maxrss / 1024, peak_tree, cpu, out.strip().splitlines()[-1]


def copy_scenario(source: Path, target: Path, steady: bool) -> Path:
    """A fresh copy of a built scenario for one run (a run changes its store, outbox and feeds),
    on disk before the run starts; its config."""
    shutil.copytree(source, target)
    copied = time.time()
    config = target / "config.yaml"
    if steady:  # copies have new inodes and times: the parsed files are kept again, as in `build`
        with patch("digest.config.SETTLED_NS", 0):
            loaded = load_config(config)
            load_subscribers(loaded, cache=parsed_subscribers(loaded))
    os.sync()
    # and the files are as old as a run finds them a day later: a run reads again the files
    # changed in the last SETTLED_NS (coarse file times) and keeps them out of the cache
    time.sleep(max(0.0, copied + SETTLED_NS / 1e9 + 0.1 - time.time()))
    return config


def mjml_compile_ms() -> float:
    """One MJML compile of the digest layout (a Renderer): the median of 7, after a first one
    that also imports and loads the templates."""
    Renderer()
    times = []
    for _ in range(7):
        started = time.perf_counter()
        Renderer()
        times.append(time.perf_counter() - started)
    return sorted(times)[3] * 1000


def smtp_rates(messages: int) -> tuple[float, float] | None:
    """Messages/s to a local aiosmtpd: one reused connection, and one connection per message."""
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        from smtpserver import Handler, start
    except ImportError:
        return None
    from digest.config import SmtpConfig
    from digest.deliver import Smtp

    handler = Handler()
    controller = start(handler)
    try:
        message = (ROOT / "tests" / "golden" / "alice-2025-10-03.eml").read_bytes()
        cfg = SmtpConfig(host=controller.hostname, port=controller.port, security="none")
        pooled = Smtp(cfg)
        started = time.perf_counter()
        for i in range(messages):
            pooled.send("digest@example.org", f"r{i}@example.org", message, str(i))
        pooled.close()
        pooled_rate = messages / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(messages // 4):
            single = Smtp(cfg)
            single.send("digest@example.org", f"r{i}@example.org", message, str(i))
            single.close()
        single_rate = (messages // 4) / (time.perf_counter() - started)
        return pooled_rate, single_rate
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--smtp", type=int, default=2_000)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each scenario, the two alternated, each on a fresh copy (default 3): "
        "figures are medians, with the range",
    )
    parser.add_argument(
        "--first-run", action="store_true", help="no kept analyses, no feeds before the run"
    )
    args = parser.parse_args()
    sizes = (max(args.readers // 10, 1), args.readers)
    steady = not args.first_run
    runs: dict[int, list[tuple[float, float, float, float, int, str]]] = {r: [] for r in sizes}
    compiles = []
    # nothing is deleted before the end: on this ext4 (no journal), creating files within
    # seconds of deleting thousands scans the freed inodes, which a daily run does not follow
    with tempfile.TemporaryDirectory() as tmp:
        built, servers = {}, []
        try:
            for readers in sizes:
                built[readers] = Path(tmp) / str(readers)
                httpd = build(built[readers], args.history, args.new, readers, steady=steady)
                servers.append(httpd)
            for i in range(max(args.repeat, 1)):
                for readers in sizes:
                    copy = Path(tmp) / f"{readers}-run{i}"
                    config = copy_scenario(built[readers], copy, steady)
                    wall, rss, tree, cpu, summary = run_cli(config)
                    digests = len(list((copy / "outbox").glob("*.eml")))
                    runs[readers].append((wall, rss, tree, cpu, digests, summary))
                compiles.append(mjml_compile_ms())
        finally:
            for httpd in servers:
                httpd.shutdown()
    first, last = (runs[r] for r in sizes)
    d1, d2 = first[0][4], last[0][4]
    marginals = [(b[0] - a[0]) / max(d2 - d1, 1) * 1000 for a, b in zip(first, last, strict=True)]
    cpu_marginals = [
        (b[3] - a[3]) / max(d2 - d1, 1) * 1000 for a, b in zip(first, last, strict=True)
    ]
    compile_ms = statistics.median(compiles)
    kind = ", first run" if args.first_run else ""
    print(
        "| scenario | wall | peak RSS (largest process) | peak PSS (all processes) | digests | digests/s |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for readers in sizes:
        walls = [r[0] for r in runs[readers]]
        wall = statistics.median(walls)
        spread = f" ({min(walls):.1f}-{max(walls):.1f})" if len(walls) > 1 else ""
        # RSS of children is a maximum over every run so far: the first run of each is its own
        rss = runs[readers][0][1]
        tree = max(r[2] for r in runs[readers])
        print(
            f"| {args.history:,} stored + {args.new:,} new, {readers:,} readers{kind} | "
            f"{wall:.1f} s{spread} | {rss:.0f} MB | {tree:.0f} MB | {runs[readers][0][4]:,} | "
            f"{runs[readers][0][4] / wall:.0f} |"
        )
    marginal = statistics.median(marginals)
    each = ", ".join(f"{m:.2f}" for m in marginals)
    print(
        f"\nmarginal cost of one more digest: {marginal:.2f} ms (runs: {each}); one MJML compile: "
        f"{compile_ms:.1f} ms ({min(compiles):.1f}-{max(compiles):.1f}) (ratio {marginal / compile_ms:.2f})"
    )
    cpu_marginal = statistics.median(cpu_marginals)
    cpus = ", ".join(f"{m:.2f}" for m in cpu_marginals)
    print(
        f"CPU time of one more digest (every process, user + system): {cpu_marginal:.2f} ms "
        f"(runs: {cpus}) (ratio to the compile {cpu_marginal / compile_ms:.2f}); CPU of a run: "
        + "; ".join(
            f"{r:,} readers {statistics.median(x[3] for x in runs[r]):.1f} s" for r in sizes
        )
    )
    summary2 = last[-1][5]
    print(f"last run: {summary2}")
    rates = smtp_rates(args.smtp)
    if rates:
        print(
            f"SMTP to local aiosmtpd: {rates[0]:.0f} msg/s on one connection, {rates[1]:.0f} msg/s "
            f"with one connection per message"
        )


if __name__ == "__main__":
    main()
