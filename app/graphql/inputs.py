"""Input types and their conversion to the domain's plain values."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import strawberry
from strawberry.relay import GlobalID
from strawberry.scalars import JSON
from strawberry.types.base import (
    StrawberryList,
    StrawberryOptional,
    StrawberryType,
    has_object_definition,
)

from app.graphql.types import BackInStockNotificationRequestStatus
from app.services.rules import CatalogReference, ItemDetails, NewRequest

T = TypeVar("T")
Convert = Callable[[Any, Any], Any]


def _converter(type_: Any) -> Convert | None:
    """How to turn an input value of `type_` into its Python value; None: as it is.

    Scalars and enums arrive from graphql-core already parsed. Anything this does not know
    goes through Strawberry's own conversion.
    """
    if isinstance(type_, StrawberryOptional):
        return _converter(type_.of_type)
    if isinstance(type_, StrawberryList):
        item = _converter(type_.of_type)
        if item is None:
            return lambda value, context: list(value)
        return lambda value, context: [
            None if element is None else item(element, context) for element in value
        ]
    if has_object_definition(type_) and type_.__strawberry_definition__.from_input:
        build = type_.__strawberry_definition__.from_input
        return lambda value, context: build(type_, value, context)
    if (
        isinstance(type_, StrawberryType)
        or type_ is GlobalID
        or has_object_definition(type_)
    ):
        return lambda value, context: context.convert(value, type_)
    return None


def built_once(cls: type[T]) -> type[T]:
    """Let Strawberry build this input type by a plan made once.

    Strawberry's own conversion derives every field's GraphQL name and type again for each
    value: a tenth of a create's time. Its `from_input` hook receives the value keyed by
    GraphQL names; the plan (names and converters) is made on first use, when every type
    the fields refer to is known.
    """
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    plan: list[tuple[str, str, Convert | None]] = []
    required = [
        field.python_name
        for field in definition.fields
        if field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    ]

    def build(type_: type[T], value: Mapping[str, Any], context: Any) -> T:
        if not plan:
            names = context.config.name_converter
            plan.extend(
                (
                    names.from_field(field),
                    field.python_name,
                    _converter(field.resolve_type(type_definition=definition)),
                )
                for field in definition.fields
            )
        arguments: dict[str, Any] = dict.fromkeys(required)
        for name, python_name, convert in plan:
            if name in value:
                given = value[name]
                arguments[python_name] = (
                    given
                    if convert is None or given is None
                    else convert(given, context)
                )
        return type_(**arguments)

    definition.from_input = build
    return cls


@built_once
@strawberry.input
class CatalogReferenceInput:
    app_id: str
    catalog_item_id: str
    options: JSON | None = None

    def to_domain(self) -> CatalogReference:
        return CatalogReference(self.app_id, self.catalog_item_id, self.options)


@built_once
@strawberry.input
class BackInStockNotificationRequestInput:
    catalog_reference: CatalogReferenceInput
    email: str
    item_url: str | None = None

    def to_domain(self) -> NewRequest:
        return NewRequest(self.catalog_reference.to_domain(), self.email, self.item_url)


@built_once
@strawberry.input
class BackInStockItemDetailsInput:
    name: str
    price: str = strawberry.field(description='Decimal string, >= 0, e.g. "19.99".')
    image: str | None = strawberry.field(
        default=None, description="Absolute http(s) URL of the item's image."
    )

    def to_domain(self) -> ItemDetails:
        return ItemDetails(self.name, self.price, self.image)


@built_once
@strawberry.input
class ReportItemsBackInStockOptions:
    catalog_reference: CatalogReferenceInput | None = strawberry.field(
        default=None,
        description="Notify the requests for exactly this catalog reference. "
        "Exclusive with requestIds.",
    )
    request_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Notify exactly these requests. Exclusive with catalogReference.",
    )
    extra_automation_template_parameters: JSON | None = strawberry.field(
        default=None,
        description="Extra template parameters; they override item.* placeholders of the "
        "same name.",
    )
    available_quantity: int | None = strawberry.field(
        default=None,
        description="Units back in stock, 0 to 1000000: queue only availableQuantity x "
        "notificationsPerUnit of the waiting requests, oldest first; the others stay "
        "RECEIVED and a later report goes on with the next oldest. Without it every "
        "waiting request is queued.",
    )
    notifications_per_unit: int | None = strawberry.field(
        default=1,
        description="Shoppers to email per available unit, 1 to 1000 (with "
        "availableQuantity; at most 1000000 notifications in all).",
    )


@strawberry.enum
class SortOrder(enum.Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.enum
class BackInStockNotificationRequestSortField(enum.Enum):
    ID = "ID"
    CONTACT_ID = "CONTACT_ID"
    STATUS = "STATUS"
    AUTO_NOTIFIED = "AUTO_NOTIFIED"
    CREATED_DATE = "CREATED_DATE"
    ITEM_URL = "ITEM_URL"


@built_once
@strawberry.input
class BackInStockNotificationRequestSort:
    field: BackInStockNotificationRequestSortField
    order: SortOrder | None = SortOrder.ASC


@built_once
@strawberry.input
class IDFilter:
    eq: strawberry.ID | None = None
    ne: strawberry.ID | None = None
    in_: list[strawberry.ID] | None = strawberry.field(name="in", default=None)
    nin: list[strawberry.ID] | None = None
    starts_with: str | None = None
    exists: bool | None = None


@built_once
@strawberry.input
class StringFilter:
    eq: str | None = None
    ne: str | None = None
    in_: list[str] | None = strawberry.field(name="in", default=None)
    nin: list[str] | None = None
    starts_with: str | None = None
    gt: str | None = None
    gte: str | None = None
    lt: str | None = None
    lte: str | None = None
    exists: bool | None = None


@built_once
@strawberry.input
class BooleanFilter:
    eq: bool | None = None
    ne: bool | None = None
    exists: bool | None = None


@built_once
@strawberry.input
class DateTimeFilter:
    eq: datetime | None = None
    ne: datetime | None = None
    gt: datetime | None = None
    gte: datetime | None = None
    lt: datetime | None = None
    lte: datetime | None = None
    exists: bool | None = None


@built_once
@strawberry.input
class BackInStockNotificationRequestStatusFilter:
    eq: BackInStockNotificationRequestStatus | None = None  # type: ignore[valid-type]
    ne: BackInStockNotificationRequestStatus | None = None  # type: ignore[valid-type]
    in_: list[BackInStockNotificationRequestStatus] | None = strawberry.field(  # type: ignore[valid-type]
        name="in", default=None
    )
    nin: list[BackInStockNotificationRequestStatus] | None = None  # type: ignore[valid-type]


@built_once
@strawberry.input
class CatalogReferenceFilter:
    app_id: StringFilter | None = None
    catalog_item_id: StringFilter | None = None


@built_once
@strawberry.input
class BackInStockNotificationRequestFilter:
    id: IDFilter | None = None
    contact_id: IDFilter | None = None
    status: BackInStockNotificationRequestStatusFilter | None = None
    auto_notified: BooleanFilter | None = None
    created_date: DateTimeFilter | None = None
    item_url: StringFilter | None = None
    email: StringFilter | None = None
    catalog_reference: CatalogReferenceFilter | None = None
    and_: list[BackInStockNotificationRequestFilter] | None = strawberry.field(
        name="and", default=None
    )
    or_: list[BackInStockNotificationRequestFilter] | None = strawberry.field(
        name="or", default=None
    )
    not_: BackInStockNotificationRequestFilter | None = strawberry.field(
        name="not", default=None
    )


def filter_to_domain(value: Any) -> Any:
    """A filter input as plain dicts and lists, keyed by Python names without the `_`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name.rstrip("_"): filter_to_domain(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if getattr(value, field.name) is not None
        }
    if isinstance(value, list):
        return [filter_to_domain(item) for item in value]
    return value


def sort_to_domain(
    sort: list[BackInStockNotificationRequestSort] | None,
) -> list[tuple[str, str]] | None:
    if sort is None:
        return None
    return [(item.field.value, (item.order or SortOrder.ASC).value) for item in sort]
