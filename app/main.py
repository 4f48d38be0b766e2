"""The ASGI application: lifespan, routes and HTTP-level limits."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from app.auth import Authenticator
from app.config import Settings
from app.events.feed import EventFeed
from app.gc_tuning import tune_garbage_collector
from app.graphql.schema import BackInStockSchema, build_schema
from app.http import graphiql
from app.http.confirmation import confirm
from app.http.health import healthz, readyz
from app.http.limits import LimitRequestBody
from app.http.persisted import PersistedDocuments
from app.http.unsubscribe import unsubscribe
from app.http.view import GraphQLView
from app.keys import load_server_keys
from app.migrate import prepare_database
from app.models import Clock, utc_now
from app.notify.dispatcher import Dispatcher
from app.services.limits import SignUpPolicy
from app.services.links import CONFIRM_PATH, UNSUBSCRIBE_PATH, Links
from app.services.trusted_documents import TrustedDocuments
from app.storage import open_store


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = utc_now,
    schema: BackInStockSchema | None = None,
) -> Starlette:
    """The application; `clock` is what every service reads the time from.

    `schema` is `build_schema(settings)` unless given (tests share one among apps of the
    same settings).
    """
    settings = settings or Settings()
    schema = schema or build_schema(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = app.state
        state.settings = settings
        state.clock = clock
        state.store = open_store(settings)
        state.sign_up_policy = SignUpPolicy.from_settings(settings)
        await prepare_database(state.store, settings)
        await state.store.prepare()
        state.keys = await load_server_keys(state.store, settings)
        state.links = Links(state.keys, settings.links_base_url)
        state.authenticator = Authenticator(
            state.store,
            settings.anonymous_permission_set,
            settings.api_key_cache_seconds,
        )
        state.persisted_documents = PersistedDocuments(
            TrustedDocuments(state.store),
            trusted_only=settings.trusted_documents_only,
            clock=clock,
        )
        dispatcher = (
            Dispatcher(state.store, settings, clock=clock)
            if settings.dispatch_in_serve
            else None
        )
        state.notify_queued = dispatcher.wake if dispatcher else (lambda: None)
        # Subscriptions' events, from every process.
        state.events = EventFeed(state.store, settings)
        try:
            await state.events.start()
            if dispatcher:
                await dispatcher.start()
            if settings.tune_garbage_collector:
                tune_garbage_collector()
            yield
        finally:
            if dispatcher:
                await dispatcher.stop()
            await state.events.stop()
            await state.authenticator.wait_for_background_writes()
            await state.store.dispose()

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route(graphiql.STATIC_PATH, graphiql.static_file, methods=["GET"]),
            Route(UNSUBSCRIBE_PATH + "{token}", unsubscribe, methods=["GET", "POST"]),
            Route(CONFIRM_PATH + "{token}", confirm, methods=["GET", "POST"]),
        ],
        lifespan=lifespan,
    )
    view = GraphQLView(
        schema,
        state=app.state,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        allowed_origins=settings.cors_origin_list,
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
    )
    # Every method reaches the view, so even a PUT is answered as GraphQL (405, JSON);
    # subscriptions speak graphql-transport-ws on the same path. The view is an ASGI app.
    app.router.routes += [Route("/graphql", view), WebSocketRoute("/graphql", view)]
    app.add_middleware(LimitRequestBody, max_bytes=settings.max_request_bytes)
    # Outermost, so refusals (413) carry CORS headers too and browsers can read them.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origin_list,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Apollo-Require-Preflight"],
        max_age=600,
    )
    return app
