"""The subgraph in Apollo's own tools: `@apollo/composition` composes it with a products
subgraph that references CatalogItem, and an `@apollo/gateway` over both resolves the
demand on each product through `_entities`, with the caller's API key forwarded.

Skipped where node or the packages are missing (.ci/run installs them into
.ci/federation/ with `npm ci`).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import build_ast_schema, parse

from app.config import Settings
from app.graphql.schema import schema_sdl
from app.permissions import Permission
from tests.documents import CREATE_REQUEST, MARK_AS_SENT, START_COLLECTING, new_request
from tests.test_schema import ROOT
from tests.test_serve import free_port

SCRIPTS = Path(__file__).resolve().parent / "federation"
NODE_MODULES = ROOT / ".ci" / "federation" / "node_modules"
PACKAGES = [
    "@apollo/composition",
    "@apollo/gateway",
    "@apollo/server",
    "@apollo/subgraph",
]
PRODUCTS_SDL = (SCRIPTS / "products.graphql").read_text()
DEMAND_ON_PRODUCTS = """
{ products { id catalogItem { backInStockNotificationRequestsCount } } }
"""
READ_REQUESTS = Permission.READ_BACK_IN_STOCK_NOTIFICATION_REQUESTS.name


@pytest.fixture(scope="module")
def node_env() -> dict[str, str]:
    """The environment node runs our scripts in; skips without node or the packages."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    missing = [name for name in PACKAGES if not (NODE_MODULES / name).is_dir()]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed: npm ci --prefix .ci/federation"
        )
    return {**os.environ, "NODE_PATH": str(NODE_MODULES)}


