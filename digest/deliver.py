"""Delivery: SMTP or an outbox folder behind one small interface, and the ledger's rules.

    transport.send(sender, recipient, message_bytes, name) -> Outcome   (sent / deferred / failed)

A `TransportDown` error means nothing more can be sent this run (server unreachable, login
refused, sender refused): the pipeline leaves every remaining digest for the next run and
exits 1. Per-message answers are outcomes: a 4xx defers (same message and Message-ID on a later
run), a 5xx fails the digest and is reported.

One SMTP connection serves a whole run (RSET after a refused message; a dropped connection is
reopened once for the next message), certificates are verified for `starttls` and `ssl`, the
password comes from the environment, and an optional rate limit spaces messages out.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from digest.config import SmtpConfig
from digest.errors import DigestError

RETRY_BASE = timedelta(minutes=15)
RETRY_MAX = timedelta(hours=6)


class TransportDown(DigestError):
    """Nothing more can be sent this run; every digest stays for the next one."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one message."""

    status: str  # sent | deferred | failed
    detail: str = ""


def next_attempt(now: datetime, attempts: int) -> datetime:
    """When a deferred digest is tried again: 15 min, 30 min, 1 h, ... at most 6 h later."""
    delay: timedelta = min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)
    return now + delay


class Transport(Protocol):
    # digests claimed (and marked) per ledger transaction: many for the outbox, whose files
    # tell what a crash left undone; one for SMTP, so a crash leaves one message in doubt
    batch: int

    def send(
        self, sender: str, recipient: str, message: bytes, name: str, staged: str | None = None
    ) -> Outcome: ...

    def close(self) -> None: ...


class Outbox:
    """One .eml file per digest, written atomically: `<outbox>/<name>.eml`.

    Messages may be staged ahead of their claim (by a worker process of a large run): written
    and synced under temporary names, so that `send` only has to rename one. A staged file
    that no digest took (a run stopped early or crashed) is removed by `close`."""

    batch = 200

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.eml"

    def stage(self, messages: Sequence[bytes]) -> list[str | None]:
        """The temporary files now holding the messages (None for one that cannot be written:
        `send` then writes it, and reports why it cannot). Written first and made durable
        together, by one `os.sync` (one journal commit for the lot: ~0.05 ms a file, against
        ~0.3 ms for an fsync each)."""
        staged: list[str | None] = []
        for message in messages:
            try:
                staged.append(str(self._write(message, durable=False)))
            except OSError:
                staged.append(None)
        if any(staged):
            os.sync()
        return staged

    def _write(self, message: bytes, *, durable: bool = True) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(message)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)  # no half-written file left behind
            raise
        return Path(tmp)

    def send(
        self, sender: str, recipient: str, message: bytes, name: str, staged: str | None = None
    ) -> Outcome:
        tmp = Path(staged) if staged else None
        try:
            if tmp is None:
                tmp = self._write(message)
            os.replace(tmp, self.path(name))
        except OSError as e:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise TransportDown(
                f"cannot write to the outbox {self.folder}: {e.strerror or e}"
            ) from e
        return Outcome("sent", str(self.path(name)))

    def close(self) -> None:
        """Remove the staged files no digest took."""
        for tmp in self.folder.glob(".tmp-*.tmp"):
            tmp.unlink(missing_ok=True)


def _code_outcome(code: int, text: bytes | str) -> Outcome:
    detail = f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}".strip()
    return Outcome("deferred" if 400 <= code < 500 else "failed", detail)


class Smtp:
    """An SMTP client that keeps one connection for a run."""

    batch = 1

    def __init__(self, config: SmtpConfig, *, rate_per_second: float | None = None) -> None:
        self.config = config
        self.interval = 1.0 / rate_per_second if rate_per_second else 0.0
        self._conn: smtplib.SMTP | None = None
        self._last = 0.0

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        where = f"{c.host}:{c.port}"
        try:
            if c.security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    c.host, c.port, timeout=c.timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
                if c.security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            if c.username:
                password = os.environ.get(c.password_env or "", "")
                conn.login(c.username, password)
        except smtplib.SMTPAuthenticationError as e:
            raise TransportDown(
                f"SMTP login refused by {where}: {_code_outcome(e.smtp_code, e.smtp_error).detail}"
            ) from e
        except (OSError, smtplib.SMTPException) as e:
            raise TransportDown(f"cannot reach the SMTP server {where}: {e}") from e
        return conn

    def send(
        self, sender: str, recipient: str, message: bytes, name: str, staged: str | None = None
    ) -> Outcome:
        """Send one message (`staged` is the outbox's: nothing is staged for SMTP)."""
        if self.interval:
            wait = self._last + self.interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        try:
            refused = conn.sendmail(sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients.get(recipient, (550, b"refused"))
            self._reset()
            return _code_outcome(code, text)
        except smtplib.SMTPSenderRefused as e:
            self._reset()
            if 400 <= e.smtp_code < 500:
                return _code_outcome(e.smtp_code, e.smtp_error)
            detail = _code_outcome(e.smtp_code, e.smtp_error).detail
            raise TransportDown(f"SMTP server refused the sender {sender}: {detail}") from e
        except smtplib.SMTPDataError as e:
            self._reset()
            return _code_outcome(e.smtp_code, e.smtp_error)
        except (
            TimeoutError,
            smtplib.SMTPServerDisconnected,
            smtplib.SMTPResponseException,
            OSError,
        ) as e:
            # the connection broke before the server accepted the message: not delivered
            self._drop()
            return Outcome("deferred", f"connection lost: {e}")
        if refused:
            code, text = refused[recipient]
            return _code_outcome(code, text)
        return Outcome("sent", "250")

    def _reset(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            finally:
                self._drop()
