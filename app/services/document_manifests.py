"""The manifests a storefront's build writes, read into the documents they list.

- Apollo's persisted-query manifest (`npx generate-persisted-query-manifest`):
  `{"format": "apollo-persisted-query-manifest", "version": 1, "operations":
  [{"id", "name", "type", "body"}]}`, each id the sha256 of its body.
- Relay's `persisted_queries.json` (relay-compiler's `persistConfig.file`): an object of
  id -> text, the id an md5 (Relay's default), sha1 or sha256 of the text, or anything a
  persisting service handed out. It is kept as the document's other id.
"""

from __future__ import annotations

import json
import re
from typing import Any

from graphql import GraphQLError, parse

from app.services.trusted_documents import ManifestDocument, document_hash

APOLLO_FORMAT = "apollo-persisted-query-manifest"
# GraphQL over HTTP's custom document identifier: unreserved URL characters only.
OTHER_ID = re.compile(r"[A-Za-z0-9._~-]{1,200}")


class ManifestError(ValueError):
    """A manifest that cannot be registered; nothing of it is."""


def read_manifest(content: str | bytes) -> list[ManifestDocument]:
    """The documents of an Apollo or Relay manifest; raises ManifestError."""
    try:
        manifest = json.loads(content)
    except (ValueError, UnicodeDecodeError) as error:
        raise ManifestError(f"not JSON: {error}") from None
    if not isinstance(manifest, dict):
        raise ManifestError("not a manifest: a JSON object was expected")
    if "format" in manifest and not isinstance(manifest["format"], str):
        raise ManifestError("not a manifest: `format` is not a string")
    if manifest.get("format") == APOLLO_FORMAT:
        return _apollo(manifest)
    if all(isinstance(text, str) for text in manifest.values()):
        return _relay(manifest)
    raise ManifestError(
        "neither an Apollo persisted-query manifest (format "
        f"{APOLLO_FORMAT!r}) nor Relay's persisted_queries.json (an object of id -> text)"
    )


def _apollo(manifest: dict[str, Any]) -> list[ManifestDocument]:
    if manifest.get("version") != 1:
        raise ManifestError(
            f"Apollo manifest version {manifest.get('version')!r}: only version 1 is known"
        )
    operations = manifest.get("operations")
    if not isinstance(operations, list):
        raise ManifestError("Apollo manifest without an `operations` list")
    documents = []
    for position, operation in enumerate(operations):
        where = f"operation {position}"
        if not isinstance(operation, dict):
            raise ManifestError(f"{where} is not an object")
        where = f"operation {position} ({operation.get('name')!r})"
        body, given = operation.get("body"), operation.get("id")
        if not isinstance(body, str) or not isinstance(given, str):
            raise ManifestError(f"{where}: `id` and `body` must be strings")
        sha256 = document_hash(body)
        if given != sha256:
            raise ManifestError(
                f"{where}: id {given} is not the sha256 of its body ({sha256}); "
                "ids other than the body's sha256 are not supported"
            )
        documents.append(ManifestDocument(_parsed(body, where), sha256))
    return documents


def _relay(manifest: dict[str, str]) -> list[ManifestDocument]:
    documents = []
    for given, text in manifest.items():
        if not OTHER_ID.fullmatch(given):
            raise ManifestError(
                f"id {given!r}: an id is 1 to 200 letters, digits, '-', '.', '_' or '~'"
            )
        sha256 = document_hash(text)
        other_id = None if given == sha256 else given
        documents.append(
            ManifestDocument(_parsed(text, f"id {given}"), sha256, other_id)
        )
    return documents


def _parsed(text: str, where: str) -> str:
    """The text, once it is known to parse as GraphQL."""
    try:
        parse(text, no_location=True)
    except GraphQLError as error:
        raise ManifestError(
            f"{where}: not a GraphQL document: {error.message}"
        ) from None
    return text
