"""Cursors of the request query: one row's sort values, for one filter and sort, signed.

A cursor is `base64(JSON [version, fingerprint, values])` and an HMAC-SHA256 signature by
the server's key (app.keys), so a cursor the server did not make is refused before any
query runs, whatever it carries. The fingerprint names the filter and sort it was made
for: a cursor is valid for the same filter and sort only.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from itsdangerous import BadData, Signer

from app.services.request_filters import RequestFilter
from app.services.request_sort import RANKED_VALUES, SortField, SortKey
from app.services.rules import Violations

# What server keys sign cursors for (another purpose never accepts a cursor's signature).
CURSOR_PURPOSE = "request-query-cursor"
_VERSION = 2


def fingerprint(filter: RequestFilter | None, keys: Sequence[SortKey]) -> str:
    """A short digest of the filter and the sort, as given."""
    text = orjson.dumps([filter, keys], default=str)
    return hashlib.sha256(text).hexdigest()[:16]


def encode_cursor(signer: Signer, fingerprint: str, values: Sequence[Any]) -> str:
    """`values` are a row's sort values: text, booleans, None and UTC dates (which
    orjson writes in ISO 8601)."""
    payload = orjson.dumps([_VERSION, fingerprint, values])
    return signer.sign(base64.urlsafe_b64encode(payload).rstrip(b"=")).decode()


def _decode_value(field: SortField, raw: Any) -> Any:
    """One sort value as the query compares it; ValueError when it is not one."""
    if raw is None:
        if field in (SortField.AUTO_NOTIFIED, SortField.ITEM_URL):
            return None
        raise ValueError("a null where the field has none")
    if field is SortField.CREATED_DATE:
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None:
            raise ValueError("a date without its offset")
        return value
    if field in (SortField.ID, SortField.CONTACT_ID):
        return uuid.UUID(raw)
    if field is SortField.AUTO_NOTIFIED:
        if not isinstance(raw, bool):
            raise ValueError("not a boolean")
        return raw
    if not isinstance(raw, str):
        raise TypeError("not a string")
    if field is SortField.STATUS and raw not in RANKED_VALUES[field]:
        raise ValueError("not a status")
    return raw


def decode_cursor(
    signer: Signer,
    cursor: str,
    fingerprint: str,
    keys: Sequence[SortKey],
    violations: Violations,
) -> list[Any] | None:
    """The sort values of a cursor this server made for this filter and sort; None (and
    a violation of `after`) for any other."""
    try:
        payload = signer.unsign(cursor)
        version, made_for, raw = orjson.loads(
            base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4))
        )
        if version != _VERSION or not isinstance(raw, list) or len(raw) != len(keys):
            raise ValueError("not a cursor of this version")
        values = [
            _decode_value(key.field, value)
            for key, value in zip(keys, raw, strict=True)
        ]
    except (BadData, ValueError, TypeError, KeyError, UnicodeError):
        violations.add("after", "is not a cursor of this connection")
        return None
    if made_for != fingerprint:
        violations.add("after", "was made for another filter or sort")
        return None
    return values
