"""Who a request comes from: the client address the per-client limit counts.

The connection's peer, unless that peer is a trusted proxy (TRUSTED_PROXIES): then
`X-Forwarded-For` is read from its right end, skipping the trusted proxies each hop
appended, and the first address no trusted proxy stands for is the client. Everything
left of it was written by the client itself and is never believed.

IPv6 clients count by their /64 network: one subscriber usually holds a whole /64, so
counting single addresses would give each of them 2^64 budgets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
IPV6_CLIENT_PREFIX = 64


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: Address | None, proxies: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in proxies)


def client_key(address: Address) -> str:
    """The address as counted: IPv4 as is, IPv6 as its /64."""
    if isinstance(address, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False)
        return str(network)
    return str(address)


def _forwarded_for(scope: Scope) -> list[str]:
    values = [
        value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name == b"x-forwarded-for"
    ]
    # Several headers are one list, in order (RFC 9110 5.3).
    return [entry.strip() for value in values for entry in value.split(",")]


def client_address(scope: Scope, proxies: Sequence[Network] = ()) -> str | None:
    """The client's address as counted, or None when the connection has none (a Unix
    socket)."""
    client = scope.get("client")
    peer = _address(client[0]) if client else None
    if peer is None:
        return None
    nearest = peer
    if not _trusted(nearest, proxies):
        return client_key(nearest)
    for hop in reversed(_forwarded_for(scope)):
        address = _address(hop)
        if address is None:
            # Not an address: nothing left of it can be trusted, so the proxy that
            # passed it on is counted (a misconfigured proxy, or a forged entry).
            break
        nearest = address
        if not _trusted(address, proxies):
            break
    # An untrusted hop is the client; with only trusted proxies, the furthest of them.
    return client_key(nearest)
