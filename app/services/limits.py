"""Limits on anonymous creates: per client address and per email address, and a cap on
an address's open requests.

Counting happens in the create's own write transaction (`admit`), so a refused create
stores nothing, an admitted one is counted exactly once, and every server process on the
database shares the counts. Each limit is a "sliding window counter": hits are counted in
fixed windows, and the rate at a moment is the current window's hits plus the previous
window's, weighted by how much of it still overlaps the sliding window
(docs/security.md says why this and not exact timestamps).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from app.config import Rate, Settings
from app.models import NotificationRequest, RateLimitCounter, table_of
from app.services.errors import RateLimited
from app.storage import Transaction

_COUNTERS = table_of(RateLimitCounter)
_REQUESTS = table_of(NotificationRequest)
# What a refusal says: the same whichever limit refused, so it tells nothing about the
# address beyond "not now".
REFUSAL_MESSAGE = "Too many sign-ups; try again later."
# The retry time given when only the open-requests cap refuses: those requests free up
# when sent, deleted or unsubscribed, which nobody can foretell.
OPEN_CAP_RETRY_SECONDS = 3600
# Counter rows deleted per purge statement.
PURGE_BATCH = 1000


@dataclass(frozen=True)
class SignUpPolicy:
    """The limits a visitor's create is held to (from the settings)."""

    per_client: Rate | None
    per_email: Rate | None
    max_open_per_email: int | None
    # Double opt-in: a visitor's request waits unconfirmed (app.services.confirmation),
    # and its address gets at most one confirmation email per `confirmation_resend`.
    require_confirmation: bool = False
    confirmation_resend: timedelta = timedelta(minutes=10)

    @classmethod
    def from_settings(cls, settings: Settings) -> SignUpPolicy:
        return cls(
            per_client=settings.client_rate,
            per_email=settings.email_rate,
            max_open_per_email=settings.max_open_requests_per_email or None,
            require_confirmation=settings.require_email_confirmation,
            confirmation_resend=timedelta(
                minutes=settings.email_confirmation_resend_minutes
            ),
        )


@dataclass(frozen=True)
class SignUp:
    """A visitor's create (no API key): held to `policy`, counted for `client`."""

    policy: SignUpPolicy
    # The client's address (app.http.clients), None when the connection has none.
    client: str | None


@dataclass(frozen=True)
class Refusal:
    """A create the limits refused, and when trying again may succeed."""

    retry_after_seconds: int

    def error(self) -> RateLimited:
        return RateLimited(REFUSAL_MESSAGE, self.retry_after_seconds)


def _digest(kind: str, value: str) -> str:
    return f"{kind}:{hashlib.sha256(value.encode()).hexdigest()}"


def client_key(client: str) -> str:
    """The counter key of a client address (a digest: the table keeps no address)."""
    return _digest("client", client)


def email_key(email: str) -> str:
    """The counter key of a normalised email address."""
    return _digest("email", email)


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _window_start(now: float, seconds: int) -> float:
    return math.floor(now / seconds) * seconds


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _retry_after(rate: Rate, now: float, previous: int, current: int) -> int | None:
    """None if one more hit fits at `now`, else the seconds until one does.

    The estimate is `previous * (1 - elapsed) + current`, `elapsed` the part of the
    current window gone by; one more hit fits while the estimate is at most count - 1.
    """
    limit, seconds = rate.limit, rate.seconds
    start = _window_start(now, seconds)
    elapsed = (now - start) / seconds
    room = limit - 1
    if previous * (1 - elapsed) + current <= room:
        return None
    if current <= room:
        # Fits later in this window, as the previous one slides out.
        fits_at = start + (1 - (room - current) / previous) * seconds
    else:
        # Fits in the next window, once enough of this one has slid out.
        fits_at = start + seconds + (1 - room / current) * seconds
    return max(1, math.ceil(fits_at - now))


_ADVISORY_LOCK = select(func.pg_advisory_xact_lock(bindparam("lock_id")))


def _lock(tx: Transaction, keys: list[str]) -> None:
    """Serialise creates counting on the same keys (PostgreSQL; SQLite has one writer).

    Transaction-level advisory locks, taken in one order, so two creates never wait on
    each other crosswise; released at commit or rollback.
    """
    if tx.dialect != "postgresql":
        return
    for lock_id in sorted({_lock_id(key) for key in keys}):
        tx.rows(_ADVISORY_LOCK, {"lock_id": lock_id})


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


def _hits_of(count: int) -> Any:
    """SELECT the windows of `count` keys (key0, key1...) starting at `since` or later."""
    return select(
        _COUNTERS.c.key,
        _COUNTERS.c.window_seconds,
        _COUNTERS.c.window_start,
        _COUNTERS.c.hits,
    ).where(
        _COUNTERS.c.key.in_([bindparam(f"key{i}") for i in range(count)]),
        _COUNTERS.c.window_start
        >= bindparam("since", type_=_COUNTERS.c.window_start.type),
    )


