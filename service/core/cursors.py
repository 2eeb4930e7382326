"""List cursors: the last id a page returned, as decimal digits.

Plain digits let the OpenAPI describe every valid cursor exactly (``^[0-9]{1,18}$``, always
inside the 64-bit id range), so a client or a fuzzer can tell a valid cursor from an invalid one.
"""

from __future__ import annotations

import re

from service.core.errors import InvalidInput

CURSOR_PATTERN = re.compile(r"^[0-9]{1,18}$")
CURSOR_SCHEMA = {"pattern": CURSOR_PATTERN.pattern, "description": "next_cursor of the previous page"}


def encode_cursor(last_id: int) -> str:
    return str(last_id)


def decode_cursor(cursor: str) -> int:
    if not CURSOR_PATTERN.fullmatch(cursor):
        raise InvalidInput("invalid_cursor", "The cursor is not one this API returned.")
    return int(cursor)
