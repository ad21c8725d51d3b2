"""The `digest` command: parse, call the pipeline, print a summary, map errors to exit codes.

Exit codes (../shared/CONTRACT.md): 0 done; 1 the job failed at run time, one line on stderr;
2 bad usage or configuration, every problem listed.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from digest import __version__, model, pipeline
from digest.config import (
    Config,
    Subscriber,
    config_path,
    display_path,
    load_config,
    load_subscriber,
    load_subscribers,
    runtime_problems,
)
from digest.errors import ConfigError, DigestError, RunError, UsageError
from digest.papers import link
from digest.rank import Ranked, quoted
from digest.render import Renderer
from digest.store import Store
from digest.tokens import load_secret, verify_token
from digest.types import DeliveryReport, RunReport, SourceReport


def parse_now(value: str | None) -> datetime:
    """--now as an aware datetime; the wall clock when absent."""
    if value is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--now: not an ISO 8601 time: {value!r} (example: 2026-08-10T07:00:00+00:00)"
        ) from None
    if when.tzinfo is None:
        raise UsageError(f"--now: give a UTC offset, as in {value}+00:00")
    return when


def _err(message: str) -> None:
    click.echo(message, err=True)


def _fail(e: DigestError) -> NoReturn:
    if isinstance(e, ConfigError):
        for problem in e.problems:
            _err(str(problem))
        n = len(e.problems)
        _err(f"digest: {n} problem{'s' if n != 1 else ''} in the configuration")
        sys.exit(2)
    _err(f"digest: error: {e}")
    sys.exit(2 if isinstance(e, UsageError) else 1)


class _Command(click.Group):
    """A group that turns DigestError into one line and the contract's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as e:
            _fail(e)


now_option = click.option(
    "--now",
    metavar="T",
    help="Logical time of this call, ISO 8601 with offset (default: now). "
    "Decides which listing days are fetched and when papers count as first seen.",
)


@click.group(cls=_Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    metavar="PATH",
    envvar="DIGEST_CONFIG",
    help="Config file (default: ./config.yaml, or $DIGEST_CONFIG).",
)
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def main(ctx: click.Context, config_file: str | None) -> None:
    """Turn the day's trending research papers into a personal digest for each reader.

    Sources (Hugging Face Daily Papers, arXiv and other feeds, listing snapshots) are fetched
    into SQLite; each reader's keywords in subscribers/<id>.yaml decide what they get.
    """
    ctx.obj = config_path(config_file)


def _config(ctx: click.Context) -> Config:
    path: Path = ctx.obj
    if not path.exists():
        raise UsageError(
            f"config file not found: {display_path(path)} (use --config PATH or $DIGEST_CONFIG)"
        )
    return load_config(path)


