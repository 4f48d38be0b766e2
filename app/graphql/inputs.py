"""Input types and their conversion to the domain's values."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from app.fast_paths import built_once
from app.graphql.types import BackInStockNotificationRequestStatus
from app.services.request_filters import (
    Condition,
    FilterField,
    Operator,
    RequestFilter,
)
from app.services.request_sort import SortField as DomainSortField
from app.services.request_sort import SortKey
from app.services.request_sort import SortOrder as DomainSortOrder
from app.services.rules import CatalogReference, ItemDetails, NewRequest


@built_once
@strawberry.input
class CatalogReferenceInput:
    app_id: str
    catalog_item_id: str
    options: JSON | None = None

    def to_domain(self) -> CatalogReference:
        # Any JSON value: the rules refuse what is not an object (or null).
        options = cast("dict[str, Any] | None", self.options)
        return CatalogReference(self.app_id, self.catalog_item_id, options)


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
    confirmed: BooleanFilter | None = strawberry.field(
        default=None,
        description="Whether the shopper confirmed the email address (double opt-in).",
    )
    and_: list[BackInStockNotificationRequestFilter] | None = strawberry.field(
        name="and", default=None
    )
    or_: list[BackInStockNotificationRequestFilter] | None = strawberry.field(
        name="or", default=None
    )
    not_: BackInStockNotificationRequestFilter | None = strawberry.field(
        name="not", default=None
    )


# Each filter field of the API, by its Python name, and the domain's field.
_FILTER_FIELDS = {
    "id": FilterField.ID,
    "contact_id": FilterField.CONTACT_ID,
    "status": FilterField.STATUS,
    "auto_notified": FilterField.AUTO_NOTIFIED,
    "created_date": FilterField.CREATED_DATE,
    "item_url": FilterField.ITEM_URL,
    "email": FilterField.EMAIL,
    "confirmed": FilterField.CONFIRMED,
}
_REFERENCE_FIELDS = {
    "app_id": FilterField.APP_ID,
    "catalog_item_id": FilterField.CATALOG_ITEM_ID,
}


def _conditions(field: FilterField, operators: Any) -> list[Condition]:
    """One condition per operator given, in the input type's field order."""
    conditions = []
    for operator in dataclasses.fields(operators):
        value = getattr(operators, operator.name)
        if value is not None:
            conditions.append(
                Condition(
                    field,
                    Operator(operator.name.rstrip("_")),
                    tuple(value) if isinstance(value, list) else value,
                )
            )
    return conditions


def _filters(
    values: list[BackInStockNotificationRequestFilter] | None,
) -> tuple[RequestFilter, ...] | None:
    if values is None:
        return None
    return tuple(filter_to_domain(value) or RequestFilter() for value in values)


def filter_to_domain(
    value: BackInStockNotificationRequestFilter | None,
) -> RequestFilter | None:
    """The domain's filter tree of a filter input (names and paths in Python's words)."""
    if value is None:
        return None
    conditions: list[Condition] = []
    for name, field in _FILTER_FIELDS.items():
        operators = getattr(value, name)
        if operators is not None:
            conditions += _conditions(field, operators)
    if value.catalog_reference is not None:
        for name, field in _REFERENCE_FIELDS.items():
            operators = getattr(value.catalog_reference, name)
            if operators is not None:
                conditions += _conditions(field, operators)
    return RequestFilter(
        conditions=tuple(conditions),
        and_=_filters(value.and_),
        or_=_filters(value.or_),
        not_=filter_to_domain(value.not_),
    )


def sort_to_domain(
    sort: list[BackInStockNotificationRequestSort] | None,
) -> list[SortKey] | None:
    if sort is None:
        return None
    return [
        SortKey(
            DomainSortField[item.field.name],
            DomainSortOrder[(item.order or SortOrder.ASC).name],
        )
        for item in sort
    ]
