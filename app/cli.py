"""python -m app serve | dispatch | create-api-key | list-api-keys | revoke-api-key |
trust-documents | export-schema | export-requests | export-email | erase-email |
migrate"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError

from app.config import Settings
from app.http.server import add_serve_arguments
from app.logmask import MaskingFormatter
from app.permissions import Permission

if TYPE_CHECKING:
    from app.storage import Store

T = TypeVar("T")
log = logging.getLogger("app")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        messages = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()
        )
        sys.exit(f"configuration error: {messages}")


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.http.server import serve_options
    from app.main import create_app

    settings = _with_own_address(_settings(), args.host, args.port)
    log.info("serving HTTP/1.1 with %s on the %s event loop", args.http, args.loop)
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level="info",
        lifespan="on",
        # The body limit lives in the app; the head's size and time limits here.
        **serve_options(args),
    )
    return 0


def _with_own_address(settings: Settings, host: str, port: int) -> Settings:
    """PUBLIC_BASE_URL, by default the address `serve` listens on."""
    if settings.public_base_url is not None:
        _warn_unless_https(settings.public_base_url)
        return settings
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"  # listening everywhere: this machine, at least, reaches it
    if ":" in host:
        host = f"[{host}]"
    own = f"http://{host}:{port}"
    _warn_unset(own)
    return settings.model_copy(update={"public_base_url": own})


def _warn_unset(used: str) -> None:
    log.warning(
        "PUBLIC_BASE_URL is unset: links in emails (unsubscribe, confirm) point at %s; "
        "set it to the https address shoppers reach the servers at",
        used,
    )


def _warn_unless_https(base: str) -> None:
    if not base.startswith("https://"):
        log.warning(
            "PUBLIC_BASE_URL %s is not https: mailbox providers offer one-click "
            "unsubscribe (RFC 8058) only for https links",
            base,
        )


def dispatch(_: argparse.Namespace) -> int:
    from app.notify.worker import run_worker

    settings = _settings()
    if settings.public_base_url is None:
        _warn_unset(settings.links_base_url)
    else:
        _warn_unless_https(settings.public_base_url)
    return asyncio.run(run_worker(settings))


async def _with_store(action: Callable[[Store], Awaitable[T]]) -> T:
    from app.migrate import prepare_database
    from app.storage import open_store

    settings = _settings()
    store = open_store(settings)
    try:
        await prepare_database(store, settings)
        return await action(store)
    finally:
        await store.dispose()


def create_api_key(args: argparse.Namespace) -> int:
    from app.auth import create_api_key as mint

    names = args.permission or list(Permission.__members__)
    unknown = [name for name in names if name not in Permission.__members__]
    if unknown:
        sys.exit(
            f"unknown permission(s): {', '.join(unknown)}; known: {', '.join(Permission.__members__)}"
        )

    permissions = frozenset(Permission[n] for n in names)
    record, key = asyncio.run(
        _with_store(lambda store: mint(store, name=args.name, permissions=permissions))
    )
    print(f"created API key {record.id} ({record.name}) with {record.permissions}")
    print("store it now; it is not shown again:")
    print(key)
    return 0


def list_api_keys(_: argparse.Namespace) -> int:
    from app.auth import list_api_keys as list_keys

    keys = asyncio.run(_with_store(list_keys))
    print("id\tname\tpermissions\tcreated\tlast used\trevoked")
    for key in keys:
        print(
            f"{key.id}\t{key.name}\t{key.permissions}\t{key.created_date.isoformat()}\t"
            f"{key.last_used_date.isoformat() if key.last_used_date else '-'}\t"
            f"{key.revoked_date.isoformat() if key.revoked_date else '-'}"
        )
    return 0


def revoke_api_key(args: argparse.Namespace) -> int:
    from app.auth import revoke_api_key as revoke

    try:
        key_id = uuid.UUID(args.id)
    except ValueError:
        sys.exit(f"not an API key id: {args.id}")

    if not asyncio.run(_with_store(lambda store: revoke(store, id=key_id))):
        sys.exit(f"no active API key with id {key_id}")
    print(f"revoked API key {key_id}")
    return 0


def trust_documents(args: argparse.Namespace) -> int:
    from app.services.document_manifests import ManifestError, read_manifest
    from app.services.trusted_documents import (
        ConflictingDocumentId,
        manifest_source,
    )
    from app.services.trusted_documents import (
        trust_documents as register,
    )

    path = Path(args.manifest)
    try:
        documents = read_manifest(path.read_bytes())
    except OSError as error:
        sys.exit(f"cannot read {path}: {error.strerror or error}")
    except ManifestError as error:
        sys.exit(f"{path}: {error}; nothing registered")
    try:
        done = asyncio.run(
            _with_store(
                lambda store: register(
                    store, documents, source=manifest_source(path.name)
                )
            )
        )
    except ConflictingDocumentId as error:
        sys.exit(f"{path}: {error}; nothing registered")
    print(
        f"{path}: {len(documents)} documents; {done.added} added, "
        f"{done.now_trusted} known through APQ and now trusted, {done.known} already trusted"
    )
    return 0


def _privacy_call(action: Callable[[Store], Awaitable[T]]) -> T:
    from app.services.errors import InvalidArgument

    try:
        return asyncio.run(_with_store(action))
    except InvalidArgument as error:
        sys.exit(
            "; ".join(f"{v.field} {v.description}" for v in error.field_violations)
        )


def export_email(args: argparse.Namespace) -> int:
    from app.services.privacy import export_email as export

    document = _privacy_call(lambda store: export(store, email=args.email))
    print(json.dumps(document, indent=2, ensure_ascii=False))
    return 0


def erase_email(args: argparse.Namespace) -> int:
    from app.services.privacy import erase_email as erase

    removed = _privacy_call(lambda store: erase(store, email=args.email))
    print(f"erased {removed} request(s) and everything else stored about the address")
    return 0


def export_schema(args: argparse.Namespace) -> int:
    from app.graphql.schema import schema_sdl

    sdl = schema_sdl()
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        Path(args.output).write_text(sdl)
        print(f"wrote {args.output}")
    return 0


def export_requests(args: argparse.Namespace) -> int:
    from app.graphql.client_filter import FilterError, filter_from_json
    from app.graphql.errors import graphql_path
    from app.request_export import export_requests as export
    from app.services.errors import InvalidArgument
    from app.services.export import prepare_export

    try:
        query = prepare_export(filter_from_json(args.filter) if args.filter else None)
    except FilterError as error:
        sys.exit(f"--filter: {error}")
    except InvalidArgument as error:
        broken = (
            f"{graphql_path(v.field)}: {v.description}" for v in error.field_violations
        )
        sys.exit(f"--filter: {'; '.join(broken)}")

    opened = (
        open(args.output, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
        if args.output != "-"
        else contextlib.nullcontext(sys.stdout)
    )
    try:
        with opened as output:
            written = asyncio.run(
                _with_store(
                    lambda store: export(
                        store, output=output, format=args.format, query=query
                    )
                )
            )
    except BrokenPipeError:  # e.g. `| head`: the reader has what it wanted
        sys.stderr.close()
        return 0
    if sys.stderr.isatty():
        print(f"exported {written} requests to {args.output}", file=sys.stderr)
    return 0


def migrate(_: argparse.Namespace) -> int:
    from app.migrate import prepare_database
    from app.storage import open_store

    async def run() -> None:
        settings = _settings()
        store = open_store(settings)
        try:
            await prepare_database(store, settings, migrate=True)
        finally:
            await store.dispose()

    asyncio.run(run())
    print("database schema is up to date")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="serve GraphQL at /graphql")
    add_serve_arguments(serve_cmd)
    serve_cmd.set_defaults(run=serve)

    commands.add_parser("dispatch", help="deliver queued notifications").set_defaults(
        run=dispatch
    )

    create = commands.add_parser(
        "create-api-key", help="mint an API key (printed once)"
    )
    create.add_argument("--name", required=True)
    create.add_argument(
        "--permission",
        action="append",
        metavar="P",
        help="a permission to grant (repeatable; default: all five)",
    )
    create.set_defaults(run=create_api_key)

    commands.add_parser("list-api-keys", help="list API keys").set_defaults(
        run=list_api_keys
    )

    revoke = commands.add_parser("revoke-api-key", help="revoke an API key")
    revoke.add_argument("id")
    revoke.set_defaults(run=revoke_api_key)

    trust = commands.add_parser(
        "trust-documents",
        help="register the documents of an Apollo persisted-query manifest or of "
        "Relay's persisted_queries.json",
    )
    trust.add_argument("manifest", metavar="MANIFEST")
    trust.set_defaults(run=trust_documents)

    export = commands.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument(
        "--output", default="schema.graphql", help="file, or - for stdout"
    )
    export.set_defaults(run=export_schema)

    export_cmd = commands.add_parser(
        "export-requests", help="write every matching request to a CSV or JSONL file"
    )
    export_cmd.add_argument("--output", required=True, help="file, or - for stdout")
    export_cmd.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    export_cmd.add_argument(
        "--filter",
        metavar="JSON",
        help='the API\'s filter, as a client writes it, e.g. \'{"status": {"eq": "RECEIVED"}}\'',
    )
    export_cmd.set_defaults(run=export_requests)

    commands.add_parser(
        "migrate", help="bring the database schema up to date"
    ).set_defaults(run=migrate)

    exporting = commands.add_parser(
        "export-email", help="print everything stored about an email address (JSON)"
    )
    exporting.add_argument("email")
    exporting.set_defaults(run=export_email)

    erasing = commands.add_parser(
        "erase-email", help="delete everything stored about an email address"
    )
    erasing.add_argument("email")
    erasing.set_defaults(run=erase_email)
    return root


def main(argv: list[str] | None = None) -> int:
    handler = logging.StreamHandler()
    # Email addresses are masked in everything logged (app.logmask).
    handler.setFormatter(
        MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    args = parser().parse_args(argv)
    return int(args.run(args) or 0)
