"""Signed links in emails: unsubscribing a contact, confirming its email address.

A token names the contact (its id, never the address: links end up in logs and browser
histories) and, for confirmation, when it was issued; it is signed with the server keys
(itsdangerous, HMAC-SHA256, one salt per purpose), so a token made for one purpose is
never accepted for the other, and a changed one is refused.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Protocol

from itsdangerous import BadSignature, Signer

from app.config import Settings
from app.keys import load_server_keys
from app.models import Clock, utc_now
from app.storage import Store

UNSUBSCRIBE = "unsubscribe-link"
CONFIRM = "email-confirmation-link"
UNSUBSCRIBE_PATH = "/unsubscribe/"
CONFIRM_PATH = "/confirm/"


class SigningKeys(Protocol):
    """What signs: app.keys.ServerKeys (`signer(purpose)`)."""

    def signer(self, purpose: str) -> Signer: ...


class Links:
    """Makes and reads the links of one deployment (its keys, PUBLIC_BASE_URL)."""

    def __init__(self, keys: SigningKeys, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._unsubscribe = keys.signer(UNSUBSCRIBE)
        self._confirm = keys.signer(CONFIRM)

    def unsubscribe_url(self, contact_id: uuid.UUID) -> str:
        token = self._unsubscribe.sign(contact_id.hex).decode()
        return f"{self.base_url}{UNSUBSCRIBE_PATH}{token}"

    def unsubscribing(self, token: str) -> uuid.UUID | None:
        """The contact an unsubscribe token names, or None if it is not one of ours."""
        value = _unsigned(self._unsubscribe, token)
        return _contact(value) if value is not None else None

    def confirmation_url(self, contact_id: uuid.UUID, issued: datetime) -> str:
        # Milliseconds, rounded up: a request made at the issue time is covered.
        value = f"{contact_id.hex}.{math.ceil(issued.timestamp() * 1000):x}"
        token = self._confirm.sign(value).decode()
        return f"{self.base_url}{CONFIRM_PATH}{token}"

    def confirming(self, token: str) -> tuple[uuid.UUID, datetime] | None:
        """The contact and issue time a confirmation token names, or None."""
        value = _unsigned(self._confirm, token)
        if value is None or value.count(".") != 1:
            return None
        contact, _, issued = value.partition(".")
        contact_id = _contact(contact)
        try:
            moment = datetime.fromtimestamp(int(issued, 16) / 1000, UTC)
        except (ValueError, OverflowError, OSError):
            return None
        return (contact_id, moment) if contact_id is not None else None


def _unsigned(signer: Signer, token: str) -> str | None:
    try:
        return signer.unsign(token.encode("ascii")).decode("ascii")
    except (BadSignature, UnicodeError):
        return None


def _contact(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(hex=value)
    except ValueError:
        return None


async def load_links(store: Store, settings: Settings, clock: Clock = utc_now) -> Links:
    """The deployment's links: signed with the server keys, under PUBLIC_BASE_URL."""
    return Links(
        await load_server_keys(store, settings, clock), settings.links_base_url
    )
