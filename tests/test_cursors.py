"""Cursors are signed by the server's keys (issue 17): a cursor the server did not make is
INVALID_ARGUMENT before any query runs; keys rotate (SECRET_KEYS: the first signs, all
verify); without SECRET_KEYS the key generated on first start is kept in the database and
shared by every server on it."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from pydantic import SecretStr

from app.config import ConfigurationError, Settings
from tests.documents import QUERY_REQUESTS, create, start_collecting
from tests.paging_model import serving

KEY_A = "a" * 32 + "-first-key"
KEY_B = "b" * 32 + "-second-key"


def with_keys(settings: Settings, keys: str | None) -> Settings:
    return settings.model_copy(
        update={"secret_keys": SecretStr(keys) if keys is not None else None}
    )


async def some_cursor(gql: Any, key: str) -> str:
    """The cursor of the first of two requests made now, in the default order."""
    await start_collecting(gql, key)
    for email in ("a@example.com", "b@example.com"):
        await create(gql, email=email)
    result = await gql(QUERY_REQUESTS, {"first": 1}, key=key)
    assert result.errors == [], result.errors
    return result.data["backInStockNotificationRequests"]["pageInfo"]["endCursor"]


async def follows(gql: Any, key: str, cursor: str) -> list[str]:
    """The codes of a page after `cursor` (none when it was accepted)."""
    result = await gql(QUERY_REQUESTS, {"first": 1, "after": cursor}, key=key)
    return result.codes


def reworded(cursor: str, change: Any) -> str:
    """The cursor with its payload changed by `change`, its signature kept."""
    payload, signature = cursor.rsplit(".", 1)
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps(change(decoded)).encode()).rstrip(b"=")
    return f"{forged.decode()}.{signature}"


@pytest.mark.parametrize(
    "change",
    [
        lambda p: [p[0], p[1], ["9999-12-31T23:59:59.999999-23:59", p[2][1]]],
        lambda p: [p[0], p[1], ["0001-01-01T00:00:00+01:00", p[2][1]]],
        lambda p: [p[0], p[1], [17, True]],
        lambda p: [p[0], p[1], [p[2][0], "not-a-uuid"]],
        lambda p: [p[0], p[1], p[2][:1]],
        lambda p: p,  # the same payload, spelled by another JSON encoder
    ],
    ids=["latest-date", "earliest-date", "wrong-types", "bad-id", "short", "respelled"],
)
async def test_cursor_with_a_changed_payload_is_invalid_argument(
    settings: Settings, change: Any
):
    async with serving(settings) as (_, gql, key):
        cursor = await some_cursor(gql, key)

        result = await gql(QUERY_REQUESTS, {"after": reworded(cursor, change)}, key=key)

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["after"]


async def test_cursor_signed_with_another_key_is_invalid_argument(settings: Settings):
    async with serving(with_keys(settings, KEY_A)) as (_, gql, key):
        cursor = await some_cursor(gql, key)
    async with serving(with_keys(settings, KEY_B)) as (_, gql, key):
        codes = await follows(gql, key, cursor)

    assert codes == ["INVALID_ARGUMENT"]


async def test_after_a_key_rotation_old_cursors_still_work_and_new_ones_use_the_new_key(
    settings: Settings,
):
    # given a cursor signed with A
    async with serving(with_keys(settings, KEY_A)) as (_, gql, key):
        old = await some_cursor(gql, key)

    # when B is put first
    async with serving(with_keys(settings, f"{KEY_B},{KEY_A}")) as (_, gql, key):
        old_codes = await follows(gql, key, old)
        page = await gql(QUERY_REQUESTS, {"first": 1}, key=key)
        new = page.data["backInStockNotificationRequests"]["pageInfo"]["endCursor"]

    # then A's cursor still works, and the new one is B's (A alone refuses it)
    async with serving(with_keys(settings, KEY_B)) as (_, gql, key):
        new_with_b = await follows(gql, key, new)
    async with serving(with_keys(settings, KEY_A)) as (_, gql, key):
        new_with_a = await follows(gql, key, new)
    assert old_codes == []
    assert new_with_b == []
    assert new_with_a == ["INVALID_ARGUMENT"]


async def test_generated_key_is_kept_across_restarts(settings: Settings):
    async with serving(settings) as (_, gql, key):
        cursor = await some_cursor(gql, key)

    async with serving(settings) as (_, gql, key):
        codes = await follows(gql, key, cursor)

    assert codes == []


async def test_servers_starting_together_generate_one_key(settings: Settings):
    async def start() -> bytes:
        async with serving(settings) as (app, _, _):
            return app.state.keys.current

    keys = await asyncio.gather(*(start() for _ in range(4)))

    assert len(set(keys)) == 1


def test_secret_key_shorter_than_32_characters_is_refused():
    with pytest.raises(ValueError, match="SECRET_KEYS") as refused:
        Settings(_env_file=None, secret_keys=f"{KEY_A},too-short")

    assert isinstance(refused.value.errors()[0]["ctx"]["error"], ConfigurationError)
