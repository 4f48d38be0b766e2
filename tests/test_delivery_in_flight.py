"""Marking sent or deleting a request while its email is being sent: the answer is true.

An email the SMTP server already has cannot be called back. A mark or delete that meets
one in flight waits for that attempt, then answers with what happened; an email claimed
but not started yet is not sent at all.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from app.config import Settings
from app.models import Notification
from app.notify.dispatcher import Dispatcher
from tests.delivery import (
    create_requests,
    delivery_settings,
    eventually,
    get,
    queued,
    report,
)
from tests.documents import DELETE_REQUEST, MARK_AS_SENT
from tests.mailbox import Mailbox

# Long enough for the mutation to have met the email in flight.
A_MOMENT = 0.3


@pytest.fixture
def settings(settings: Settings, mailbox: Mailbox) -> Settings:
    # Marks and deletes wait up to twice the mail timeout for an email in flight: 2 s.
    return delivery_settings(settings, mailbox, mail_timeout_seconds=1.0)


@pytest.fixture
def dispatcher(app: Starlette, settings: Settings) -> Dispatcher:
    return Dispatcher(app.state.store, settings)


async def cancel_requested(app: Starlette) -> bool:
    """Whether a mark or delete has asked the dispatcher to cancel the queued email."""
    return bool(await app.state.store.scalar(select(Notification.cancel_requested)))


async def sending_held(dispatcher: Dispatcher, mailbox: Mailbox) -> asyncio.Task:
    """Start delivering; return once the first message waits at the end of DATA."""
    mailbox.hold()
    sending = asyncio.create_task(dispatcher.deliver_batch())
    await eventually(mailbox.holding.is_set)
    return sending


async def test_marking_sent_while_the_email_is_in_flight_answers_with_its_delivery(
    gql, admin_key, collecting, app, dispatcher, mailbox
):
    # given: the request's email is at the end of DATA, the server not answering yet
    [request_id] = await create_requests(gql, 1)
    await report(gql, admin_key)
    sending = await sending_held(dispatcher, mailbox)

    # when: it is marked sent meanwhile
    marking = asyncio.create_task(gql(MARK_AS_SENT, {"id": request_id}, key=admin_key))
    await asyncio.sleep(A_MOMENT)
    assert not marking.done(), "the mark answered while the email was in flight"
    mailbox.release()
    result = await marking
    await sending
    await dispatcher.close()

    # then: the answer is what happened: the service's email went out
    assert result.errors == []
    assert result.data["markAsNotificationSent"] == {
        "id": request_id,
        "status": "NOTIFICATION_SENT",
        "autoNotified": True,
    }
    assert len(mailbox.received) == 1
    request = await get(gql, admin_key, request_id)
    assert (request["status"], request["autoNotified"]) == ("NOTIFICATION_SENT", True)
    assert await queued(app) == 0


async def test_deleting_while_the_email_is_in_flight_waits_for_the_attempt(
    gql, admin_key, collecting, app, dispatcher, mailbox
):
    # given
    [request_id] = await create_requests(gql, 1)
    await report(gql, admin_key)
    sending = await sending_held(dispatcher, mailbox)

    # when
    deleting = asyncio.create_task(
        gql(DELETE_REQUEST, {"id": request_id}, key=admin_key)
    )
    await asyncio.sleep(A_MOMENT)
    assert not deleting.done(), "the delete answered while the email was in flight"
    mailbox.release()
    result = await deleting

    # then: it answered once the attempt was over, and nothing of the request is left
    assert len(mailbox.received) == 1
    assert result.errors == []
    assert result.data["deleteBackInStockNotificationRequest"] == request_id
    await sending
    await dispatcher.close()
    assert await get(gql, admin_key, request_id) is None
    assert await queued(app) == 0


async def test_an_email_claimed_but_not_started_is_not_sent_once_marked(
    gql, admin_key, collecting, app, settings, mailbox
):
    # given: one connection; the first email of the batch is held, the second waits
    dispatcher = Dispatcher(
        app.state.store, settings.model_copy(update={"delivery_connections": 1})
    )
    ids = await create_requests(gql, 2)
    await report(gql, admin_key)
    sending = await sending_held(dispatcher, mailbox)
    [held] = mailbox.received
    [waiting] = [
        id
        for id in ids
        if (await get(gql, admin_key, id))["email"] != held.recipients[0]
    ]

    # when: the waiting one is marked sent while the first is still in flight
    result = await gql(MARK_AS_SENT, {"id": waiting}, key=admin_key)
    mailbox.release()
    await sending
    await dispatcher.close()

    # then: the mark holds and only the first email went out
    assert result.data["markAsNotificationSent"]["autoNotified"] is False
    assert result.data["markAsNotificationSent"]["status"] == "NOTIFICATION_SENT"
    assert len(mailbox.received) == 1
    marked = await get(gql, admin_key, waiting)
    assert (marked["status"], marked["autoNotified"]) == ("NOTIFICATION_SENT", False)
    assert await queued(app) == 0


async def test_a_claimed_email_marked_before_its_batch_starts_is_not_sent(
    gql, admin_key, collecting, app, dispatcher, mailbox
):
    # given: a claimed batch not being sent yet
    [request_id] = await create_requests(gql, 1)
    await report(gql, admin_key)
    batch = await dispatcher.claim_batch()
    assert batch is not None

    # when: marked sent (the mark asks the dispatcher to cancel), then it is delivered
    marking = asyncio.create_task(gql(MARK_AS_SENT, {"id": request_id}, key=admin_key))
    await eventually(lambda: cancel_requested(app))
    stats = await dispatcher.deliver(batch)
    result = await marking
    await dispatcher.close()

    # then
    assert (stats.sent, stats.skipped) == (0, 1)
    assert mailbox.received == []
    assert result.data["markAsNotificationSent"]["autoNotified"] is False
    request = await get(gql, admin_key, request_id)
    assert (request["status"], request["autoNotified"]) == ("NOTIFICATION_SENT", False)
    assert await queued(app) == 0


@pytest.mark.parametrize(
    ("final_reply", "auto_notified", "copies"),
    [("250 OK", True, 1), ("451 4.3.0 try later", False, 0)],
    ids=["delivered", "deferred"],
)
async def test_a_mark_outlasting_its_wait_answers_processing_and_the_attempt_decides(
    gql,
    admin_key,
    collecting,
    app,
    dispatcher,
    mailbox,
    final_reply,
    auto_notified,
    copies,
):
    # given: a server holding the final reply past the mark's wait
    [request_id] = await create_requests(gql, 1)
    await report(gql, admin_key)
    mailbox.final_reply = final_reply
    sending = await sending_held(dispatcher, mailbox)

    # when: the mark gives up waiting, then the server answers
    result = await gql(MARK_AS_SENT, {"id": request_id}, key=admin_key)
    mailbox.release()
    await sending
    await dispatcher.close()

    # then: the mark said the email was still being sent; the attempt settled it
    assert result.data["markAsNotificationSent"]["status"] == "PROCESSING"
    request = await get(gql, admin_key, request_id)
    assert request["status"] == "NOTIFICATION_SENT"
    assert request["autoNotified"] is auto_notified
    assert len(mailbox.received) == copies
    assert await queued(app) == 0