def compose(node_env: dict[str, str], sdl: str) -> dict[str, Any]:
    """Compose this SDL with the products subgraph's, as rover or a gateway would."""
    subgraphs = [
        {"name": "backinstock", "url": "http://127.0.0.1:4001/graphql", "sdl": sdl},
        {
            "name": "products",
            "url": "http://127.0.0.1:4002/graphql",
            "sdl": PRODUCTS_SDL,
        },
    ]
    done = subprocess.run(
        ["node", str(SCRIPTS / "compose.cjs")],
        input=json.dumps(subgraphs),
        check=False,
        capture_output=True,
        text=True,
        env=node_env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def supergraph_field_directives(
    supergraph: str, type_name: str, field: str
) -> list[str]:
    schema = build_ast_schema(parse(supergraph), assume_valid_sdl=True)
    node = schema.type_map[type_name].fields[field].ast_node  # type: ignore[union-attr]
    return [directive.name.value for directive in node.directives]


def test_composes_with_a_products_subgraph_and_keeps_the_authorization(node_env):
    result = compose(node_env, schema_sdl())

    assert result["errors"] == []
    supergraph = result["supergraphSdl"]
    assert 'import: ["@requiresPermission"]' in supergraph
    assert (
        f'@requiresScopes(scopes: [["{READ_REQUESTS}"]]) '
        f"@requiresPermission(permission: {READ_REQUESTS})"
    ) in supergraph
    assert supergraph_field_directives(
        supergraph, "CatalogItem", "backInStockNotificationRequestsCount"
    ) == ["join__field", "requiresScopes", "requiresPermission"]
    assert supergraph_field_directives(
        supergraph, "CatalogItem", "backInStockCollectingRequests"
    ) == ["join__field", "requiresPermission"]


@pytest.mark.parametrize(
    "configuration",
    [
        {"anonymous_permissions": ""},
        {"anonymous_permissions": ",".join(Permission.__members__)},
        {"requires_scopes": False},
    ],
    ids=["visitors-hold-nothing", "visitors-hold-everything", "requires-scopes-off"],
)
def test_composes_in_every_configuration(node_env, configuration):
    sdl = schema_sdl(Settings(_env_file=None, **configuration))

    result = compose(node_env, sdl)

    assert result["errors"] == []


# ------------------------------------------------------------------------ a gateway


@contextmanager
def serving(
    database_url: str, tmp_path: Path, **environment: str
) -> Iterator[tuple[str, dict[str, str]]]:
    """`python -m app serve` (uvicorn) on a loopback port: its URL and environment."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MAIL_URL": f"file://{tmp_path / 'outbox'}",
        "DISPATCH_IN_SERVE": "false",
        **environment,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            process, lambda: httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        )
        yield base, env
    finally:
        process.terminate()
        process.wait(timeout=15)


def wait_for(process: subprocess.Popen[str], ready: Any, attempts: int = 300) -> None:
    for _ in range(attempts):
        if process.poll() is not None:
            pytest.fail(
                f"exited early: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            if ready():
                return
        except httpx.TransportError:
            pass
        threading.Event().wait(0.1)
    pytest.fail("did not become ready")


@contextmanager
def gateway(node_env: dict[str, str], subgraph_url: str) -> Iterator[str]:
    """The products subgraph and a gateway over it and `subgraph_url`: the gateway's URL.

    Fails with the gateway's own message when it will not start.
    """
    process = subprocess.Popen(
        ["node", str(SCRIPTS / "gateway.cjs"), subgraph_url],
        env=node_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout or ()], daemon=True
    ).start()
    try:
        while True:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                pytest.fail("the gateway did not start")
            if line.startswith("{"):
                yield json.loads(line)["gateway"]
                return
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def gateway_error(node_env: dict[str, str], subgraph_url: str) -> str:
    """What the gateway says when it refuses to start (it exits)."""
    done = subprocess.run(
        ["node", str(SCRIPTS / "gateway.cjs"), subgraph_url],
        env=node_env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0, done.stdout
    return done.stderr


def mint_key(env: dict[str, str]) -> str:
    minted = subprocess.run(
        [sys.executable, "-m", "app", "create-api-key", "--name", "gateway"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return minted.stdout.strip().splitlines()[-1]


def post(
    url: str, query: str, variables: dict[str, Any], key: str | None = None
) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.post(
        url, json={"query": query, "variables": variables}, headers=headers, timeout=30
    )
    return response.json()


def seed_demand(base: str, key: str) -> None:
    """shoe-1: two shoppers waiting; shoe-2: one already notified."""
    graphql = f"{base}/graphql"
    assert "errors" not in post(graphql, START_COLLECTING, {"appId": "stores"}, key)
    for email in ("a@x.com", "b@x.com"):
        assert "errors" not in post(graphql, CREATE_REQUEST, new_request(email=email))
    sent = post(graphql, CREATE_REQUEST, new_request(item_id="shoe-2"))
    request_id = sent["data"]["createBackInStockNotificationRequest"]["id"]
    assert "errors" not in post(graphql, MARK_AS_SENT, {"id": request_id}, key)


def test_a_gateway_resolves_the_demand_on_products_through_entities(
    node_env, database_url, tmp_path
):
    # given: the service as @apollo/gateway needs it (no authorization directives)
    with serving(database_url, tmp_path, REQUIRES_SCOPES="false") as (base, env):
        key = mint_key(env)
        seed_demand(base, key)
        with gateway(node_env, f"{base}/graphql") as url:
            # when
            with_key = post(url, DEMAND_ON_PRODUCTS, {}, key)
            as_visitor = post(url, DEMAND_ON_PRODUCTS, {})

    # then
    assert "errors" not in with_key
    assert with_key["data"]["products"] == [
        {"id": "p1", "catalogItem": {"backInStockNotificationRequestsCount": 2}},
        {"id": "p2", "catalogItem": {"backInStockNotificationRequestsCount": 0}},
    ]
    codes = {error["extensions"]["code"] for error in as_visitor["errors"]}
    assert codes == {"FORBIDDEN"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_gateway_refuses_authorization_directives_hence_requires_scopes_off(
    node_env, database_url, tmp_path
):
    """Why REQUIRES_SCOPES exists: @apollo/gateway supports no `for: SECURITY` feature
    (only Apollo Router does), so it refuses the default SDL's supergraph."""
    with serving(database_url, tmp_path) as (base, _):
        refusal = gateway_error(node_env, f"{base}/graphql")

    assert "requiresScopes" in refusal
    assert "is for: SECURITY but is unsupported" in refusal
