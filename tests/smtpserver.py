"""A real SMTP server (aiosmtpd) on loopback for tests, with scriptable answers.

`answers` maps a recipient to a list of SMTP replies for its successive DATA commands
(e.g. ["451 4.3.0 try later", "250 OK"]); `delay` holds DATA before answering (to kill a
client mid-send); `drop_data` closes the connection in the middle of DATA.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Handler:
    received: list[Received] = field(default_factory=list)
    answers: dict[str, list[str]] = field(default_factory=dict)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop_data: set[str] = field(default_factory=set)
    refuse_sender: str | None = None  # e.g. "553 5.7.1 sender not allowed"
    connections: int = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]
        if self.refuse_sender:
            return self.refuse_sender
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        rcpt = envelope.rcpt_tos[0]
        if rcpt in self.drop_data:
            self.drop_data.discard(rcpt)
            server.transport.close()
            return "421 closing"
        if self.delay:
            await asyncio.sleep(self.delay)
        queue = self.answers.get(rcpt)
        answer = queue.pop(0) if queue else "250 OK"
        if answer.startswith("250"):
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return answer


class Authenticator:
    """Accepts one user and password."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            self.user,
            self.password,
        )
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


def start(handler: Handler, *, auth: Authenticator | None = None, **kwargs: object) -> Controller:
    if auth is not None:
        kwargs |= {"authenticator": auth, "auth_require_tls": False, "auth_required": True}
    with socket.socket() as s:  # aiosmtpd's Controller needs a real port number up front
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller
