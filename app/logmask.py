"""Email addresses never reach the logs in full: `a***@example.com`.

Log calls that may carry an address (an SMTP reply quoting the recipient) mask it
themselves with `mask_emails`; `MaskingFormatter`, the formatter of the handler the
commands log through (app.cli; uvicorn's own in app.http.server), masks whatever else
slips through, tracebacks and SQL parameters included.
"""

from __future__ import annotations

import logging
import re

# Local part and domain as they appear in text: permissive on the left, a dotted domain
# (or an address literal) on the right.
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-\u0080-\uffff]+"
    r"@(?:[A-Za-z0-9\-\u0080-\uffff]+(?:\.[A-Za-z0-9\-\u0080-\uffff]+)+|\[[^\]\s]+\])"
)


def mask_email(address: str) -> str:
    """`ann@example.com` as `a***@example.com` (the domain stays: it tells operators
    which provider refused, and identifies nobody)."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


def mask_emails(text: str) -> str:
    """`text` with every email address in it masked."""
    if "@" not in text:
        return text
    return _EMAIL.sub(lambda match: mask_email(match.group()), text)


class MaskingFormatter(logging.Formatter):
    """Formats as its base does, then masks every email address in the result."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_emails(super().format(record))
