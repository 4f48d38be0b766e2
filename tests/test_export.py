"""`python -m app export-requests`: every request a filter matches, as the API lists it."""

from __future__ import annotations

import asyncio
import csv
import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest

from app.request_export import CSV_COLUMNS, export_requests
from app.services.export import prepare_export
from tests.cli import run_cli
from tests.documents import MARK_AS_SENT, REPORT, create, reference, start_collecting
from tests.recount import list_all
from tests.seeded import seeded

ROOT = Path(__file__).resolve().parent.parent
FIELDS = """
    id email contactId status autoNotified createdDate itemUrl
    catalogReference { appId catalogItemId options }
    itemDetails { name price image }
    deliveryAttempts lastDeliveryError
"""
FILTER = {
    "catalogReference": {"appId": {"eq": "stores"}},
    "status": {"in": ["RECEIVED", "PROCESSING"]},
}
ITEM = {"name": "Blue shoe", "price": "24.50"}


@seeded
async def requests(gql, admin_key) -> None:
    """Eight requests of two apps: received, queued, sent; with and without options."""
    for app_id in ("stores", "pos"):
        await start_collecting(gql, admin_key, app_id)
    made = [
        await create(
            gql,
            email=f"shopper{n}@example.com",
            item_id=f"shoe-{n % 3}",
            app_id="pos" if n % 4 == 3 else "stores",
            options={"size": 40 + n} if n % 2 else None,
            item_url=None if n == 2 else "https://shop.example/shoe",
        )
        for n in range(8)
    ]
    await gql(
        REPORT,
        {"itemDetails": ITEM, "options": {"catalogReference": reference("shoe-0")}},
        key=admin_key,
    )
    await gql(MARK_AS_SENT, {"id": made[1]["id"]}, key=admin_key)


def run_export(database_url: str, *args: str, **popen: Any) -> subprocess.Popen[str]:
    """The command in a process of its own: what only a real one shows (a terminal)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url}
    return subprocess.Popen(
        [sys.executable, "-m", "app", "export-requests", *args],
        cwd=ROOT,
        env=environment,
        text=True,
        **popen,
    )


async def export_file(database_url: str, path: Path, *args: str) -> str:
    done = await asyncio.to_thread(
        run_cli,
        "export-requests",
        "--output",
        str(path),
        *args,
        env={"DATABASE_URL": database_url},
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def as_csv_rows(nodes: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The API's nodes as the CSV spells them."""

    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict):
            return json.dumps(value, sort_keys=True, separators=(",", ":"))
        return str(value)

    rows = []
    for node in nodes:
        flat = {
            **node,
            **node["catalogReference"],
            "itemName": node["itemDetails"]["name"],
            "itemPrice": node["itemDetails"]["price"],
            "itemImage": node["itemDetails"]["image"],
        }
        rows.append({column: text(flat[column]) for column in CSV_COLUMNS})
    return rows


async def test_jsonl_export_with_a_filter_is_what_the_api_lists(
    gql, admin_key, requests, database_url, tmp_path
):
    path = tmp_path / "requests.jsonl"

    await export_file(
        database_url, path, "--format", "jsonl", "--filter", json.dumps(FILTER)
    )

    exported = [json.loads(line) for line in path.read_text().splitlines()]
    listed = await list_all(gql, admin_key, FIELDS, FILTER)
    assert exported == listed
    assert {node["status"] for node in exported} == {"RECEIVED", "PROCESSING"}


async def test_csv_export_is_what_the_api_lists(
    gql, admin_key, requests, database_url, tmp_path
):
    path = tmp_path / "requests.csv"

    await export_file(database_url, path, "--format", "csv")

    with path.open(newline="") as file:
        exported = list(csv.DictReader(file))
    listed = await list_all(gql, admin_key, FIELDS)
    assert len(listed) == 8
    assert exported == as_csv_rows(listed)


async def test_csv_export_with_a_filter_is_what_the_api_lists(
    gql, admin_key, requests, database_url, tmp_path
):
    path = tmp_path / "requests.csv"
    only_options = {"not": {"catalogReference": {"appId": {"eq": "pos"}}}}

    await export_file(database_url, path, "--filter", json.dumps(only_options))

    with path.open(newline="") as file:
        exported = list(csv.DictReader(file))
    assert exported == as_csv_rows(await list_all(gql, admin_key, FIELDS, only_options))


async def test_batches_follow_each_other_without_gaps(gql, admin_key, requests, app):
    output = io.StringIO()

    written = await export_requests(
        app.state.store,
        output=output,
        format="jsonl",
        query=prepare_export(None),
        progress=False,
        batch_size=3,
    )

    exported = [json.loads(line) for line in output.getvalue().splitlines()]
    assert written == 8
    assert exported == await list_all(gql, admin_key, FIELDS)


async def test_without_a_terminal_no_progress_is_shown(
    gql, requests, database_url, tmp_path
):
    errors = await export_file(database_url, tmp_path / "out.csv")

    assert "requests" not in errors
    assert "\r" not in errors


async def test_on_a_terminal_a_progress_bar_shows(
    gql, requests, database_url, tmp_path
):
    # given: stderr is a terminal, 100 columns wide
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = run_export(
        database_url,
        "--output",
        str(tmp_path / "out.csv"),
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)

    # when
    shown = await asyncio.to_thread(_read_all, controller)
    await asyncio.to_thread(process.wait, 120)

    # then: the bar reached all eight, and the summary followed
    assert process.returncode == 0
    assert "8/8" in shown
    assert f"exported 8 requests to {tmp_path / 'out.csv'}" in shown


def _read_all(descriptor: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(descriptor, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(descriptor)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ('{"status": {"eq": "LOST"}}', "filter.status.eq"),
        ('{"id": {"eq": "not-a-uuid"}}', "filter.id.eq"),
        ("{not json", "not JSON"),
    ],
)
async def test_a_bad_filter_is_refused_with_what_is_wrong(tmp_path, filter, message):
    # Checked before the database is opened: any database will do.
    path = tmp_path / "out.csv"

    refused = await asyncio.to_thread(
        run_cli,
        "export-requests",
        "--output",
        str(path),
        "--filter",
        filter,
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"},
    )

    assert refused.returncode != 0
    assert message in refused.stderr
    assert not path.exists()
    assert not (tmp_path / "unused.db").exists()
