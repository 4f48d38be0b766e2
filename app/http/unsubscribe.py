"""One-click unsubscribe (RFC 8058) at the URL every notification's `List-Unsubscribe`
names: a POST (`List-Unsubscribe=One-Click`, or an empty body; no cookie, no key)
unsubscribes and answers 200, never a redirect; a GET shows a page with a button that
makes that POST, and changes nothing."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from app.http.failures import RETRY_AFTER_SECONDS, is_database_outage
from app.http.pages import form_page, page
from app.services import privacy

log = logging.getLogger("app.http")

INVALID = "This unsubscribe link is not valid. Use the link of an email you received."


async def unsubscribe(request: Request) -> Response:
    state = request.app.state
    contact_id = state.links.unsubscribing(request.path_params["token"])
    if contact_id is None:
        return page("Link not valid", INVALID, status=400)
    if request.method != "POST":
        return form_page(
            "Unsubscribe",
            "Stop every back-in-stock email to your address? Requests you made that "
            "have not been emailed yet are deleted.",
            label="Unsubscribe",
            field=("List-Unsubscribe", "One-Click"),
        )
    # The body is `List-Unsubscribe=One-Click` (RFC 8058) or the page's form: either
    # way the signed link alone decides, so the body is not read.
    try:
        removed = await privacy.unsubscribe(
            state.store, contact_id=contact_id, clock=state.clock
        )
    except Exception as error:
        if not is_database_outage(error):
            raise
        log.warning("unsubscribe: the database is unavailable")
        response = page(
            "Try again shortly",
            "Your request could not be recorded just now; please try again in a moment.",
            status=503,
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    log.info(
        "unsubscribed contact %s: %d waiting requests removed", contact_id, removed
    )
    return page(
        "Unsubscribed",
        "You will get no more back-in-stock emails from us. You can ask to be told "
        "about an item again at any time.",
    )
