"""The GraphQL endpoint: Strawberry's ASGI view with the service's context and codec.

On top of Strawberry's view, through its overridable hooks:
- `application/graphql-response+json` is negotiated as GraphQL over HTTP says
  (app.http.negotiation); `application/json` answers as it always did;
- a mutation sent with GET is refused with 405 and `Allow: POST`;
- every failure outside execution (a body that is not JSON, a database outage while the
  API key is looked up) is a GraphQL JSON error with `extensions.code`, never plain text;
- a request may name its document instead of sending it (`documentId`, Apollo's APQ), and
  TRUSTED_DOCUMENTS_ONLY keeps visitors to registered documents (app.http.persisted);
- GraphiQL is served from files vendored into the package (app.http.graphiql);
- a response with a RATE_LIMITED error carries `Retry-After`, and the context carries the
  client's address (app.http.clients) for the limits on visitors' creates.
- WebSockets speak graphql-transport-ws (subscriptions): the credentials come in
  `connection_init`'s payload, the Origin is checked against CORS_ALLOW_ORIGINS.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import orjson
from cross_web import HTTPException, StarletteRequestAdapter
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType as StrawberryOperationType

from app.graphql.context import Context
from app.graphql.subscriptions import SubscriptionContext, credentials
from app.http import graphiql
from app.http.clients import client_address
from app.http.failures import RETRY_AFTER_SECONDS, classify
from app.http.limits import BodyTooLarge
from app.http.negotiation import (
    GRAPHQL_RESPONSE_JSON,
    JSON,
    error_body,
    is_request_error,
    request_error_status,
    response_media_type,
)
from app.http.persisted import DOCUMENT_PARAMETERS, DocumentRefused

log = logging.getLogger("app.http")


SUBSCRIPTIONS_OVER_HTTP = (
    "Subscriptions run over a WebSocket to this endpoint (graphql-transport-ws), "
    "not over HTTP."
)


def _is_subscription(query: str | None, operation_name: str | None) -> bool:
    """False for a query or mutation; True when unsure (the schema then says why)."""
    try:
        operation = get_operation_ast(parse(query or ""), operation_name)
    except GraphQLError:
        return True
    return operation is None or operation.operation is OperationType.SUBSCRIPTION


async def _refused_over_websocket() -> AsyncIterator[PreExecutionError]:
    message = "Only subscriptions run over the WebSocket; send queries and mutations over HTTP."
    yield PreExecutionError(
        data=None, errors=[GraphQLError(message, extensions={"code": "BAD_REQUEST"})]
    )


class _SubscriptionsOnly:
    """The schema as a WebSocket sees it: subscriptions only. Queries and mutations go
    over HTTP, where the body limits, trusted documents and sign-up limits apply."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema

    async def stream(self, query: str | None, *args: Any, **kwargs: Any) -> Any:
        if not _is_subscription(query, kwargs.get("operation_name")):
            return _refused_over_websocket()
        return await self._schema.stream(query, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)


class CodedTransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    """graphql-transport-ws for subscriptions only, with a code on the error for one
    subscription too many."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = _SubscriptionsOnly(self.schema)  # type: ignore[assignment]

    async def handle_subscribe(self, message: Any) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and limit is not None
            and message["id"] not in self.operations
            and len(self.operations) >= limit
        ):
            await self.send_message(
                {
                    "id": message["id"],
                    "type": "error",
                    "payload": [
                        {
                            "message": f"At most {limit} subscriptions per connection "
                            "(MAX_SUBSCRIPTIONS_PER_CONNECTION).",
                            "extensions": {"code": "TOO_MANY_SUBSCRIPTIONS"},
                        }
                    ],
                }
            )
            return
        await super().handle_subscribe(message)


def _retry_after(
    response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
) -> int | None:
    """The longest `retryAfterSeconds` of the RATE_LIMITED errors, if any."""
    responses = response_data if isinstance(response_data, list) else [response_data]
    waits = []
    for response in responses:
        for error in response.get("errors") or ():
            extensions = error.get("extensions") if isinstance(error, dict) else None
            if (
                isinstance(extensions, dict)
                and extensions.get("code") == "RATE_LIMITED"
            ):
                wait = extensions.get("retryAfterSeconds")
                if isinstance(wait, int):
                    waits.append(wait)
    return max(waits) if waits else None


class RequestAdapter(StarletteRequestAdapter):
    """Strawberry's view of a request, with the Content-Type's media type in lower case:
    media types are case-insensitive (RFC 9110), and Strawberry compares them as given."""

    @property
    def content_type(self) -> str | None:
        value = super().content_type
        if value is None:
            return None
        media_type, separator, parameters = value.partition(";")
        return media_type.strip().lower() + separator + parameters


class GraphQLView(GraphQL[Context, None]):
    """Serves /graphql; `state` is the app's state (store, settings, authenticator, clock)."""

    graphql_transport_ws_handler_class = CodedTransportWSHandler
    request_adapter_class = RequestAdapter

    def __init__(self, *args: Any, state: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # WebSocket subscriptions, when routed here: Strawberry's own handling.
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self._answer(request)
        except ClientDisconnect:
            return  # nobody is left to answer
        await response(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        try:
            # Before the context: the page needs no API key lookup, so it opens even while
            # the database is down.
            if self.should_render_graphql_ide(StarletteRequestAdapter(request)):
                return await self.render_graphql_ide(request)
            return await self.run(request)
        except HTTPException as error:
            return self.error_response(
                request, error.status_code, "BAD_REQUEST", error.reason
            )
        except DocumentRefused as refusal:
            media_type = response_media_type(request.headers.get("accept"))
            response = self.error_response(
                request, refusal.status_for(media_type), refusal.code, refusal.message
            )
            response.headers.update(refusal.headers)
            return response
        except (BodyTooLarge, ClientDisconnect):
            raise  # answered by the body limit; or nobody to answer
        except Exception as error:  # noqa: BLE001 - anything before or around execution
            status, code, message = classify(error)
            response = self.error_response(request, status, code, message)
            if status == 503:
                response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response

    def error_response(
        self, request: Request, status: int, code: str, message: str
    ) -> Response:
        """A GraphQL response with one coded error and no `data`: the request never ran."""
        response = Response(
            self.encode_json(error_body(message, code)),
            status_code=status,
            media_type=response_media_type(request.headers.get("accept")),
        )
        if status == 405:
            allowed = "POST" if request.method == "GET" else "GET, POST"
            response.headers["Allow"] = allowed
        return response

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET naming its document (APQ, documentId) is a query, whatever it accepts.
        return super().should_render_graphql_ide(request) and not any(
            name in request.query_params for name in DOCUMENT_PARAMETERS
        )

    async def get_context(self, request: Any, response: Any) -> Context:
        state = self.state
        if isinstance(request, WebSocket):
            # Anonymous until `connection_init` says otherwise (on_ws_connect).
            return SubscriptionContext(
                store=state.store,
                settings=state.settings,
                principal=state.authenticator.anonymous,
                keys=state.keys,
                notify_queued=state.notify_queued,
                clock=state.clock,
                events=state.events,
                authenticator=state.authenticator,
                authorization=request.headers.get("authorization"),
            )
        principal = await state.authenticator.principal_for(
            request.headers.get("authorization")
        )
        return Context(
            store=state.store,
            settings=state.settings,
            principal=principal,
            keys=state.keys,
            notify_queued=state.notify_queued,
            clock=state.clock,
            find_client_address=partial(
                client_address, request.scope, state.settings.trusted_proxy_networks
            ),
            sign_up_policy=state.sign_up_policy,
        )

    async def on_ws_connect(self, context: Any) -> Any:
        """Take the credentials of `connection_init` (Authorization, or Apollo Router's
        token); bad ones are refused by each subscription as UNAUTHENTICATED."""
        authorization = credentials(context.connection_params, context.authorization)
        try:
            context.principal = await self.state.authenticator.principal_for(
                authorization
            )
        except Exception as error:  # the database is down
            classify(error)
            raise ConnectionRejectionError() from error
        context.authorization = authorization
        return await super().on_ws_connect(context)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        # Read back by create_response, which is not given the request.
        sub_response.media_type = response_media_type(request.headers.get("accept"))
        return sub_response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if response_media_type(
            request.headers.get("accept")
        ) == GRAPHQL_RESPONSE_JSON and is_request_error(response):
            del response["data"]  # the spec: a request error has no data entry
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media_type = sub_response.media_type or JSON
        status = 200
        if isinstance(response_data, dict) and "data" not in response_data:
            status = request_error_status(response_data)
        response = Response(
            self.encode_json(response_data), status_code=status, media_type=media_type
        )
        response.headers.raw.extend(sub_response.headers.raw)
        retry_after = _retry_after(response_data)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: Context,
        root_value: Any,
        request_data: Any,
    ) -> ExecutionResult:
        persisted = self.state.persisted_documents
        registration = await persisted.resolve(request, request_data, context.principal)
        try:
            result = await super().execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=context,
                root_value=root_value,
                request_data=request_data,
            )
        except HTTPException as error:
            refused = error.__cause__
            if not isinstance(refused, InvalidOperationTypeError):
                raise
            if refused.operation_type is StrawberryOperationType.SUBSCRIPTION:
                raise HTTPException(400, SUBSCRIPTIONS_OVER_HTTP) from refused
            # GET is safe by HTTP's rules: the spec answers a mutation over GET with 405.
            raise HTTPException(405, error.reason) from refused
        if registration is not None:
            await persisted.keep(registration, result)
        return result

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql.page()

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
