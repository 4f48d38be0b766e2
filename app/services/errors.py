"""Domain errors, each carrying the contract's error code."""

from __future__ import annotations

from dataclasses import dataclass


class ServiceError(Exception):
    """An error the service raises on purpose; `code` becomes `extensions.code`."""

    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidArgument(ServiceError):
    code = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation]) -> None:
        fields = ", ".join(v.field for v in violations)
        super().__init__(f"Invalid argument: {fields}")
        self.field_violations = violations


class Unauthenticated(ServiceError):
    code = "UNAUTHENTICATED"


class Forbidden(ServiceError):
    code = "FORBIDDEN"


class RequestCollectionDisabled(ServiceError):
    code = "REQUEST_COLLECTION_DISABLED"


class RequestNotFound(ServiceError):
    code = "BACK_IN_STOCK_NOTIFICATION_REQUEST_NOT_FOUND"


class BothSelectorsGiven(ServiceError):
    code = "REQUEST_CONTAINS_BOTH_CATALOG_REFERENCE_AND_REQUEST_IDS"


class InvalidItemImageUrl(ServiceError):
    code = "INVALID_ITEM_IMAGE_URL"


class InvalidCatalogReferenceOptions(ServiceError):
    code = "INVALID_CATALOG_REFERENCE_OPTIONS"


class NotSupportedAppDefId(ServiceError):
    code = "NOT_SUPPORTED_APP_DEF_ID"


class RateLimited(ServiceError):
    """A visitor's create refused by a limit; `retry_after_seconds` says when to retry."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
