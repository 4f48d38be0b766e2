"""Composing one notification email: headers, a stable Message-ID, text and HTML parts."""

from __future__ import annotations

import email.policy
import email.utils
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from app.config import ConfigurationError
from app.notify.templates import RenderedEmail

_POLICY = email.policy.SMTP.clone(max_line_length=998)


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

    header: str
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
        return cls(header=mail_from, address=address, domain=address.rpartition("@")[2])


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
) -> OutgoingMessage:
    identifier = message_id(request_id, round, sender.domain)
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender.header
    message["To"] = recipient
    message["Subject"] = rendered.subject
    message["Date"] = email.utils.format_datetime(date)
    message["Message-ID"] = identifier
    # Tells autoresponders not to answer (RFC 3834).
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    for part in message.iter_parts():
        # The email package repeats it on parts; it belongs on the message only.
        del part["MIME-Version"]
    return OutgoingMessage(
        sender=sender.address,
        recipient=recipient,
        message_id=identifier,
        name=f"{request_id}.{round}",
        data=message.as_bytes(),
    )
