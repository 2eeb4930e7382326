"""Validation of request fields shared by the HTTP API and the CLI."""
from __future__ import annotations

import json
import re
from typing import Any

from service.db.models import Label
from service.errors import ApiError

BRAND_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def validate_brand(brand: str) -> str:
    if not BRAND_PATTERN.fullmatch(brand or ""):
        raise ApiError(422, "invalid_brand",
                       f"Brand {brand!r} is invalid: use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit.")
    return brand


def validate_label(label: str) -> Label:
    try:
        return Label(label)
    except ValueError:
        raise ApiError(422, "invalid_label", f"Label {label!r} is invalid: use 'authentic' or 'counterfeit'.") from None


def parse_metadata(text: str | None) -> dict[str, Any]:
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(422, "invalid_metadata", f"metadata is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(422, "invalid_metadata", "metadata must be a JSON object.")
    if len(text) > 16_384:
        raise ApiError(422, "invalid_metadata", "metadata is larger than 16 KiB.")
    return value


def validate_optional_text(name: str, value: str | None, max_length: int) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > max_length:
        raise ApiError(422, f"invalid_{name}", f"{name} is longer than {max_length} characters.")
    return value
