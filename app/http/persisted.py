"""Requests that name their document instead of sending it, and TRUSTED_DOCUMENTS_ONLY.

Two wire formats name a document:
- GraphQL over HTTP's persisted documents (its Appendix A): `documentId` in the JSON body
  or the query string, `sha256:<hex>` or an id a Relay manifest registered (Relay's own
  network layers send it as `doc_id`, read the same way). It is read when `query` is absent.
- Apollo's automatic persisted queries (APQ): `extensions.persistedQuery = {"version": 1,
  "sha256Hash": "<hex>"}`. The hash alone runs the stored text, or is answered
  `PersistedQueryNotFound` (code PERSISTED_QUERY_NOT_FOUND), and Apollo Client sends hash
  and text; the text is then checked against the hash, run, and kept once it validates.

With TRUSTED_DOCUMENTS_ONLY a caller without a valid API key runs only documents the
operator registered from a manifest, whichever way it sends them, and cannot register any.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson
from starlette.requests import Request
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from app.auth import Principal
from app.models import Clock
from app.services.document_manifests import OTHER_ID
from app.services.trusted_documents import (
    StoredDocument,
    TrustedDocuments,
    document_hash,
)

log = logging.getLogger("app.http")

SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
# Parameters that make a GET a GraphQL request even without `query`.
DOCUMENT_PARAMETERS = ("documentId", "doc_id", "extensions")
_BAD_DOCUMENT_ID = (
    "documentId must be 'sha256:' and the 64 hex digits of the document's sha256, or an "
    "id a Relay manifest registered (letters, digits, '-', '.', '_', '~')."
)
_REGISTERED_ONLY = (
    "This server runs only documents registered with `python -m app trust-documents` "
    "(TRUSTED_DOCUMENTS_ONLY). Send a registered document, or an API key."
)


class DocumentRefused(Exception):
    """A request whose document will not run, answered before execution.

    `json_status` is the status under `application/json` when it differs: Apollo Server
    answers PersistedQueryNotFound with 200, and clients of APQ are built against it.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        json_status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.json_status = json_status
        self.headers = dict(headers or {})

    def status_for(self, media_type: str) -> int:
        if media_type == "application/json" and self.json_status is not None:
            return self.json_status
        return self.status


def _bad_request(message: str) -> DocumentRefused:
    return DocumentRefused(400, "BAD_REQUEST", message)


def _not_found(message: str) -> DocumentRefused:
    # Never cached: the client registers the document next, and a CDN must not keep this.
    return DocumentRefused(
        404,
        "PERSISTED_QUERY_NOT_FOUND",
        message,
        json_status=200,
        headers={"Cache-Control": "private, no-cache, must-revalidate"},
    )


class Registration(NamedTuple):
    """A document a client asked to register (APQ), kept once it has validated."""

    sha256: str
    text: str


class PersistedDocuments:
    """Turns a request's document id into its text, and enforces TRUSTED_DOCUMENTS_ONLY."""

    def __init__(
        self, documents: TrustedDocuments, *, trusted_only: bool, clock: Clock
    ) -> None:
        self.documents = documents
        self.trusted_only = trusted_only
        self.clock = clock

    async def resolve(
        self, request: Request, data: GraphQLRequestData, principal: Principal
    ) -> Registration | None:
        """Put the named document's text in `data.query`; raise DocumentRefused when it
        will not run. Returns what to register once the document has validated."""
        persisted = (data.extensions or {}).get("persistedQuery")
        if persisted is not None:
            return await self._automatic(data, persisted, principal)
        if data.query is None:
            document_id = await _document_id(request)
            if document_id is not None:
                data.query = await self._by_document_id(document_id, principal)
        elif self._trust_needed(principal):
            document = await self.documents.by_hash(
                document_hash(data.query), trusted=True
            )
            self._check_trusted(document, principal)
        return None

    async def keep(self, registration: Registration, result: ExecutionResult) -> None:
        """Register a client's document once it has parsed and validated; a failure to
        write only costs the client another round trip."""
        if not _validated(result):
            return
        try:
            await self.documents.remember(*registration, clock=self.clock)
        except Exception:
            log.warning(
                "could not keep persisted query %s", registration.sha256, exc_info=True
            )

    def _trust_needed(self, principal: Principal) -> bool:
        return self.trusted_only and principal.api_key_id is None

    def _check_trusted(
        self, document: StoredDocument | None, principal: Principal
    ) -> None:
        if document is not None and document.trusted:
            return
        if principal.authentication_error is not None:
            raise DocumentRefused(
                401,
                "UNAUTHENTICATED",
                f"{principal.authentication_error}: " + _REGISTERED_ONLY,
                headers={"WWW-Authenticate": "Bearer"},
            )
        raise DocumentRefused(403, "TRUSTED_DOCUMENT_REQUIRED", _REGISTERED_ONLY)

    async def _automatic(
        self, data: GraphQLRequestData, persisted: Any, principal: Principal
    ) -> Registration | None:
        sha256 = _apq_hash(persisted)
        trust_needed = self._trust_needed(principal)
        if data.query is None:
            document = await self.documents.by_hash(sha256, trusted=trust_needed)
            if trust_needed:
                self._check_trusted(document, principal)
            if document is None:
                # Apollo's exact message: older clients look for it, not for the code.
                raise _not_found("PersistedQueryNotFound")
            data.query = document.text
            return None
        if document_hash(data.query) != sha256:
            raise _bad_request("provided sha does not match query")
        if trust_needed:
            document = await self.documents.by_hash(sha256, trusted=True)
            self._check_trusted(document, principal)
            return None
        return Registration(sha256, data.query)

    async def _by_document_id(self, document_id: str, principal: Principal) -> str:
        prefix, colon, payload = document_id.partition(":")
        trust_needed = self._trust_needed(principal)
        if colon:
            if prefix != "sha256" or not SHA256_HEX.fullmatch(payload):
                raise _bad_request(_BAD_DOCUMENT_ID)
            document = await self.documents.by_hash(
                payload.lower(), trusted=trust_needed
            )
        else:
            if not OTHER_ID.fullmatch(document_id):
                raise _bad_request(_BAD_DOCUMENT_ID)
            document = await self.documents.by_id(document_id, trusted=trust_needed)
        if trust_needed:
            self._check_trusted(document, principal)
        if document is None:
            raise _not_found(f"No document is registered as {document_id}.")
        return document.text


def _apq_hash(persisted: Any) -> str:
    """The sha256 an APQ extension names (lower case)."""
    if not isinstance(persisted, dict):
        raise _bad_request("extensions.persistedQuery must be an object.")
    if persisted.get("version") != 1:
        raise _bad_request("Unsupported persisted query version: only version 1 is.")
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256):
        raise _bad_request(
            "extensions.persistedQuery.sha256Hash must be 64 hex digits (a sha256)."
        )
    return sha256.lower()


async def _document_id(request: Request) -> str | None:
    """The `documentId` (or Relay's `doc_id`) of a request that sent no `query`."""
    if request.method == "GET":
        parameters: Mapping[str, Any] = request.query_params
    else:
        # Already read and parsed once by Strawberry (an object, or it would have been
        # refused); parsed again only for requests without a query, which are small.
        parameters = orjson.loads(await request.body())
    for name in ("documentId", "doc_id"):
        value = parameters.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise _bad_request(_BAD_DOCUMENT_ID)
            return value
    return None


def _validated(result: ExecutionResult) -> bool:
    """Whether execution began: the document parsed, validated and its variables fit."""
    errors = result.errors or ()
    return result.data is not None or not errors or any(e.path for e in errors)
