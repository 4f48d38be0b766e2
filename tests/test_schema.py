"""The printed schema: committed, current, within the contract, and a federation subgraph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from graphql import build_schema as parse_sdl

from app.graphql.schema import schema_sdl
from tests.documents import create, start_collecting

ROOT = Path(__file__).resolve().parent.parent
CHECK_CONTRACT = ROOT.parent / "shared" / "bin" / "check-contract"
REGENERATE = ".venv/bin/python -m app export-schema"

ENTITIES = """
query($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on BackInStockNotificationRequest { id email status }
  }
}
"""


def root_fields():
    schema = parse_sdl(schema_sdl(), assume_valid_sdl=True)
    for root in (schema.query_type, schema.mutation_type):
        for name, field in root.fields.items():
            if not name.startswith("_"):
                yield name, field


def test_committed_schema_is_current():
    committed = (ROOT / "schema.graphql").read_text()

    assert committed == schema_sdl(), f"schema.graphql is stale: run `{REGENERATE}`"


@pytest.mark.skipif(
    not CHECK_CONTRACT.exists(),
    reason="shared/bin/check-contract not beside the project",
)
def test_schema_satisfies_the_contract():
    result = subprocess.run(
        [sys.executable, str(CHECK_CONTRACT), str(ROOT / "schema.graphql")],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_root_field_declares_its_permission():
    for name, field in root_fields():
        directives = [d.name.value for d in field.ast_node.directives]
        # Then @requiresScopes where visitors lack it (tests/test_federation.py).
        assert directives[0] == "requiresPermission", name


def test_every_root_field_description_repeats_its_permission():
    for name, field in root_fields():
        permission = field.ast_node.directives[0].arguments[0].value.value
        assert permission in (field.description or ""), name


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_service_sdl_is_the_committed_schema(gql):
    result = await gql("{ _service { sdl } }")

    assert (
        result.data["_service"]["sdl"] + "\n" == (ROOT / "schema.graphql").read_text()
    )


async def test_entities_resolve_requests_by_id_for_elevated_callers(gql, admin_key):
    await start_collecting(gql, admin_key)
    first = await create(gql, email="a@x.com")
    second = await create(gql, email="b@x.com")
    representations = [
        {"__typename": "BackInStockNotificationRequest", "id": second["id"]},
        {"__typename": "BackInStockNotificationRequest", "id": first["id"].upper()},
        {
            "__typename": "BackInStockNotificationRequest",
            "id": "00000000-0000-4000-8000-000000000000",
        },
    ]

    result = await gql(ENTITIES, {"representations": representations}, key=admin_key)

    assert result.errors == []
    assert [e and e["email"] for e in result.data["_entities"]] == [
        "b@x.com",
        "a@x.com",
        None,
    ]


async def test_entities_check_the_read_permission_themselves(gql, admin_key):
    await start_collecting(gql, admin_key)
    created = await create(gql)

    result = await gql(
        ENTITIES,
        {
            "representations": [
                {"__typename": "BackInStockNotificationRequest", "id": created["id"]}
            ]
        },
    )

    assert result.codes == ["FORBIDDEN"]
    assert result.data["_entities"] == [None]
