"""One-click unsubscribe (RFC 8058): every notification carries List-Unsubscribe; its URL
shows a page on GET and unsubscribes on POST, after which the address gets nothing more."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from app.config import Settings
from app.notify.dispatcher import Dispatcher
from tests.conftest import GraphQLClient
from tests.delivery import (
    MAIL_FROM,
    deliver_all,
    delivery_settings,
    eventually,
    queued,
    report,
)
from tests.documents import create, reference, start_collecting
from tests.mailbox import Mailbox, Received
from tests.servers import running_server
from tests.signup import all_emails

BASE = "http://127.0.0.1"
ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def settings(settings: Settings, mailbox: Mailbox) -> Settings:
    return delivery_settings(settings, mailbox, public_base_url=BASE)


@pytest.fixture
def dispatcher(app: Starlette, settings: Settings) -> Dispatcher:
    return Dispatcher(app.state.store, settings)


def unsubscribe_url(message: Received) -> str:
    (url,) = re.findall(r"<(https?://[^>]+)>", message.message["List-Unsubscribe"])
    return url


async def notify(
    gql: GraphQLClient, key: str, app: Starlette, dispatcher: Dispatcher, item: str
) -> int:
    """Report `item` back in stock and deliver what that queued; how many it queued."""
    count = await report(gql, key, catalogReference=reference(item))
    await deliver_all(dispatcher, app)
    return count


@pytest.fixture
async def delivered(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    app: Starlette,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
) -> Received:
    """Ann was notified of shoe-1, and still waits for shoe-2; Bob waits for shoe-2."""
    await create(gql, email="ann@example.com", item_id="shoe-1")
    await create(gql, email="ann@example.com", item_id="shoe-2")
    await create(gql, email="bob@example.com", item_id="shoe-2")
    await notify(gql, admin_key, app, dispatcher, "shoe-1")
    (message,) = mailbox.received
    return message


async def test_every_notification_carries_one_click_unsubscribe(delivered: Received):
    url = unsubscribe_url(delivered)

    assert url.startswith(f"{BASE}/unsubscribe/")
    assert delivered.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"Stop these emails: {url}" in delivered.part("plain")
    assert f'<a href="{url}"' in delivered.part("html")
    # The link names the contact, never the address.
    assert "ann" not in url


async def test_get_changes_nothing_and_one_click_post_stops_every_email(
    delivered: Received,
    http: httpx.AsyncClient,
    gql: GraphQLClient,
    admin_key: str,
    app: Starlette,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
):
    url = unsubscribe_url(delivered)
    # when: a scanner fetches the link
    shown = await http.get(url)
    # then: a page with a button, and nothing changed
    assert shown.status_code == 200
    assert '<form method="post">' in shown.text
    assert 'name="List-Unsubscribe" value="One-Click"' in shown.text
    assert await all_emails(gql, admin_key) == [
        "ann@example.com",
        "ann@example.com",
        "bob@example.com",
    ]
    # when: the mail client posts the one click (no cookie, no key)
    posted = await http.post(
        url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK
    )
    # then: 200 (no redirect), Ann's waiting request is gone, her sent one stays
    assert (posted.status_code, posted.headers.get("location")) == (200, None)
    assert "Unsubscribed" in posted.text
    assert await all_emails(gql, admin_key) == ["ann@example.com", "bob@example.com"]
    # and: the next report emails only Bob
    assert await notify(gql, admin_key, app, dispatcher, "shoe-2") == 1
    assert [m.recipients for m in mailbox.received] == [
        ["ann@example.com"],
        ["bob@example.com"],
    ]


async def test_unsubscribing_drops_a_queued_email(
    delivered: Received,
    http: httpx.AsyncClient,
    gql: GraphQLClient,
    admin_key: str,
    app: Starlette,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
):
    assert await report(gql, admin_key, catalogReference=reference("shoe-2")) == 2

    posted = await http.post(unsubscribe_url(delivered))
    await deliver_all(dispatcher, app)

    assert posted.status_code == 200
    assert await queued(app) == 0
    assert [m.recipients for m in mailbox.received][1:] == [["bob@example.com"]]


async def test_an_empty_post_unsubscribes_too(
    delivered: Received, http: httpx.AsyncClient, gql: GraphQLClient, admin_key: str
):
    posted = await http.post(unsubscribe_url(delivered), content=b"")

    assert posted.status_code == 200
    assert await all_emails(gql, admin_key) == ["ann@example.com", "bob@example.com"]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_tampered_link_is_refused_and_changes_nothing(
    delivered: Received,
    http: httpx.AsyncClient,
    gql: GraphQLClient,
    admin_key: str,
    method: str,
):
    url = unsubscribe_url(delivered)
    token = url.rsplit("/", 1)[1]
    contact, signature = token.split(".")
    other_contact = ("0" if contact[0] != "0" else "1") + contact[1:]

    answers = [
        await http.request(method, f"{BASE}/unsubscribe/{forged}")
        for forged in (f"{other_contact}.{signature}", contact, "nonsense", token + "x")
    ]

    assert [answer.status_code for answer in answers] == [400] * 4
    assert "not valid" in answers[0].text
    assert len(await all_emails(gql, admin_key)) == 3


async def test_the_unsubscribe_page_is_never_cached_nor_leaks_its_link(
    delivered: Received, http: httpx.AsyncClient
):
    shown = await http.get(unsubscribe_url(delivered))

    assert shown.headers["Cache-Control"] == "no-store"
    assert shown.headers["Referrer-Policy"] == "no-referrer"
    assert shown.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "settings_update",
    [{"unsubscribe_mailto": "unsubscribe@shop.example"}],
)
async def test_a_configured_mailto_is_offered_too(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    app: Starlette,
    settings: Settings,
    mailbox: Mailbox,
    settings_update: dict[str, str],
):
    dispatcher = Dispatcher(
        app.state.store, settings.model_copy(update=settings_update)
    )
    await create(gql, email="ann@example.com")

    await notify(gql, admin_key, app, dispatcher, "shoe-1")

    header = mailbox.received[0].message["List-Unsubscribe"]
    assert re.fullmatch(
        rf"<{BASE}/unsubscribe/[^>]+>,\s*<mailto:unsubscribe@shop\.example\?subject=unsubscribe>",
        str(header),
    )


async def test_links_live_under_public_base_url(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    app: Starlette,
    settings: Settings,
    mailbox: Mailbox,
):
    base = "https://shop.example/back-in-stock"
    dispatcher = Dispatcher(
        app.state.store, settings.model_copy(update={"public_base_url": base})
    )
    await create(gql, email="ann@example.com")

    await notify(gql, admin_key, app, dispatcher, "shoe-1")

    assert unsubscribe_url(mailbox.received[0]).startswith(f"{base}/unsubscribe/")


async def test_templates_without_the_link_still_get_the_headers(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    app: Starlette,
    settings: Settings,
    mailbox: Mailbox,
    tmp_path: Path,
):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "body.txt").write_text("{{ item.name }} is back.\n")
    (templates / "body.html").write_text("<p>{{ item.name }} is back.</p>\n")
    dispatcher = Dispatcher(
        app.state.store,
        settings.model_copy(update={"mail_template_dir": str(templates)}),
    )
    await create(gql, email="ann@example.com")

    await notify(gql, admin_key, app, dispatcher, "shoe-1")

    (message,) = mailbox.received
    assert message.part("plain").strip() == "Blue shoe is back."
    assert unsubscribe_url(message).startswith(f"{BASE}/unsubscribe/")
    assert message.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_report_parameters_cannot_replace_the_unsubscribe_link(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    app: Starlette,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
):
    await create(gql, email="ann@example.com")
    await report(
        gql,
        admin_key,
        extraAutomationTemplateParameters={"unsubscribeUrl": "https://evil.example/"},
    )

    await deliver_all(dispatcher, app)

    (message,) = mailbox.received
    assert "evil.example" not in message.part("plain")
    assert f"Stop these emails: {unsubscribe_url(message)}" in message.part("plain")


async def test_a_served_email_links_back_to_its_server_by_default(
    database_url: str, tmp_path: Path, mailbox: Mailbox
):
    # given: `serve` with its own dispatcher, no PUBLIC_BASE_URL
    with running_server(
        database_url,
        tmp_path,
        MAIL_URL=mailbox.url,
        MAIL_FROM=MAIL_FROM,
        DISPATCH_IN_SERVE="true",
    ) as server:
        key = server.mint_key()
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            gql = GraphQLClient(http)
            await start_collecting(gql, key)
            await create(gql, email="ann@example.com", item_id="shoe-1")
            await create(gql, email="ann@example.com", item_id="shoe-2")
            await report(gql, key, catalogReference=reference("shoe-1"))
            await eventually(lambda: len(mailbox.received) == 1)
            url = unsubscribe_url(mailbox.received[0])
            # when
            shown = await http.get(url)
            posted = await http.post(url, content=b"List-Unsubscribe=One-Click")
            # then
            assert url.startswith(f"{server.base}/unsubscribe/")
            assert (shown.status_code, posted.status_code) == (200, 200)
            assert await report(gql, key, catalogReference=reference("shoe-2")) == 0
