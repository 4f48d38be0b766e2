"""Confirmation emails (double opt-in): a small queue beside the notifications', with
the same guarantees.

`email_confirmations` holds one row per contact waiting to confirm; `available_at` set
means an email is due. A dispatcher claims due rows under a lease (`available_at` pushed
past it, `lease_owner` its token), sends them one by one with no transaction open,
renewing the lease while it sends, and records each outcome guarded by its token: a
dispatcher that dies leaves claims that come due again, and the resend carries the same
Message-ID. Sent, the row stays (with `sent_date`) as the resend throttle's memory until
its requests are confirmed or purged. Volume is one email per sign-up at most, so a
batch is small and sent over one connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, delete, select, update

from app.logmask import mask_emails
from app.models import EmailConfirmation, NotificationRequest, table_of, utc_now
from app.notify.messages import OutgoingMessage, compose_confirmation
from app.notify.templates import Templates, confirmation_templates
from app.notify.transports import DeliveryUnconfirmed, MessageRefused
from app.storage import Transaction

if TYPE_CHECKING:
    from app.notify.dispatcher import Dispatcher

log = logging.getLogger("app.notify")

_CONFIRMATIONS = table_of(EmailConfirmation)
_REQUESTS = table_of(NotificationRequest)
BATCH_SIZE = 20
# Item names an email lists (the oldest waiting first).
MAX_ITEMS_LISTED = 20


@dataclass(frozen=True)
class ClaimedConfirmation:
    contact_id: uuid.UUID
    email: str
    round: int
    # Failed attempts so far.
    attempts: int
    items: list[str]


def claim(
    tx: Transaction,
    *,
    owner: str,
    now: datetime,
    lease_seconds: float,
    limit: int = BATCH_SIZE,
    skip_locked: bool = False,
) -> list[ClaimedConfirmation]:
    """Take up to `limit` due confirmation emails; drop those with nothing to confirm."""
    due = (
        select(_CONFIRMATIONS.c.contact_id)
        .where(_CONFIRMATIONS.c.available_at <= now)
        .order_by(_CONFIRMATIONS.c.available_at)
        .limit(limit)
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    claimed = tx.rows(
        update(_CONFIRMATIONS)
        .where(_CONFIRMATIONS.c.contact_id.in_(due))
        .values(available_at=now + timedelta(seconds=lease_seconds), lease_owner=owner)
        .returning(
            _CONFIRMATIONS.c.contact_id,
            _CONFIRMATIONS.c.email,
            _CONFIRMATIONS.c.round,
            _CONFIRMATIONS.c.attempts,
        )
    )
    if not claimed:
        return []
    items = _waiting_items(tx, [row.contact_id for row in claimed])
    nothing_to_confirm = [
        row.contact_id for row in claimed if not items.get(row.contact_id)
    ]
    if nothing_to_confirm:
        tx.execute(
            delete(_CONFIRMATIONS).where(
                _CONFIRMATIONS.c.contact_id.in_(nothing_to_confirm),
                _CONFIRMATIONS.c.lease_owner == owner,
            )
        )
    return [
        ClaimedConfirmation(
            row.contact_id, row.email, row.round, row.attempts, items[row.contact_id]
        )
        for row in claimed
        if items.get(row.contact_id)
    ]


def _waiting_items(
    tx: Transaction, contact_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    rows = tx.rows(
        select(_REQUESTS.c.contact_id, _REQUESTS.c.item_name)
        .where(
            _REQUESTS.c.contact_id.in_(contact_ids),
            _REQUESTS.c.confirmed.is_(False),
        )
        .order_by(_REQUESTS.c.created_date, _REQUESTS.c.id)
    )
    items: dict[uuid.UUID, list[str]] = {}
    for contact_id, name in rows:
        listed = items.setdefault(contact_id, [])
        if len(listed) < MAX_ITEMS_LISTED:
            listed.append(name)
    return items


def _mine(owner: str, contact_id: uuid.UUID) -> list[ColumnElement[bool]]:
    return [
        _CONFIRMATIONS.c.contact_id == contact_id,
        _CONFIRMATIONS.c.lease_owner == owner,
    ]


def record_sent(
    tx: Transaction,
    *,
    owner: str,
    contact_id: uuid.UUID,
    now: datetime,
    error: str | None,
) -> None:
    """Sent (or possibly delivered, with the doubt as `error`): nothing more is due."""
    tx.execute(
        update(_CONFIRMATIONS)
        .where(*_mine(owner, contact_id))
        .values(
            available_at=None,
            lease_owner=None,
            sent_date=now,
            attempts=_CONFIRMATIONS.c.attempts + 1,
            last_error=error,
        )
    )


def record_failure(
    tx: Transaction,
    *,
    owner: str,
    contact_id: uuid.UUID,
    attempts: int,
    error: str,
    retry_at: datetime | None,
) -> None:
    """A failed attempt: due again at `retry_at`, or given up (None)."""
    tx.execute(
        update(_CONFIRMATIONS)
        .where(*_mine(owner, contact_id))
        .values(
            available_at=retry_at, lease_owner=None, attempts=attempts, last_error=error
        )
    )


def release(
    tx: Transaction, *, owner: str, ids: Sequence[uuid.UUID], now: datetime
) -> None:
    """Hand claimed emails back untried, due now."""
    tx.execute(
        update(_CONFIRMATIONS)
        .where(
            _CONFIRMATIONS.c.contact_id.in_(ids), _CONFIRMATIONS.c.lease_owner == owner
        )
        .values(available_at=now, lease_owner=None)
    )


def renew(
    tx: Transaction, *, owner: str, ids: Sequence[uuid.UUID], until: datetime
) -> None:
    tx.execute(
        update(_CONFIRMATIONS)
        .where(
            _CONFIRMATIONS.c.contact_id.in_(ids), _CONFIRMATIONS.c.lease_owner == owner
        )
        .values(available_at=until)
    )


# -- sending ---------------------------------------------------------------------------


@dataclass
class _Run:
    """One claimed batch being sent by `deliver_confirmations`."""

    dispatcher: Dispatcher
    owner: str
    work: list[ClaimedConfirmation]
    deadline: float
    done: set[uuid.UUID] = field(default_factory=set)

    def left(self) -> list[uuid.UUID]:
        return [c.contact_id for c in self.work if c.contact_id not in self.done]

    async def keep(self) -> None:
        """Renew the lease of what is left every third of it, moving the deadline."""
        lease = self.dispatcher.settings.delivery_lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            ids = self.left()
            if not ids:
                return
            started = time.monotonic()
            until = utc_now() + timedelta(seconds=lease)
            await self.dispatcher.store.write(
                partial(renew, owner=self.owner, ids=ids, until=until)
            )
            self.deadline = started + lease - self.dispatcher.lease_margin()


def _compose(
    dispatcher: Dispatcher, templates: Templates, claimed: ClaimedConfirmation
) -> OutgoingMessage:
    assert dispatcher.sender is not None
    assert dispatcher.links is not None
    settings = dispatcher.settings
    issued = dispatcher.clock()
    rendered = templates.render(
        {
            "confirmUrl": dispatcher.links.confirmation_url(claimed.contact_id, issued),
            "items": claimed.items,
            "expiresInHours": f"{settings.email_confirmation_expiry_hours:g}",
            "email": claimed.email,
        }
    )
    return compose_confirmation(
        rendered,
        sender=dispatcher.sender,
        recipient=claimed.email,
        contact_id=claimed.contact_id,
        round=claimed.round,
        date=utc_now(),
    )


async def deliver_confirmations(dispatcher: Dispatcher, templates: Templates) -> int:
    """Claim one batch of due confirmation emails and send it; how many were sent."""
    settings = dispatcher.settings
    owner = f"{dispatcher.name}:c:{uuid.uuid4().hex[:12]}"
    lease = settings.delivery_lease_seconds
    claimed_at = time.monotonic()
    now = utc_now()
    skip_locked = dispatcher.store.dialect == "postgresql"
    work = await dispatcher.store.write(
        lambda tx: claim(
            tx, owner=owner, now=now, lease_seconds=lease, skip_locked=skip_locked
        )
    )
    if not work:
        return 0
    run = _Run(dispatcher, owner, work, claimed_at + lease - dispatcher.lease_margin())
    keeper = asyncio.create_task(run.keep())
    sent = 0
    try:
        for claimed in work:
            if dispatcher.stopping:
                break
            if time.monotonic() + 2 * settings.mail_timeout_seconds > run.deadline:
                break
            sent += await _send(dispatcher, templates, run, claimed)
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
        untried = run.left()
        if untried:
            at = utc_now()
            await dispatcher.store.write(
                lambda tx: release(tx, owner=owner, ids=untried, now=at)
            )
    return sent


async def _send(
    dispatcher: Dispatcher,
    templates: Templates,
    run: _Run,
    claimed: ClaimedConfirmation,
) -> int:
    """Send one confirmation email and record its outcome; 1 if it went out."""
    owner, contact_id = run.owner, claimed.contact_id
    error: str | None = None
    try:
        message = _compose(dispatcher, templates, claimed)
    except Exception as problem:  # noqa: BLE001 - a bad template fails one email
        refused = MessageRefused(f"rendering failed: {problem}", permanent=True)
        return await _failed(dispatcher, run, claimed, refused)
    try:
        await dispatcher.transports[0].send(message)
    except MessageRefused as refused:
        return await _failed(dispatcher, run, claimed, refused)
    except DeliveryUnconfirmed as doubt:
        error = str(doubt)
    at = utc_now()
    await dispatcher.store.write(
        lambda tx: record_sent(
            tx, owner=owner, contact_id=contact_id, now=at, error=error
        )
    )
    run.done.add(contact_id)
    return 1


async def _failed(
    dispatcher: Dispatcher,
    run: _Run,
    claimed: ClaimedConfirmation,
    refused: MessageRefused,
) -> int:
    """Record a failed attempt: retried with backoff unless permanent or the last."""
    attempts = claimed.attempts + 1
    retry_at = None
    if not refused.permanent and attempts < dispatcher.settings.delivery_max_attempts:
        retry_at = utc_now() + timedelta(seconds=dispatcher.retry_delay(attempts))
    log.info("confirmation email not delivered: %s", mask_emails(str(refused)))
    owner, contact_id = run.owner, claimed.contact_id
    await dispatcher.store.write(
        lambda tx: record_failure(
            tx,
            owner=owner,
            contact_id=contact_id,
            attempts=attempts,
            error=str(refused),
            retry_at=retry_at,
        )
    )
    run.done.add(contact_id)
    return 0


__all__ = ["confirmation_templates", "deliver_confirmations"]
