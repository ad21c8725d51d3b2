"""Delivery: every digest exactly once through a real SMTP server (aiosmtpd) or the outbox."""

from __future__ import annotations

import email
import email.policy
import fcntl
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urljoin

import feedparser
import pytest
import yaml
from conftest import FIXTURES, free_port
from hypothesis import given
from hypothesis import strategies as st
from smtpserver import Authenticator, Handler, start

from digest.config import load_config, load_subscribers
from digest.deliver import Outbox
from digest.papers import link
from digest.pipeline import _unsubscribe_starts, write_feeds
from digest.store import Store
from digest.tokens import unsubscribe_token

ROOT = Path(__file__).parent.parent
NOW = "2026-08-10T07:00:00+00:00"
READERS = ["alice", "bob", "carol", "dave", "erin", "frank"]  # each gets a digest from trending-1


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    handler = Handler()
    controller = start(handler)
    yield handler, controller
    controller.stop()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A config folder: the six example readers, one real listing, a fixed signing secret."""
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")
    shutil.copytree(ROOT / "subscribers", tmp_path / "subscribers")
    shutil.copy(FIXTURES / "listings" / "trending-1.txt", tmp_path / "t1.txt")

    def configure(smtp: dict | None = None, **extra: object) -> Path:
        data: dict[str, object] = {
            "sources": [{"name": "t1", "type": "listing", "path": "t1.txt"}],
            "delivery": {
                "from": "Paper Digest <digest@example.org>",
                **({"smtp": smtp} if smtp else {}),
            },
            "feeds": {"site_url": "https://digest.example.org/"},
            **extra,
        }
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return configure


def smtp_config(controller, **extra: object) -> dict:  # type: ignore[no-untyped-def]
    return {
        "host": controller.hostname,
        "port": controller.port,
        "security": "none",
        "timeout": 5,
        **extra,
    }


def ledger(tmp_path: Path) -> dict[str, str]:
    with Store(tmp_path / "state" / "digest.sqlite3") as store:
        return {
            r["subscriber"]: r["status"]
            for r in store.digests("sending", "sent", "deferred", "failed")
        }


def test_smtp_delivery_once(smtp, site, cli, tmp_path: Path) -> None:
    """Every due digest reaches the server once, on one connection; a second run sends nothing."""
    handler, controller = smtp
    site(smtp_config(controller))
    result = cli("run", "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "6 digests sent, 0 deferred, 0 failed" in result.output
    assert sorted(r.recipients[0] for r in handler.received) == sorted(
        f"{r}@example.org" for r in READERS
    )
    assert handler.connections == 1
    again = cli("run", "--now", "2026-08-10T09:00:00+00:00")
    assert "0 digests sent" in again.output and len(handler.received) == 6
    assert set(ledger(tmp_path).values()) == {"sent"}


def test_message_headers_and_parts(smtp, site, cli) -> None:
    """multipart/alternative, text then HTML, the contract's headers, unencoded List-Unsubscribe."""
    handler, controller = smtp
    site(smtp_config(controller))
    cli("run", "--now", NOW)
    got = next(r for r in handler.received if r.recipients == ["alice@example.org"])
    msg = got.message
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert (
        msg["From"] == "Paper Digest <digest@example.org>"
        and msg["To"] == "Alice Example <alice@example.org>"
    )
    assert msg["Message-ID"].endswith("@example.org>") and msg["List-Id"]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    raw_header = next(
        x for x in got.data.decode().splitlines() if x.startswith("List-Unsubscribe:")
    )
    assert "<https://digest.example.org/unsubscribe?token=" in raw_header and "=?" not in raw_header
    assert "<mailto:digest@example.org?subject=unsubscribe%20" in raw_header


def test_451_is_retried_with_the_same_message_id(smtp, site, cli, tmp_path: Path) -> None:
    """A 451 leaves the digest deferred; a later run sends the same message, same Message-ID."""
    handler, controller = smtp
    handler.answers["bob@example.org"] = ["451 4.3.0 mailbox busy"]
    site(smtp_config(controller))
    first = cli("run", "--now", NOW)
    assert first.exit_code == 0
    assert "bob 2026-08-10: deferred" in first.stderr and "451" in first.stderr
    assert ledger(tmp_path)["bob"] == "deferred"
    with Store(tmp_path / "state" / "digest.sqlite3") as store:
        stored_id = store.digest("bob", "2026-08-10")["message_id"]  # type: ignore[index]
    too_soon = cli("run", "--now", "2026-08-10T07:05:00+00:00")
    assert "bob" not in too_soon.output  # backoff: not before 15 minutes
    later = cli("run", "--now", "2026-08-10T08:00:00+00:00")
    assert "bob 2026-08-10: sent" in later.output
    bobs = [r for r in handler.received if r.recipients == ["bob@example.org"]]
    assert len(bobs) == 1 and bobs[0].message["Message-ID"] == stored_id


