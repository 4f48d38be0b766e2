"""The ASGI application: lifespan, routes and HTTP-level limits."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from cross_web import HTTPException
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL

from app.auth import Authenticator
from app.config import Settings
from app.db import Database
from app.gc_tuning import tune_garbage_collector
from app.graphql.context import Context
from app.graphql.schema import build_schema
from app.migrate import prepare_database
from app.notify.dispatcher import Dispatcher

log = logging.getLogger("app")


class BackInStockGraphQL(GraphQL):
    """Strawberry's ASGI view with our context and a faster JSON codec."""

    def __init__(self, *args: Any, state: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.state = state

    async def get_context(self, request: Any, response: Any) -> Context:
        state = self.state
        principal = await state.authenticator.principal_for(
            request.headers.get("authorization")
        )
        return Context(
            database=state.database,
            settings=state.settings,
            principal=principal,
            notify_queued=state.notify_queued,
        )

    def decode_json(self, data: str | bytes) -> object:
        decoded = orjson.loads(data)
        # A bare string or number is valid JSON but never a GraphQL request.
        if not isinstance(decoded, (dict, list)):
            raise HTTPException(400, "The body must be a JSON object.")
        return decoded

    def encode_json(self, data: object) -> bytes:
        try:
            return orjson.dumps(data)
        except orjson.JSONEncodeError:
            # What the JSON scalar lets through is encodable (app.graphql.scalars); if
            # anything ever is not, the client still gets a GraphQL answer, not plain text.
            log.exception("response could not be encoded as JSON")
            return orjson.dumps(
                {
                    "data": None,
                    "errors": [
                        {
                            "message": "Internal server error.",
                            "extensions": {"code": "INTERNAL"},
                        }
                    ],
                }
            )


class BodyTooLarge(Exception):
    pass


class LimitRequestBody:
    """Refuse bodies over `max_bytes` with 413, whether announced or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (
            not declared.isdigit() or int(declared) > self.max_bytes
        ):
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {
                "errors": [
                    {
                        "message": f"Request body is larger than {self.max_bytes} bytes.",
                        "extensions": {"code": "PAYLOAD_TOO_LARGE"},
                    }
                ]
            },
            status_code=413,
        )
        await response(scope, receive, send)


async def healthz(_: Request) -> Response:
    """The process is up (says nothing of the database)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The process can reach its database."""
    try:
        async with request.app.state.database.reading() as session:
            await session.execute(text("SELECT 1"))
    except Exception:  # any failure means not ready
        log.warning("readiness check failed", exc_info=True)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    schema = build_schema(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = app.state
        state.settings = settings
        state.database = Database(settings)
        await prepare_database(state.database, settings)
        await state.database.tune()
        state.authenticator = Authenticator(
            state.database,
            settings.anonymous_permission_set,
            settings.api_key_cache_seconds,
        )
        dispatcher = (
            Dispatcher(state.database, settings) if settings.dispatch_in_serve else None
        )
        state.notify_queued = dispatcher.wake if dispatcher else (lambda: None)
        try:
            if dispatcher:
                await dispatcher.start()
            if settings.tune_garbage_collector:
                tune_garbage_collector()
            yield
        finally:
            if dispatcher:
                await dispatcher.stop()
            await state.authenticator.wait_for_background_writes()
            await state.database.dispose()

    app = Starlette(
        routes=[Route("/healthz", healthz), Route("/readyz", readyz)],
        lifespan=lifespan,
    )
    graphql_app = BackInStockGraphQL(schema, state=app.state)
    app.add_route("/graphql", graphql_app, methods=["GET", "POST"])
    app.add_middleware(LimitRequestBody, max_bytes=settings.max_request_bytes)
    # Outermost, so refusals (413) carry CORS headers too and browsers can read them.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[o.strip() for o in settings.cors_allow_origins.split(",") if o.strip()],
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Apollo-Require-Preflight"],
        max_age=600,
    )
    return app
