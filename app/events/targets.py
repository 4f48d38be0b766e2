"""Where webhooks may be sent: public addresses only, checked after DNS resolution.

A webhook URL is chosen by a caller, so without a check it could make the service probe
or post to its own network (SSRF). Every address the host resolves to must be globally
routable: loopback, private, link-local (cloud metadata services), shared, reserved and
multicast addresses are refused, also when hidden in an IPv4-mapped IPv6 address. The
check runs when an endpoint is created and again before every delivery, and the
delivery connects to the very address that was checked (no second resolution a DNS
rebinding could answer differently). `WEBHOOK_ALLOW_PRIVATE_TARGETS=true` lifts it (for
receivers on the same network, and tests on loopback).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL's host is not a public address, or cannot be resolved."""


@dataclass(frozen=True)
class Target:
    """A URL and the one address its request is to connect to."""

    url: str
    host: str
    address: str

    @property
    def pinned_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        return parts._replace(netloc=netloc).geturl()

    @property
    def host_header(self) -> str:
        parts = urlsplit(self.url)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if parts.port is None else f"{host}:{parts.port}"


def refusal(address: IPAddress) -> str | None:
    """Why a webhook may not be sent to `address`, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return "a reserved address"
    if not address.is_global:
        return "an address that is not public"
    return None


async def _addresses(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise TargetRefused(f"{host} cannot be resolved: {error}") from error
    # Scope ids ("fe80::1%eth0") are not part of the address.
    found = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    if not found:
        raise TargetRefused(f"{host} resolves to no address")
    return sorted(found, key=lambda address: (address.version, int(address)))


async def resolve(url: str, *, allow_private: bool) -> Target:
    """The URL's target, refused when any address of its host is not public."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await _addresses(host, port)
    if not allow_private:
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise TargetRefused(f"{host} resolves to {address}, {reason}")
    return Target(url, host, str(addresses[0]))
