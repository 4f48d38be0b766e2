"""@requiresPermission: printed in the SDL and enforced on every root field."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.extensions.field_extension import FieldExtension
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
        self._schema_directive = RequiresPermission(permission=permission)

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        check_permission(info, self.permission)
        return True


def requires(permission: DomainPermission) -> list[FieldExtension]:
    """Field extensions that enforce `permission` and print it as @requiresPermission."""
    return [PermissionExtension([Needs(permission)])]


def described(text: str, permission: DomainPermission) -> str:
    """A field description that repeats the permission (introspection hides directives)."""
    return f"{text}\n\nRequires the {permission.name} permission."
