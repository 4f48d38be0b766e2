"""Schemathesis against a running server: no 5xx, always JSON, never INTERNAL or uncoded.

Run by .ci/fuzz, which starts the server and sets FUZZ_URL and FUZZ_KEY (an API key with
every permission, so elevated fields are reached too). Not collected by the normal suite.
"""

from __future__ import annotations

import json
import os
from typing import Any

import requests
import schemathesis
from graphql import NameNode, ObjectFieldNode, ValueNode, value_from_ast_untyped
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.graphql import nodes

URL = os.environ["FUZZ_URL"]
KEY = os.environ["FUZZ_KEY"]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
KEYED = {"Authorization": f"Bearer {KEY}"}


def _object(fields: dict[str, ValueNode]) -> ValueNode:
    return nodes.Object(
        [ObjectFieldNode(name=NameNode(value=k), value=v) for k, v in fields.items()]
    )


# The JSON scalar (options, template parameters): any JSON, with the numbers and text
# that broke it before (beyond 2^53 and 64 bits, 1e308, NUL) and some nesting.
_NAMES = st.from_regex(r"[_A-Za-z][_0-9A-Za-z]{0,7}", fullmatch=True)
_LEAVES = st.one_of(
    st.integers().map(nodes.Int),
    st.sampled_from([2**53, 2**64, -(2**63) - 1, 10**30]).map(nodes.Int),
    st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    st.text(max_size=20).map(nodes.String),
    st.sampled_from(["a\x00b", "\x00"]).map(nodes.String),
    st.booleans().map(nodes.Boolean),
    st.just(nodes.Null),
)
JSON_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(nodes.List),
        st.dictionaries(_NAMES, inner, max_size=4).map(_object),
    ),
    max_leaves=40,
)
# Federation representations: well-formed ones, and the malformed kinds a router never sends.
_KEY_TEXT = st.one_of(
    st.uuids().map(nodes.String),
    st.text(max_size=40).map(nodes.String),
    st.integers().map(nodes.Int),
)
REPRESENTATIONS = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {
            "__typename": st.sampled_from(
                ["BackInStockNotificationRequest", "CatalogItem", "Nope", "Query"]
            ).map(nodes.String),
        },
        optional={
            "id": _KEY_TEXT,
            "appId": _KEY_TEXT,
            "catalogItemId": _KEY_TEXT,
            "extra": JSON_VALUES,
        },
    ).map(_object),
)
schemathesis.graphql.scalar("JSON", JSON_VALUES)
schemathesis.graphql.scalar("_Any", REPRESENTATIONS)

schema = schemathesis.graphql.from_url(URL, headers=KEYED, wait_for_schema=30)
fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


def problems(status: int, body: bytes) -> list[str]:
    """What is wrong with one answer: a 5xx, a body that is not JSON, INTERNAL, no code."""
    found = []
    if status >= 500:
        found.append(f"HTTP {status}")
    try:
        answer: Any = json.loads(body)
    except ValueError:
        return [*found, f"not JSON: {body[:200]!r}"]
    errors = answer.get("errors") or [] if isinstance(answer, dict) else []
    for error in errors:
        code = (error.get("extensions") or {}).get("code")
        if code is None or code == "INTERNAL":
            found.append(f"error with code {code}: {error.get('message')}")
    return found


def check(case: Any, headers: dict[str, str] | None) -> None:
    response = case.call(headers=headers)
    found = problems(response.status_code, response.content)
    assert not found, f"{found}\nquery: {case.body}"


@schema.parametrize()
@fuzz_settings
def test_key_holders_get_coded_json_answers(case: Any) -> None:
    check(case, KEYED)


@schema.parametrize()
@fuzz_settings
def test_visitors_get_coded_json_answers(case: Any) -> None:
    check(case, {})


ENTITIES = """
query($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on BackInStockNotificationRequest { id status }
    ... on CatalogItem {
      backInStockNotificationRequestsCount
      backInStockNotificationRequests(first: 5) { totalCount nodes { id } }
    }
  }
}
"""


# Schemathesis leaves out federation's fields; `_entities` is fuzzed here, as a router
# (or an attacker) would call it, with representations as variables.
@given(st.lists(REPRESENTATIONS.map(value_from_ast_untyped), max_size=4))
@fuzz_settings
def test_entities_get_coded_json_answers(representations: list[Any]) -> None:
    for headers in (KEYED, {}):
        response = requests.post(
            URL,
            json={"query": ENTITIES, "variables": {"representations": representations}},
            headers=headers,
            timeout=30,
        )
        found = problems(response.status_code, response.content)
        assert not found, f"{found}\nrepresentations: {representations!r}"
