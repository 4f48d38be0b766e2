"""`python -m app serve` on a real socket: slow, idle and oversized request heads.

Every test runs on both HTTP/1.1 protocols `serve` offers (httptools, its default, and h11).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.databases import copy_sqlite, sqlite_url
from tests.servers import Server, running_server

# Far longer than any limit under test: a connection still open then was never closed.
GIVE_UP_SECONDS = 30
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(request, sqlite_template, tmp_path_factory) -> Iterator[Server]:
    """One server per protocol for the whole module: each test opens connections of its
    own and reads nothing from the database, so none sees another's."""
    directory = tmp_path_factory.mktemp(f"connection-limits-{request.param}")
    database_url = sqlite_url(copy_sqlite(sqlite_template, directory / "test.db"))
    limits = ("--head-timeout=1", "--keep-alive-timeout=1", f"--http={request.param}")
    with running_server(database_url, directory, *limits) as running:
        yield running


def connect(server: Server) -> socket.socket:
    host, port = server.base.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)))
    connection.settimeout(GIVE_UP_SECONDS)
    return connection


def closed_by_server(connection: socket.socket) -> bool:
    """Read until the server closes (True) or GIVE_UP_SECONDS pass (False)."""
    try:
        while connection.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def read_response(connection: socket.socket) -> bytes:
    """One whole response (head and Content-Length body) read off a keep-alive socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def test_connection_that_sends_nothing_is_closed(server):
    with connect(server) as connection:
        assert closed_by_server(connection)


def test_connection_trickling_its_headers_is_closed(server):
    with connect(server) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        deadline = time.monotonic() + GIVE_UP_SECONDS
        closed = False
        while not closed and time.monotonic() < deadline:
            try:
                connection.sendall(b"X-Slow: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            connection.settimeout(0.2)
            try:
                closed = connection.recv(1) == b""
            except TimeoutError:
                pass
            except ConnectionResetError:
                closed = True

    assert closed


def test_idle_keep_alive_connection_is_closed_after_a_request(server):
    with connect(server) as connection:
        connection.sendall(REQUEST)
        first = read_response(connection)

        assert first.startswith(b"HTTP/1.1 200")
        assert closed_by_server(connection)


def test_keep_alive_connection_serves_several_requests(server):
    with connect(server) as connection:
        answers = []
        for _ in range(3):
            connection.sendall(REQUEST)
            answers.append(read_response(connection))

    assert [a.split(b"\r\n")[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 3


def test_oversized_request_head_is_refused(server):
    with connect(server) as connection:
        # A head still unfinished past 16 KiB (h11 bounds what it buffers for one event).
        connection.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"x" * (32 * 1024)
        )
        answer = connection.recv(65536)

    assert answer.startswith(b"HTTP/1.1 400")


def test_head_under_the_size_limit_sent_in_pieces_is_served(server):
    headers = b"".join(b"X-Pad-%d: %s\r\n" % (n, b"p" * 1000) for n in range(12))
    with connect(server) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for piece in range(0, len(headers), 4000):
            connection.sendall(headers[piece : piece + 4000])
            time.sleep(0.05)
        connection.sendall(b"\r\n")
        answer = read_response(connection)

    assert answer.startswith(b"HTTP/1.1 200")


def test_request_body_larger_than_a_head_is_not_bounded_as_one(server):
    padding = b"x" * (64 * 1024)
    body = b'{"query": "{ __typename }", "variables": {"padding": "' + padding + b'"}}'
    head = (
        b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    last = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with connect(server) as connection:
        connection.sendall(head + body + last)  # and a second request right after
        answers = b""
        while chunk := connection.recv(65536):
            answers += chunk

    assert answers.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert b'"__typename"' in answers