def _upsert(dialect: str, count: int) -> Any:
    """INSERT one hit into the current window of `count` keys, or add it."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [
        {
            "key": bindparam(f"key{i}"),
            "window_seconds": bindparam(f"window_seconds{i}"),
            "window_start": bindparam(f"window_start{i}"),
            "hits": 1,
            "expires_at": bindparam(f"expires_at{i}"),
        }
        for i in range(count)
    ]
    return (
        insert(_COUNTERS)
        .values(rows)
        .on_conflict_do_update(
            index_elements=["key", "window_seconds", "window_start"],
            set_={"hits": _COUNTERS.c.hits + 1},
        )
        .returning(_COUNTERS.c.hits)
    )


# Built once per number of keys (the values come as parameters): each create reuses the
# compiled SQL, and reads or counts all its keys in one statement.
_HITS = {count: _hits_of(count) for count in (1, 2)}
_COUNT = {
    (dialect, count): _upsert(dialect, count)
    for dialect in ("sqlite", "postgresql")
    for count in (1, 2)
}


def _windows(
    tx: Transaction, limits: list[tuple[str, Rate]], now: float
) -> list[tuple[int, int]]:
    """(previous, current) hits of each key's windows at `now`, in `limits`' order."""
    since = min(_window_start(now, rate.seconds) - rate.seconds for _, rate in limits)
    params: dict[str, Any] = {f"key{i}": key for i, (key, _) in enumerate(limits)}
    params["since"] = _at(since)
    found = {
        (key, seconds, _epoch(start)): hits
        for key, seconds, start, hits in tx.rows(_HITS[len(limits)], params)
    }
    windows = []
    for key, rate in limits:
        current = _window_start(now, rate.seconds)
        windows.append(
            (
                found.get((key, rate.seconds, current - rate.seconds), 0),
                found.get((key, rate.seconds, current), 0),
            )
        )
    return windows


def _count(tx: Transaction, limits: list[tuple[str, Rate]], now: float) -> None:
    params: dict[str, Any] = {}
    for i, (key, rate) in enumerate(limits):
        start = _window_start(now, rate.seconds)
        params[f"key{i}"] = key
        params[f"window_seconds{i}"] = rate.seconds
        params[f"window_start{i}"] = _at(start)
        params[f"expires_at{i}"] = _at(start + 2 * rate.seconds)
    tx.rows(_COUNT[tx.dialect, len(limits)], params)


_OPEN_OF_EMAIL = (
    select(func.count())
    .select_from(_REQUESTS)
    .where(_REQUESTS.c.email == bindparam("email"), _REQUESTS.c.open_request.is_(True))
)


def admit(
    tx: Transaction,
    policy: SignUpPolicy,
    *,
    client: str | None,
    email: str,
    now: datetime,
) -> Refusal | None:
    """Count one anonymous create, or refuse it (counting nothing).

    Every create counts, a duplicate of an open request too, so a refusal says nothing
    about whether the address already waits. Without a client address (a Unix socket)
    only the email limits apply.
    """
    limits: list[tuple[str, Rate]] = []
    if policy.per_client is not None and client is not None:
        limits.append((client_key(client), policy.per_client))
    if policy.per_email is not None:
        limits.append((email_key(email), policy.per_email))
    # The address's key serialises its creates for the open cap too.
    _lock(tx, [key for key, _ in limits] + [email_key(email)])
    moment = _epoch(now)
    waits = [
        wait
        for (_, rate), (previous, current) in zip(
            limits, _windows(tx, limits, moment) if limits else [], strict=True
        )
        if (wait := _retry_after(rate, moment, previous, current))
    ]
    if waits:
        return Refusal(max(waits))
    cap = policy.max_open_per_email
    if cap is not None and tx.rows(_OPEN_OF_EMAIL, {"email": email})[0][0] >= cap:
        per_email = policy.per_email
        return Refusal(per_email.seconds if per_email else OPEN_CAP_RETRY_SECONDS)
    if limits:
        _count(tx, limits, moment)
    return None


def purge_counters(tx: Transaction, now: datetime) -> int:
    """Delete up to PURGE_BATCH counter rows no window counts any more."""
    expired = (
        select(_COUNTERS.c.key, _COUNTERS.c.window_seconds, _COUNTERS.c.window_start)
        .where(_COUNTERS.c.expires_at < now)
        .limit(PURGE_BATCH)
    )
    if tx.dialect == "postgresql":
        expired = expired.with_for_update(skip_locked=True)
    rows = tx.rows(expired)
    if not rows:
        return 0
    return tx.execute(
        delete(_COUNTERS).where(
            _COUNTERS.c.key == bindparam("b_key"),
            _COUNTERS.c.window_seconds == bindparam("b_seconds"),
            _COUNTERS.c.window_start == bindparam("b_start"),
        ),
        [{"b_key": k, "b_seconds": s, "b_start": w} for k, s, w in rows],
    )


def counters_of_email(email: str) -> tuple[str, ...]:
    """The counter keys an email address is stored under (for export and erasure)."""
    return (email_key(email),)


def counters_of_email_rows(email: str) -> Select[Any]:
    """SELECT the counters of an email address (window, hits, expiry)."""
    return select(
        _COUNTERS.c.window_seconds,
        _COUNTERS.c.window_start,
        _COUNTERS.c.hits,
        _COUNTERS.c.expires_at,
    ).where(_COUNTERS.c.key.in_(counters_of_email(email)))


def forget_email(tx: Transaction, email: str) -> int:
    """Delete the counters of an email address."""
    return tx.execute(
        delete(_COUNTERS).where(_COUNTERS.c.key.in_(counters_of_email(email)))
    )


__all__ = [
    "Refusal",
    "SignUp",
    "SignUpPolicy",
    "admit",
    "client_key",
    "counters_of_email",
    "counters_of_email_rows",
    "email_key",
    "forget_email",
    "purge_counters",
]
