"""Settings: every knob of the service, read from the environment (or a `.env` file)."""

from __future__ import annotations

import ipaddress
import re
from functools import cached_property
from typing import NamedTuple
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.permissions import DEFAULT_ANONYMOUS_PERMISSIONS, Permission

# Where links in emails point when PUBLIC_BASE_URL is unset and `serve` did not say.
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"


class ConfigurationError(ValueError):
    """A setting makes no sense; the server refuses to start with this message."""


def _split_names(raw: str | None) -> list[str]:
    return [name.strip() for name in (raw or "").split(",") if name.strip()]


class Rate(NamedTuple):
    """A rate limit: at most `limit` in any `seconds` (a sliding window)."""

    limit: int
    seconds: int


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(raw: str | None, name: str) -> Rate | None:
    """`"N/minute"` (or second, hour, day) as a Rate; empty or unset turns it off."""
    if raw is None or not raw.strip():
        return None
    match = _RATE.match(raw)
    if match is None or int(match.group(1)) < 1:
        raise ConfigurationError(
            f"{name} {raw!r} is not a rate such as '10/minute' or '5/hour' "
            "(N at least 1; empty turns the limit off)"
        )
    return Rate(int(match.group(1)), _UNIT_SECONDS[match.group(2).lower()])


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(raw: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR blocks (TRUSTED_PROXIES)."""
    networks = []
    for entry in _split_names(raw):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigurationError(
                f"TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR block"
            ) from None
    return tuple(networks)


_ASYNC_DRIVERS = {
    "postgres://": "postgresql+asyncpg://",
    "postgresql://": "postgresql+asyncpg://",
    "sqlite://": "sqlite+aiosqlite://",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./backinstock.db"
    # Pool, timeouts and retries for server databases (ignored by SQLite).
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=0)
    db_connect_retries: int = Field(default=5, ge=0)
    # Apply pending migrations when `serve` or `dispatch` starts.
    migrate_on_start: bool = True

    # Comma-separated permission names; unset means the Wix visitor defaults, empty none.
    anonymous_permissions: str | None = None
    # Fields visitors may not use carry @requiresScopes, so an Apollo Router with JWT
    # scopes refuses them at the edge; false for @apollo/gateway, which refuses every
    # supergraph that uses it.
    requires_scopes: bool = True
    # Comma-separated allow-list of app ids that may be started; empty allows any.
    supported_app_ids: str = ""
    # Seconds a verified API key is trusted before it is looked up again.
    api_key_cache_seconds: float = Field(default=5.0, ge=0, le=10)

    mail_url: str = "file://./outbox"
    mail_from: str = "Back in stock <no-reply@localhost>"
    mail_template_dir: str | None = None
    # Bounds connecting, and each message up to the end of its DATA; a claim (the lease)
    # must outlive two of them.
    mail_timeout_seconds: float = Field(default=20.0, gt=0)
    # The wait for the server's reply to the end of a message's DATA (RFC 5321 4.5.3.2.6
    # suggests 10 minutes): a message without that reply may have been delivered, so it is
    # never sent again. At least MAIL_TIMEOUT_SECONDS; leases are renewed while it runs.
    mail_final_reply_timeout_seconds: float = Field(default=600.0, gt=0)

    # Delivery: the dispatcher inside `serve`, retries and leases.
    dispatch_in_serve: bool = True
    delivery_max_attempts: int = Field(default=5, ge=1)
    delivery_retry_base_seconds: float = Field(default=5.0, ge=0)
    delivery_batch_size: int = Field(default=200, ge=1, le=10_000)
    delivery_poll_seconds: float = Field(default=1.0, gt=0)
    delivery_lease_seconds: float = Field(default=60.0, gt=0)
    # SMTP connections one dispatcher sends a batch over at once.
    delivery_connections: int = Field(default=4, ge=1, le=64)

    # Browsers on other origins (storefronts) may call the API; comma-separated or *.
    # WebSocket handshakes (subscriptions) from other origins are checked against it too.
    cors_allow_origins: str = "*"

    # Events (docs/events.md): webhooks, subscriptions and how long events are kept.
    # Webhook URLs on loopback, private or link-local addresses are refused unless true.
    webhook_allow_private_targets: bool = False
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    # Backoff after the n-th failure: between half and all of base x 2^(n-1), at most
    # the max delay; an event is given up WEBHOOK_RETRY_FOR_SECONDS after it was due.
    webhook_retry_base_seconds: float = Field(default=10.0, ge=0)
    webhook_retry_max_delay_seconds: float = Field(default=3600.0, gt=0)
    webhook_retry_for_seconds: float = Field(default=86_400.0, gt=0)
    # An endpoint failing (no success) for longer than this is disabled.
    webhook_disable_after_seconds: float = Field(default=5 * 86_400.0, gt=0)
    # Requests one dispatcher has in flight at once, and deliveries per claim.
    webhook_connections: int = Field(default=16, ge=1, le=256)
    webhook_batch_size: int = Field(default=200, ge=1, le=10_000)
    webhook_max_endpoints: int = Field(default=20, ge=1, le=1000)
    # Delivered events older than this are purged (each request's latest is kept).
    event_retention_seconds: float = Field(default=7 * 86_400.0, gt=0)
    max_subscriptions_per_connection: int = Field(default=20, ge=1, le=1000)

    # Freeze what start-up loaded and collect cyclic garbage less often (app.gc_tuning).
    tune_garbage_collector: bool = True
    # Drive SQLAlchemy, graphql-core and Strawberry below their public APIs where that was
    # measured to pay (app/fast_paths.py); false runs on public APIs only.
    fast_paths: bool = True

    # Keys that sign cursors (app/keys.py), comma-separated: the first signs, all verify.
    # Unset: a key generated on first start and kept in the database.
    secret_keys: SecretStr | None = None

    # Protections.
    # Visitors (no API key) run only documents registered from a manifest
    # (`python -m app trust-documents`), and cannot register any through APQ.
    trusted_documents_only: bool = False
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_query_depth: int = Field(default=15, ge=1)
    max_aliases: int = Field(default=30, ge=1)
    max_tokens: int = Field(default=5_000, ge=100)
    # Documents over this many bytes (UTF-8) are refused before they are parsed.
    max_document_bytes: int = Field(default=128 * 1024, ge=1024)
    # What the parsed-document cache may hold, by its own estimate (app.graphql.documents).
    document_cache_bytes: int = Field(default=32 * 1024 * 1024, ge=0)
    # Rows a request may touch (app.graphql.cost): with an API key, and without.
    max_query_cost: int = Field(default=5_000, ge=1)
    max_anonymous_query_cost: int = Field(default=2_000, ge=1)

    # -- A public sign-up (README, "Running it in front of a public storefront") ---
    # Anonymous creates per client address and per email address, "N/minute" (second,
    # hour, day) in a sliding window; empty turns one off. Keyed callers are exempt.
    rate_limit_per_client: str = "10/minute"
    rate_limit_per_email: str = "5/hour"
    # Open (waiting) requests an address may reach through visitors' creates; 0: off.
    max_open_requests_per_email: int = Field(default=50, ge=0)
    # Proxies whose X-Forwarded-For is believed (comma-separated addresses or CIDRs).
    trusted_proxies: str = ""
    # Where links in emails point (unsubscribe, confirm); unset: the server's own
    # address (`serve`'s host and port), http://127.0.0.1:8000 for `dispatch`.
    public_base_url: str | None = None
    # An address for List-Unsubscribe's mailto: alternative (unsubscribes sent there
    # are the deployment's to handle); unset: the https link only.
    unsubscribe_mailto: str | None = None
    # Double opt-in: a visitor's request is notified only once its address is confirmed.
    require_email_confirmation: bool = False
    email_confirmation_expiry_hours: float = Field(default=48.0, gt=0)
    # At most one confirmation email per address in this many minutes.
    email_confirmation_resend_minutes: float = Field(default=10.0, ge=0)
    # Requests never confirmed are deleted this many days after their creation.
    unconfirmed_retention_days: float = Field(default=7.0, gt=0)
    # Sent and failed requests are deleted this many days after their creation; unset
    # keeps them.
    retention_days: float | None = Field(default=None, gt=0)
    # How often a dispatcher purges what retention and the limits no longer need.
    purge_interval_seconds: float = Field(default=300.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Accept the common spellings without a driver (`postgres://`, `sqlite:///`)."""
        for plain, with_driver in _ASYNC_DRIVERS.items():
            if url.startswith(plain):
                return with_driver + url[len(plain) :]
        return url

    @field_validator("anonymous_permissions")
    @classmethod
    def _known_permissions(cls, raw: str | None) -> str | None:
        unknown = [
            name for name in _split_names(raw) if name not in Permission.__members__
        ]
        if unknown:
            known = ", ".join(Permission.__members__)
            raise ConfigurationError(
                f"ANONYMOUS_PERMISSIONS names unknown permission(s) {', '.join(unknown)}; "
                f"known: {known}"
            )
        return raw

    @field_validator("secret_keys")
    @classmethod
    def _long_enough(cls, raw: SecretStr | None) -> SecretStr | None:
        short = [
            key
            for key in _split_names(raw.get_secret_value() if raw else None)
            if len(key) < 32
        ]
        if short:
            raise ConfigurationError(
                "SECRET_KEYS: each key must be at least 32 characters "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return raw

    @cached_property
    def secret_key_list(self) -> list[str]:
        """SECRET_KEYS, newest (the one that signs) first; empty when unset."""
        raw = self.secret_keys.get_secret_value() if self.secret_keys else None
        return _split_names(raw)

    @field_validator("rate_limit_per_client", "rate_limit_per_email")
    @classmethod
    def _rate(cls, raw: str, info: ValidationInfo) -> str:
        parse_rate(raw, str(info.field_name).upper())
        return raw

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, raw: str) -> str:
        parse_networks(raw)
        return raw

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, raw: str | None) -> str | None:
        if raw is None or not raw.strip():
            return None
        parts = urlsplit(raw.strip())
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or not raw.isascii()
            or parts.query
            or parts.fragment
        ):
            raise ConfigurationError(
                f"PUBLIC_BASE_URL {raw!r} is not an absolute http(s) URL without query "
                "such as 'https://shop.example.com/back-in-stock' (an international "
                "domain name in its xn-- form)"
            )
        return raw.strip().rstrip("/")

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _mailto(cls, raw: str | None) -> str | None:
        if raw is None or not raw.strip():
            return None
        address = raw.strip().removeprefix("mailto:")
        if (
            "@" not in address
            or not address.isascii()
            or any(c in address for c in " <>,?\r\n")
        ):
            raise ConfigurationError(
                f"UNSUBSCRIBE_MAILTO {raw!r} is not an address such as "
                "'unsubscribe@shop.example'"
            )
        return address

    @cached_property
    def client_rate(self) -> Rate | None:
        return parse_rate(self.rate_limit_per_client, "RATE_LIMIT_PER_CLIENT")

    @cached_property
    def email_rate(self) -> Rate | None:
        return parse_rate(self.rate_limit_per_email, "RATE_LIMIT_PER_EMAIL")

    @cached_property
    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def links_base_url(self) -> str:
        """PUBLIC_BASE_URL, or the default `serve` fills in (see app.cli)."""
        return self.public_base_url or DEFAULT_PUBLIC_BASE_URL

    @cached_property
    def anonymous_permission_set(self) -> frozenset[Permission]:
        if self.anonymous_permissions is None:
            return DEFAULT_ANONYMOUS_PERMISSIONS
        return frozenset(
            Permission[name] for name in _split_names(self.anonymous_permissions)
        )

    @property
    def in_flight_wait_seconds(self) -> float:
        """How long a mark or delete waits for an email of its request being sent.

        Twice MAIL_TIMEOUT_SECONDS: connecting, then sending up to the end of DATA. Only a
        server that holds the final reply longer leaves the outcome open (docs/delivery.md).
        """
        return 2 * self.mail_timeout_seconds

    @cached_property
    def cors_origin_list(self) -> list[str]:
        return _split_names(self.cors_allow_origins)

    @cached_property
    def supported_app_id_set(self) -> frozenset[str]:
        return frozenset(_split_names(self.supported_app_ids))
