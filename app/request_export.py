"""python -m app export-requests: every request a filter matches, as CSV or JSON Lines.

The filter is written as a client writes the API's `filter` variable (camelCase JSON)
and goes through the same conversion (app/graphql/client_filter.py). Each request is
written as the API shows it: JSON Lines in the API's shape, CSV with one column per
field. A progress bar (tqdm) shows on a terminal; nothing does otherwise.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from typing import Any, TextIO

import orjson
from tqdm import tqdm

from app.services.export import (
    EXPORT_BATCH_SIZE,
    ExportQuery,
    count_export,
    stream_requests,
)
from app.services.request_view import RequestRecord
from app.storage import Store

FORMATS = ("csv", "jsonl")
# The CSV's columns: the API's field names, and the record field each is read from.
_CSV = {
    "id": "id",
    "appId": "app_id",
    "catalogItemId": "catalog_item_id",
    "options": "options",
    "email": "email",
    "contactId": "contact_id",
    "status": "status",
    "autoNotified": "auto_notified",
    "createdDate": "created_date",
    "itemUrl": "item_url",
    "itemName": "item_name",
    "itemPrice": "item_price",
    "itemImage": "item_image",
    "deliveryAttempts": "delivery_attempts",
    "lastDeliveryError": "last_delivery_error",
}
CSV_COLUMNS = list(_CSV)
_CSV_FIELDS = [RequestRecord._fields.index(name) for name in _CSV.values()]


def as_api_object(request: RequestRecord) -> dict[str, Any]:
    """The request in the API's names and shape (what a GraphQL client reads)."""
    return {
        "id": request.id,
        "catalogReference": {
            "appId": request.app_id,
            "catalogItemId": request.catalog_item_id,
            "options": request.options,
        },
        "email": request.email,
        "contactId": request.contact_id,
        "status": request.status,
        "autoNotified": request.auto_notified,
        "createdDate": request.created_date.isoformat(),
        "itemUrl": request.item_url,
        "itemDetails": {
            "name": request.item_name,
            "price": request.item_price,
            "image": request.item_image,
        },
        "deliveryAttempts": request.delivery_attempts,
        "lastDeliveryError": request.last_delivery_error,
    }


_OPTIONS, _AUTO_NOTIFIED, _CREATED_DATE = (
    CSV_COLUMNS.index(name) for name in ("options", "autoNotified", "createdDate")
)


def as_csv_row(request: RequestRecord) -> list[Any]:
    """The request as one CSV row, each field spelt as the API's JSON spells it (the
    csv module writes None as an empty field)."""
    row = [request[index] for index in _CSV_FIELDS]
    if row[_OPTIONS] is not None:
        row[_OPTIONS] = orjson.dumps(
            row[_OPTIONS], option=orjson.OPT_SORT_KEYS
        ).decode()
    if row[_AUTO_NOTIFIED] is not None:
        row[_AUTO_NOTIFIED] = "true" if row[_AUTO_NOTIFIED] else "false"
    row[_CREATED_DATE] = request.created_date.isoformat()
    return row


def _writer(output: TextIO, format: str) -> Callable[[RequestRecord], None]:
    if format == "csv":
        rows = csv.writer(output)
        rows.writerow(CSV_COLUMNS)

        def write_csv(request: RequestRecord) -> None:
            rows.writerow(as_csv_row(request))

        return write_csv

    def write_json(request: RequestRecord) -> None:
        output.write(orjson.dumps(as_api_object(request)).decode() + "\n")

    return write_json


async def export_requests(
    store: Store,
    *,
    output: TextIO,
    format: str,
    query: ExportQuery,
    progress: bool | None = None,
    batch_size: int = EXPORT_BATCH_SIZE,
) -> int:
    """Write every request the query matches to `output`; return how many.

    `query` is `app.services.export.prepare_export(filter)`. `progress`: show a bar on
    stderr (default: when stderr is a terminal); counting the matches for its total is
    one more query, made only then.
    """
    if progress is None:
        progress = sys.stderr.isatty()
    total = await count_export(store, query) if progress else None
    write = _writer(output, format)
    written = 0
    with tqdm(total=total, unit=" requests", disable=not progress) as bar:
        async for batch in stream_requests(store, query, batch_size=batch_size):
            for request in batch:
                write(request)
            written += len(batch)
            bar.update(len(batch))
    return written
