"""`_entities` as a gateway calls it: representations checked and capped per request.

Strawberry hands each representation to its type's `resolve_reference` as keyword
arguments; one that is not an object, names no entity type or lacks a key would fail
there as an unexpected error. They are checked first, so a bad call is INVALID_ARGUMENT.
"""

from __future__ import annotations

from typing import Any

from app.services.rules import Violations

MAX_REPRESENTATIONS = 100
# Each entity type's @key fields, as representations carry them (the API's names).
ENTITY_KEYS: dict[str, tuple[str, ...]] = {
    "BackInStockNotificationRequest": ("id",),
    "CatalogItem": ("appId", "catalogItemId"),
}


def check_representations(representations: list[Any], earlier: int = 0) -> None:
    """Raise INVALID_ARGUMENT, listing every problem, unless each representation names
    an entity type and exactly its key fields, as strings, and the request (`earlier`
    representations before these) stays within MAX_REPRESENTATIONS."""
    violations = Violations()
    if earlier + len(representations) > MAX_REPRESENTATIONS:
        violations.add(
            "representations",
            f"must hold at most {MAX_REPRESENTATIONS} representations per request "
            f"(got {earlier + len(representations)})",
        )
        violations.raise_if_any()
    for index, representation in enumerate(representations):
        _check_one(representation, f"representations[{index}]", violations)
    violations.raise_if_any()


def _check_one(representation: Any, path: str, violations: Violations) -> None:
    if not isinstance(representation, dict):
        violations.add(path, "must be an object with __typename and the key fields")
        return
    typename = representation.get("__typename")
    keys = ENTITY_KEYS.get(typename) if isinstance(typename, str) else None
    if keys is None:
        violations.add(
            f"{path}.__typename", f"must name an entity type: {', '.join(ENTITY_KEYS)}"
        )
        return
    for key in keys:
        if not isinstance(representation.get(key), str):
            violations.add(f"{path}.{key}", f"must be a string (a key of {typename})")
    others = sorted(set(representation) - {"__typename", *keys})
    if others:
        violations.add(
            path, f"has fields that are not keys of {typename}: {', '.join(others)}"
        )
