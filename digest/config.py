"""YAML -> typed, frozen config objects, every problem reported at once with file and key.

`load_config` reads `config.yaml`; `load_subscribers` reads `subscribers/<id>.yaml` (the id is
the file name). Both use the safe YAML loader only; unknown keys are errors; relative paths resolve
against the folder of the config file; secrets are named by environment variable
(`password_env`), never written in a file.

A broken subscriber file does not stop a run: `load_subscribers` returns the good readers and
the problems, and the pipeline skips the broken ones with a warning. `digest check` reports all.
"""

from __future__ import annotations

import gc
import json
import os
import re
import zoneinfo
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import time
from pathlib import Path
from time import time_ns
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from digest.errors import ConfigError, Problem

DEFAULT_CONFIG = "config.yaml"
CONFIG_ENV = "DIGEST_CONFIG"
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;.]+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# libyaml's safe loader when PyYAML was built with it (about 5x faster for 10,000 reader files)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _time_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (try 'UTC' or 'Europe/Paris')") from None
    return name


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SourceConfig(_Model):
    """One place papers come from."""

    name: str
    type: Literal["hf_daily", "feed", "listing"]
    url: str | None = None
    path: Path | None = None
    lookback_days: int = Field(2, ge=1, le=60)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"use letters, digits, '.', '_' or '-', got {v!r}")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"expected an http:// or https:// URL, got {v!r}")
        return v

    @model_validator(mode="after")
    def _where(self) -> SourceConfig:
        if self.type == "listing":
            if (self.url is None) == (self.path is None):
                raise ValueError("a listing source needs exactly one of 'url' or 'path'")
        elif self.url is None:
            raise ValueError(f"a {self.type} source needs 'url'")
        elif self.path is not None:
            raise ValueError(f"a {self.type} source takes 'url', not 'path'")
        return self


class SmtpConfig(_Model):
    """How to reach the mail server; the password comes from the environment only."""

    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    timeout: float = Field(30.0, gt=0)
    rate_per_second: float | None = Field(None, gt=0)


class DeliveryConfig(_Model):
    """Where digests go: SMTP when `smtp` is set, else one .eml file each in `outbox`."""

    from_: str = Field("Paper Digest <digest@localhost>", alias="from")
    smtp: SmtpConfig | None = None
    outbox: Path = Path("outbox")
    unsubscribe_mailto: str | None = None  # default: the From address
    retry_hours: float = Field(72.0, gt=0)  # a deferred digest fails after this long


class FeedsConfig(_Model):
    """Where the RSS feeds are written and the public URL they are served under."""

    dir: Path = Path("public")
    site_url: str | None = None
    max_items: int = Field(50, ge=1, le=1000)


class ScheduleConfig(_Model):
    """When `digest serve` runs: a crontab line in a time zone."""

    cron: str = "0 7 * * *"
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return _time_zone(v)

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from digest.schedule import trigger

        if len(v.split()) not in (5, 6):
            raise ValueError(f"not a crontab line (5 fields, or 6 with seconds first): {v!r}")
        try:
            trigger(v, "UTC")
        except ValueError as e:
            raise ValueError(f"not a crontab line ({e}): {v!r}") from None
        return v


class FetchConfig(_Model):
    """How sources are fetched over HTTP."""

    timeout: float = Field(20.0, gt=0, le=600)
    max_response_mb: float = Field(20.0, gt=0)
    attempts: int = Field(4, ge=1, le=20)
    user_agent: str | None = None


class RankingConfig(_Model):
    """Which stored papers are candidates, and how strict inclusion is (see digest/rank.py)."""

    window_days: int = Field(7, ge=1, le=365)
    corpus_days: int = Field(90, ge=1, le=3650)
    corpus_max: int = Field(20_000, ge=100)
    threshold: float = Field(0.5, gt=0, le=1)
    trend_weight: float = Field(0.25, ge=0, le=1)
    # processes that rank and render digests; 0: one per CPU core when PARALLEL_FROM readers
    # or more are due (fewer are done in the run's own process)
    workers: int = Field(0, ge=0, le=64)


