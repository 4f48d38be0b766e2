"""Counting requests by catalog reference."""

from __future__ import annotations

from tests.documents import (
    COUNT_BY_REFERENCES,
    MARK_AS_SENT,
    create,
    reference,
)


async def test_counts_follow_the_given_order_with_zeros(gql, admin_key, collecting):
    await create(gql, email="a@x.com", item_id="one")
    await create(gql, email="b@x.com", item_id="one")
    await create(gql, email="a@x.com", item_id="two")
    refs = [reference("two"), reference("none"), reference("one")]

    result = await gql(COUNT_BY_REFERENCES, {"refs": refs}, key=admin_key)

    counts = result.data["backInStockNotificationRequestsCountByCatalogReferences"]
    assert [(c["catalogReference"]["catalogItemId"], c["count"]) for c in counts] == [
        ("two", 1),
        ("none", 0),
        ("one", 2),
    ]


async def test_count_includes_every_status(gql, admin_key, collecting):
    sent = await create(gql, email="a@x.com")
    await gql(MARK_AS_SENT, {"id": sent["id"]}, key=admin_key)
    await create(gql, email="a@x.com")

    result = await gql(COUNT_BY_REFERENCES, {"refs": [reference()]}, key=admin_key)

    assert (
        result.data["backInStockNotificationRequestsCountByCatalogReferences"][0][
            "count"
        ]
        == 2
    )


async def test_count_matches_options_as_json_values(gql, admin_key, collecting):
    await create(gql, options={"size": 1, "color": "red"})
    await create(gql, email="other@x.com", options={"size": 2})
    refs = [
        reference(options={"color": "red", "size": 1.0}),
        reference(),
        reference(options={}),
    ]

    result = await gql(COUNT_BY_REFERENCES, {"refs": refs}, key=admin_key)

    counts = result.data["backInStockNotificationRequestsCountByCatalogReferences"]
    assert [c["count"] for c in counts] == [1, 0, 0]


async def test_count_needs_one_to_one_hundred_references(gql, admin_key):
    none = await gql(COUNT_BY_REFERENCES, {"refs": []}, key=admin_key)
    too_many = await gql(
        COUNT_BY_REFERENCES,
        {"refs": [reference(str(i)) for i in range(101)]},
        key=admin_key,
    )

    assert none.codes == ["INVALID_ARGUMENT"]
    assert too_many.codes == ["INVALID_ARGUMENT"]
    assert none.violations == ["catalogReferences"]


async def test_count_with_a_bad_reference_names_it(gql, admin_key):
    result = await gql(
        COUNT_BY_REFERENCES, {"refs": [reference("ok"), reference("")]}, key=admin_key
    )

    assert result.codes == ["INVALID_ARGUMENT"]
    assert result.violations == ["catalogReferences[1].catalogItemId"]
