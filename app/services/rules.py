"""The input rules of the contract, and the canonical forms stored data is compared in."""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from app.services.errors import (
    FieldViolation,
    InvalidArgument,
    InvalidCatalogReferenceOptions,
    InvalidItemImageUrl,
)

MAX_EMAIL_LENGTH = 254
MAX_APP_ID_LENGTH = 64
MAX_CATALOG_ITEM_ID_LENGTH = 36
MAX_OPTIONS_BYTES = 4 * 1024
MAX_TEMPLATE_PARAMETERS_BYTES = 16 * 1024
# JSON input (options, template parameters) nests at most this deep; the object is level 1.
MAX_JSON_DEPTH = 32
# The largest integer every layer keeps exactly: JavaScript clients (Number), orjson on
# the way out (64 bits), PostgreSQL's JSONB (which prints 1e20 as 100000000000000000000)
# and SQLite's JSON text read back by orjson (beyond 64 bits it reads a float).
MAX_SAFE_INTEGER = 2**53 - 1
MAX_URL_LENGTH = 2048
MAX_ITEM_NAME_LENGTH = 200
MAX_PRICE_LENGTH = 64

_UUID = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE
)
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
# Marks violations that have an error code of their own when they stand alone.
_OPTIONS_RULE = "options"
_IMAGE_RULE = "image"


@dataclass(frozen=True)
class CatalogReference:
    app_id: str
    catalog_item_id: str
    options: dict[str, Any] | None = None


@dataclass(frozen=True)
class ItemDetails:
    name: str
    price: str
    image: str | None = None


@dataclass(frozen=True)
class NewRequest:
    catalog_reference: CatalogReference
    email: str
    item_url: str | None = None


class Violations:
    """Collects every broken rule of one input, then raises them together."""

    def __init__(self) -> None:
        self._items: list[tuple[FieldViolation, str | None]] = []

    def add(self, field: str, description: str, *, rule: str | None = None) -> None:
        self._items.append((FieldViolation(field, description), rule))

    def __bool__(self) -> bool:
        """Whether any rule was broken."""
        return bool(self._items)

    def raise_if_any(self) -> None:
        if not self._items:
            return
        rules = {rule for _, rule in self._items}
        messages = "; ".join(f"{v.field}: {v.description}" for v, _ in self._items)
        if rules == {_OPTIONS_RULE}:
            raise InvalidCatalogReferenceOptions(messages)
        if rules == {_IMAGE_RULE}:
            raise InvalidItemImageUrl(messages)
        raise InvalidArgument([violation for violation, _ in self._items])


def normalize_email(email: str) -> str:
    """The form emails are stored and compared in."""
    return email.strip().lower()


# RFC 5322's dot-atom, as email_validator spells it: a local part it accepts as it is.
_ATEXT = r"a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~"
_DOT_ATOM = re.compile(f"[{_ATEXT}]+(?:\\.[{_ATEXT}]+)*")


def email_problem(email: str) -> str | None:
    """Why email_validator refuses `email` (at most 254 characters), or None.

    Checking the domain is most of the work and shoppers share few domains, so for the
    common address (an ASCII dot-atom before the @, an ASCII domain) the domain's verdict
    is remembered. email_validator checks the two parts on their own, and only the length
    of the whole, which the caller bounds, ties them.
    """
    local, at, domain = email.rpartition("@")
    if at and domain.isascii() and _DOT_ATOM.fullmatch(local):
        return _domain_problem(domain)
    return _address_problem(email)


@lru_cache(maxsize=4096)
def _domain_problem(domain: str) -> str | None:
    return _address_problem(f"a@{domain}")


def _address_problem(email: str) -> str | None:
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as error:
        return str(error)
    return None


NUL_DESCRIPTION = "must not contain NUL characters (U+0000)"


def check_text(value: str, field: str, violations: Violations) -> bool:
    """False (with a violation) for text holding NUL, which PostgreSQL cannot store."""
    if "\x00" in value:
        violations.add(field, NUL_DESCRIPTION)
        return False
    return True


def check_email(email: str, field: str, violations: Violations) -> str:
    normalized = normalize_email(email)
    if not check_text(normalized, field, violations):
        return normalized
    if len(normalized) > MAX_EMAIL_LENGTH:
        violations.add(field, f"must be at most {MAX_EMAIL_LENGTH} characters")
        return normalized
    problem = email_problem(normalized)
    if problem is not None:
        violations.add(field, f"is not a valid email address: {problem}")
    return normalized


def check_length(
    value: str, field: str, low: int, high: int, violations: Violations
) -> None:
    if not check_text(value, field, violations):
        return
    if not low <= len(value) <= high:
        violations.add(field, f"must be {low} to {high} characters long")


# Whitespace (str.isspace's, which is \s's) or a control character: never in a URL we keep.
_NOT_IN_URLS = re.compile(r"[\s\x00-\x1f]")


