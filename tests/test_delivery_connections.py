"""Connecting to the SMTP server: outages, credentials from the URL, STARTTLS and TLS."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from app.notify.dispatcher import Dispatcher
from app.notify.transports import default_tls_context
from tests.delivery import (
    create_requests,
    deliver_all,
    delivery_settings,
    get,
    report,
)
from tests.mailbox import Mailbox

# The test server takes AUTH without TLS on loopback; aiosmtpd warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH:UserWarning")


@pytest.fixture
def settings(settings: Settings, mailbox: Mailbox) -> Settings:
    return delivery_settings(settings, mailbox)


async def test_smtp_down_then_up_delivers_everything_once(
    gql, admin_key, collecting, app, settings, mailbox
):
    # given: the server is down during the first attempt
    dispatcher = Dispatcher(
        app.state.store, settings.model_copy(update={"delivery_max_attempts": 10})
    )
    ids = await create_requests(gql, 8)
    mailbox.stop()
    await report(gql, admin_key)
    stats = await dispatcher.deliver_batch()
    assert stats is not None and stats.failed == 8 and stats.sent == 0
    waiting = await get(gql, admin_key, ids[0])
    assert waiting["status"] == "PROCESSING"
    assert waiting["deliveryAttempts"] == 1
    assert "cannot connect" in waiting["lastDeliveryError"]

    # when: it comes back
    mailbox.start()
    await deliver_all(dispatcher, app)

    # then
    assert mailbox.recipients() == sorted(f"shopper{i}@example.com" for i in range(8))
    for request_id in ids:
        request = await get(gql, admin_key, request_id)
        assert request["status"] == "NOTIFICATION_SENT"
        assert request["deliveryAttempts"] >= 2


async def test_smtp_credentials_come_from_the_url(
    gql, admin_key, collecting, app, settings
):
    server = Mailbox(credentials=("shop", "s3cret/+"))
    server.start()
    try:
        url = f"smtp://shop:s3cret%2F%2B@127.0.0.1:{server.port}"
        dispatcher = Dispatcher(
            app.state.store, settings.model_copy(update={"mail_url": url})
        )
        await create_requests(gql, 1)
        await report(gql, admin_key)

        await deliver_all(dispatcher, app)
    finally:
        server.stop()

    assert server.recipients() == ["shopper0@example.com"]


async def test_wrong_smtp_credentials_are_recorded_as_the_error(
    gql, admin_key, collecting, app, settings
):
    server = Mailbox(credentials=("shop", "right"))
    server.start()
    try:
        url = f"smtp://shop:wrong@127.0.0.1:{server.port}"
        dispatcher = Dispatcher(
            app.state.store, settings.model_copy(update={"mail_url": url})
        )
        [request_id] = await create_requests(gql, 1)
        await report(gql, admin_key)

        await deliver_all(dispatcher, app)
    finally:
        server.stop()

    request = await get(gql, admin_key, request_id)
    assert request["status"] == "FAILED"
    assert "535" in request["lastDeliveryError"]
    assert server.received == []


@pytest.fixture
def certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1, trusted by this test's TLS clients
    (as SSL_CERT_FILE, read when a process first makes its TLS context)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    default_tls_context.cache_clear()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    yield context
    default_tls_context.cache_clear()


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "smtps"])
async def test_tls_is_used_when_offered_or_asked_for(
    gql, admin_key, collecting, app, settings, certificate, implicit_tls
):
    # given: a server that takes credentials only over TLS
    server = Mailbox(
        credentials=("shop", "pw"), tls=certificate, implicit_tls=implicit_tls
    )
    server.start()
    try:
        url = server.url.replace("://", "://shop:pw@")
        dispatcher = Dispatcher(
            app.state.store, settings.model_copy(update={"mail_url": url})
        )
        [request_id] = await create_requests(gql, 1)
        await report(gql, admin_key)

        # when
        await deliver_all(dispatcher, app)
    finally:
        server.stop()

    # then
    assert server.recipients() == ["shopper0@example.com"]
    assert (await get(gql, admin_key, request_id))["status"] == "NOTIFICATION_SENT"
