"""The file:// transport: one .eml per message, written atomically, resends replace."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from sqlalchemy import update
from starlette.applications import Starlette

from app.config import Settings
from app.models import Notification
from app.notify.dispatcher import Dispatcher
from tests.delivery import LONG_AGO, create_requests, report
from tests.documents import start_collecting


async def test_each_message_is_one_eml_file_named_after_it(
    gql, admin_key, app: Starlette, settings: Settings, tmp_path: Path
):
    # given: the default settings of the tests write to file://<tmp>/outbox
    await start_collecting(gql, admin_key)
    await create_requests(gql, 3)
    await report(gql, admin_key)

    # when
    stats = await Dispatcher(app.state.store, settings).drain()

    # then
    outbox = tmp_path / "outbox"
    files = sorted(outbox.iterdir())
    assert stats.sent == 3
    assert [path.suffix for path in files] == [".eml"] * 3
    recipients = []
    for path in files:
        message = email.message_from_bytes(
            path.read_bytes(), policy=email.policy.default
        )
        request_id, round = path.stem.split(".")
        assert message["Message-ID"] == f"<{request_id}.{round}@localhost>"
        assert "Blue shoe" in message.get_body(preferencelist=("plain",)).get_content()
        assert "Blue shoe" in message.get_body(preferencelist=("html",)).get_content()
        recipients.append(str(message["To"]))
    assert sorted(recipients) == [f"shopper{i}@example.com" for i in range(3)]


async def test_a_resend_replaces_the_same_file(
    gql, admin_key, app: Starlette, settings: Settings, tmp_path: Path
):
    # given: a message written, but its claim expired before the outcome was recorded
    await start_collecting(gql, admin_key)
    await create_requests(gql, 1)
    await report(gql, admin_key)
    crashed = Dispatcher(app.state.store, settings)
    batch = await crashed.claim_batch()
    assert batch is not None
    await crashed.transports[0].send(crashed.compose(batch.notifications[0]))
    await app.state.store.write(
        lambda tx: tx.execute(update(Notification).values(available_at=LONG_AGO))
    )

    # when
    stats = await Dispatcher(app.state.store, settings).drain()

    # then
    assert stats.sent == 1
    assert len(list((tmp_path / "outbox").iterdir())) == 1
