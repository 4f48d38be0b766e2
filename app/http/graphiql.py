"""GraphiQL with no CDN: its files are served from the package, under a strict CSP.

The vendored files (app/http/static/vendor/, listed with their hashes in manifest.json,
refreshed by app.http.refresh_graphiql) and the page's own script and style are served
at /graphql/static/<digest>/<name>: the digest is the start of the file's sha256, so a
URL names one content forever and browsers may cache it for a year (`immutable`).
Compressed with gzip once per process, when first asked for.

The page itself carries no inline script or style, so its Content-Security-Policy can
allow scripts from this origin only.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
STATIC_PATH = "/graphql/static/{digest}/{name}"
DIGEST_LENGTH = 16
ONE_YEAR = 365 * 24 * 3600

# In page order: React first, GraphiQL, its explorer plugin, then the page's own.
SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "plugin-explorer.umd.js",
    "graphiql-page.js",
)
STYLES = ("graphiql.min.css", "plugin-explorer.css", "graphiql-page.css")

# No inline script or style and no other origin. The fonts and icons of GraphiQL's
# stylesheet are data: URLs; connect-src 'self' covers the page's fetches (and, in
# browsers that follow CSP 3, a WebSocket to this host).
CSP_DIRECTIVES = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
)
CONTENT_SECURITY_POLICY = "; ".join(CSP_DIRECTIVES)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page names its files by digest: revalidating it is what picks up new ones.
    "Cache-Control": "no-cache",
}
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}


def sri_sha384(data: bytes) -> str:
    """The Subresource Integrity value of `data` (what `integrity="..."` holds)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.body).hexdigest()[:DIGEST_LENGTH]

    @cached_property
    def integrity(self) -> str:
        return sri_sha384(self.body)

    @cached_property
    def gzipped(self) -> bytes:
        return gzip.compress(self.body, compresslevel=9, mtime=0)

    @property
    def url(self) -> str:
        return STATIC_PATH.format(digest=self.digest, name=self.name)

    @property
    def media_type(self) -> str:
        return f"{_MEDIA_TYPES[Path(self.name).suffix]}; charset=utf-8"


def _vendored_names() -> list[str]:
    manifest = json.loads((VENDOR_DIR / "manifest.json").read_text())
    return [f["name"] for package in manifest["packages"] for f in package["files"]]


@cache
def assets() -> dict[str, Asset]:
    """Every file the page loads, by name (read once per process, when first needed)."""
    found = {
        name: Asset(name, (VENDOR_DIR / name).read_bytes())
        for name in _vendored_names()
    }
    for name in (*SCRIPTS, *STYLES):
        if name not in found:
            found[name] = Asset(name, (STATIC_DIR / name).read_bytes())
    return found


@cache
def _page_html() -> str:
    files = assets()
    styles = "\n".join(
        f'    <link rel="stylesheet" href="{a.url}" integrity="{a.integrity}">'
        for a in (files[name] for name in STYLES)
    )
    scripts = "\n".join(
        f'    <script src="{a.url}" integrity="{a.integrity}"></script>'
        for a in (files[name] for name in SCRIPTS)
    )
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Back in stock · GraphiQL</title>
    <link rel="icon" href="data:,">
{styles}
  </head>
  <body>
    <div id="graphiql" class="graphiql-container">Loading...</div>
{scripts}
  </body>
</html>
"""


def page() -> Response:
    """The GraphiQL page, with its Content-Security-Policy."""
    return HTMLResponse(_page_html(), headers=_PAGE_HEADERS)


async def static_file(request: Request) -> Response:
    """One file of the page; 404 unless the digest in the URL is the file's."""
    asset = assets().get(request.path_params["name"])
    if asset is None or request.path_params["digest"] != asset.digest:
        return Response("Not Found", status_code=404, media_type="text/plain")
    etag = f'"{asset.digest}"'
    headers = {
        "Cache-Control": f"public, max-age={ONE_YEAR}, immutable",
        "ETag": etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    body = asset.body
    if _accepts_gzip(request.headers.get("accept-encoding", "")):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, headers=headers, media_type=asset.media_type)


def _accepts_gzip(accept_encoding: str) -> bool:
    for coding in accept_encoding.split(","):
        name, _, parameters = coding.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            return parameters.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00")
    return False
