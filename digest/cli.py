"""The `digest` command: parse, call the pipeline, print a summary, map errors to exit codes.

Exit codes (../shared/CONTRACT.md): 0 done; 1 the job failed at run time, one line on stderr;
2 bad usage or configuration, every problem listed.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from digest import __version__, pipeline
from digest.config import (
    Config,
    config_path,
    display_path,
    load_config,
    load_subscribers,
    runtime_problems,
)
from digest.errors import ConfigError, DigestError, RunError, UsageError
from digest.store import Store
from digest.types import SourceReport


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
    click.echo(
        f"{display_path(config.file)}: ok; {len(config.sources)} sources, "
        f"{len(subscribers)} subscribers"
    )


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