class Config(_Model):
    """The whole of `config.yaml`, paths resolved against `base_dir` (the config's folder)."""

    database: Path = Path("state/digest.sqlite3")
    subscribers: Path = Path("subscribers")
    sources: tuple[SourceConfig, ...] = ()
    delivery: DeliveryConfig = DeliveryConfig()
    feeds: FeedsConfig = FeedsConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    fetch: FetchConfig = FetchConfig()
    ranking: RankingConfig = RankingConfig()
    templates: Path | None = None
    base_dir: Path = Field(Path("."), exclude=True)
    file: Path = Field(Path(DEFAULT_CONFIG), exclude=True)

    @field_validator("sources")
    @classmethod
    def _unique(cls, v: tuple[SourceConfig, ...]) -> tuple[SourceConfig, ...]:
        names = [s.name for s in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique: {', '.join(dupes)} repeated")
        return v


class Subscriber(_Model):
    """One reader, from `subscribers/<id>.yaml`; the id is the file name."""

    id: str = Field("", exclude=True)
    name: str
    email: str
    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    liked: tuple[str, ...] = ()
    frequency: Literal["daily", "weekly"] = "daily"
    max_items: int = Field(10, ge=1, le=100)
    send_at: time | None = None
    timezone: str | None = None

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True
    )

    @field_validator("keywords", "exclude", "authors", "liked", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str | int | float) else v

    @field_validator("keywords", "exclude", "authors", "liked")
    @classmethod
    def _strip(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(s for s in (x.strip() for x in v) if s)

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        v = v.strip()
        if not _EMAIL.match(v):
            raise ValueError(f"not an email address: {v!r}")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return None if v is None else _time_zone(v)


# --- loading -------------------------------------------------------------------------------


def display_path(path: Path) -> str:
    """A path as a user would type it: relative to the working folder when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_yaml(path: Path) -> tuple[Any, list[Problem]]:
    """The parsed YAML of a file, or the problem (with line and column) that stopped it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(display_path(path), "", "file not found")]
    except (OSError, UnicodeDecodeError) as e:
        return None, [Problem(display_path(path), "", f"cannot read: {e}")]
    try:
        return yaml.load(text, Loader=_SAFE_LOADER), []
    except yaml.MarkedYAMLError as e:
        where = display_path(path)
        mark = e.problem_mark or e.context_mark
        loc = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        what = " ".join(x for x in (e.context, e.problem) if x)
        return None, [Problem(loc, "", f"invalid YAML: {what}")]
    except yaml.YAMLError as e:
        return None, [Problem(display_path(path), "", f"invalid YAML: {e}")]


def _key(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("function-", "literal[", "lax-or-strict")):
            out += f".{part}" if out else str(part)
    return out


_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping of keys",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
    "time_type": "a time such as 07:00",
    "time_parsing": "a time such as 07:00",
    "path_type": "a path",
}


