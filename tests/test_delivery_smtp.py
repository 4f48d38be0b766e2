"""What the SMTP server answers decides the outcome: 5xx is final, 4xx is retried, and a
message whose final reply never comes is settled as possibly delivered, never resent."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette

from app.config import Settings
from app.notify.dispatcher import Dispatcher
from tests.delivery import (
    create_requests,
    deliver_all,
    delivery_settings,
    eventually,
    get,
    queued,
    report,
)
from tests.mailbox import Mailbox

REFUSED = "550 5.7.1 Delivery not authorized"
LATER = "451 4.3.0 Mailbox busy, try again later"


@pytest.fixture
def settings(settings: Settings, mailbox: Mailbox) -> Settings:
    return delivery_settings(settings, mailbox)


@pytest.fixture
def dispatcher(app: Starlette, settings: Settings) -> Dispatcher:
    return Dispatcher(app.state.store, settings)


@pytest.mark.parametrize("stage", ["RCPT", "end of DATA"])
async def test_a_5xx_refusal_fails_the_request_at_once_with_the_reply(
    gql, admin_key, collecting, app, dispatcher, mailbox, stage
):
    # given
    [request_id] = await create_requests(gql, 1)
    if stage == "RCPT":
        mailbox.refusal = REFUSED
    else:
        mailbox.final_reply = REFUSED

    # when
    await report(gql, admin_key)
    stats = await dispatcher.deliver_batch()

    # then: one attempt, no retry left behind
    assert stats is not None and stats.failed == 1
    failed = await get(gql, admin_key, request_id)
    assert failed["status"] == "FAILED"
    assert failed["autoNotified"] is True
    assert failed["deliveryAttempts"] == 1
    assert failed["lastDeliveryError"] == f"SMTP {REFUSED}"
    assert await queued(app) == 0
    assert mailbox.received == []


async def test_a_later_report_retries_a_refused_request_as_a_new_round(
    gql, admin_key, collecting, app, dispatcher, mailbox
):
    # given: a request refused for good
    [request_id] = await create_requests(gql, 1)
    mailbox.refusal = REFUSED
    await report(gql, admin_key)
    await deliver_all(dispatcher, app)

    # when: the server accepts again and the item is reported again
    mailbox.refusal = None
    assert await report(gql, admin_key, requestIds=[request_id]) == 1
    await deliver_all(dispatcher, app)

    # then
    sent = await get(gql, admin_key, request_id)
    assert sent["status"] == "NOTIFICATION_SENT"
    assert sent["deliveryAttempts"] == 1
    [received] = mailbox.received
    assert received.message_id == f"<{request_id}.2@shop.example>"


@pytest.mark.parametrize("stage", ["RCPT", "end of DATA"])
async def test_a_4xx_reply_is_retried_with_the_reply_shown_meanwhile(
    gql, admin_key, collecting, app, dispatcher, mailbox, stage
):
    # given: the server defers the first attempt
    [request_id] = await create_requests(gql, 1)
    if stage == "RCPT":
        mailbox.refusal = LATER
    else:
        mailbox.final_reply = LATER
    await report(gql, admin_key)
    stats = await dispatcher.deliver_batch()
    assert stats is not None and stats.failed == 1
    waiting = await get(gql, admin_key, request_id)
    assert waiting["status"] == "PROCESSING"
    assert waiting["deliveryAttempts"] == 1
    assert waiting["lastDeliveryError"] == f"SMTP {LATER}"

    # when: it accepts the retry
    mailbox.refusal = None
    mailbox.final_reply = "250 OK"
    await deliver_all(dispatcher, app)

    # then: delivered once, on the second attempt
    sent = await get(gql, admin_key, request_id)
    assert sent["status"] == "NOTIFICATION_SENT"
    assert sent["deliveryAttempts"] == 2
    assert [r.recipients for r in mailbox.received] == [["shopper0@example.com"]]


async def test_a_server_always_deferring_fails_the_request_after_the_last_attempt(
    gql, admin_key, collecting, app, dispatcher, mailbox
):
    [request_id] = await create_requests(gql, 1)
    mailbox.final_reply = LATER

    await report(gql, admin_key)
    await deliver_all(dispatcher, app)

    failed = await get(gql, admin_key, request_id)
    assert failed["status"] == "FAILED"
    assert failed["deliveryAttempts"] == 3
    assert failed["lastDeliveryError"] == f"SMTP {LATER}"
    assert mailbox.received == []


async def test_a_final_reply_slower_than_the_mail_timeout_is_waited_for(
    gql, admin_key, collecting, app, settings, mailbox
):
    # given: a server that holds its 250 longer than MAIL_TIMEOUT_SECONDS
    dispatcher = Dispatcher(
        app.state.store,
        settings.model_copy(update={"mail_timeout_seconds": 1.0}),
    )
    [request_id] = await create_requests(gql, 1)
    await report(gql, admin_key)
    mailbox.hold()

    # when
    sending = asyncio.create_task(dispatcher.deliver_batch())
    await eventually(mailbox.holding.is_set)
    await asyncio.sleep(1.5)
    mailbox.release()
    stats = await sending
    await dispatcher.close()

    # then: one copy, delivered at the first attempt
    assert stats is not None and stats.sent == 1
    assert len(mailbox.received) == 1
    sent = await get(gql, admin_key, request_id)
    assert sent["status"] == "NOTIFICATION_SENT"
    assert sent["deliveryAttempts"] == 1
    assert sent["lastDeliveryError"] is None
    assert await queued(app) == 0


async def test_a_final_reply_that_never_comes_is_possibly_delivered_and_not_resent(
    gql, admin_key, collecting, app, settings, mailbox
):
    # given: a server that stores the message and never answers its end of DATA
    dispatcher = Dispatcher(
        app.state.store,
        settings.model_copy(
            update={
                "mail_timeout_seconds": 1.0,
                "mail_final_reply_timeout_seconds": 1.0,
            }
        ),
    )
    [request_id] = await create_requests(gql, 1)
    await report(gql, admin_key)
    mailbox.hold()

    # when
    try:
        await deliver_all(dispatcher, app)
    finally:
        mailbox.release()

    # then: sent as far as anyone can tell, with the doubt said; nothing left to resend
    request = await get(gql, admin_key, request_id)
    assert request["status"] == "NOTIFICATION_SENT"
    assert request["autoNotified"] is True
    assert request["deliveryAttempts"] == 1
    assert request["lastDeliveryError"].startswith(
        "unconfirmed: no reply to the end of the message within 1 s"
    )
    assert await queued(app) == 0
    assert len(mailbox.received) == 1
    assert (await dispatcher.drain()).sent == 0
    assert len(mailbox.received) == 1
