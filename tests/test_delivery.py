"""Delivering queued notifications to a real SMTP server: once, with the right content."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette

from app.config import Settings
from app.models import Notification, NotificationRequest
from app.notify.dispatcher import Dispatcher, retry_delay
from app.permissions import Permission
from tests.conftest import mint_key
from tests.delivery import (
    ITEM_URL,
    LONG_AGO,
    MAIL_FROM,
    create_requests,
    deliver_all,
    delivery_settings,
    eventually,
    get,
    queued,
    report,
)
from tests.documents import (
    APP_ID,
    CREATE_ASKING_DELIVERY,
    STOP_COLLECTING,
    new_request,
)
from tests.mailbox import Mailbox

# The test server takes AUTH without TLS on loopback; aiosmtpd warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH:UserWarning")


@pytest.fixture
def settings(settings: Settings, mailbox: Mailbox) -> Settings:
    return delivery_settings(settings, mailbox)


@pytest.fixture
def dispatcher(app: Starlette, settings: Settings) -> Dispatcher:
    return Dispatcher(app.state.store, settings)


async def test_every_queued_request_is_emailed_once_with_its_details(
    gql, admin_key, collecting, app, dispatcher, mailbox
):
    # given
    ids = await create_requests(gql, 5)
    await create_requests(gql, 1, item_id="not-reported")
    assert await report(gql, admin_key) == 5

    # when
    await deliver_all(dispatcher, app)

    # then
    emails = sorted(f"shopper{index}@example.com" for index in range(5))
    assert mailbox.recipients() == emails
    for received, request_id in zip(
        sorted(mailbox.received, key=lambda r: r.recipients[0]),
        [await request_id_of(gql, admin_key, ids, email) for email in emails],
        strict=True,
    ):
        message = received.message
        assert received.sender == "alerts@shop.example"
        assert message["From"] == MAIL_FROM
        assert message["To"] == received.recipients[0]
        assert message["Message-ID"] == f"<{request_id}.1@shop.example>"
        assert "Blue shoe" in message["Subject"]
        text, html = received.part("plain"), received.part("html")
        for body in (text, html):
            assert "Blue shoe" in body
            assert "24.50" in body
            assert "https://img.example/shoe.png" in body
        assert ITEM_URL in text
        assert f'href="{ITEM_URL.replace("&", "&amp;")}"' in html
    for request_id in ids:
        request = await get(gql, admin_key, request_id)
        assert request["status"] == "NOTIFICATION_SENT"
        assert request["autoNotified"] is True
        assert request["deliveryAttempts"] == 1
        assert request["lastDeliveryError"] is None
    assert await queued(app) == 0


async def request_id_of(gql: Any, key: str, ids: list[str], email: str) -> str:
    for request_id in ids:
        if (await get(gql, key, request_id))["email"] == email:
            return request_id
    raise AssertionError(email)


async def test_template_parameters_override_item_values_everywhere(
    gql, admin_key, collecting, app, dispatcher, mailbox
):
    await create_requests(gql, 1)
    await report(
        gql,
        admin_key,
        extraAutomationTemplateParameters={
            "item.name": "Red boot",
            "item.price": "19.99",
            "item.image.url": "https://img.example/boot.png",
        },
    )

    await deliver_all(dispatcher, app)

    [received] = mailbox.received
    assert "Red boot" in received.message["Subject"]
    for body in (received.part("plain"), received.part("html")):
        assert "Red boot" in body and "Blue shoe" not in body
        assert "19.99" in body and "24.50" not in body
        assert "https://img.example/boot.png" in body


async def test_report_details_are_shown_and_html_escaped(
    gql, admin_key, collecting, app, dispatcher, mailbox
):
    await create_requests(gql, 1)
    await report(gql, admin_key, item={"name": "Shoe <b>&co", "price": "0.99"})

    await deliver_all(dispatcher, app)

    [received] = mailbox.received
    assert "Shoe <b>&co" in received.part("plain")
    assert "Shoe &lt;b&gt;&amp;co" in received.part("html")
    assert "<b>&co" not in received.part("html")
    # The report gave no image: the one given at create is shown.
    assert "https://img.example/shoe.png" in received.part("html")


async def test_a_second_report_sends_nothing(
    gql, admin_key, collecting, app, dispatcher, mailbox
):
    await create_requests(gql, 3)
    await report(gql, admin_key)
    await deliver_all(dispatcher, app)

    assert await report(gql, admin_key) == 0
    stats = await dispatcher.drain()

    assert stats.sent == 0
    assert len(mailbox.received) == 3


async def test_delivery_fields_are_forbidden_to_visitors(gql, app, collecting):
    result = await gql(CREATE_ASKING_DELIVERY, new_request("visitor@example.com"))

    assert result.codes == ["FORBIDDEN"]
    assert result.data is None


async def test_delivery_fields_need_the_read_permission(
    gql, app, collecting, admin_key
):
    [request_id] = await create_requests(gql, 1)
    reader = await mint_key(app, Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS)

    request = await get(gql, reader, request_id)

    assert request["deliveryAttempts"] == 0
    assert request["lastDeliveryError"] is None


async def test_a_notification_whose_request_no_longer_waits_is_dropped_unsent(
    gql, admin_key, collecting, app, dispatcher, mailbox
):
    # given: a queued notification whose request was settled behind the service's back
    [request_id] = await create_requests(gql, 1)
    await report(gql, admin_key)
    settle = update(NotificationRequest).values(
        status="NOTIFICATION_SENT", auto_notified=False
    )
    await app.state.store.write(lambda tx: tx.execute(settle))

    stats = await dispatcher.drain()

    assert stats.skipped == 1 and stats.sent == 0
    assert mailbox.received == []
    assert await queued(app) == 0
    assert (await get(gql, admin_key, request_id))["autoNotified"] is False


async def test_a_claim_taken_over_before_sending_is_not_sent_by_its_first_owner(
    gql, admin_key, collecting, app, settings, mailbox
):
    # given: dispatcher A claimed a notification, then stalled past its lease
    [request_id] = await create_requests(gql, 1)
    await report(gql, admin_key)
    # (A's own clock gives it a long lease: it does not know it overran.)
    stalled = Dispatcher(
        app.state.store, settings.model_copy(update={"delivery_lease_seconds": 60.0})
    )
    batch = await stalled.claim_batch()
    assert batch is not None
    await app.state.store.write(
        lambda tx: tx.execute(update(Notification).values(available_at=LONG_AGO))
    )

    # when: dispatcher B takes it over and delivers, then A wakes up
    taker = Dispatcher(app.state.store, settings)
    assert (await taker.drain()).sent == 1
    late = await stalled.deliver(batch)
    await stalled.close()
    await taker.close()

    # then: A saw the claim was no longer its own and sent nothing
    assert (late.sent, late.skipped) == (0, 1)
    assert [r.message_id for r in mailbox.received] == [
        f"<{request_id}.1@shop.example>"
    ]
    request = await get(gql, admin_key, request_id)
    assert request["status"] == "NOTIFICATION_SENT"
    assert request["deliveryAttempts"] == 1


async def test_a_claim_taken_over_mid_send_is_resent_as_the_same_message_and_counted_once(
    gql, admin_key, collecting, app, settings, mailbox
):
    # given: dispatcher A's message is held at the end of DATA past A's lease
    [request_id] = await create_requests(gql, 1)
    await report(gql, admin_key)
    stalled = Dispatcher(
        app.state.store, settings.model_copy(update={"delivery_lease_seconds": 60.0})
    )
    mailbox.hold()
    sending = asyncio.create_task(stalled.deliver_batch())
    await eventually(mailbox.holding.is_set)
    await app.state.store.write(
        lambda tx: tx.execute(update(Notification).values(available_at=LONG_AGO))
    )
    taker = Dispatcher(app.state.store, settings)
    taken = await taker.claim_batch()
    assert taken is not None

    # when: A's message is accepted (its outcome comes too late to count), then B sends
    mailbox.release()
    assert (await sending).sent == 1
    assert (await get(gql, admin_key, request_id))["status"] == "PROCESSING"
    assert (await taker.deliver(taken)).sent == 1
    await stalled.close()
    await taker.close()

    # then: the duplicate is recognisable, and the request was counted once
    assert [r.message_id for r in mailbox.received] == [
        f"<{request_id}.1@shop.example>"
    ] * 2
    request = await get(gql, admin_key, request_id)
    assert request["status"] == "NOTIFICATION_SENT"
    assert request["deliveryAttempts"] == 1


async def test_concurrent_dispatchers_never_send_one_notification_twice(
    gql, admin_key, collecting, app, settings, mailbox
):
    ids = await create_requests(gql, 30)
    await report(gql, admin_key)
    dispatchers = [
        Dispatcher(
            app.state.store, settings.model_copy(update={"delivery_batch_size": 4})
        )
        for _ in range(3)
    ]

    results = await asyncio.gather(*(d.drain() for d in dispatchers))
    for d in dispatchers:
        await d.close()

    assert sum(stats.sent for stats in results) == 30
    assert sum(1 for stats in results if stats.sent) >= 2
    assert len(mailbox.received) == 30
    assert len({r.message_id for r in mailbox.received}) == 30
    assert len(ids) == 30


async def test_non_ascii_details_arrive_intact(
    gql, admin_key, collecting, app, dispatcher, mailbox
):
    await create_requests(gql, 1)
    name = "Schuh “Blau” – Größe 42 " + "ü" * 80

    await report(gql, admin_key, item={"name": name, "price": "24.50"})
    await deliver_all(dispatcher, app)

    [received] = mailbox.received
    assert received.message["Subject"] == f"{name} is back in stock"
    assert name in received.part("plain")
    assert name in received.part("html")


def test_retry_delays_grow_exponentially_with_jitter_and_fit_the_contract():
    rng = random.Random(7)
    for attempts in range(1, 6):
        ceiling = 5.0 * 2 ** (attempts - 1)
        delays = [retry_delay(attempts, 5.0, rng) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 100
    # Default settings: the four waits before the fifth and last attempt.
    assert sum(5.0 * 2 ** (n - 1) for n in range(1, 5)) == 75.0
    assert retry_delay(40, 5.0, rng) <= 3600.0


async def test_stopping_hands_back_the_unsent_rest_of_the_batch(
    gql, admin_key, collecting, app, settings, mailbox
):
    # given: a dispatcher working through a batch on a slow server
    await create_requests(gql, 20)
    mailbox.delay = 0.05
    slow = Dispatcher(
        app.state.store,
        settings.model_copy(
            update={"delivery_connections": 1, "delivery_batch_size": 20}
        ),
    )
    await slow.start()
    await report(gql, admin_key)
    slow.wake()
    give_up = time.monotonic() + 30
    while len(mailbox.received) < 3:
        assert time.monotonic() < give_up
        await asyncio.sleep(0.02)

    # when
    await slow.stop()

    # then: what was sent is recorded, the rest is due again at once, unclaimed
    sent_by_first = len(mailbox.received)
    assert sent_by_first < 20
    rows = await app.state.store.rows(select(Notification.__table__))
    assert len(rows) == 20 - sent_by_first
    assert all(row.lease_owner is None for row in rows)
    await deliver_all(Dispatcher(app.state.store, settings), app)
    assert len(mailbox.received) == 20
    assert len({r.message_id for r in mailbox.received}) == 20


async def test_stopping_collection_does_not_cancel_queued_notifications(
    gql, admin_key, collecting, app, dispatcher, mailbox
):
    await create_requests(gql, 2)
    await report(gql, admin_key)

    result = await gql(STOP_COLLECTING, {"appId": APP_ID}, key=admin_key)
    assert result.errors == []
    await deliver_all(dispatcher, app)

    assert len(mailbox.received) == 2