def is_http_url(value: str) -> bool:
    if _NOT_IN_URLS.search(value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def check_url(
    value: str | None, field: str, violations: Violations, *, rule: str | None = None
) -> None:
    if value is None or not check_text(value, field, violations):
        return
    if len(value) > MAX_URL_LENGTH or not is_http_url(value):
        violations.add(
            field,
            f"must be an absolute http(s) URL of at most {MAX_URL_LENGTH} characters",
            rule=rule,
        )


def _integral_floats_as_ints(value: Any) -> Any:
    """1.0 and 1 are the same JSON value; give them one spelling."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    return value


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values, equal text."""
    return json.dumps(
        _integral_floats_as_ints(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def json_problem(
    value: Any, *, max_depth: int = MAX_JSON_DEPTH, max_items: int | None = None
) -> tuple[str, bool] | None:
    """What makes `value` unfit to store as JSON, and whether it is its text (NUL); or None.

    Every layer must keep the value exactly: integers (and integral floats, the same JSON
    value) within +-MAX_SAFE_INTEGER, finite numbers, text without NUL, at most
    `max_depth` levels. Walked with a stack of its own, so no nesting exhausts Python's;
    beyond `max_items` values the caller's size limit is broken anyway, and the walk stops.
    """
    pending: list[tuple[Any, int]] = [(value, 0)]
    seen = 0
    while pending:
        item, depth = pending.pop()
        seen += 1
        if max_items is not None and seen > max_items:
            return f"must hold at most {max_items} values", False
        if isinstance(item, str):
            if "\x00" in item:
                return NUL_DESCRIPTION, True
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                return f"must nest at most {max_depth} levels deep", False
            if isinstance(item, dict):
                if any(not isinstance(key, str) for key in item):
                    return "must have text keys", False
                if any("\x00" in key for key in item):
                    return NUL_DESCRIPTION, True
                pending.extend((child, depth + 1) for child in item.values())
            else:
                pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, (int, float)):
            if isinstance(item, float) and not math.isfinite(item):
                return "must hold finite numbers", False
            if abs(item) > MAX_SAFE_INTEGER and (
                isinstance(item, int) or item.is_integer()
            ):
                return (
                    f"must hold integers within +-{MAX_SAFE_INTEGER} (2^53 - 1)",
                    False,
                )
        else:
            return "must hold JSON values only", False
    return None


def check_options(
    options: Any, field: str, violations: Violations
) -> dict[str, Any] | None:
    """Options as stored: None for absent, null and {}."""
    if options is None:
        return None
    if not isinstance(options, dict):
        violations.add(field, "must be a JSON object", rule=_OPTIONS_RULE)
        return None
    # No value takes less than two bytes serialized (a digit and a comma or colon).
    problem = json_problem(options, max_items=MAX_OPTIONS_BYTES // 2)
    if problem is not None:
        description, in_text = problem
        # NUL is a rule of all text (INVALID_ARGUMENT); the rest is the options' shape.
        violations.add(field, description, rule=None if in_text else _OPTIONS_RULE)
        return None
    if len(canonical_json(options).encode()) > MAX_OPTIONS_BYTES:
        violations.add(
            field,
            f"must be at most {MAX_OPTIONS_BYTES} bytes serialized",
            rule=_OPTIONS_RULE,
        )
        return None
    return options or None


_SCALAR = (str, int, float, bool, type(None))


def check_template_parameters(
    parameters: Any, field: str, violations: Violations
) -> dict[str, Any] | None:
    """A report's extra template parameters: a flat object of placeholder names to values."""
    if parameters is None:
        return None
    if not isinstance(parameters, dict) or not all(
        isinstance(value, _SCALAR) for value in parameters.values()
    ):
        violations.add(
            field, "must be a flat JSON object of placeholder names to values"
        )
        return None
    problem = json_problem(parameters, max_items=MAX_TEMPLATE_PARAMETERS_BYTES // 2)
    if problem is not None:
        violations.add(field, problem[0])
        return None
    if len(canonical_json(parameters).encode()) > MAX_TEMPLATE_PARAMETERS_BYTES:
        violations.add(
            field, f"must be at most {MAX_TEMPLATE_PARAMETERS_BYTES} bytes serialized"
        )
    return parameters


def check_catalog_reference(
    reference: CatalogReference, field: str, violations: Violations
) -> CatalogReference:
    check_length(reference.app_id, f"{field}.appId", 1, MAX_APP_ID_LENGTH, violations)
    check_length(
        reference.catalog_item_id,
        f"{field}.catalogItemId",
        1,
        MAX_CATALOG_ITEM_ID_LENGTH,
        violations,
    )
    options = check_options(reference.options, f"{field}.options", violations)
    return CatalogReference(reference.app_id, reference.catalog_item_id, options)


def catalog_reference_key(reference: CatalogReference) -> str:
    """The hash two references share exactly when they are equal as JSON values."""
    text = canonical_json(
        [reference.app_id, reference.catalog_item_id, reference.options or {}]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def check_item_details(item: ItemDetails, field: str, violations: Violations) -> None:
    check_length(item.name, f"{field}.name", 1, MAX_ITEM_NAME_LENGTH, violations)
    # fullmatch: a decimal and nothing else (no NUL, no trailing newline that $ allows).
    if len(item.price) > MAX_PRICE_LENGTH or not _DECIMAL.fullmatch(item.price):
        violations.add(f"{field}.price", 'must be a decimal string >= 0, e.g. "19.99"')
    check_url(item.image, f"{field}.image", violations, rule=_IMAGE_RULE)


def check_id(value: str, field: str, violations: Violations) -> uuid.UUID | None:
    if not _UUID.match(value.strip()):
        violations.add(field, "must be a UUID")
        return None
    return uuid.UUID(value.strip())


def parse_id(value: str, field: str = "id") -> uuid.UUID:
    """A UUID from its text in any letter case, or INVALID_ARGUMENT."""
    violations = Violations()
    parsed = check_id(value, field, violations)
    violations.raise_if_any()
    assert parsed is not None
    return parsed


def contact_id_for(email: str) -> uuid.UUID:
    """One stable contact id per (normalised) email, with no table to keep in sync."""
    return uuid.uuid5(_CONTACT_NAMESPACE, email)


_CONTACT_NAMESPACE = uuid.UUID("6c1e8b8a-5b0e-4f2b-9a53-2f4d5e3c7a10")
