"""Dispatchers as processes and inside `serve`: crashes lose nothing, a report wakes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.config import Settings
from app.main import create_app
from app.models import Notification, NotificationRequest, RequestStatus
from tests.conftest import GraphQLClient, mint_key
from tests.delivery import create_requests, eventually, report
from tests.documents import START_COLLECTING
from tests.mailbox import Mailbox

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(settings: Settings, mailbox: Mailbox) -> Settings:
    return settings.model_copy(
        update={
            "mail_url": mailbox.url,
            "mail_timeout_seconds": 1.5,
            "delivery_lease_seconds": 4.0,
            "delivery_retry_base_seconds": 0.05,
            "delivery_poll_seconds": 0.1,
            "delivery_batch_size": 25,
        }
    )


def start_worker(
    settings: Settings, tmp_path: Path, name: str
) -> subprocess.Popen[bytes]:
    """`python -m app dispatch` with the test's settings, logging to a file."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DELIVERY_", "MAIL_", "DATABASE_"))
    }
    env.update(
        DATABASE_URL=settings.database_url,
        MAIL_URL=settings.mail_url,
        MAIL_FROM=settings.mail_from,
        MAIL_TIMEOUT_SECONDS=str(settings.mail_timeout_seconds),
        DELIVERY_LEASE_SECONDS=str(settings.delivery_lease_seconds),
        DELIVERY_RETRY_BASE_SECONDS=str(settings.delivery_retry_base_seconds),
        DELIVERY_POLL_SECONDS=str(settings.delivery_poll_seconds),
        DELIVERY_BATCH_SIZE=str(settings.delivery_batch_size),
        PYTHONPATH=str(ROOT),
    )
    with open(tmp_path / f"{name}.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "app", "dispatch"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def statuses(app: Starlette) -> dict[str, int]:
    rows = await app.state.store.rows(
        select(NotificationRequest.status, func.count()).group_by(
            NotificationRequest.status
        )
    )
    return dict(rows)


async def queued(app: Starlette) -> int:
    return await app.state.store.scalar(select(func.count()).select_from(Notification))


async def test_a_dispatcher_killed_mid_batch_loses_nothing(
    gql, admin_key, app, settings, mailbox, tmp_path
):
    # given: 60 waiting requests and a slow mail server, so a batch takes a while
    await gql(START_COLLECTING, {"appId": "stores"}, key=admin_key)
    await create_requests(gql, 60)
    mailbox.delay = 0.04
    assert await report(gql, admin_key) == 60

    # when: the first dispatcher is killed in the middle of its work
    first = start_worker(settings, tmp_path, "first")
    try:
        await eventually(lambda: len(mailbox.received) >= 10)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    sent_before_crash = len(mailbox.received)
    assert sent_before_crash < 60
    assert await queued(app) > 0

    # then: another one finishes the work after the claims expire
    second = start_worker(settings, tmp_path, "second")
    try:
        await eventually(lambda: all_sent(app, 60), limit=60)
    finally:
        second.send_signal(signal.SIGTERM)
        exit_code = second.wait(timeout=30)
    assert exit_code == 0
    assert await queued(app) == 0
    by_recipient: dict[str, set[str]] = defaultdict(set)
    for received in mailbox.received:
        by_recipient[received.recipients[0]].add(received.message_id)
    assert sorted(by_recipient) == sorted(f"shopper{i}@example.com" for i in range(60))
    # A resend after the crash is the same message, recognisable by its Message-ID.
    assert all(len(ids) == 1 for ids in by_recipient.values())


async def all_sent(app: Starlette, count: int) -> bool:
    return await statuses(app) == {RequestStatus.NOTIFICATION_SENT.value: count}


def test_a_worker_with_a_broken_template_exits_with_a_clear_message(settings, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "subject.txt").write_text("{{ item.name ")
    env = dict(
        os.environ,
        DATABASE_URL=settings.database_url,
        MAIL_TEMPLATE_DIR=str(templates),
        PYTHONPATH=str(ROOT),
    )

    finished = subprocess.run(
        [sys.executable, "-m", "app", "dispatch"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 2
    assert b"subject.txt line 1" in finished.stderr


@pytest.fixture
async def serving(settings: Settings) -> AsyncIterator[Starlette]:
    """The app with its own dispatcher, as `python -m app serve` runs it."""
    application = create_app(settings.model_copy(update={"dispatch_in_serve": True}))
    async with application.router.lifespan_context(application):
        yield application


async def test_the_dispatcher_inside_serve_sends_right_after_a_report(serving, mailbox):
    transport = httpx.ASGITransport(app=serving)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1"
    ) as http:
        gql = GraphQLClient(http)
        key = await mint_key(serving)
        await gql(START_COLLECTING, {"appId": "stores"}, key=key)
        await create_requests(gql, 3)

        await report(gql, key)

        await eventually(lambda: len(mailbox.received) == 3)
    assert mailbox.recipients() == [f"shopper{i}@example.com" for i in range(3)]
