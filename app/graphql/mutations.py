"""Mutation fields: a few lines each, parse, call a service, map the result."""

from __future__ import annotations

import strawberry

from app.graphql.inputs import (
    BackInStockItemDetailsInput,
    BackInStockNotificationRequestInput,
    ReportItemsBackInStockOptions,
)
from app.graphql.permissions import described, requires
from app.graphql.types import (
    BackInStockNotificationRequest,
    BackInStockSettings,
    ReportItemsBackInStockResult,
)
from app.permissions import Permission
from app.services import reports as report_service
from app.services import requests as request_service
from app.services import settings as settings_service

CREATE_REQUESTS = Permission.CREATE_BACK_IN_STOCK_NOTIFICATION_REQUESTS
MODIFY_REQUESTS = Permission.MODIFY_BACK_IN_STOCK_NOTIFICATION_REQUESTS
MODIFY_SETTINGS = Permission.MODIFY_BACK_IN_STOCK_NOTIFICATION_SETTINGS


@strawberry.type
class Mutation:
    @strawberry.mutation(
        extensions=requires(CREATE_REQUESTS),
        description=described(
            "Ask to be emailed when the item is back in stock. Returns the shopper's open "
            "request for the same item if there is one.",
            CREATE_REQUESTS,
        ),
    )
    async def create_back_in_stock_notification_request(
        self,
        info: strawberry.Info,
        request: BackInStockNotificationRequestInput,
        item_details: BackInStockItemDetailsInput,
    ) -> BackInStockNotificationRequest:
        row = await request_service.create_request_in(
            info.context.database,
            request=request.to_domain(),
            item=item_details.to_domain(),
        )
        return BackInStockNotificationRequest.from_row(row)

    @strawberry.mutation(
        extensions=requires(MODIFY_REQUESTS),
        description=described("Delete a request; returns its id.", MODIFY_REQUESTS),
    )
    async def delete_back_in_stock_notification_request(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> strawberry.ID:
        async with info.context.database.writing() as session:
            deleted = await request_service.delete_request(session, id=id)
        return strawberry.ID(str(deleted))

    @strawberry.mutation(
        extensions=requires(MODIFY_REQUESTS),
        description=described(
            "Record that the shopper was emailed outside the service.", MODIFY_REQUESTS
        ),
    )
    async def mark_as_notification_sent(
        self, info: strawberry.Info, id: strawberry.ID
    ) -> BackInStockNotificationRequest:
        async with info.context.database.writing() as session:
            row = await request_service.mark_as_notification_sent(session, id=id)
        return BackInStockNotificationRequest.from_row(row)

    @strawberry.mutation(
        extensions=requires(MODIFY_REQUESTS),
        description=described(
            "Queue one email for each waiting request of the item (or of the given ids).",
            MODIFY_REQUESTS,
        ),
    )
    async def report_items_back_in_stock(
        self,
        info: strawberry.Info,
        item_details: BackInStockItemDetailsInput,
        options: ReportItemsBackInStockOptions | None = None,
    ) -> ReportItemsBackInStockResult:
        options = options or ReportItemsBackInStockOptions()
        reference = options.catalog_reference
        async with info.context.database.writing() as session:
            queued = await report_service.report_items_back_in_stock(
                session,
                item=item_details.to_domain(),
                catalog_reference=reference.to_domain() if reference else None,
                request_ids=options.request_ids,
                template_parameters=options.extra_automation_template_parameters,
            )
        if queued:
            info.context.notify_queued()
        return ReportItemsBackInStockResult(queued_count=queued)

    @strawberry.mutation(
        extensions=requires(MODIFY_SETTINGS),
        description=described("Start accepting requests for an app.", MODIFY_SETTINGS),
    )
    async def start_collecting_requests(
        self, info: strawberry.Info, app_id: str
    ) -> BackInStockSettings:
        async with info.context.database.writing() as session:
            rows = await settings_service.start_collecting_requests(
                session,
                app_id=app_id,
                supported_app_ids=info.context.settings.supported_app_id_set,
            )
        return BackInStockSettings.from_rows(rows)

    @strawberry.mutation(
        extensions=requires(MODIFY_SETTINGS),
        description=described("Stop accepting requests for an app.", MODIFY_SETTINGS),
    )
    async def stop_collecting_requests(
        self, info: strawberry.Info, app_id: str
    ) -> BackInStockSettings:
        async with info.context.database.writing() as session:
            rows = await settings_service.stop_collecting_requests(
                session, app_id=app_id
            )
        return BackInStockSettings.from_rows(rows)
