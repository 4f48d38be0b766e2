"""@requiresPermission: printed in the SDL and enforced on every root field.

One declaration per field (`field_requiring`) gives its check, its description, its
`@requiresPermission` and its `@requiresScopes` for a Router; each schema keeps the latter
only on the fields whose permission its configuration does not grant to visitors
(`with_router_scopes`).
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import Any

import strawberry
from strawberry.federation.schema_directives import RequiresScopes
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema_directive import Location
from strawberry.types.field import StrawberryField

from app.permissions import Permission as DomainPermission
from app.services.errors import Forbidden, Unauthenticated

Permission = strawberry.enum(
    DomainPermission,
    name="Permission",
    description="Permissions, named after the Wix permission ids they mirror.",
)


# Names this project's directives for supergraphs (@link); an identifier, never fetched.
PERMISSIONS_SPEC_URL = "https://specs.backinstock.example/permissions/v1.0"


# Composed: a supergraph keeps it (@composeDirective), imported from its own @link.
@strawberry.federation.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresPermission",
    description="Marks a field that only callers holding the named permission may use.",
    compose=True,
    import_url=PERMISSIONS_SPEC_URL,
)
class RequiresPermission:
    permission: Permission  # type: ignore[valid-type]


def check_permission(info: strawberry.Info, permission: DomainPermission) -> None:
    """Raise UNAUTHENTICATED for bad credentials, FORBIDDEN for a missing permission."""
    principal = info.context.principal
    if principal.authentication_error is not None:
        raise Unauthenticated(principal.authentication_error)
    if not principal.holds(permission):
        raise Forbidden(f"this operation needs the {permission.name} permission")


class Needs(BasePermission):
    """Grants the field to callers holding `permission`."""

    def __init__(self, permission: DomainPermission) -> None:
        self.permission = permission

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        check_permission(info, self.permission)
        return True


def field_requiring(
    permission: DomainPermission,
    description: str,
    *,
    mutation: bool = False,
    subscription: bool = False,
) -> Any:
    """A field declared once: its permission check, its `@requiresPermission` directive,
    its `@requiresScopes` (which a schema drops where visitors hold the permission: see
    `with_router_scopes`) and its description, which repeats the permission
    (introspection hides directives).

    Use it as the decorator of a resolver: `@field_requiring(P, "What it does.")`.
    """
    declare = (
        strawberry.subscription
        if subscription
        else strawberry.mutation
        if mutation
        else strawberry.field
    )
    return declare(
        extensions=[PermissionExtension([Needs(permission)], use_directives=False)],
        directives=[
            RequiresPermission(permission=permission),
            RequiresScopes(scopes=[[permission.name]]),
        ],
        description=f"{description}\n\nRequires the {permission.name} permission.",
    )


def declared_permission(field: StrawberryField) -> DomainPermission | None:
    """The permission a field declares with `field_requiring`, if any."""
    for directive in field.directives:
        if isinstance(directive, RequiresPermission):
            return directive.permission
    return None


def with_router_scopes(
    field: StrawberryField, scoped: Collection[DomainPermission]
) -> StrawberryField:
    """The field as a schema publishes it: with its `@requiresScopes` only when its
    permission is one of `scoped` (those visitors lack), so a Router with JWT scopes
    refuses at the edge what the server would refuse to a visitor."""
    permission = declared_permission(field)
    if permission is None or permission in scoped:
        return field
    published = copy.copy(field)
    published.directives = [
        directive
        for directive in field.directives
        if not isinstance(directive, RequiresScopes)
    ]
    return published


def router_scoped(
    anonymous: Collection[DomainPermission], *, requires_scopes: bool = True
) -> frozenset[DomainPermission]:
    """The permissions whose fields carry `@requiresScopes`: those visitors lack
    (none when REQUIRES_SCOPES is off)."""
    if not requires_scopes:
        return frozenset()
    return frozenset(DomainPermission) - frozenset(anonymous)
