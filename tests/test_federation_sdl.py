"""The printed SDL's federation directives: @requiresScopes where visitors lack the field's
permission (per configuration), @requiresPermission composed under its own @link, the keys.
"""

from __future__ import annotations

import pytest
from graphql import DirectiveNode, build_ast_schema, parse, print_ast

from app.config import Settings
from app.graphql.entities import ENTITY_KEYS
from app.graphql.permissions import PERMISSIONS_SPEC_URL
from app.graphql.schema import schema_sdl
from app.permissions import DEFAULT_ANONYMOUS_PERMISSIONS, Permission
from tests.test_schema import ROOT

SERVICE_SDL = "{ _service { sdl } }"
READ_REQUESTS = Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS


def field_directives(sdl: str) -> dict[str, list[DirectiveNode]]:
    """`Type.field` -> its directives, for every field of every object type."""
    schema = build_ast_schema(parse(sdl), assume_valid_sdl=True)
    return {
        f"{type_name}.{name}": list(field.ast_node.directives or ())
        for type_name, type_ in schema.type_map.items()
        if hasattr(type_, "fields") and type_.ast_node is not None
        for name, field in type_.fields.items()
        if field.ast_node is not None
    }


def permission_fields(sdl: str, without: frozenset[Permission] = frozenset()) -> dict:
    """`Type.field` -> the permission it declares, for permissions not in `without`."""
    found = {}
    for name, directives in field_directives(sdl).items():
        for directive in directives:
            if directive.name.value == "requiresPermission":
                permission = directive.arguments[0].value.value
                if Permission[permission] not in without:
                    found[name] = permission
    return found


def scoped_fields(sdl: str) -> dict:
    """`Type.field` -> the one scope its @requiresScopes names."""
    found = {}
    for name, directives in field_directives(sdl).items():
        for directive in directives:
            if directive.name.value == "requiresScopes":
                assert print_ast(directive.arguments[0].value).count('"') == 2, name
                found[name] = directive.arguments[0].value.values[0].values[0].value
    return found


def test_fields_visitors_may_not_use_require_the_scope_of_their_permission():
    sdl = (ROOT / "schema.graphql").read_text()

    scoped = scoped_fields(sdl)

    assert scoped == permission_fields(sdl, without=DEFAULT_ANONYMOUS_PERMISSIONS)
    assert (
        scoped["CatalogItem.backInStockNotificationRequestsCount"] == READ_REQUESTS.name
    )
    assert "CatalogItem.backInStockCollectingRequests" not in scoped
    assert "Query.catalogItem" not in scoped


@pytest.mark.parametrize(
    "anonymous",
    ["", "READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS", ",".join(Permission.__members__)],
)
def test_scopes_follow_the_anonymous_permissions(anonymous):
    settings = Settings(_env_file=None, anonymous_permissions=anonymous)
    sdl = schema_sdl(settings)

    assert scoped_fields(sdl) == permission_fields(
        sdl, without=settings.anonymous_permission_set
    )


def test_requires_scopes_off_prints_none():
    sdl = schema_sdl(Settings(_env_file=None, requires_scopes=False))

    assert scoped_fields(sdl) == {}
    assert len(permission_fields(sdl)) > 0


def test_the_committed_schema_is_the_default_whatever_the_environment(monkeypatch):
    monkeypatch.setenv("ANONYMOUS_PERMISSIONS", "")
    monkeypatch.setenv("REQUIRES_SCOPES", "false")

    assert schema_sdl() == (ROOT / "schema.graphql").read_text()


def test_requires_permission_reaches_the_supergraph_under_its_own_link():
    schema_line = next(
        line
        for line in (ROOT / "schema.graphql").read_text().splitlines()
        if line.startswith("schema ")
    )

    assert '@composeDirective(name: "@requiresPermission")' in schema_line
    assert (
        f'@link(url: "{PERMISSIONS_SPEC_URL}", import: ["@requiresPermission"])'
        in schema_line
    )
    assert '"@requiresScopes"' in schema_line
    assert "https://specs.apollo.dev/federation/v2." in schema_line


def test_entity_keys_are_the_printed_keys():
    document = parse((ROOT / "schema.graphql").read_text())
    printed = {
        definition.name.value: tuple(directive.arguments[0].value.value.split())
        for definition in document.definitions
        for directive in getattr(definition, "directives", None) or ()
        if directive.name.value == "key"
    }

    assert printed == ENTITY_KEYS


class TestVisitorsHoldNothing:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return Settings(**{**settings.model_dump(), "anonymous_permissions": ""})

    async def test_service_sdl_follows_the_running_configuration(self, gql, settings):
        result = await gql(SERVICE_SDL)

        sdl = result.data["_service"]["sdl"] + "\n"
        assert sdl == schema_sdl(settings)
        assert sdl != (ROOT / "schema.graphql").read_text()
        assert scoped_fields(sdl) == permission_fields(sdl)