@main.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the config and every subscriber file; list every problem (exit 2 if any)."""
    config = _config(ctx)
    subscribers, problems = load_subscribers(config)
    problems = runtime_problems(config) + problems
    if problems:
        raise ConfigError(problems)
    for warning in _keyword_warnings(config, subscribers):
        _err(f"warning: {warning}")
    click.echo(
        f"{display_path(config.file)}: ok; {len(config.sources)} sources, "
        f"{len(subscribers)} subscribers"
    )


def _keyword_warnings(config: Config, subscribers: list[Subscriber]) -> list[str]:
    """Keywords that match no paper of the corpus a run would rank against after the last fetch
    (nothing to say before the first). The corpus is the run's (`pipeline.build_space`: the
    analyses a run kept, at most `ranking.corpus_max` papers), not every stored paper: on a
    large store that was a minute of analysis; each keyword is checked once, however many
    readers share it."""
    if not config.database.exists() or not subscribers:
        return []
    with Store(config.database) as store:
        last = store.last_seen()
        if last is None:
            return []
        space = pipeline.build_space(config, store, last)
    found = {
        k: model.matches(space, k) > 0
        for k in dict.fromkeys(k for s in subscribers for k in s.keywords)
    }
    out = []
    for sub in subscribers:
        where = display_path(config.subscribers / f"{sub.id}.yaml")
        if not sub.keywords and not sub.authors:
            out.append(f"{where}: keywords: empty: this reader will get no digest")
        for keyword in sub.keywords:
            if not found[keyword]:
                out.append(
                    f"{where}: keywords: {keyword!r} matches none of the "
                    f"{len(space.papers)} papers ranked against (first seen in the "
                    f"{config.ranking.corpus_days} days up to the last fetch)"
                )
    return out


def _source_line(r: SourceReport) -> str:
    if r.error:
        return f"{r.name}: failed: {r.error}"
    parts = [f"{r.new} new", f"{r.seen} already seen", f"{r.failed} failed"]
    if r.skipped:
        parts.append(f"{r.skipped} replacements of unknown papers skipped")
    if r.not_modified:
        parts.append(f"{r.not_modified} not modified")
    return f"{r.name}: " + ", ".join(parts)


def _print_source(r: SourceReport) -> None:
    for problem in r.problems:
        _err(f"warning: {r.name}: {problem}")
    if r.error:
        _err(_source_line(r))
    else:
        click.echo(_source_line(r))


@main.command()
@now_option
@click.pass_context
def fetch(ctx: click.Context, now: str | None) -> None:
    """Fetch every source once and store what is new.

    Prints per source: new, already seen, failed; then a total line. Exits 1 when every
    source failed.
    """
    config = _config(ctx)
    when = parse_now(now)
    with Store(config.database) as store:
        report = pipeline.fetch(config, store, when, progress=_print_source)
        total = store.count()
    click.echo(f"{report.summary()}; {total} papers stored")
    if report.sources and report.failed_sources == len(report.sources):
        raise RunError("every source failed")


def _subscriber(config: Config, name: str) -> Subscriber:
    path = config.subscribers / f"{name}.yaml"
    if not path.exists():
        path = config.subscribers / f"{name}.yml"
    if not path.exists():
        raise UsageError(
            f"no subscriber {name!r}: {display_path(config.subscribers / name)}.yaml not found"
        )
    sub, problems = load_subscriber(path)
    if sub is None:
        raise ConfigError(problems)
    return sub


def _as_json(r: Ranked) -> dict[str, object]:
    p = r.paper
    return {
        "id": p.id,
        "title": p.title,
        "url": link(p),
        "score": r.score,
        "included": r.included,
        "reasons": list(r.reasons),
        "matched": list(r.matched),
        "related": list(r.related),
        "evidence": r.evidence,
        "relevance": r.relevance,
        "authors": list(p.authors),
        "upvotes": p.upvotes,
    }


@main.command(name="rank")
@click.argument("subscriber")
@now_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array, best first.")
@click.option("--all", "show_all", is_flag=True, help="Show every candidate, not only the top.")
@click.pass_context
def rank_command(
    ctx: click.Context, subscriber: str, now: str | None, as_json: bool, show_all: bool
) -> None:
    """Rank SUBSCRIBER's candidates without sending or recording anything.

    Candidates are the stored papers first seen in the ranking window before --now. Papers
    marked as included are what the next digest would hold, each with what matched.
    """
    config = _config(ctx)
    when = parse_now(now)
    sub = _subscriber(config, subscriber)
    with Store(config.database) as store:
        space = pipeline.build_space(config, store, when)
        ranked = pipeline.rank_subscriber(config, space, store, sub, when)
    if as_json:
        click.echo(json.dumps([_as_json(r) for r in ranked], ensure_ascii=False, indent=1))
        return
    included = sum(r.included for r in ranked)
    shown = ranked if show_all else ranked[: max(included, sub.max_items) + 5]
    for i, r in enumerate(shown, start=1):
        mark = "*" if r.included else " "
        click.echo(f"{i:3d} {mark} {r.score:6.3f}  {r.paper.title[:90]}")
        if r.reasons:
            click.echo(
                f"{'':13}matched: {quoted(r.matched) or '-'}; related: {', '.join(r.related) or '-'}"
            )
    click.echo(
        f"{sub.id}: {len(ranked)} candidates, {included} in the next digest (*)"
        + ("" if included else ": nothing passes the threshold, no digest would be sent")
    )


@main.command()
@click.argument("subscriber")
@now_option
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Where to write the HTML (default: <subscriber>.preview.html; '-' for stdout).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the result in a web browser.")
@click.pass_context
def preview(
    ctx: click.Context, subscriber: str, now: str | None, output: str | None, open_browser: bool
) -> None:
    """Write the HTML digest SUBSCRIBER would get at --now; send and record nothing."""
    config = _config(ctx)
    when = parse_now(now)
    sub = _subscriber(config, subscriber)
    renderer = Renderer(config.templates)
    with Store(config.database) as store:
        space = pipeline.build_space(config, store, when)
        ranked = pipeline.rank_subscriber(config, space, store, sub, when)
    items = pipeline.included_items(ranked)
    view = pipeline.digest_view(
        config, sub, items, when, load_secret(config.database, create=False)
    )
    rendered = renderer.render(view)
    if output == "-":
        click.echo(rendered.html)
        return
    path = Path(output or f"{sub.id}.preview.html")
    path.write_text(rendered.html, encoding="utf-8")
    note = "" if items else " (nothing passes the threshold: no digest would be sent)"
    click.echo(f"{display_path(path)}: {rendered.subject}{note}")
    if open_browser:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


def _print_delivery(d: DeliveryReport) -> None:
    line = f"{d.subscriber} {d.period}: {d.status}"
    if d.papers:
        line += f" ({d.papers} paper{'s' if d.papers != 1 else ''})"
    if d.detail and d.status != "sent":
        line += f": {d.detail}"
    click.echo(line, err=d.status in ("deferred", "failed"))


def do_run(config: Config, when: datetime, dry_run: bool) -> RunReport:
    """One `digest run` under the lock; prints progress and the summary line."""
    with pipeline.run_lock(config), Store(config.database) as store:
        report = pipeline.run(
            config, store, when, dry_run=dry_run, progress=_print_source, delivered=_print_delivery
        )
    for warning in report.warnings:
        _err(f"warning: {warning}")
    click.echo(report.summary())
    return report


@main.command(name="run")
@now_option
@click.option(
    "--dry-run", is_flag=True, help="Show what would be sent; fetch, send and record nothing."
)
@click.pass_context
def run_command(ctx: click.Context, now: str | None, dry_run: bool) -> None:
    """One full pass: fetch, rank, render and deliver every digest due at --now, write feeds.

    Running it twice for the same time sends nothing new. Exits 1 when every source failed or
    the mail server took nothing; the undelivered digests are retried by the next run.
    """
    config = _config(ctx)
    report = do_run(config, parse_now(now), dry_run)
    if report.failure:
        raise RunError(report.failure)


@main.command()
@click.argument("token")
@click.pass_context
def unsubscribe(ctx: click.Context, token: str) -> None:
    """Record the opt-out a signed unsubscribe TOKEN asks for (a forged one is refused)."""
    config = _config(ctx)
    secret = load_secret(config.database, create=False)
    who = verify_token(secret, token) if secret else None
    if who is None:
        raise UsageError(
            "this unsubscribe token is not valid (forged, damaged or from another installation)"
        )
    with Store(config.database) as store:
        store.opt_out(who, datetime.now(UTC))
    click.echo(f"{who}: unsubscribed; `digest resubscribe {who}` undoes it")


@main.command()
@click.argument("subscriber")
@click.pass_context
def resubscribe(ctx: click.Context, subscriber: str) -> None:
    """Lift SUBSCRIBER's opt-out: their digests start again at the next run."""
    config = _config(ctx)
    with Store(config.database) as store:
        lifted = store.opt_in(subscriber)
    click.echo(f"{subscriber}: {'resubscribed' if lifted else 'was not unsubscribed'}")


@main.command()
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Run in the foreground on the configured schedule until SIGINT or SIGTERM.

    At start, a run missed while the service was down is caught up. The config and subscriber
    files are read again at each run.
    """
    from digest.schedule import serve as serve_forever

    path: Path = ctx.obj
    _config(ctx)  # fail now on a bad config

    def job(when: datetime) -> None:
        try:
            config = load_config(path)
            do_run(config, when, dry_run=False)
        except DigestError as e:
            _err(f"digest: error: {e}")

    serve_forever(lambda: load_config(path), job, log=lambda s: click.echo(s, err=True))
