"""Config and subscriber files: typed, validated in one pass, every problem with file and key."""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import pytest

from digest.config import load_config, load_subscribers
from digest.errors import ConfigError

ROOT = Path(__file__).parent.parent


def test_shipped_configs_and_subscribers_are_valid(cli, monkeypatch) -> None:
    """The config.yaml, the offline example and the example subscribers pass `digest check`."""
    monkeypatch.chdir(ROOT)
    for config in ("config.yaml", "examples/offline.yaml"):
        result = cli("--config", str(ROOT / config), "check")
        assert result.exit_code == 0, result.output
        assert "6 subscribers" in result.output


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch) -> None:
    """database, subscribers, outbox and listing paths are relative to the config, not the cwd."""
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "config.yaml").write_text(
        "database: db/x.sqlite3\nsources:\n- {name: s, type: listing, path: l.txt}\n"
    )
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("conf/config.yaml"))
    assert config.database == folder.resolve() / "db/x.sqlite3"
    assert config.sources[0].path == folder.resolve() / "l.txt"
    assert config.delivery.outbox == folder.resolve() / "outbox"
    assert config.subscribers == folder.resolve() / "subscribers"


def test_config_is_frozen(make_config) -> None:
    """Config objects cannot be changed after loading."""
    config = load_config(make_config([]))
    with pytest.raises(Exception, match="frozen"):
        config.database = Path("elsewhere")  # type: ignore[misc]


def test_check_reports_every_problem_with_file_and_key(cli, tmp_path: Path) -> None:
    """One `digest check` lists the config's and each subscriber's problems, and exits 2."""
    (tmp_path / "config.yaml").write_text(
        "sources:\n"
        "  - {name: hf, type: hf_daily, url: 'https://example.org/api', lookback_days: two}\n"
        "  - {name: arxiv, type: rss, url: 'https://example.org/feed'}\n"
        "  - {name: snap, type: listing}\n"
        "delivery: {smtp: {host: mail, port: 99999, password: hunter2}}\n"
        "schedule: {timezone: Mars/Olympus}\n"
        "colour: blue\n"
    )
    subs = tmp_path / "subscribers"
    subs.mkdir()
    (subs / "bob.yaml").write_text("name: Bob\nemail: bob@example.org\nmax_items: ten\n")
    (subs / "carol.yaml").write_text("name: Carol\nemail: carol-at-example\nfrequency: hourly\n")
    (subs / "dan.yaml").write_text("name: Dan\nkeywords: [a, b\n")
    result = cli("check")
    assert result.exit_code == 2
    err = result.stderr
    expected = [
        "config.yaml: sources[0].lookback_days: expected an integer, got 'two'",
        "config.yaml: sources[1].type: expected 'hf_daily', 'feed' or 'listing', got 'rss'",
        "config.yaml: sources[2]: a listing source needs exactly one of 'url' or 'path'",
        "config.yaml: delivery.smtp.port: must be at most 65535, got 99999",
        "config.yaml: delivery.smtp.password: unknown key",
        "config.yaml: schedule.timezone: unknown time zone 'Mars/Olympus'",
        "config.yaml: colour: unknown key",
    ]
    for line in expected:
        assert line in err
    # the config is broken, so subscribers are checked on the next run of check
    assert "subscribers/" not in err

    (tmp_path / "config.yaml").write_text("sources: []\n")
    result = cli("check")
    assert result.exit_code == 2
    assert "subscribers/bob.yaml: max_items: expected an integer, got 'ten'" in result.stderr
    assert (
        "subscribers/carol.yaml: email: not an email address: 'carol-at-example'" in result.stderr
    )
    assert (
        "subscribers/carol.yaml: frequency: expected 'daily' or 'weekly', got 'hourly'"
        in result.stderr
    )
    assert "subscribers/dan.yaml:3:1: invalid YAML" in result.stderr


def test_yaml_error_names_line_and_column(cli, tmp_path: Path) -> None:
    """A broken config.yaml is reported with the line and column of the mistake."""
    (tmp_path / "config.yaml").write_text("database: x\nsources:\n  - name: a\n   type: feed\n")
    result = cli("check")
    assert result.exit_code == 2
    assert "config.yaml:4:" in result.stderr and "invalid YAML" in result.stderr


def test_missing_config_file_is_a_usage_error(cli) -> None:
    """No config file: exit 2 with a line that says where it looked."""
    result = cli("--config", "nope.yaml", "check")
    assert result.exit_code == 2
    assert "config file not found: nope.yaml" in result.stderr


def test_check_names_missing_files_and_secrets(cli, tmp_path: Path, monkeypatch) -> None:
    """`check` also reports a listing file that is missing and an unset password variable."""
    monkeypatch.delenv("NO_SUCH_SECRET", raising=False)
    (tmp_path / "subscribers").mkdir()
    (tmp_path / "config.yaml").write_text(
        "sources: [{name: s, type: listing, path: gone.txt}]\n"
        "delivery: {smtp: {host: mail, password_env: NO_SUCH_SECRET}}\n"
    )
    result = cli("check")
    assert result.exit_code == 2
    assert "config.yaml: sources[0].path: file not found: gone.txt" in result.stderr
    assert (
        "delivery.smtp.password_env: environment variable NO_SUCH_SECRET is not set"
        in result.stderr
    )


