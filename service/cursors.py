"""Opaque list cursors: the last id a page returned, base64 so clients do not build their own."""
from __future__ import annotations

import base64
import binascii

from service.errors import ApiError
from service.validation import MAX_ID


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        value = int(text) if text.isdigit() and len(text) <= 19 else -1
    except (binascii.Error, UnicodeDecodeError, ValueError):
        value = -1
    if not 0 <= value <= MAX_ID:
        raise ApiError(422, "invalid_cursor", "The cursor is not one this API returned.")
    return value
