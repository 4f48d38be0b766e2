"""Privacy: export and erase everything stored about an address (API and CLI), and
retention (RETENTION_DAYS)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest
from starlette.applications import Starlette

from app.config import Settings
from app.logmask import MaskingFormatter
from app.notify.dispatcher import Dispatcher
from app.permissions import Permission
from tests.cli import CliResult, run_cli
from tests.conftest import GraphQLClient, ManualClock, mint_key
from tests.delivery import deliver_all, delivery_settings, queued, report
from tests.documents import MARK_AS_SENT, create, reference
from tests.mailbox import Mailbox
from tests.signup import MIDNIGHT, all_emails

ERASE = "mutation Erase($email: String!) { eraseBackInStockDataByEmail(email: $email) }"
EXPORT = "query Export($email: String!) { exportBackInStockDataByEmail(email: $email) }"
DAY = 86400


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MIDNIGHT)


@pytest.fixture
def settings(settings: Settings, mailbox: Mailbox) -> Settings:
    return delivery_settings(settings, mailbox, rate_limit_per_email="5/hour")


@pytest.fixture
def dispatcher(app: Starlette, settings: Settings, clock: ManualClock) -> Dispatcher:
    return Dispatcher(app.state.store, settings, clock=clock)


async def export(gql: GraphQLClient, key: str, email: str) -> dict[str, Any]:
    result = await gql(EXPORT, {"email": email}, key=key)
    assert result.errors == [], result.errors
    return result.data["exportBackInStockDataByEmail"]


async def test_erase_removes_exactly_that_addresses_requests(
    gql: GraphQLClient, admin_key: str, collecting: None
):
    # given
    await create(gql, email="ann@example.com", item_id="shoe-1")
    await create(gql, email="ann@example.com", item_id="shoe-2")
    await create(gql, email="bob@example.com", item_id="shoe-1")
    await create(gql, email="annie@example.com", item_id="shoe-1")
    # when
    result = await gql(ERASE, {"email": " ANN@example.com "}, key=admin_key)
    # then
    assert result.errors == []
    assert result.data == {"eraseBackInStockDataByEmail": 2}
    assert await all_emails(gql, admin_key) == ["annie@example.com", "bob@example.com"]


async def test_erase_drops_the_addresses_queued_emails(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    app: Starlette,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
):
    await create(gql, email="ann@example.com")
    await create(gql, email="bob@example.com")
    assert await report(gql, admin_key) == 2

    await gql(ERASE, {"email": "ann@example.com"}, key=admin_key)
    await deliver_all(dispatcher, app)

    assert await queued(app) == 0
    assert [r.recipients for r in mailbox.received] == [["bob@example.com"]]


@pytest.mark.parametrize("document", [ERASE, EXPORT])
async def test_visitors_may_neither_erase_nor_export(
    gql: GraphQLClient, admin_key: str, collecting: None, document: str
):
    await create(gql, email="ann@example.com")

    result = await gql(document, {"email": "ann@example.com"})

    assert result.codes == ["FORBIDDEN"]
    assert result.data is None
    assert await all_emails(gql, admin_key) == ["ann@example.com"]


async def test_erase_needs_the_modify_permission(gql: GraphQLClient, app: Starlette):
    reader = await mint_key(app, Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS)

    erased = await gql(ERASE, {"email": "ann@example.com"}, key=reader)
    exported = await gql(EXPORT, {"email": "ann@example.com"}, key=reader)

    assert erased.codes == ["FORBIDDEN"]
    assert exported.errors == []


@pytest.mark.parametrize("email", ["", "   ", "a" * 250 + "@x.com"])
async def test_an_address_that_cannot_be_stored_is_an_invalid_argument(
    gql: GraphQLClient, admin_key: str, email: str
):
    for document in (ERASE, EXPORT):
        result = await gql(document, {"email": email}, key=admin_key)
        assert result.codes == ["INVALID_ARGUMENT"]
        assert result.violations == ["email"]


async def test_export_holds_requests_delivery_state_and_counters(
    gql: GraphQLClient, admin_key: str, collecting: None
):
    # given: a visitor's request (counted), queued by a report
    created = await create(gql, email="ann@example.com")
    await create(gql, email="bob@example.com")
    await report(gql, admin_key)
    # when
    document = await export(gql, admin_key, "Ann@Example.com")
    # then
    assert document["email"] == "ann@example.com"
    assert document["contactId"] == created["contactId"]
    (request,) = document["requests"]
    assert request["id"] == created["id"]
    assert request["status"] == "PROCESSING"
    assert request["confirmed"] is True
    assert request["catalogReference"]["catalogItemId"] == "shoe-1"
    assert request["queuedEmail"]["round"] == 1
    assert request["queuedEmail"]["attempts"] == 0
    (counter,) = document["rateLimitCounters"]
    assert (counter["windowSeconds"], counter["hits"]) == (3600, 1)
    assert document["confirmationEmail"] is None


async def test_export_of_an_unknown_address_is_empty(
    gql: GraphQLClient, admin_key: str
):
    document = await export(gql, admin_key, "nobody@example.com")

    assert document["requests"] == []
    assert document["rateLimitCounters"] == []
    assert document["confirmationEmail"] is None


async def test_erase_forgets_the_addresses_counters(
    gql: GraphQLClient, admin_key: str, collecting: None
):
    await create(gql, email="ann@example.com")

    await gql(ERASE, {"email": "ann@example.com"}, key=admin_key)

    assert (await export(gql, admin_key, "ann@example.com"))["rateLimitCounters"] == []


def run_on(settings: Settings, *args: str) -> CliResult:
    return run_cli(*args, env={"DATABASE_URL": settings.database_url})


async def test_cli_exports_and_erases_an_address(
    gql: GraphQLClient, admin_key: str, collecting: None, settings: Settings
):
    created = await create(gql, email="ann@example.com")
    await create(gql, email="bob@example.com")

    exported = run_on(settings, "export-email", "ann@example.com")
    erased = run_on(settings, "erase-email", "ann@example.com")

    assert exported.returncode == 0, exported.stderr
    assert [r["id"] for r in json.loads(exported.stdout)["requests"]] == [created["id"]]
    assert erased.returncode == 0, erased.stderr
    assert "erased 1 request(s)" in erased.stdout
    assert await all_emails(gql, admin_key) == ["bob@example.com"]


async def test_cli_refuses_an_empty_address(settings: Settings):
    refused = run_on(settings, "erase-email", " ")

    assert refused.returncode != 0
    assert "email must be 1 to 254 characters long" in refused.stderr


async def test_retention_purges_sent_and_failed_requests_past_it(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    app: Starlette,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
    clock: ManualClock,
):
    # given: 31 days ago one request was sent, one failed, one was marked sent by hand
    # and one still waits; 29 days ago one was marked sent
    dispatcher.settings = dispatcher.settings.model_copy(update={"retention_days": 30})
    await create(gql, email="sent@example.com", item_id="shoe-1")
    await report(gql, admin_key, catalogReference=reference("shoe-1"))
    await deliver_all(dispatcher, app)
    await create(gql, email="failed@example.com", item_id="shoe-2")
    mailbox.refusal = "550 5.1.1 no such user"
    await report(gql, admin_key, catalogReference=reference("shoe-2"))
    await deliver_all(dispatcher, app)
    marked = await create(gql, email="marked@example.com", item_id="shoe-3")
    await gql(MARK_AS_SENT, {"id": marked["id"]}, key=admin_key)
    await create(gql, email="waits@example.com", item_id="shoe-4")
    clock.advance(seconds=2 * DAY)
    recent = await create(gql, email="recent@example.com", item_id="shoe-5")
    await gql(MARK_AS_SENT, {"id": recent["id"]}, key=admin_key)
    # when
    clock.advance(seconds=29 * DAY + 1)
    purged = await dispatcher.purge()
    # then
    assert purged.settled_requests == 3
    assert await all_emails(gql, admin_key) == [
        "recent@example.com",
        "waits@example.com",
    ]


async def test_without_retention_days_nothing_is_purged(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    dispatcher: Dispatcher,
    clock: ManualClock,
):
    marked = await create(gql, email="marked@example.com")
    await gql(MARK_AS_SENT, {"id": marked["id"]}, key=admin_key)

    clock.advance(seconds=3650 * DAY)
    purged = await dispatcher.purge()

    assert purged.settled_requests == 0
    assert await all_emails(gql, admin_key) == ["marked@example.com"]


async def test_counters_of_past_windows_are_purged(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    dispatcher: Dispatcher,
    clock: ManualClock,
):
    await create(gql, email="ann@example.com")

    clock.advance(seconds=3600)
    kept = await dispatcher.purge()
    clock.advance(seconds=3600 + 1)
    purged = await dispatcher.purge()

    assert (kept.counters, purged.counters) == (0, 1)
    assert (await export(gql, admin_key, "ann@example.com"))["rateLimitCounters"] == []


async def test_a_refusal_quoting_the_address_is_logged_masked(
    gql: GraphQLClient,
    admin_key: str,
    collecting: None,
    app: Starlette,
    dispatcher: Dispatcher,
    mailbox: Mailbox,
    caplog: pytest.LogCaptureFixture,
):
    await create(gql, email="ann.smith@example.com")
    await report(gql, admin_key)
    mailbox.refusal = "550 5.1.1 <ann.smith@example.com>: no such user"

    with caplog.at_level(logging.INFO, logger="app.notify"):
        await deliver_all(dispatcher, app)

    assert "a***@example.com" in caplog.text
    assert "ann.smith@example.com" not in caplog.text


def test_the_log_format_masks_addresses_in_messages_and_tracebacks():
    formatter = MaskingFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError("duplicate key (email)=(bob@shop.example.co.uk)")
    except ValueError:
        record = logging.LogRecord(
            "app",
            logging.ERROR,
            __file__,
            1,
            "failed for %s",
            ("ann@example.com",),
            sys.exc_info(),
        )

    text = formatter.format(record)

    assert "failed for a***@example.com" in text
    assert "(email)=(b***@shop.example.co.uk)" in text
    assert "ann@" not in text
    assert "bob@" not in text