def test_550_is_reported_and_not_retried(smtp, site, cli, tmp_path: Path) -> None:
    """A refused recipient fails that digest only; the others are delivered; no retry later."""
    handler, controller = smtp
    handler.refuse_rcpt["carol@example.org"] = "550 5.1.1 no such user"
    site(smtp_config(controller))
    result = cli("run", "--now", NOW)
    assert result.exit_code == 0
    assert "carol 2026-08-10: failed (4 papers): 550 5.1.1 no such user" in result.stderr
    assert "5 digests sent, 0 deferred, 1 failed" in result.output
    cli("run", "--now", "2026-08-10T12:00:00+00:00")
    assert ledger(tmp_path)["carol"] == "failed"
    assert "carol@example.org" not in [r.recipients[0] for r in handler.received]


def test_connection_dropped_mid_data(smtp, site, cli, tmp_path: Path) -> None:
    """A connection lost during DATA defers that digest; the next message reconnects; the next
    run delivers the deferred one."""
    handler, controller = smtp
    handler.drop_data.add("dave@example.org")
    site(smtp_config(controller))
    result = cli("run", "--now", NOW)
    assert "dave 2026-08-10: deferred (6 papers): connection lost" in result.stderr
    assert "5 digests sent, 1 deferred" in result.output
    cli("run", "--now", "2026-08-10T08:00:00+00:00")
    assert Counter(r.recipients[0] for r in handler.received)["dave@example.org"] == 1
    assert set(ledger(tmp_path).values()) == {"sent"}


def test_unreachable_server_then_recovery(smtp, site, cli, tmp_path: Path) -> None:
    """A dead SMTP server: exit 1 with one line, nothing marked sent; the next run delivers all."""
    handler, controller = smtp
    site({"host": "127.0.0.1", "port": free_port(), "security": "none", "timeout": 2})
    result = cli("run", "--now", NOW)
    assert result.exit_code == 1
    assert "digest: error: cannot reach the SMTP server 127.0.0.1:" in result.stderr
    assert "sent" not in ledger(tmp_path).values()
    site(smtp_config(controller))
    again = cli("run", "--now", "2026-08-10T08:00:00+00:00")
    assert again.exit_code == 0, again.output
    assert sorted(r.recipients[0] for r in handler.received) == sorted(
        f"{r}@example.org" for r in READERS
    )


def test_refused_sender(smtp, site, cli, tmp_path: Path) -> None:
    """The server refuses our sender: exit 1 with one line, nothing sent; fixed, all delivered."""
    handler, controller = smtp
    handler.refuse_sender = "553 5.7.1 sender not allowed"
    site(smtp_config(controller))
    result = cli("run", "--now", NOW)
    assert result.exit_code == 1
    assert (
        "digest: error: SMTP server refused the sender digest@example.org: 553 5.7.1 sender not allowed"
        in result.stderr
    )
    assert handler.received == [] and "sent" not in ledger(tmp_path).values()
    handler.refuse_sender = None
    assert cli("run", "--now", "2026-08-10T08:00:00+00:00").exit_code == 0
    assert len(handler.received) == 6


