"""Mutation fields: a few lines each, parse, call a service, map the result."""

from __future__ import annotations

import strawberry

from app.graphql.inputs import (
    BackInStockItemDetailsInput,
    BackInStockNotificationRequestInput,
    ReportItemsBackInStockOptions,
)
from app.graphql.permissions import field_requiring
from app.graphql.types import (
    BackInStockNotificationRequest,
    BackInStockSettings,
    ReportItemsBackInStockResult,
)
from app.permissions import Permission
from app.services import reports as report_service
from app.services import request_changes
from app.services import requests as request_service
from app.services import settings as settings_service

CREATE_REQUESTS = Permission.CREATE_BACK_IN_STOCK_NOTIFICATION_REQUESTS
MODIFY_REQUESTS = Permission.MODIFY_BACK_IN_STOCK_NOTIFICATION_REQUESTS
MODIFY_SETTINGS = Permission.MODIFY_BACK_IN_STOCK_NOTIFICATION_SETTINGS


@strawberry.type
class Mutation:
    @field_requiring(
        CREATE_REQUESTS,
        "Ask to be emailed when the item is back in stock. Returns the shopper's open "
        "request for the same item if there is one.",
        mutation=True,
    )
    async def create_back_in_stock_notification_request(
        self,
        info: strawberry.Info,
        request: BackInStockNotificationRequestInput,
        item_details: BackInStockItemDetailsInput,
    ) -> BackInStockNotificationRequest:
        created = await request_service.create_request(
            info.context.store,
            request=request.to_domain(),
            item=item_details.to_domain(),
            clock=info.context.clock,
            sign_up=info.context.sign_up,
        )
        if not created.confirmed:
            info.context.notify_queued()  # its confirmation email may be due
        return BackInStockNotificationRequest.from_record(created)

    @field_requiring(
        MODIFY_REQUESTS, "Delete a request; returns its id.", mutation=True
    )
    async def delete_back_in_stock_notification_request(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> strawberry.ID:
        deleted = await request_changes.delete_request(
            info.context.store,
            id=id,
            in_flight_wait=info.context.settings.in_flight_wait_seconds,
        )
        return strawberry.ID(str(deleted))

    @field_requiring(
        MODIFY_REQUESTS,
        "Record that the shopper was emailed outside the service.",
        mutation=True,
    )
    async def mark_as_notification_sent(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> BackInStockNotificationRequest:
        marked = await request_changes.mark_as_notification_sent(
            info.context.store,
            id=id,
            in_flight_wait=info.context.settings.in_flight_wait_seconds,
            clock=info.context.clock,
        )
        return BackInStockNotificationRequest.from_record(marked)

    @field_requiring(
        MODIFY_REQUESTS,
        "Queue one email for each waiting request of the item (or of the given ids); "
        "with options.availableQuantity, only for that many units' worth, oldest first.",
        mutation=True,
    )
    async def report_items_back_in_stock(
        self,
        info: strawberry.Info,
        item_details: BackInStockItemDetailsInput,
        options: ReportItemsBackInStockOptions | None = None,
    ) -> ReportItemsBackInStockResult:
        options = options or ReportItemsBackInStockOptions()
        reference = options.catalog_reference
        outcome = await report_service.report_items_back_in_stock(
            info.context.store,
            item=item_details.to_domain(),
            catalog_reference=reference.to_domain() if reference else None,
            request_ids=options.request_ids,
            template_parameters=options.extra_automation_template_parameters,
            available_quantity=options.available_quantity,
            notifications_per_unit=options.notifications_per_unit,
            clock=info.context.clock,
        )
        if outcome.queued_count:
            info.context.notify_queued()
        return ReportItemsBackInStockResult(
            queued_count=outcome.queued_count, remaining_count=outcome.remaining_count
        )

    @field_requiring(
        MODIFY_SETTINGS, "Start accepting requests for an app.", mutation=True
    )
    async def start_collecting_requests(
        self, info: strawberry.Info, app_id: str
    ) -> BackInStockSettings:
        states = await settings_service.start_collecting_requests(
            info.context.store,
            app_id=app_id,
            supported_app_ids=info.context.settings.supported_app_id_set,
            clock=info.context.clock,
        )
        return BackInStockSettings.from_records(states)

    @field_requiring(
        MODIFY_SETTINGS, "Stop accepting requests for an app.", mutation=True
    )
    async def stop_collecting_requests(
        self, info: strawberry.Info, app_id: str
    ) -> BackInStockSettings:
        states = await settings_service.stop_collecting_requests(
            info.context.store, app_id=app_id, clock=info.context.clock
        )
        return BackInStockSettings.from_records(states)
