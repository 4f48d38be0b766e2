"""@requiresPermission: printed in the SDL and enforced on every root field."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema_directive import Location

from app.permissions import Permission as DomainPermission
from app.services.errors import Forbidden, Unauthenticated

Permission = strawberry.enum(
    DomainPermission,
    name="Permission",
    description="Permissions, named after the Wix permission ids they mirror.",
)


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresPermission",
    description="Marks a field that only callers holding the named permission may use.",
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
    permission: DomainPermission, description: str, *, mutation: bool = False
) -> Any:
    """A field declared once: its permission check, its `@requiresPermission` directive
    and its description, which repeats the permission (introspection hides directives).

    Use it as the decorator of a resolver: `@field_requiring(P, "What it does.")`.
    """
    declare = strawberry.mutation if mutation else strawberry.field
    return declare(
        extensions=[PermissionExtension([Needs(permission)], use_directives=False)],
        directives=[RequiresPermission(permission=permission)],
        description=f"{description}\n\nRequires the {permission.name} permission.",
    )
