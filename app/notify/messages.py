"""Composing one notification email: headers, a stable Message-ID, text and HTML parts.

The MIME is written directly (the `email` package takes over a millisecond a message,
more than sending it); the tests parse every message back with the `email` package.
"""

from __future__ import annotations

import binascii
import email.policy
import email.utils
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import HeaderRegistry

from app.config import ConfigurationError
from app.notify.templates import RenderedEmail

# Non-ASCII in headers is RFC 2047-encoded, except in an address that needs SMTPUTF8.
_POLICY = email.policy.SMTP
_POLICY_UTF8 = email.policy.SMTPUTF8
_HEADERS = HeaderRegistry()
# RFC 5322's limit, less room for CRLF.
_MAX_LINE = 998


@dataclass(frozen=True)
class OutgoingMessage:
    """A composed email and its envelope."""

    sender: str
    recipient: str
    message_id: str
    # Names the message on disk: the same for every resend of one notification.
    name: str
    data: bytes


@dataclass(frozen=True)
class Sender:
    """`MAIL_FROM`, parsed once: the From header, the envelope sender, the id domain."""

    header: bytes
    address: str
    domain: str

    @classmethod
    def parse(cls, mail_from: str) -> Sender:
        _, address = email.utils.parseaddr(mail_from)
        if "@" not in address or any(c in mail_from for c in "\r\n"):
            raise ConfigurationError(
                f"MAIL_FROM {mail_from!r} is not an address such as "
                "'Shop <no-reply@example.com>'"
            )
        return cls(
            header=_header("From", mail_from),
            address=address,
            domain=address.rpartition("@")[2],
        )


def _header(name: str, value: str, policy: email.policy.Policy = _POLICY) -> bytes:
    """One header, folded and RFC 2047-encoded where needed."""
    if value.isascii() and len(name) + len(value) + 2 <= 78 and "\n" not in value:
        return f"{name}: {value}\r\n".encode()
    return policy.fold_binary(name, _HEADERS(name, value))


def _part(content_type: str, text: str) -> bytes:
    raw = text.replace("\r\n", "\n").encode()
    lines = raw.split(b"\n")
    if text.isascii() and all(len(line) <= _MAX_LINE for line in lines):
        encoding, body = "7bit", b"\r\n".join(lines)
    else:
        encoding = "quoted-printable"
        body = binascii.b2a_qp(raw, istext=True).replace(b"\n", b"\r\n")
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode() + body


@dataclass(frozen=True)
class Unsubscribe:
    """How a recipient leaves: one-click (RFC 8058) at `url`, or by mail to `mailto`."""

    url: str
    mailto: str | None = None

    def headers(self) -> bytes:
        """`List-Unsubscribe` (RFC 2369) and `List-Unsubscribe-Post` (RFC 8058).

        Written as they are, never RFC 2047-encoded: the URL is ASCII, and one line of up
        to 998 characters holds it (the mailto goes on a folded line of its own).
        """
        targets = [f"<{self.url}>"]
        if self.mailto:
            targets.append(f"<mailto:{self.mailto}?subject=unsubscribe>")
        folded = ",\r\n ".join(targets)
        return (
            f"List-Unsubscribe: {folded}\r\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        ).encode("ascii")


def message_id(request_id: uuid.UUID, round: int, domain: str) -> str:
    """The same for every send of one report round to one request."""
    return f"<{request_id}.{round}@{domain}>"


def compose(
    rendered: RenderedEmail,
    *,
    sender: Sender,
    recipient: str,
    request_id: uuid.UUID,
    round: int,
    date: datetime,
    unsubscribe: Unsubscribe | None = None,
) -> OutgoingMessage:
    """The notification email of one report round to one request."""
    return _message(
        rendered,
        sender=sender,
        recipient=recipient,
        identifier=message_id(request_id, round, sender.domain),
        name=f"{request_id}.{round}",
        date=date,
        unsubscribe=unsubscribe,
    )


def compose_confirmation(
    rendered: RenderedEmail,
    *,
    sender: Sender,
    recipient: str,
    contact_id: uuid.UUID,
    round: int,
    date: datetime,
) -> OutgoingMessage:
    """The confirmation email (double opt-in) of one contact: every resend of one round
    is the same message."""
    return _message(
        rendered,
        sender=sender,
        recipient=recipient,
        identifier=f"<confirm.{contact_id}.{round}@{sender.domain}>",
        name=f"confirm.{contact_id}.{round}",
        date=date,
    )


def _message(
    rendered: RenderedEmail,
    *,
    sender: Sender,
    recipient: str,
    identifier: str,
    name: str,
    date: datetime,
    unsubscribe: Unsubscribe | None = None,
) -> OutgoingMessage:
    boundary = f"=_{uuid.uuid4().hex}"
    data = b"".join(
        (
            sender.header,
            _header("To", recipient, _POLICY if recipient.isascii() else _POLICY_UTF8),
            _header("Subject", rendered.subject),
            f"Date: {email.utils.format_datetime(date)}\r\n".encode(),
            f"Message-ID: {identifier}\r\n".encode(),
            # Tells autoresponders not to answer (RFC 3834).
            b"Auto-Submitted: auto-generated\r\n",
            unsubscribe.headers() if unsubscribe else b"",
            b"MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode(),
            f"--{boundary}\r\n".encode(),
            _part("text/plain", rendered.text),
            f"\r\n--{boundary}\r\n".encode(),
            _part("text/html", rendered.html),
            f"\r\n--{boundary}--\r\n".encode(),
        )
    )
    return OutgoingMessage(
        sender=sender.address,
        recipient=recipient,
        message_id=identifier,
        name=name,
        data=data,
    )
