"""What the operator registers (`python -m app trust-documents` with Apollo's and Relay's
manifests), and TRUSTED_DOCUMENTS_ONLY."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from app.config import Settings
from tests.conftest import mint_key
from tests.persisted import (
    INTROSPECTION,
    SETTINGS,
    SETTINGS_DATA,
    TYPENAME,
    apollo_manifest,
    apq,
    codes,
    md5,
    post,
    serving,
    sha256,
    trust,
)


@pytest.fixture
async def trusted_only(
    settings: Settings,
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """An app with TRUSTED_DOCUMENTS_ONLY=true."""
    async with serving(
        settings.model_copy(update={"trusted_documents_only": True})
    ) as served:
        yield served


# -------------------------------------------------------------------- the manifests


async def test_cli_registers_an_apollo_manifest_once(app, tmp_path, database_url):
    manifest = apollo_manifest(SETTINGS, TYPENAME)

    first = trust(manifest, tmp_path, database_url)
    again = trust(manifest, tmp_path, database_url)

    assert first.returncode == 0, first.stderr
    assert "2 documents; 2 added, 0 known through APQ and now trusted" in first.stdout
    assert (
        "0 added, 0 known through APQ and now trusted, 2 already trusted"
        in again.stdout
    )


async def test_cli_refuses_an_apollo_manifest_whose_id_is_not_its_body_sha256(
    http, tmp_path, database_url
):
    manifest = apollo_manifest(
        TYPENAME, SETTINGS, ids=[sha256(TYPENAME), md5(SETTINGS)]
    )

    refused = trust(manifest, tmp_path, database_url)
    typename = await post(http, {"documentId": f"sha256:{sha256(TYPENAME)}"})

    assert refused.returncode == 1
    assert "Op1" in refused.stderr and "not the sha256 of its body" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert codes(typename) == ["PERSISTED_QUERY_NOT_FOUND"]  # nothing registered


@pytest.mark.parametrize(
    "manifest",
    [
        "not json",
        [SETTINGS],
        {"format": "apollo-persisted-query-manifest", "version": 2, "operations": []},
        {"id": {"body": SETTINGS}},
        {md5("{"): "{"},
    ],
)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cli_refuses_a_file_that_is_not_a_manifest(tmp_path, database_url, manifest):
    refused = trust(manifest, tmp_path, database_url)

    assert refused.returncode == 1
    assert "nothing registered" in refused.stderr
    assert "Traceback" not in refused.stderr


async def test_cli_refuses_a_relay_id_that_already_names_another_document(
    http, tmp_path, database_url
):
    trust({"abc": SETTINGS}, tmp_path, database_url)

    refused = trust({"abc": TYPENAME}, tmp_path, database_url)
    response = await post(http, {"documentId": "abc"})

    assert refused.returncode == 1
    assert "already names another document" in refused.stderr
    assert response.json() == {"data": SETTINGS_DATA}


async def test_relay_ids_run_the_documents_their_manifest_registered(
    http, tmp_path, database_url
):
    relay_id = md5(SETTINGS)
    done = trust({relay_id: SETTINGS}, tmp_path, database_url, "persisted_queries.json")

    as_document_id = await post(http, {"documentId": relay_id})
    as_doc_id = await post(http, {"doc_id": relay_id, "variables": {}})
    as_sha256 = await post(http, {"documentId": f"sha256:{sha256(SETTINGS)}"})

    assert done.returncode == 0, done.stderr
    assert as_document_id.json() == {"data": SETTINGS_DATA}
    assert as_doc_id.json() == {"data": SETTINGS_DATA}
    assert as_sha256.json() == {"data": SETTINGS_DATA}


# --------------------------------------------------------------- TRUSTED_DOCUMENTS_ONLY


async def test_trusted_only_runs_a_visitor_manifest_document_in_every_form(
    trusted_only, tmp_path, database_url
):
    _, http = trusted_only
    trust(apollo_manifest(SETTINGS), tmp_path, database_url)

    as_text = await post(http, {"query": SETTINGS})
    as_hash = await post(http, apq(SETTINGS))
    as_document_id = await post(http, {"documentId": f"sha256:{sha256(SETTINGS)}"})

    assert as_text.json() == {"data": SETTINGS_DATA}
    assert as_hash.json() == {"data": SETTINGS_DATA}
    assert as_document_id.json() == {"data": SETTINGS_DATA}


async def test_trusted_only_refuses_a_visitor_document_no_manifest_registered(
    trusted_only,
):
    _, http = trusted_only

    as_text = await post(http, {"query": SETTINGS})
    introspection = await post(http, {"query": INTROSPECTION})
    as_hash = await post(http, apq(SETTINGS))

    for response in (as_text, introspection, as_hash):
        assert response.status_code == 403
        assert codes(response) == ["TRUSTED_DOCUMENT_REQUIRED"]
        assert "data" not in response.json()


async def test_trusted_only_refuses_apq_registration_by_a_visitor(trusted_only):
    _, http = trusted_only

    registering = await post(http, apq(SETTINGS, with_query=True))
    as_key_holder_would = await post(http, apq(SETTINGS))

    assert registering.status_code == 403
    assert codes(registering) == ["TRUSTED_DOCUMENT_REQUIRED"]
    assert codes(as_key_holder_would) == ["TRUSTED_DOCUMENT_REQUIRED"]


async def test_trusted_only_lets_a_key_holder_send_and_register_any_document(
    trusted_only,
):
    app, http = trusted_only
    key = await mint_key(app)

    introspection = await post(http, {"query": INTROSPECTION}, key=key)
    registered = await post(http, apq(SETTINGS, with_query=True), key=key)
    by_hash = await post(http, apq(SETTINGS), key=key)
    visitor = await post(http, apq(SETTINGS))

    assert introspection.json() == {
        "data": {"__schema": {"queryType": {"name": "Query"}}}
    }
    assert registered.json() == {"data": SETTINGS_DATA}
    assert by_hash.json() == {"data": SETTINGS_DATA}
    # A key holder's registration is not the operator's: visitors still may not run it.
    assert codes(visitor) == ["TRUSTED_DOCUMENT_REQUIRED"]


async def test_trusted_only_answers_an_unknown_key_unauthenticated(trusted_only):
    _, http = trusted_only

    response = await post(http, {"query": SETTINGS}, key="bis_not-a-key")

    assert response.status_code == 401
    assert codes(response) == ["UNAUTHENTICATED"]
    assert response.headers["www-authenticate"] == "Bearer"


async def test_document_known_through_apq_is_trusted_once_a_manifest_lists_it(
    trusted_only, tmp_path, database_url
):
    # given: a key holder registered it through APQ, and visitors were refused it
    app, http = trusted_only
    await post(http, apq(SETTINGS, with_query=True), key=await mint_key(app))
    before = await post(http, apq(SETTINGS))

    # when
    done = trust(apollo_manifest(SETTINGS), tmp_path, database_url)
    after = await post(http, apq(SETTINGS))

    # then
    assert codes(before) == ["TRUSTED_DOCUMENT_REQUIRED"]
    assert "0 added, 1 known through APQ and now trusted" in done.stdout
    assert after.json() == {"data": SETTINGS_DATA}
