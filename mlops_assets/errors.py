"""The project's own errors share one base, so a command line can print them as one line;
and what goes into a message is scrubbed of credentials first."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")


class MlopsError(Exception):
    """An error this project raises on purpose: its message names the setting, file, row or
    field, and says what to do; no traceback adds anything for a user."""


def redact(text: str) -> str:
    """`text` with the user and password of every URL in it replaced by `***`."""
    return _USERINFO.sub(r"\g<scheme>***@", text)