def _message(err: Any) -> str:
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {got!r}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}, got {got!r}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = {
            "greater_than_equal": "at least",
            "greater_than": "more than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }[kind]
        limit = next(iter(ctx.values()))
        return f"must be {bound} {limit}, got {got!r}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return f"{err['msg']}, got {got!r}"


def _problems(where: str, e: ValidationError, prefix: str = "") -> list[Problem]:
    out = []
    for err in e.errors():
        key = _key(err["loc"])
        out.append(Problem(where, f"{prefix}{key}" if key else prefix.rstrip("."), _message(err)))
    return out


def _validate(model: type[_Model], data: Any, path: Path) -> tuple[Any, list[Problem]]:
    """The model of a file's data, or its problems (the file's display path is made only for
    them: resolving it costs more than validating a subscriber)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        what = f"expected a mapping of keys, got {type(data).__name__}"
        return None, [Problem(display_path(path), "", what)]
    try:
        return model.model_validate(data), []
    except ValidationError as e:
        return None, _problems(display_path(path), e)


def config_path(option: str | None) -> Path:
    """The config file to use: --config, else $DIGEST_CONFIG, else ./config.yaml."""
    return Path(option or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def _resolve(base: Path, p: Path) -> Path:
    p = p.expanduser()
    return p if p.is_absolute() else base / p


def load_config(path: Path) -> Config:
    """The validated config with paths resolved; raises ConfigError listing every problem."""
    data, problems = read_yaml(path)
    if problems:
        raise ConfigError(problems)
    config, problems = _validate(Config, data, path)
    if problems:
        raise ConfigError(problems)
    assert isinstance(config, Config)
    base = path.resolve().parent

    def r(p: Path) -> Path:
        return _resolve(base, p)

    return config.model_copy(
        update={
            "base_dir": base,
            "file": path,
            "database": r(config.database),
            "subscribers": r(config.subscribers),
            "sources": tuple(
                s.model_copy(update={"path": r(s.path)}) if s.path else s for s in config.sources
            ),
            "delivery": config.delivery.model_copy(update={"outbox": r(config.delivery.outbox)}),
            "feeds": config.feeds.model_copy(update={"dir": r(config.feeds.dir)}),
            "templates": r(config.templates) if config.templates else None,
        }
    )


def load_subscriber(path: Path) -> tuple[Subscriber | None, list[Problem]]:
    """One subscriber from its file (id = file name), or the problems that stop it."""
    if not _NAME.match(path.stem):
        what = "file name must be letters, digits, '.', '_' or '-'"
        return None, [Problem(display_path(path), "", what)]
    data, problems = read_yaml(path)
    if problems:
        return None, problems
    return _subscriber(data, path)


def _subscriber(data: Any, path: Path) -> tuple[Subscriber | None, list[Problem]]:
    """The subscriber of a file's parsed YAML (its id is the file name)."""
    if isinstance(data, dict):
        data = {**data, "id": path.stem}  # validated with its id: no copy of the model after
    return _validate(Subscriber, data, path)


def load_subscribers(
    config: Config, *, cache: Path | None = None
) -> tuple[list[Subscriber], list[Problem]]:
    """Every valid subscriber (sorted by id) and the problems of the files that are not.

    With `cache` (a JSON file beside the database, kept by `digest run`), a file whose inode,
    size and times are those recorded there is not parsed again: its YAML is taken from the
    cache (parsing was most of the cost of loading 10,000 readers). Every reader is still
    validated, and files with problems are always read again."""
    folder = config.subscribers
    if not folder.is_dir():
        return [], [Problem(display_path(folder), "", "subscribers folder not found")]
    with _collector_paused():
        return _load_subscribers(folder, cache)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The garbage collector paused while many small objects are made that all stay alive
    (readers, their parsed files): its passes over them were a quarter of loading 10,000
    readers (measured: 230-320 -> 167-194 ms). Left on or off as it was."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _load_subscribers(folder: Path, cache: Path | None) -> tuple[list[Subscriber], list[Problem]]:
    """`load_subscribers` from an existing folder."""
    known = _read_parsed(cache) if cache else {}
    kept: dict[str, list[Any]] = {}
    settled = time_ns() - SETTLED_NS
    subs, problems = [], []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")], key=lambda p: p.name):
        stamp = _stamp(path)
        entry = known.get(path.name, [])
        cached = stamp is not None and isinstance(entry, list) and entry[:1] == [stamp]
        if not _NAME.match(path.stem):
            sub, found = load_subscriber(path)  # the problem with its name
        elif cached and len(entry) == 2:
            data = entry[1]
            sub, found = _subscriber(data, path)
        else:
            cached = False
            data, found = read_yaml(path)
            sub, found = (None, found) if found else _subscriber(data, path)
        problems += found
        if sub is None:
            continue
        subs.append(sub)
        # a file changed in the last seconds may change again within the same clock tick
        if stamp and stamp[3] < settled and (cached or _json_safe(data)):
            kept[path.name] = [stamp, data]
    if cache is not None and kept != known:
        _write_parsed(cache, kept)
    return subs, problems


# files changed more recently than this are read on every run (file times are coarse: a file
# written twice within one clock tick, at the same size, keeps its times)
SETTLED_NS = 2_000_000_000
_PARSED_VERSION = 1


def _stamp(path: Path) -> list[int] | None:
    """What changes when a file is written, replaced or renamed over: inode, size, times."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _json_safe(data: Any) -> bool:
    """Whether parsed YAML comes back from JSON as it is (dates and non-text keys do not)."""
    try:
        return bool(json.loads(json.dumps(data)) == data)
    except (TypeError, ValueError):
        return False


def _read_parsed(cache: Path) -> dict[str, Any]:
    """The parsed subscriber files kept by an earlier run: {file name: [stamp, data]}; nothing
    when the cache is missing, unreadable or of another version (it is only made again)."""
    try:
        kept = json.loads(cache.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(kept, dict) or kept.get("version") != _PARSED_VERSION:
        return {}
    files = kept.get("files")
    return files if isinstance(files, dict) else {}


def _write_parsed(cache: Path, kept: dict[str, list[Any]]) -> None:
    """Replace the cache (written aside, then renamed: a reader never sees half of it). A cache
    that cannot be written is not an error: the next run parses the files again."""
    tmp = cache.with_name(cache.name + ".tmp")
    try:
        tmp.write_text(json.dumps({"version": _PARSED_VERSION, "files": kept}), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError:
        tmp.unlink(missing_ok=True)


def runtime_problems(config: Config) -> list[Problem]:
    """What `digest check` adds to the structure: files, folders and secrets a run will need."""
    where = display_path(config.file)
    out = []
    for i, s in enumerate(config.sources):
        if s.path is not None and not s.path.is_file():
            out.append(
                Problem(where, f"sources[{i}].path", f"file not found: {display_path(s.path)}")
            )
    smtp = config.delivery.smtp
    if smtp and smtp.password_env and smtp.password_env not in os.environ:
        out.append(
            Problem(
                where,
                "delivery.smtp.password_env",
                f"environment variable {smtp.password_env} is not set",
            )
        )
    if config.templates is not None and not config.templates.is_dir():
        out.append(
            Problem(where, "templates", f"folder not found: {display_path(config.templates)}")
        )
    return out
