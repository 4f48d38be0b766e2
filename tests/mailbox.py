"""A real SMTP server for the delivery tests: aiosmtpd on 127.0.0.1, keeping what it gets."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return body.get_content()


class Mailbox:
    """Accepts (or refuses) mail, keeping what it accepts in `received`.

    `refusal` is the reply to RCPT instead of 250 (e.g. "550 5.1.1 no"), `final_reply` the
    reply to the end of DATA. A message the final reply accepts counts as received as soon
    as its last byte arrives, like a server that has stored it and is slow to say so.
    `hold()` keeps every message at the end of DATA, without a reply, until `release()`;
    `holding` is set once one waits there.
    """

    def __init__(
        self,
        *,
        credentials: tuple[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.refusal: str | None = None
        self.final_reply = "250 Message accepted for delivery"
        # Seconds each message takes to accept: keeps a dispatcher mid-batch for a while.
        self.delay = 0.0
        # The server runs in its own thread: these cross it.
        self._open = threading.Event()
        self._open.set()
        self.holding = threading.Event()
        self.credentials = credentials
        # With `tls`: STARTTLS required before anything else, or TLS from the first byte.
        self.tls = tls
        self.implicit_tls = implicit_tls
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        options: dict[str, Any] = {}
        if self.credentials:
            options = {
                "authenticator": self._authenticate,
                "auth_required": True,
                # aiosmtpd only counts STARTTLS as TLS; smtps:// is TLS from the start.
                "auth_require_tls": self.tls is not None and not self.implicit_tls,
            }
        if self.tls is not None and self.implicit_tls:
            options["ssl_context"] = self.tls
        elif self.tls is not None:
            options.update(tls_context=self.tls, require_starttls=True)
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, ready_timeout=10, **options
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        given = (auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=given == self.credentials, handled=False)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refusal:
            return self.refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def hold(self) -> None:
        """Keep messages at the end of DATA, unanswered, until `release()`."""
        self.holding.clear()
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(
            envelope.content, policy=email.policy.default
        )
        assert isinstance(message, EmailMessage)
        if self.final_reply.startswith("2"):
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message)
            )
        if not self._open.is_set():
            self.holding.set()
            while not self._open.is_set():
                await asyncio.sleep(0.01)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.final_reply

    def recipients(self) -> list[str]:
        return sorted(
            recipient for item in self.received for recipient in item.recipients
        )
