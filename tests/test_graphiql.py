"""GraphiQL with no CDN: vendored files, served with long caching and gzip, under a strict
CSP; and a real browser that may reach nothing but this machine runs queries in it."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import strawberry

from app.http.graphiql import VENDOR_DIR
from app.http.refresh_graphiql import check, read_manifest
from tests.servers import running_server

# The page is the same on every database.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

HTML = {"Accept": "text/html"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",  # as root there is no sandbox to use
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-gpu",
]
COUNT_REQUESTS = "{ backInStockNotificationRequests(first: 1) { totalCount } }"


def page_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/graphql/static/[^"]+)"', html)


@sqlite_only
async def test_page_loads_only_files_of_this_origin(http):
    response = await http.get("/graphql", headers=HTML)

    urls = page_urls(response.text)
    assert response.status_code == 200
    assert len(urls) == 8
    assert "unpkg" not in response.text and "https://" not in response.text
    assert "<script>" not in response.text and "<style>" not in response.text


@sqlite_only
async def test_page_sends_a_strict_content_security_policy(http):
    response = await http.get("/graphql", headers=HTML)

    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert "http" not in response.headers["content-security-policy"]


@sqlite_only
async def test_page_files_are_cached_for_a_year_and_gzipped(http):
    page = await http.get("/graphql", headers=HTML)
    script = next(
        url for url in page_urls(page.text) if url.endswith("graphiql.min.js")
    )

    response = await http.get(script, headers={"Accept-Encoding": "gzip"})

    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert "immutable" in response.headers["cache-control"]
    assert "max-age=31536000" in response.headers["cache-control"]
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.content == (VENDOR_DIR / "graphiql.min.js").read_bytes()


@sqlite_only
async def test_page_files_are_sent_plain_to_clients_without_gzip(http):
    page = await http.get("/graphql", headers=HTML)
    style = next(
        url for url in page_urls(page.text) if url.endswith("graphiql.min.css")
    )

    response = await http.get(style, headers={"Accept-Encoding": "identity"})

    assert "content-encoding" not in response.headers
    assert response.content == (VENDOR_DIR / "graphiql.min.css").read_bytes()
    assert gzip.compress(response.content)  # a real file, not an empty answer


@sqlite_only
async def test_a_revalidated_file_is_not_sent_again(http):
    page = await http.get("/graphql", headers=HTML)
    url = page_urls(page.text)[0]
    first = await http.get(url)

    again = await http.get(url, headers={"If-None-Match": first.headers["etag"]})

    assert again.status_code == 304
    assert again.content == b""


@sqlite_only
@pytest.mark.parametrize(
    "path",
    [
        "/graphql/static/0000000000000000/graphiql.min.js",
        "/graphql/static/22faab94067b695e/manifest.json",
        "/graphql/static/22faab94067b695e/..%2Fmanifest.json",
    ],
)
async def test_unknown_or_stale_file_urls_are_404(http, path):
    response = await http.get(path)

    assert response.status_code == 404


def test_vendored_files_match_their_manifest():
    assert check() == []


def test_vendored_files_are_the_ones_strawberry_pins():
    """The same bytes as the files Strawberry's own template loads (by their SRI hashes)."""
    template = (
        Path(strawberry.__file__).parent / "static" / "graphiql.html"
    ).read_text()
    pinned = dict(
        re.findall(r'/([^/"]+@[\d.]+)/[^"]*"\s+integrity="([^"]+)"', template)
    )
    pinned.update(
        re.findall(r'/([^/"]+@[\d.]+/[^"]*)"\s+integrity="([^"]+)"', template)
    )
    manifest = read_manifest()
    compared = 0
    for package in manifest["packages"]:
        for file in package["files"]:
            key = f"{package['package'].split('/')[-1]}@{package['version']}/{file['source']}"
            upstream = next((v for k, v in pinned.items() if k.endswith(key)), None)
            if upstream is not None:
                compared += 1
                assert file["integrity"] == upstream, key

    if compared == 0:
        pytest.skip("Strawberry's template pins other versions now")
    assert compared == 6


def test_every_vendored_package_carries_its_licence():
    for package in read_manifest()["packages"]:
        licence = (VENDOR_DIR / package["licence"]["name"]).read_text()
        assert "Permission is hereby granted" in licence, package["package"]


@pytest.fixture
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium here (.ci/run installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@sqlite_only
def test_graphiql_runs_a_keyed_query_offline_in_a_browser(
    browser, database_url, tmp_path
):
    with running_server(database_url, tmp_path) as server:
        key = server.mint_key()
        page = browser.new_page()
        # given: the browser may reach this machine only
        refused: list[str] = []
        page.on("console", lambda m: "Refused" in m.text and refused.append(m.text))
        page.on("pageerror", lambda e: refused.append(str(e)))
        page.route("**/*", lambda route: _loopback_only(route, refused))
        introspected = []
        page.on(
            "response",
            lambda r: (
                "IntrospectionQuery" in (r.request.post_data or "")
                and introspected.append(r.status)
            ),
        )

        # when: the page opens, the key goes into the Headers editor and a query runs
        page.goto(server.graphql)
        page.wait_for_selector(".graphiql-execute-button", timeout=30_000)
        _replace_editor_text(page, ".graphiql-query-editor", COUNT_REQUESTS)
        page.get_by_role("button", name="Headers").click()
        _replace_editor_text(
            page,
            ".graphiql-editor-tool .graphiql-editor:not(.hidden)",
            json.dumps({"Authorization": f"Bearer {key}"}),
        )
        page.click(".graphiql-execute-button")
        # (a locator, not wait_for_function: the page's CSP forbids evaluating strings)
        page.locator(".result-window", has_text="totalCount").wait_for(timeout=30_000)
        result = page.locator(".result-window").inner_text()

    # then: the count came back (not FORBIDDEN), the schema loaded, nothing left the machine
    assert '"totalCount": 0' in result, result
    assert "FORBIDDEN" not in result
    assert introspected and introspected[0] == 200
    assert refused == []


def _loopback_only(route, refused: list[str]) -> None:
    url = route.request.url
    if url.startswith("data:") or urlsplit(url).hostname in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        refused.append(url)
        route.abort()


def _replace_editor_text(page, selector: str, text: str) -> None:
    """Type into a GraphiQL editor as a user pasting would (CodeMirror's own input)."""
    page.click(f"{selector} .CodeMirror")
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)