def test_tls_certificates_are_verified(
    site, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STARTTLS to a server whose certificate is not trusted fails; trusted (SSL_CERT_FILE), it works."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = Handler()
    controller = start(handler, tls_context=context, require_starttls=True)
    try:
        site(smtp_config(controller, security="starttls"))
        untrusted = cli("run", "--now", NOW)
        assert untrusted.exit_code == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        assert handler.received == []
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusted = cli("run", "--now", "2026-08-10T08:00:00+00:00")
        assert trusted.exit_code == 0, trusted.output
        assert len(handler.received) == 6
    finally:
        controller.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_wrong_credentials(site, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused login: exit 1, every digest left for the next run, none sent."""
    handler = Handler()
    controller = start(handler, auth=Authenticator("digest", "right"))
    try:
        monkeypatch.setenv("SMTP_PW", "wrong")
        site(smtp_config(controller, username="digest", password_env="SMTP_PW"))
        result = cli("run", "--now", NOW)
        assert result.exit_code == 1 and "SMTP login refused" in result.stderr
        assert handler.received == [] and "sent" not in ledger(tmp_path).values()
        monkeypatch.setenv("SMTP_PW", "right")
        assert cli("run", "--now", "2026-08-10T08:00:00+00:00").exit_code == 0
        assert len(handler.received) == 6
    finally:
        controller.stop()


def test_outbox_is_what_smtp_would_get(smtp, site, cli, tmp_path: Path) -> None:
    """Without smtp, each digest is one .eml in the outbox, byte for byte what SMTP receives
    (apart from the random MIME boundary)."""
    handler, controller = smtp
    site()
    assert cli("run", "--now", NOW).exit_code == 0
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert [f.name for f in files] == [f"2026-08-10-{r}.eml" for r in READERS[:5]] + [
        "2026-W33-frank.eml"
    ]
    shutil.rmtree(tmp_path / "state")
    site(smtp_config(controller))
    cli("run", "--now", NOW)
    alice_smtp = next(r.data for r in handler.received if r.recipients == ["alice@example.org"])
    alice_file = (tmp_path / "outbox" / "2026-08-10-alice.eml").read_bytes()

    def unbound(raw: bytes) -> bytes:
        boundary = email.message_from_bytes(raw).get_boundary().encode()
        return raw.replace(boundary, b"B")

    assert unbound(alice_file) == unbound(alice_smtp)


def test_outbox_failing_mid_batch_leaves_nothing_half_done(site, cli, tmp_path: Path) -> None:
    """Outbox digests are claimed and marked in batches: when a write fails, the digests written
    are sent, the failing one is deferred, the rest of the batch is not claimed; the next run
    delivers exactly the missing ones."""
    site()
    blocker = tmp_path / "outbox" / "2026-08-10-dave.eml"
    blocker.mkdir(parents=True)  # os.replace onto a directory fails
    first = cli("run", "--now", NOW)
    assert first.exit_code == 1
    states = ledger(tmp_path)
    assert states["dave"] == "deferred"
    assert "sending" not in states.values()
    written = {p.name for p in (tmp_path / "outbox").glob("*.eml") if p.is_file()}
    assert {f"2026-08-10-{r}.eml" for r, st in states.items() if st == "sent"} <= written
    assert set(states) < set(READERS)  # the rest of the batch was not claimed
    assert not list((tmp_path / "outbox").glob(".tmp-*"))  # nor left staged
    blocker.rmdir()
    later = "2026-08-10T08:00:00+00:00"
    assert cli("run", "--now", later).exit_code == 0
    assert set(ledger(tmp_path).values()) == {"sent"} and set(ledger(tmp_path)) == set(READERS)
    files = sorted(p.name for p in (tmp_path / "outbox").glob("*.eml"))
    assert files == sorted([f"2026-08-10-{r}.eml" for r in READERS[:5]] + ["2026-W33-frank.eml"])


def test_worker_processes_prepare_the_same_digests(site, cli, tmp_path: Path) -> None:
    """Digests ranked and rendered by worker processes are the ones the run's own process
    makes, in the same outbox files; so are the feeds they write."""

    def feeds() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((tmp_path / "public").glob("*.xml"))}

    def outbox() -> dict[str, bytes]:
        out = {}
        for path in sorted((tmp_path / "outbox").glob("*.eml")):
            raw = path.read_bytes()
            out[path.name] = raw.replace(
                email.message_from_bytes(raw).get_boundary().encode(), b"B"
            )
        return out

    site(ranking={"workers": 1})
    assert cli("run", "--now", NOW).exit_code == 0
    alone, ledger_alone, feeds_alone = outbox(), ledger(tmp_path), feeds()
    for folder in ("state", "outbox", "public"):
        shutil.rmtree(tmp_path / folder)
    site(ranking={"workers": 3})
    assert cli("run", "--now", NOW).exit_code == 0
    assert len(alone) == len(READERS)
    assert outbox() == alone
    assert ledger(tmp_path) == ledger_alone
    assert len(feeds_alone) == len(READERS) + 1 and feeds() == feeds_alone


def test_staged_messages_are_sent_by_renaming_and_the_rest_removed(tmp_path: Path) -> None:
    """Staged messages wait under temporary names with their exact bytes; `send` of a staged
    one moves that file into place (whatever bytes it is given); `close` removes the others."""
    outbox = Outbox(tmp_path / "outbox")
    messages = [b"first\r\n", b"second\r\n", b"third\r\n"]
    staged = outbox.stage(messages)
    assert all(staged) and len(set(staged)) == 3
    assert [Path(f).read_bytes() for f in staged if f] == messages
    assert outbox.send("a@x", "b@x", b"", "one", staged[1]).status == "sent"
    assert outbox.path("one").read_bytes() == b"second\r\n"
    outbox.close()
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == ["one.eml"]
    (tmp_path / "a-file").write_bytes(b"")
    assert Outbox(tmp_path / "a-file").stage(messages) == [None, None, None]  # send will say why


def test_unsubscribe_and_resubscribe(smtp, site, cli, tmp_path: Path) -> None:
    """The token in List-Unsubscribe opts the reader out; a tampered one is refused; resubscribe."""
    handler, controller = smtp
    site(smtp_config(controller))
    cli("run", "--now", NOW)
    alice = next(r for r in handler.received if r.recipients == ["alice@example.org"])
    token = alice.message["List-Unsubscribe"].split("token=")[1].split(">")[0]
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert cli("unsubscribe", forged).exit_code == 2
    bob_token = "Ym9i" + token[token.index(".") :]  # bob's name with alice's signature
    assert cli("unsubscribe", bob_token).exit_code == 2
    result = cli("unsubscribe", token)
    assert result.exit_code == 0 and "alice: unsubscribed" in result.output
    handler.received.clear()
    shutil.copy(FIXTURES / "listings" / "trending-2.txt", tmp_path / "t2.txt")
    site(smtp_config(controller), sources=[{"name": "t2", "type": "listing", "path": "t2.txt"}])
    day2 = cli("run", "--now", "2026-08-11T07:00:00+00:00")  # new quantization papers arrive
    assert handler.received and "alice" not in day2.output
    assert "alice: resubscribed" in cli("resubscribe", "alice").output
    cli("run", "--now", "2026-08-12T07:00:00+00:00")
    assert "alice@example.org" in [r.recipients[0] for r in handler.received]


def test_invalid_subscriber_is_skipped(smtp, site, cli, tmp_path: Path) -> None:
    """A reader with an invalid address: check names it; run warns, skips it and serves the rest."""
    handler, controller = smtp
    (tmp_path / "subscribers" / "zed.yaml").write_text(
        "name: Zed\nemail: zed-at-nowhere\nkeywords: [pruning]\n"
    )
    site(smtp_config(controller))
    check = cli("check")
    assert (
        check.exit_code == 2 and "subscribers/zed.yaml: email: not an email address" in check.stderr
    )
    result = cli("run", "--now", NOW)
    assert result.exit_code == 0
    assert (
        "warning: subscribers/zed.yaml: email: not an email address: 'zed-at-nowhere': this reader is skipped"
        in result.stderr
    )
    assert len(handler.received) == 6


def test_feeds_written_and_stable(site, cli, tmp_path: Path) -> None:
    """run writes <reader>.xml and all.xml, valid for feedparser; a run with nothing new leaves
    the bytes identical."""
    site()
    cli("run", "--now", NOW)
    feeds = {p.name: p.read_bytes() for p in (tmp_path / "public").glob("*.xml")}
    assert set(feeds) == {f"{r}.xml" for r in READERS} | {"all.xml"}
    for name, content in feeds.items():
        parsed = feedparser.parse(content)
        assert parsed.bozo == 0, name
    alice = feedparser.parse(feeds["alice.xml"])
    assert alice.entries and all(e.id and "matched" in e.description for e in alice.entries)
    assert len(feedparser.parse(feeds["all.xml"]).entries) == 50  # feeds.max_items
    cli("run", "--now", "2026-08-10T09:00:00+00:00")
    assert {p.name: p.read_bytes() for p in (tmp_path / "public").glob("*.xml")} == feeds


def test_feeds_are_rebuilt_when_what_they_show_changes(site, cli, tmp_path: Path) -> None:
    """Feeds are not rebuilt on every run, yet always equal feeds built afresh from the store:
    after a paper's title changes, a reader is renamed, a feed file is deleted, a new day."""
    config = site()
    public = tmp_path / "public"

    def afresh() -> dict[str, bytes]:
        """Every feed built from a copy of the store that remembers no feed."""
        cfg = load_config(config)
        cfg = cfg.model_copy(
            update={"feeds": cfg.feeds.model_copy(update={"dir": tmp_path / "ref"})}
        )
        shutil.rmtree(tmp_path / "ref", ignore_errors=True)
        with Store(cfg.database) as store, Store(tmp_path / "copy.sqlite3") as copy:
            store.db.backup(copy.db)
            copy.db.execute("DELETE FROM feeds")
            write_feeds(cfg, copy, load_subscribers(cfg)[0], datetime.fromisoformat(NOW))
        (tmp_path / "copy.sqlite3").unlink()
        return {
            p.name: p.read_bytes() for p in (tmp_path / "ref").glob("*.xml") if p.name != "all.xml"
        }

    def feeds() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in public.glob("*.xml") if p.name != "all.xml"}

    cli("run", "--now", NOW)
    first = feeds()
    assert first == afresh()
    with Store(load_config(config).database) as store:
        paper = store.paper(store.delivered_links("alice", 1)[0][0])
        assert paper is not None
        for reader in ("alice", "bob", "frank"):  # what a feed reads: the sent papers' links
            links = store.delivered_links(reader, 50)
            assert links and all(url == link(store.paper(i)) for i, _, url, _, _ in links)  # type: ignore[arg-type]
        store.add_batch(
            "t1",
            [],
            datetime.fromisoformat(NOW),
            updates=[replace(paper, title=paper.title + " (extended)")],
        )
    cli("run", "--now", NOW)  # nothing due: only the feeds change
    assert f"{paper.title} (extended)".encode() in feeds()["alice.xml"]
    assert feeds() == afresh()
    bob = tmp_path / "subscribers" / "bob.yaml"
    bob.write_text(bob.read_text().replace("name: Bob Example", "name: Robert Example"))
    (public / "carol.xml").unlink()
    cli("run", "--now", NOW)
    assert b"Paper digest for Robert Example" in feeds()["bob.xml"]
    assert feeds() == afresh()
    assert {k: v for k, v in feeds().items() if k not in ("alice.xml", "bob.xml")} == {
        k: v for k, v in first.items() if k not in ("alice.xml", "bob.xml")
    }
    shutil.copy(FIXTURES / "listings" / "trending-2.txt", tmp_path / "t1.txt")
    cli("run", "--now", "2026-08-11T07:00:00+00:00")
    assert feeds() == afresh() != first


def test_dry_run_records_nothing(site, cli, tmp_path: Path, monkeypatch) -> None:
    """--dry-run lists what would go out and sends, stores and writes nothing (not even the
    parsed subscriber files, which a run keeps)."""
    monkeypatch.setattr("digest.config.SETTLED_NS", 0)  # the files just written count as settled
    site()
    cli("fetch", "--now", NOW)
    db = tmp_path / "state" / "digest.sqlite3"
    result = cli("run", "--now", NOW, "--dry-run")
    assert (
        result.exit_code == 0
        and "dry run, nothing fetched, sent or recorded: 6 digests would be sent" in result.output
    )
    assert not (tmp_path / "outbox").exists() and not (tmp_path / "public").exists()
    assert ledger(tmp_path) == {}
    assert not list(db.parent.glob("*.secret")) and not list(db.parent.glob("*.json"))
    assert cli("run", "--now", NOW).exit_code == 0
    assert (
        len(json.loads((db.parent / "digest.sqlite3.subscribers.json").read_text())["files"]) == 6
    )


def test_second_concurrent_run_exits_at_once(site, cli, tmp_path: Path) -> None:
    """While a run holds the lock, another exits 1 at once with a clear message."""
    site()
    lock = tmp_path / "state" / "digest.sqlite3.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        started = time.monotonic()
        result = cli("run", "--now", NOW)
        assert time.monotonic() - started < 10
    assert result.exit_code == 1 and "another digest run is in progress" in result.stderr


def test_weekly_reader_gets_the_week_once(site, cli, tmp_path: Path) -> None:
    """A weekly reader gets one digest per ISO week, holding papers first seen on several days."""
    shutil.copy(FIXTURES / "listings" / "trending-2.txt", tmp_path / "t2.txt")
    site()
    assert cli("fetch", "--now", "2026-08-12T07:00:00+00:00").exit_code == 0  # Wednesday, week 33
    site(sources=[{"name": "t2", "type": "listing", "path": "t2.txt"}])
    assert cli("fetch", "--now", "2026-08-13T07:00:00+00:00").exit_code == 0  # Thursday
    cli("run", "--now", "2026-08-17T07:00:00+00:00")  # Monday, week 34
    cli("run", "--now", "2026-08-18T07:00:00+00:00")  # Tuesday: the week's digest is done
    frank = sorted(p.name for p in (tmp_path / "outbox").glob("*frank.eml"))
    assert frank == ["2026-W34-frank.eml"]
    with Store(tmp_path / "state" / "digest.sqlite3") as store:
        days = {store.first_seen(i) for i, *_ in store.delivered_links("frank", 50)}
    assert len(days) == 2  # papers from Wednesday's and Thursday's listings


def test_kill_9_mid_send_then_rerun(site, tmp_path: Path) -> None:
    """kill -9 of `digest run` while a message is in flight, then a rerun: every reader has their
    digest once, except that the one in flight may arrive twice, with one Message-ID."""
    handler = Handler(delay=1.0)  # each DATA takes a second: time to kill in the middle
    controller = start(handler)
    try:
        config = site(smtp_config(controller, timeout=30))
        env = {**os.environ, "DIGEST_SECRET": "test-secret"}
        cmd = [sys.executable, "-m", "digest", "--config", str(config), "run", "--now", NOW]
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while len(handler.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the third message is now in DATA
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        in_flight = {s: st for s, st in ledger(tmp_path).items() if st == "sending"}
        assert len(in_flight) == 1, ledger(tmp_path)
        time.sleep(1.5)  # let the server finish the message it was holding
        handler.delay = 0
        rerun = subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert rerun.returncode == 0, rerun.stderr
        assert "interrupted while sending: will be sent again" in rerun.stderr
        counts = Counter(r.recipients[0] for r in handler.received)
        reader = next(iter(in_flight))
        assert set(counts) == {f"{r}@example.org" for r in READERS}
        for address, n in counts.items():
            assert n == (n if address == f"{reader}@example.org" else 1), counts
        assert counts[f"{reader}@example.org"] in (1, 2)
        ids = {
            r.message["Message-ID"]
            for r in handler.received
            if r.recipients == [f"{reader}@example.org"]
        }
        assert len(ids) == 1
        assert set(ledger(tmp_path).values()) == {"sent"}
    finally:
        controller.stop()


def test_rank_leaves_out_what_was_delivered(site, cli) -> None:
    """After a digest is sent, `digest rank` no longer offers its papers to that reader."""
    site()
    cli("fetch", "--now", NOW)
    before = {
        i["id"]
        for i in json.loads(cli("rank", "alice", "--now", NOW, "--json").stdout)
        if i["included"]
    }
    assert before
    cli("run", "--now", NOW)
    after = json.loads(cli("rank", "alice", "--now", "2026-08-10T09:00:00+00:00", "--json").stdout)
    assert before.isdisjoint(i["id"] for i in after)
    bob = {
        i["id"]
        for i in json.loads(
            cli("rank", "bob", "--now", "2026-08-10T09:00:00+00:00", "--json").stdout
        )
    }
    assert bob  # other readers' candidates are untouched by alice's digest


@given(
    subscriber_id=st.text(min_size=1, max_size=30),
    site=st.sampled_from(
        ["https://d.example.org/", "https://d.example.org/digest/", "https://d.example.org/a?b=1#c"]
    ),
    mailbox=st.sampled_from(["digest@example.org", "lists+digest@example.org"]),
)
def test_unsubscribe_links_are_the_joined_and_quoted_urls(
    subscriber_id: str, site: str, mailbox: str
) -> None:
    """The links' start is made once per run and the token appended: the same URLs as joining
    and quoting each reader's whole link, whatever the reader's id."""
    token = unsubscribe_token(b"secret", subscriber_id)
    https, mailto = (start + token for start in _unsubscribe_starts(site, mailbox))
    assert https == urljoin(site, f"unsubscribe?token={token}")
    assert mailto == f"mailto:{mailbox}?subject={quote(f'unsubscribe {token}')}"
