"""Mail transports picked by `MAIL_URL`: SMTP(S) through aiosmtplib, or `.eml` files."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import uuid
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from app.config import ConfigurationError
from app.notify.messages import OutgoingMessage

MAX_ERROR_LENGTH = 1000

log = logging.getLogger("app.notify")


class MessageRefused(Exception):
    """This message was not delivered; the transport can go on with the next one."""


class TransportUnavailable(MessageRefused):
    """The mail server cannot be reached: the messages after this one fail the same way."""


class Transport(Protocol):
    async def send(self, message: OutgoingMessage) -> None:
        """Deliver one message or raise `MessageRefused`."""

    async def close(self) -> None:
        """Let go of any connection (the next send opens a new one)."""

    def describe(self) -> str:
        """Where mail goes, without credentials (for logs)."""


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


def _smtp_error(error: BaseException) -> str:
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return _clip("; ".join(_smtp_error(refusal) for refusal in error.recipients))
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return _clip(f"SMTP {error.code} {error.message}")
    if isinstance(error, TimeoutError):
        return _clip(f"timed out: {error}" if str(error) else "timed out")
    return _clip(f"{type(error).__name__}: {error}")


class SmtpTransport:
    """SMTP with one connection kept open across the messages of a batch.

    `smtp://` upgrades with STARTTLS when the server offers it; `smtps://` speaks TLS from
    the start. Credentials come from the URL's userinfo. Connecting and each send are
    bounded by `timeout` seconds.
    """

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.use_tls = parts.scheme == "smtps"
        if not parts.hostname:
            raise ConfigurationError(f"MAIL_URL {self._safe(url)!r} names no host")
        try:
            port = parts.port
        except ValueError as error:
            raise ConfigurationError(f"MAIL_URL has a bad port: {error}") from None
        self.hostname = parts.hostname
        self.port = port or (465 if self.use_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self._client: aiosmtplib.SMTP | None = None
        self._tls_context = ssl.create_default_context()

    @staticmethod
    def _safe(url: str) -> str:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return f"{parts.scheme}://{netloc}"

    def describe(self) -> str:
        return f"{'smtps' if self.use_tls else 'smtp'}://{self.hostname}:{self.port}"

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=None if not self.use_tls else False,
            tls_context=self._tls_context,
            timeout=self.timeout,
            local_hostname="localhost",
        )
        try:
            async with asyncio.timeout(self.timeout):
                await client.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            client.close()
            raise TransportUnavailable(
                f"cannot connect to {self.describe()}: {_smtp_error(error)}"
            ) from error
        return client

    async def send(self, message: OutgoingMessage) -> None:
        if self._client is None or not self._client.is_connected:
            self._client = await self._connect()
        client = self._client
        options = [] if (message.sender + message.recipient).isascii() else ["SMTPUTF8"]
        try:
            async with asyncio.timeout(self.timeout):
                await client.sendmail(
                    message.sender,
                    [message.recipient],
                    message.data,
                    mail_options=options,
                )
        except (
            aiosmtplib.SMTPRecipientsRefused,
            aiosmtplib.SMTPResponseException,
        ) as error:
            # 421 means the server is closing the connection; anything else leaves it usable.
            if (
                isinstance(error, aiosmtplib.SMTPResponseException)
                and error.code == 421
            ):
                await self.close()
            raise MessageRefused(_smtp_error(error)) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as error:
            # The connection is in an unknown state: the next message reconnects.
            await self.close()
            raise MessageRefused(_smtp_error(error)) from error

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if client.is_connected:
            try:
                async with asyncio.timeout(min(self.timeout, 5)):
                    await client.quit()
            except Exception as error:  # noqa: BLE001 - closing anyway
                log.debug("QUIT failed, closing anyway: %s", error)
        client.close()


class FileTransport:
    """One `.eml` file per message in a directory, written atomically.

    The file is named after the notification and its round, so a resend after a crash
    replaces the same file instead of adding a second one.
    """

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def describe(self) -> str:
        return f"file://{self.directory}"

    def prepare(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigurationError(
                f"MAIL_URL directory {str(self.directory)!r} cannot be created: {error}"
            ) from error

    def _write(self, message: OutgoingMessage) -> None:
        target = self.directory / f"{message.name}.eml"
        partial = self.directory / f".{message.name}.{uuid.uuid4().hex}.tmp"
        try:
            with open(partial, "wb") as file:
                file.write(message.data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    async def send(self, message: OutgoingMessage) -> None:
        try:
            await asyncio.to_thread(self._write, message)
        except OSError as error:
            raise TransportUnavailable(
                _clip(f"cannot write {message.name}.eml: {error}")
            )

    async def close(self) -> None:
        return None


def transport_from_url(url: str, *, timeout: float) -> SmtpTransport | FileTransport:
    """The transport `MAIL_URL` names; a URL it cannot use is a configuration error."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("smtp", "smtps"):
        return SmtpTransport(url, timeout)
    if scheme == "file":
        parts = urlsplit(url)
        # file://./outbox and file://outbox are relative; file:///srv/outbox is absolute.
        directory = unquote(parts.netloc + parts.path)
        if not directory:
            raise ConfigurationError("MAIL_URL file:// names no directory")
        transport = FileTransport(directory)
        transport.prepare()
        return transport
    raise ConfigurationError(
        f"MAIL_URL scheme {scheme!r} is not supported; use smtp://, smtps:// or file://DIR"
    )
