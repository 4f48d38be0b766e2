"""Double opt-in (REQUIRE_EMAIL_CONFIRMATION): a visitor's request waits, unconfirmed,
until the address's owner follows the link of the confirmation email.

Unconfirmed requests are never notified (a report skips them), are confirmed together
(every unconfirmed request of the contact made before the link was issued), and are
deleted UNCONFIRMED_RETENTION_DAYS after their creation. The confirmation email is queued
in `email_confirmations`, one row per contact, and sent by the dispatchers
(app.notify.confirmations).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.events import outbox as events
from app.models import Clock, EmailConfirmation, NotificationRequest, table_of, utc_now
from app.services import privacy
from app.storage import Store, Transaction

_REQUESTS = table_of(NotificationRequest)
_CONFIRMATIONS = table_of(EmailConfirmation)


@dataclass(frozen=True)
class Confirmed:
    """What following a confirmation link did."""

    # Requests confirmed now.
    confirmed: int
    # False when the link had expired (nothing was confirmed).
    in_time: bool = True


def _requests_confirmed(
    tx: Transaction, selection: ColumnElement[bool], now: datetime
) -> None:
    """Called right after `selection`'s requests were confirmed, in that transaction:
    their `updated` events (app/events/outbox.py)."""
    events.emit_changed(tx, selection, now)


def ask(
    tx: Transaction,
    *,
    contact_id: uuid.UUID,
    email: str,
    now: datetime,
    resend_after: timedelta,
) -> None:
    """Queue the contact's confirmation email, unless one is pending or was asked for
    less than `resend_after` ago (the resend throttle)."""
    insert = postgresql.insert if tx.dialect == "postgresql" else sqlite.insert
    statement = insert(_CONFIRMATIONS).values(
        contact_id=contact_id,
        email=email,
        requested_date=now,
        available_at=now,
        round=1,
        attempts=0,
    )
    tx.execute(
        statement.on_conflict_do_update(
            index_elements=["contact_id"],
            set_={
                "requested_date": now,
                "available_at": now,
                "round": _CONFIRMATIONS.c.round + 1,
                "attempts": 0,
                "last_error": None,
            },
            where=and_(
                _CONFIRMATIONS.c.available_at.is_(None),
                _CONFIRMATIONS.c.requested_date <= now - resend_after,
            ),
        )
    )


def _unconfirmed_of(contact_id: uuid.UUID) -> ColumnElement[bool]:
    return and_(_REQUESTS.c.contact_id == contact_id, _REQUESTS.c.confirmed.is_(False))


async def confirm(
    store: Store,
    *,
    contact_id: uuid.UUID,
    issued: datetime,
    expiry: timedelta,
    clock: Clock = utc_now,
) -> Confirmed:
    """Confirm the contact's requests made up to `issued` (when the link was made), if
    the link has not expired; a request made after it waits for a link of its own."""
    now = clock()
    if now > issued + expiry:
        return Confirmed(0, in_time=False)
    selection = and_(_unconfirmed_of(contact_id), _REQUESTS.c.created_date <= issued)

    def run(tx: Transaction) -> int:
        confirmed = [
            id
            for (id,) in tx.rows(
                update(_REQUESTS)
                .where(selection)
                .values(confirmed=True)
                .returning(_REQUESTS.c.id)
            )
        ]
        if confirmed:
            _requests_confirmed(tx, _REQUESTS.c.id.in_(confirmed), now)
        if not tx.scalar(select(exists().where(_unconfirmed_of(contact_id)))):
            # Nothing left to confirm: no email is wanted any more.
            tx.execute(
                delete(_CONFIRMATIONS).where(_CONFIRMATIONS.c.contact_id == contact_id)
            )
        return len(confirmed)

    return Confirmed(await store.write(run))


def purge_unconfirmed(tx: Transaction, now: datetime, days: float) -> int:
    """Delete up to privacy.PURGE_BATCH requests never confirmed, made over `days` days
    ago, then the confirmation emails no request waits for any more."""
    old = and_(
        _REQUESTS.c.confirmed.is_(False),
        _REQUESTS.c.created_date < now - timedelta(days=days),
    )
    batch = select(_REQUESTS.c.id).where(old).limit(privacy.PURGE_BATCH)
    ids = [id for (id,) in tx.rows(batch)]
    removed = privacy.remove_requests(tx, _REQUESTS.c.id.in_(ids), now) if ids else 0
    waiting = exists().where(
        _REQUESTS.c.contact_id == _CONFIRMATIONS.c.contact_id,
        _REQUESTS.c.confirmed.is_(False),
    )
    tx.execute(
        delete(_CONFIRMATIONS).where(_CONFIRMATIONS.c.available_at.is_(None), ~waiting)
    )
    return removed