def test_subscriber_fields_and_id_from_file_name(tmp_path: Path, make_config) -> None:
    """A subscriber's id is its file name; a single keyword string is a one-item list."""
    config = load_config(make_config([]))
    (tmp_path / "subscribers" / "eve.yaml").write_text(
        "name: Eve\nemail: eve@example.org\nkeywords: quantization\nexclude: [speech]\n"
    )
    (tmp_path / "subscribers" / "zed.yaml").write_text("name: Zed\nemail: nope\n")
    subs, problems = load_subscribers(config)
    assert [s.id for s in subs] == ["eve"]
    assert subs[0].keywords == ("quantization",) and subs[0].max_items == 10
    assert len(problems) == 1 and "zed.yaml: email" in str(problems[0])


def test_loading_readers_leaves_the_garbage_collector_as_it_was(
    tmp_path: Path, make_config
) -> None:
    """The collector is paused while readers load, and left on or off as it was, problems or not."""
    config = load_config(make_config([]))
    (tmp_path / "subscribers" / "zed.yaml").write_text("name: Zed\nemail: nope\n")
    try:
        for enabled in (True, False, True):
            if enabled:
                gc.enable()
            else:
                gc.disable()
            _, problems = load_subscribers(config)
            assert problems and gc.isenabled() is enabled
    finally:
        gc.enable()


def test_duplicate_source_names_are_refused(make_config) -> None:
    """Two sources with one name cannot be told apart in reports: an error."""
    path = make_config(
        [
            {"name": "a", "type": "feed", "url": "https://x.org/f"},
            {"name": "a", "type": "feed", "url": "https://x.org/g"},
        ]
    )
    with pytest.raises(ConfigError, match="source names must be unique: a repeated"):
        load_config(path)


def _readers(config, cache: Path | None = None) -> list[tuple[str, str, tuple[str, ...]]]:
    subs, _ = load_subscribers(config, cache=cache)
    return [(s.id, s.name, s.keywords) for s in subs]


def test_parsed_subscribers_are_kept_until_their_file_changes(
    tmp_path: Path, make_config, monkeypatch
) -> None:
    """A file's parsed YAML is taken from the cache while its inode, size and times are the
    same, and read again when it is rewritten or replaced; the readers are those of a load
    without cache."""
    monkeypatch.setattr("digest.config.SETTLED_NS", 0)  # every file counts as settled
    config = load_config(make_config([]))
    folder, cache = tmp_path / "subscribers", tmp_path / "parsed.json"
    (folder / "eve.yaml").write_text("name: Eve\nemail: eve@example.org\nkeywords: [a]\n")
    (folder / "bob.yml").write_text("name: Bob\nemail: bob@example.org\nkeywords: [b]\n")
    (folder / "zed.yaml").write_text("name: Zed\nemail: nope\n")
    first = load_subscribers(config, cache=cache)
    assert first == load_subscribers(config, cache=cache) == load_subscribers(config)
    assert len(first[1]) == 1  # zed's problem, reported again on every load
    kept = json.loads(cache.read_text())
    assert sorted(kept["files"]) == ["bob.yml", "eve.yaml"]  # not the file with a problem
    # the cache is what is read while the files are unchanged
    kept["files"]["eve.yaml"][1]["name"] = "Cached"
    cache.write_text(json.dumps(kept))
    assert [name for _, name, _ in _readers(config, cache)] == ["Bob", "Cached"]
    # rewritten in place (another size), or replaced by a file of the same size
    (folder / "eve.yaml").write_text("name: Eve\nemail: eve@example.org\nkeywords: [a, c]\n")
    (folder / "new.tmp").write_text("name: Bib\nemail: bob@example.org\nkeywords: [b]\n")
    os.replace(folder / "new.tmp", folder / "bob.yml")
    assert _readers(config, cache) == _readers(config)
    assert _readers(config) == [("bob", "Bib", ("b",)), ("eve", "Eve", ("a", "c"))]


def test_recent_files_and_broken_caches_are_read_again(
    tmp_path: Path, make_config, monkeypatch
) -> None:
    """A file changed in the last seconds is not cached (a second write within one clock tick
    can leave its times as they were); a cache that is not JSON is ignored, then replaced."""
    config = load_config(make_config([]))
    cache = tmp_path / "parsed.json"
    cache.write_text("{not json")
    (tmp_path / "subscribers" / "eve.yaml").write_text("name: Eve\nemail: eve@example.org\n")
    assert _readers(config, cache) == [("eve", "Eve", ())]
    assert cache.read_text() == "{not json"  # nothing settled to keep: left as it was
    monkeypatch.setattr("digest.config.SETTLED_NS", 0)
    assert _readers(config, cache) == [("eve", "Eve", ())]
    assert list(json.loads(cache.read_text())["files"]) == ["eve.yaml"]
