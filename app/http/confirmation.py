"""The confirmation link of the double opt-in email: a GET shows a page with a button
(mail scanners fetch links, and must not confirm anything), its POST confirms every
request of the address made before the link was sent."""

from __future__ import annotations

import logging
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from app.http.failures import RETRY_AFTER_SECONDS, is_database_outage
from app.http.pages import form_page, page
from app.services import confirmation

log = logging.getLogger("app.http")

INVALID = "This confirmation link is not valid. Use the link of the email you received."
EXPIRED = (
    "This confirmation link has expired. Ask to be told about the item again on the "
    "shop's page, and use the link of the new email."
)


async def confirm(request: Request) -> Response:
    state = request.app.state
    named = state.links.confirming(request.path_params["token"])
    if named is None:
        return page("Link not valid", INVALID, status=400)
    contact_id, issued = named
    expiry = timedelta(hours=state.settings.email_confirmation_expiry_hours)
    if state.clock() > issued + expiry:
        return page("Link expired", EXPIRED, status=400)
    if request.method != "POST":
        return form_page(
            "Confirm your email address",
            "Confirm that you want an email when the items you asked about are back "
            "in stock.",
            label="Confirm",
        )
    try:
        done = await confirmation.confirm(
            state.store,
            contact_id=contact_id,
            issued=issued,
            expiry=expiry,
            clock=state.clock,
        )
    except Exception as error:
        if not is_database_outage(error):
            raise
        log.warning("confirm: the database is unavailable")
        response = page(
            "Try again shortly",
            "Your confirmation could not be recorded just now; please try again.",
            status=503,
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if not done.in_time:
        return page("Link expired", EXPIRED, status=400)
    log.info("contact %s confirmed %d requests", contact_id, done.confirmed)
    return page(
        "Confirmed",
        "Thank you. We will email you when the items you asked about are back in stock.",
    )
