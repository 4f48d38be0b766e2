"""Privacy fields: export or erase everything stored about one email address."""

from __future__ import annotations

from typing import cast

import strawberry
from strawberry.scalars import JSON

from app.graphql.permissions import field_requiring
from app.permissions import Permission
from app.services import privacy

READ_REQUESTS = Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS
MODIFY_REQUESTS = Permission.MODIFY_BACK_IN_STOCK_NOTIFICATION_REQUESTS


@strawberry.type
class PrivacyQuery:
    @field_requiring(
        READ_REQUESTS,
        "Everything stored about an email address (trimmed and lower-cased as stored): "
        "its requests with their delivery state and queued emails, the rate-limit "
        "counters kept for it, its confirmation email. For access requests (GDPR "
        "article 15).",
    )
    async def export_back_in_stock_data_by_email(
        self, info: strawberry.Info, email: str
    ) -> JSON:
        document = await privacy.export_email(info.context.store, email=email)
        return cast(JSON, document)


@strawberry.type
class PrivacyMutation:
    @field_requiring(
        MODIFY_REQUESTS,
        "Delete everything stored about an email address: every request of it (in any "
        "status) with its queued emails, its rate-limit counters and its confirmation "
        "email. Returns how many requests were deleted. For erasure requests (GDPR "
        "article 17).",
        mutation=True,
    )
    async def erase_back_in_stock_data_by_email(
        self, info: strawberry.Info, email: str
    ) -> int:
        return await privacy.erase_email(
            info.context.store, email=email, clock=info.context.clock
        )
