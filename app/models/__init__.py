"""Every table of the service, with its indexes and constraints (one module per area;
import them from here)."""

from app.models.access import (
    ApiKey,
    CollectionState,
    EmailConfirmation,
    RateLimitCounter,
    ServerKey,
    TrustedDocument,
    TrustedDocumentId,
)
from app.models.base import (
    REPORTABLE_STATUSES,
    BigId,
    Clock,
    RequestStatus,
    counter,
    only_on,
    table_of,
    time_ordered_id,
    utc_now,
)
from app.models.demand import (
    CatalogItemDemand,
    DailyRequestStats,
    ItemUrlDemand,
    ReferenceRequestCounts,
    RequestTotals,
)
from app.models.events import (
    RequestEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.models.requests import (
    Notification,
    NotificationRequest,
    Report,
)

__all__ = [
    "REPORTABLE_STATUSES",
    "ApiKey",
    "BigId",
    "CatalogItemDemand",
    "Clock",
    "CollectionState",
    "DailyRequestStats",
    "EmailConfirmation",
    "ItemUrlDemand",
    "Notification",
    "NotificationRequest",
    "RateLimitCounter",
    "ReferenceRequestCounts",
    "Report",
    "RequestEvent",
    "RequestStatus",
    "RequestTotals",
    "ServerKey",
    "TrustedDocument",
    "TrustedDocumentId",
    "WebhookDelivery",
    "WebhookEndpoint",
    "counter",
    "only_on",
    "table_of",
    "time_ordered_id",
    "utc_now",
]
