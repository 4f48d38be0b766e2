"""Double opt-in (REQUIRE_EMAIL_CONFIRMATION): a visitor's request waits unconfirmed,
its address gets one confirmation email (throttled), the link's POST confirms, and
nothing unconfirmed is ever notified; unconfirmed requests are purged in time."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from starlette.applications import Starlette

from app.config import Settings
from app.main import create_app
from app.models import utc_now
from app.notify import confirmations
from app.notify.dispatcher import Dispatcher
from tests.conftest import GraphQLClient, ManualClock, mint_key
from tests.delivery import MAIL_FROM, deliver_all, delivery_settings, report
from tests.documents import QUERY_REQUESTS, new_request, start_collecting
from tests.mailbox import Mailbox, Received
from tests.signup import MIDNIGHT, asgi_client

BASE = "http://127.0.0.1"
HOUR = 3600
CREATE = """
mutation Create($request: BackInStockNotificationRequestInput!,
                $itemDetails: BackInStockItemDetailsInput!) {
  createBackInStockNotificationRequest(request: $request, itemDetails: $itemDetails) {
    id contactId confirmed
  }
}
"""
GET = "query Get($id: ID!) { backInStockNotificationRequest(id: $id) { confirmed } }"
LIST = "backInStockNotificationRequests"
EXPORT = "query Export($email: String!) { exportBackInStockDataByEmail(email: $email) }"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MIDNIGHT)


@pytest.fixture
def settings(settings: Settings, mailbox: Mailbox) -> Settings:
    return delivery_settings(
        settings,
        mailbox,
        public_base_url=BASE,
        require_email_confirmation=True,
    )


@pytest.fixture
def dispatcher(app: Starlette, settings: Settings, clock: ManualClock) -> Dispatcher:
    return Dispatcher(app.state.store, settings, clock=clock)


async def sign_up(
    gql: GraphQLClient, email: str, item: str = "shoe-1", key: str | None = None
) -> dict:
    result = await gql(CREATE, new_request(email, item_id=item), key=key)
    assert result.errors == [], result.errors
    return result.data["createBackInStockNotificationRequest"]


async def is_confirmed(gql: GraphQLClient, key: str, request: dict) -> bool:
    result = await gql(GET, {"id": request["id"]}, key=key)
    return result.data["backInStockNotificationRequest"]["confirmed"]


def confirm_url(message: Received) -> str:
    (url,) = re.findall(r"Confirm: (\S+)", message.part("plain"))
    return url


async def test_a_visitors_request_waits_and_its_address_gets_a_confirmation_email(
    gql: GraphQLClient, collecting: None, dispatcher: Dispatcher, mailbox: Mailbox
):
    request = await sign_up(gql, "ann@example.com")

    sent = await dispatcher.send_confirmations()

    assert request["confirmed"] is False
    assert sent == 1
    (message,) = mailbox.received
    assert message.recipients == ["ann@example.com"]
    assert message.message["Subject"] == "Please confirm your email address"
    assert message.message_id == f"<confirm.{request['contactId']}.1@shop.example>"
    assert "- Blue shoe" in message.part("plain")
    assert confirm_url(message).startswith(f"{BASE}/confirm/")
    assert f'href="{confirm_url(message)}"' in message.part("html")


async def test_unconfirmed_requests_are_never_notified(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    app: Starlette,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
):
    await sign_up(gql, "ann@example.com")

    queued = await report(gql, admin_key)
    await deliver_all(dispatcher, app)

    assert queued == 0
    assert mailbox.received == []


async def test_get_changes_nothing_and_post_confirms_then_the_report_notifies(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    app: Starlette,
    http: httpx.AsyncClient,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
):
    # given
    request = await sign_up(gql, "ann@example.com")
    await dispatcher.send_confirmations()
    url = confirm_url(mailbox.received[0])
    # when: a scanner fetches the link
    shown = await http.get(url)
    # then
    assert shown.status_code == 200
    assert '<form method="post">' in shown.text
    assert await is_confirmed(gql, admin_key, request) is False
    # when: the shopper presses the button
    posted = await http.post(url, data={"confirm": "yes"})
    # then
    assert (posted.status_code, "Confirmed" in posted.text) == (200, True)
    assert await is_confirmed(gql, admin_key, request) is True
    assert await report(gql, admin_key) == 1
    await deliver_all(dispatcher, app)
    assert [m.message["Subject"] for m in mailbox.received][1:] == [
        "Blue shoe is back in stock"
    ]


async def test_keyed_creates_need_no_confirmation(
    gql: GraphQLClient, admin_key: str, collecting: None, dispatcher: Dispatcher
):
    request = await sign_up(gql, "ann@example.com", key=admin_key)

    assert request["confirmed"] is True
    assert await dispatcher.send_confirmations() == 0


async def test_sign_ups_before_the_email_goes_out_share_one_email(
    gql: GraphQLClient, collecting: None, dispatcher: Dispatcher, mailbox: Mailbox
):
    await sign_up(gql, "ann@example.com", "shoe-1")
    await sign_up(gql, "ann@example.com", "shoe-2")
    await sign_up(gql, "ann@example.com", "shoe-1")

    assert await dispatcher.send_confirmations() == 1
    assert mailbox.received[0].part("plain").count("- Blue shoe") == 2


async def test_another_email_is_sent_only_after_the_resend_throttle(
    gql: GraphQLClient,
    collecting: None,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
    clock: ManualClock,
):
    await sign_up(gql, "ann@example.com", "shoe-1")
    await dispatcher.send_confirmations()

    clock.advance(seconds=9 * 60)
    await sign_up(gql, "ann@example.com", "shoe-2")
    throttled = await dispatcher.send_confirmations()
    clock.advance(seconds=60)
    await sign_up(gql, "ann@example.com", "shoe-3")
    resent = await dispatcher.send_confirmations()

    assert (throttled, resent) == (0, 1)
    rounds = [re.findall(r"\.(\d+)@", m.message_id) for m in mailbox.received]
    assert rounds == [["1"], ["2"]]
    assert mailbox.received[1].part("plain").count("- Blue shoe") == 3


async def test_a_link_confirms_only_requests_made_before_it_was_sent(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    http: httpx.AsyncClient,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
    clock: ManualClock,
):
    before = await sign_up(gql, "ann@example.com", "shoe-1")
    await dispatcher.send_confirmations()
    clock.advance(seconds=60)
    after = await sign_up(gql, "ann@example.com", "shoe-2")

    await http.post(confirm_url(mailbox.received[0]))

    assert await is_confirmed(gql, admin_key, before) is True
    assert await is_confirmed(gql, admin_key, after) is False


async def test_an_expired_link_confirms_nothing(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    http: httpx.AsyncClient,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
    clock: ManualClock,
):
    request = await sign_up(gql, "ann@example.com")
    await dispatcher.send_confirmations()
    url = confirm_url(mailbox.received[0])

    clock.advance(seconds=48 * HOUR + 1)
    shown = await http.get(url)
    posted = await http.post(url)

    assert (shown.status_code, posted.status_code) == (400, 400)
    assert "expired" in posted.text
    assert await is_confirmed(gql, admin_key, request) is False


async def test_tampered_links_and_other_purposes_tokens_are_refused(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    app: Starlette,
    http: httpx.AsyncClient,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
):
    request = await sign_up(gql, "ann@example.com")
    await dispatcher.send_confirmations()
    token = confirm_url(mailbox.received[0]).rsplit("/", 1)[1]
    unsubscribe = app.state.links.unsubscribe_url(uuid.UUID(request["contactId"]))

    answers = [
        await http.post(f"{BASE}/confirm/{forged}")
        for forged in (
            token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
            token.replace(".", "0.", 1),
            unsubscribe.rsplit("/", 1)[1],
        )
    ]

    assert [answer.status_code for answer in answers] == [400, 400, 400]
    assert await is_confirmed(gql, admin_key, request) is False


async def test_unconfirmed_requests_are_purged_after_their_retention(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    dispatcher: Dispatcher,
    clock: ManualClock,
):
    # given: an unconfirmed request, its email sent, and a keyed (confirmed) one
    await sign_up(gql, "ann@example.com")
    kept = await sign_up(gql, "bob@example.com", key=admin_key)
    await dispatcher.send_confirmations()
    # when
    clock.advance(seconds=7 * 24 * HOUR - 1)
    early = await dispatcher.purge()
    clock.advance(seconds=2)
    purged = await dispatcher.purge()
    # then
    assert (early.unconfirmed_requests, purged.unconfirmed_requests) == (0, 1)
    exported = await gql(EXPORT, {"email": "ann@example.com"}, key=admin_key)
    assert exported.data["exportBackInStockDataByEmail"]["requests"] == []
    assert exported.data["exportBackInStockDataByEmail"]["confirmationEmail"] is None
    assert await is_confirmed(gql, admin_key, kept) is True


async def test_export_shows_the_confirmation_state(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    dispatcher: Dispatcher,
    clock: ManualClock,
):
    await sign_up(gql, "ann@example.com")
    await dispatcher.send_confirmations()

    result = await gql(EXPORT, {"email": "ann@example.com"}, key=admin_key)

    document = result.data["exportBackInStockDataByEmail"]
    assert document["requests"][0]["confirmed"] is False
    state = document["confirmationEmail"]
    assert (state["pending"], state["round"], state["lastError"]) == (False, 1, None)
    assert state["sentDate"] is not None


async def test_a_confirmation_claimed_by_a_dispatcher_that_died_is_sent_later(
    gql: GraphQLClient,
    collecting: None,
    app: Starlette,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
):
    # given: a dispatcher claimed the email, then died (its lease runs out at once)
    request = await sign_up(gql, "ann@example.com")
    now = utc_now()
    (died,) = await app.state.store.write(
        lambda tx: confirmations.claim(tx, owner="died", now=now, lease_seconds=0)
    )
    # when
    sent = await dispatcher.send_confirmations()
    # then: sent once, as the message the dead dispatcher would have sent
    assert (died.round, sent) == (1, 1)
    assert [m.message_id for m in mailbox.received] == [
        f"<confirm.{request['contactId']}.1@{MAIL_FROM.split('@')[1][:-1]}>"
    ]


async def test_without_confirmation_a_visitors_request_is_confirmed_at_once(
    settings: Settings, clock: ManualClock
):
    off = settings.model_copy(update={"require_email_confirmation": False})
    application = create_app(off, clock=clock)
    async with application.router.lifespan_context(application):
        key = await mint_key(application)
        async with asgi_client(application) as http:
            gql = GraphQLClient(http)
            await start_collecting(gql, key)
            request = await sign_up(gql, "ann@example.com")

    assert request["confirmed"] is True
    assert Settings(_env_file=None).require_email_confirmation is False


async def test_requests_are_filtered_by_confirmed(
    gql: GraphQLClient, admin_key: str, collecting: None
):
    waiting = await sign_up(gql, "ann@example.com")
    confirmed = await sign_up(gql, "bob@example.com", key=admin_key)

    found = {
        value: await gql(
            QUERY_REQUESTS, {"filter": {"confirmed": {"eq": value}}}, key=admin_key
        )
        for value in (True, False)
    }

    assert [n["id"] for n in found[False].data[LIST]["nodes"]] == [waiting["id"]]
    assert [n["id"] for n in found[True].data[LIST]["nodes"]] == [confirmed["id"]]
