"""Mail transports picked by `MAIL_URL`: SMTP(S) through aiosmtplib, or `.eml` files."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import ssl
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from app.config import ConfigurationError
from app.notify.messages import OutgoingMessage

MAX_ERROR_LENGTH = 1000

log = logging.getLogger("app.notify")


class MessageRefused(Exception):
    """This message was not delivered; the transport can go on with the next one.

    `permanent` when the server refused it with a 5xx reply: trying again cannot help.
    """

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class TransportUnavailable(MessageRefused):
    """The mail server cannot be reached: the messages after this one fail the same way."""


class DeliveryUnconfirmed(Exception):
    """The whole message was handed over but no final reply came: it may be delivered."""


# Called once a message's last byte is handed over (its outcome is then unconfirmed until
# the final reply).
HandedOver = Callable[[], None]


class Transport(Protocol):
    async def send(
        self, message: OutgoingMessage, on_handed_over: HandedOver | None = None
    ) -> None:
        """Deliver one message or raise `MessageRefused` or `DeliveryUnconfirmed`."""

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


def _is_permanent(code: int) -> bool:
    """RFC 5321 4.2.1: 5yz is a permanent negative reply, 4yz a transient one."""
    return 500 <= code <= 599


def _data_block(data: bytes) -> bytes:
    """The message as DATA carries it: CRLF lines, dot-stuffed, ended by CRLF.CRLF."""
    data = _LINE_ENDINGS.sub(b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return _LEADING_DOT.sub(b"..", data) + b".\r\n"


_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")


@functools.cache
def default_tls_context() -> ssl.SSLContext:
    """The system's trusted CAs, loaded once per process when TLS is first used (loading
    them takes ~20 ms; a context is safe to share between connections)."""
    return ssl.create_default_context()


class SmtpTransport:
    """SMTP with one connection kept open across the messages of a batch.

    `smtp://` upgrades with STARTTLS when the server offers it; `smtps://` speaks TLS from
    the start. Credentials come from the URL's userinfo. Connecting, and each message up
    to its last byte, are bounded by `timeout` seconds; the final reply to the end of
    DATA by `final_reply_timeout` (RFC 5321 4.5.3.2.6): a message without it may have been
    delivered, which `DeliveryUnconfirmed` says, so that it is not sent blindly again.
    """

    def __init__(self, url: str, timeout: float, final_reply_timeout: float) -> None:
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
        self.final_reply_timeout = final_reply_timeout
        self._client: aiosmtplib.SMTP | None = None

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
            tls_context=default_tls_context(),
            timeout=self.timeout,
            local_hostname="localhost",
        )
        try:
            async with asyncio.timeout(self.timeout):
                await client.connect()
                if client.is_ehlo_or_helo_needed:
                    await client.ehlo()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            client.close()
            raise TransportUnavailable(
                f"cannot connect to {self.describe()}: {_smtp_error(error)}"
            ) from error
        return client

    async def send(
        self, message: OutgoingMessage, on_handed_over: HandedOver | None = None
    ) -> None:
        if self._client is None or not self._client.is_connected:
            self._client = await self._connect()
        client = self._client
        try:
            async with asyncio.timeout(self.timeout):
                await self._hand_over(client, message)
        except aiosmtplib.SMTPResponseException as error:
            await self._reset_after(error)
            raise MessageRefused(
                _smtp_error(error), permanent=_is_permanent(error.code)
            ) from error
        except (aiosmtplib.SMTPNotSupported, ValueError) as error:
            # An address this server cannot take (SMTPUTF8) or nobody can: sending it
            # again cannot help. Nothing was sent, the connection is usable.
            raise MessageRefused(_smtp_error(error), permanent=True) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            # The connection is in an unknown state: the next message reconnects.
            await self.close()
            raise MessageRefused(_smtp_error(error)) from error
        if on_handed_over is not None:
            on_handed_over()
        code, reply = await self._final_reply(client)
        if not 200 <= code <= 299:
            raise MessageRefused(
                _clip(f"SMTP {code} {reply}"), permanent=_is_permanent(code)
            )

    async def _hand_over(
        self, client: aiosmtplib.SMTP, message: OutgoingMessage
    ) -> None:
        """MAIL, RCPT and DATA, then every byte of the message; not its final reply.

        aiosmtplib's `data()` waits for the DATA command's 354 and for the final reply
        with one timeout and cannot say which one ran out; RFC 5321 sets them apart, so
        the message goes through the connection's protocol object.
        """
        utf8 = not (message.sender + message.recipient).isascii()
        encoding = "utf-8" if utf8 else "ascii"
        if utf8 and not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by the server")
        block = _data_block(message.data)
        options = ["SMTPUTF8"] if utf8 else []
        if client.supports_extension("size"):
            options.insert(0, f"SIZE={len(block)}")
        await client.mail(message.sender, options=options, encoding=encoding)
        await client.rcpt(message.recipient, encoding=encoding)
        started = await client.execute_command(b"DATA")
        if started.code != aiosmtplib.SMTPStatus.start_input:
            raise aiosmtplib.SMTPDataError(started.code, started.message)
        if client.protocol is None:
            raise aiosmtplib.SMTPServerDisconnected(
                "connection lost before the message"
            )
        client.protocol.write(block)

    async def _final_reply(self, client: aiosmtplib.SMTP) -> tuple[int, str]:
        """The reply to the end of DATA; `DeliveryUnconfirmed` when none comes."""
        protocol = client.protocol
        try:
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("connection lost")
            reply = await protocol.read_response(timeout=self.final_reply_timeout)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            client.close()
            self._client = None
            if isinstance(error, TimeoutError):
                doubt = f"no reply to the end of the message within {self.final_reply_timeout:g} s"
            else:
                doubt = f"the connection ended before the reply to the end of the message ({_smtp_error(error)})"
            raise DeliveryUnconfirmed(
                _clip(
                    f"unconfirmed: {doubt}; it may have been delivered, so it is not sent again"
                )
            ) from error
        except BaseException:
            # Cancelled while waiting (a stopping dispatcher): the reply would be read as
            # the answer to the next command.
            client.close()
            self._client = None
            raise
        return reply.code, reply.message

    async def _reset_after(self, error: aiosmtplib.SMTPResponseException) -> None:
        """After a refusal, end the mail transaction so the connection can go on."""
        # 421 means the server is closing the connection.
        if error.code == 421 or not self._client or not self._client.is_connected:
            await self.close()
            return
        try:
            async with asyncio.timeout(min(self.timeout, 5)):
                await self._client.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            await self.close()

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

    async def send(
        self, message: OutgoingMessage, on_handed_over: HandedOver | None = None
    ) -> None:
        # The file appears whole or not at all: there is no doubtful outcome to announce.
        try:
            await asyncio.to_thread(self._write, message)
        except OSError as error:
            raise TransportUnavailable(
                _clip(f"cannot write {message.name}.eml: {error}")
            ) from error

    async def close(self) -> None:
        return None


def transport_from_url(
    url: str, *, timeout: float, final_reply_timeout: float
) -> SmtpTransport | FileTransport:
    """The transport `MAIL_URL` names; a URL it cannot use is a configuration error."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("smtp", "smtps"):
        return SmtpTransport(url, timeout, final_reply_timeout)
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
