"""The small HTML pages links in emails open (unsubscribe, confirm): no script, no
external resource, nothing cached, never indexed, and no referrer leaking the token."""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    # The page may only post its own form back to where it came from.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{title}</title>
</head>
<body style="font-family: sans-serif; color: #222; max-width: 32em; margin: 3em auto;">
<h1 style="font-size: 20px;">{title}</h1>
<p>{text}</p>
{form}</body>
</html>
"""
_FORM = """<form method="post">
<input type="hidden" name="{name}" value="{value}">
<button type="submit" style="font-size: 16px; padding: 0.5em 1em;">{label}</button>
</form>
"""


def page(title: str, text: str, status: int = 200) -> HTMLResponse:
    """A page saying `text` (both escaped here)."""
    body = _PAGE.format(title=html.escape(title), text=html.escape(text), form="")
    return HTMLResponse(body, status_code=status, headers=_HEADERS)


def form_page(
    title: str, text: str, *, label: str, field: tuple[str, str] = ("", "")
) -> HTMLResponse:
    """A page with one button that POSTs back to the same URL (a GET changes nothing:
    mail scanners and link previews fetch every link they see)."""
    name, value = field
    form = _FORM.format(
        name=html.escape(name or "confirm"),
        value=html.escape(value or "yes"),
        label=html.escape(label),
    )
    body = _PAGE.format(title=html.escape(title), text=html.escape(text), form=form)
    return HTMLResponse(body, headers=_HEADERS)
