"""Identity and permissions: anonymous callers, API keys, UNAUTHENTICATED versus FORBIDDEN."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import uvicorn

from app.auth import list_api_keys, parse_permissions, revoke_api_key
from app.config import ConfigurationError, Settings
from app.permissions import Permission
from tests.cli import run_cli
from tests.conftest import mint_key
from tests.documents import (
    CREATE_REQUEST,
    DELETE_REQUEST,
    GET_REQUEST,
    MARK_AS_SENT,
    QUERY_REQUESTS,
    REPORT,
    SETTINGS,
    SETTINGS_AND_REQUEST_COUNT,
    START_COLLECTING,
    STOP_COLLECTING,
    new_request,
    reference,
    start_collecting,
)

READ_REQUESTS = Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS

ELEVATED_OPERATIONS = [
    (GET_REQUEST, {"id": str(uuid.uuid4())}),
    (QUERY_REQUESTS, {}),
    (DELETE_REQUEST, {"id": str(uuid.uuid4())}),
    (MARK_AS_SENT, {"id": str(uuid.uuid4())}),
    (
        REPORT,
        {
            "itemDetails": {"name": "x", "price": "1"},
            "options": {"catalogReference": reference()},
        },
    ),
    (START_COLLECTING, {"appId": "stores"}),
    (STOP_COLLECTING, {"appId": "stores"}),
]


async def test_visitors_can_create_requests(gql, admin_key):
    await start_collecting(gql, admin_key)

    result = await gql(CREATE_REQUEST, new_request())

    assert result.errors == []


@pytest.mark.parametrize(("document", "variables"), ELEVATED_OPERATIONS)
async def test_visitors_are_forbidden_elevated_operations(gql, document, variables):
    result = await gql(document, variables)

    assert result.codes == ["FORBIDDEN"]
    assert not any((result.data or {}).values())


async def test_forbidden_field_returns_no_data(gql, admin_key):
    await start_collecting(gql, admin_key)

    result = await gql(SETTINGS_AND_REQUEST_COUNT)

    assert result.codes == ["FORBIDDEN"]
    assert result.data is None or "backInStockNotificationRequests" not in (
        result.data or {}
    )


async def test_key_holds_its_permissions_plus_the_anonymous_ones(gql, app, admin_key):
    await start_collecting(gql, admin_key)
    reader = await mint_key(app, READ_REQUESTS)

    read = await gql(QUERY_REQUESTS, {}, key=reader)
    created = await gql(CREATE_REQUEST, new_request(), key=reader)
    modify = await gql(DELETE_REQUEST, {"id": str(uuid.uuid4())}, key=reader)

    assert read.errors == []
    assert created.errors == []
    assert modify.codes == ["FORBIDDEN"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer bis_unknown",
        "Bearer",
        "Bearer   ",
        "Basic dXNlcjpwYXNz",
        "bis_no_scheme",
        "",
    ],
)
async def test_invalid_credentials_are_unauthenticated_even_for_visitor_fields(
    gql, authorization
):
    result = await gql(SETTINGS, headers={"Authorization": authorization})

    assert result.codes == ["UNAUTHENTICATED"]
    assert result.data is None


class TestRevocation:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"api_key_cache_seconds": 0})

    async def test_revoked_key_is_unauthenticated(self, gql, app):
        key = await mint_key(app, READ_REQUESTS)
        assert (await gql(QUERY_REQUESTS, {}, key=key)).errors == []
        (record,) = await list_api_keys(app.state.store)
        await revoke_api_key(app.state.store, id=record.id)

        result = await gql(QUERY_REQUESTS, {}, key=key)

        assert result.codes == ["UNAUTHENTICATED"]


class TestNoAnonymousPermissions:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return Settings(**{**settings.model_dump(), "anonymous_permissions": ""})

    async def test_visitors_then_hold_nothing(self, gql):
        result = await gql(SETTINGS)

        assert result.codes == ["FORBIDDEN"]


class TestWiderAnonymousPermissions:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        names = " READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS , READ_BACK_IN_STOCK_NOTIFICATION_SETTINGS"
        return Settings(**{**settings.model_dump(), "anonymous_permissions": names})

    async def test_visitors_hold_the_configured_names_trimmed(self, gql):
        read = await gql(QUERY_REQUESTS, {})
        create = await gql(CREATE_REQUEST, new_request())

        assert read.errors == []
        assert create.codes == ["FORBIDDEN"]


def test_unknown_anonymous_permission_is_a_configuration_error():
    with pytest.raises(ValueError, match="NOT_A_PERMISSION"):
        Settings(
            _env_file=None,
            anonymous_permissions="READ_BACK_IN_STOCK_NOTIFICATION_SETTINGS,NOT_A_PERMISSION",
        )
    assert issubclass(ConfigurationError, ValueError)


def cli(database_url: str, **extra_env: str) -> dict[str, str]:
    """The environment of a command run on `database_url`."""
    return {"DATABASE_URL": database_url, **extra_env}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_refuses_to_start_with_an_unknown_anonymous_permission(
    database_url, monkeypatch
):
    monkeypatch.setattr(uvicorn, "run", lambda *_, **__: pytest.fail("serving"))

    result = run_cli(
        "serve", "--port", "1", env=cli(database_url, ANONYMOUS_PERMISSIONS="BOGUS")
    )

    assert result.returncode != 0
    assert "ANONYMOUS_PERMISSIONS" in result.stderr
    assert "BOGUS" in result.stderr
    assert "Traceback" not in result.stderr


async def test_cli_mints_lists_and_revokes_keys(gql, app, settings):
    # given: a key minted by the CLI works
    created = run_cli(
        "create-api-key",
        "--name",
        "reporting",
        "--permission",
        READ_REQUESTS.name,
        env=cli(settings.database_url),
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    key_id = created.stdout.split()[3]  # "created API key <id> (<name>) with ..."
    assert (await gql(QUERY_REQUESTS, {}, key=key)).errors == []

    # when
    revoked = run_cli("revoke-api-key", key_id, env=cli(settings.database_url))
    listed = run_cli("list-api-keys", env=cli(settings.database_url))

    # then: the listing shows it revoked, and never the key itself
    assert revoked.returncode == 0, revoked.stderr
    header, row = listed.stdout.strip().splitlines()
    columns = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert columns["id"] == key_id
    assert columns["name"] == "reporting"
    assert columns["permissions"] == READ_REQUESTS.name
    assert columns["revoked"] != "-"
    assert key not in listed.stdout


async def test_cli_key_defaults_to_all_five_permissions(app, settings):
    created = run_cli(
        "create-api-key", "--name", "admin", env=cli(settings.database_url)
    )

    assert created.returncode == 0, created.stderr
    (stored,) = await list_api_keys(app.state.store)
    assert parse_permissions(stored.permissions) == frozenset(Permission)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cli_refuses_an_unknown_permission(database_url):
    result = run_cli(
        "create-api-key", "--name", "x", "--permission", "NOPE", env=cli(database_url)
    )

    assert result.returncode != 0
    assert "NOPE" in result.stderr


async def test_simultaneous_requests_with_one_key_look_it_up_once(app, gql, admin_key):
    authenticator = app.state.authenticator
    before = authenticator.database_lookups

    results = await asyncio.gather(
        *(gql(GET_REQUEST, {"id": str(uuid.uuid4())}, key=admin_key) for _ in range(20))
    )

    assert [r.errors for r in results] == [[]] * 20
    assert authenticator.database_lookups - before == 1


async def test_a_keyed_request_notes_when_the_key_was_last_used(app, gql, admin_key):
    await gql(GET_REQUEST, {"id": str(uuid.uuid4())}, key=admin_key)
    await app.state.authenticator.wait_for_background_writes()

    (key,) = await list_api_keys(app.state.store)

    assert key.last_used_date is not None
