"""Validation of request fields shared by the HTTP API and the CLI.

Every field a client sends passes through one function here before anything is written, so a
rejected request changes nothing and a stored value can always be rendered again as JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

from service.core.errors import InvalidInput
from service.db.models import Label

BRAND_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# Ids are SQL BIGINT-compatible: anything outside 1..2^63-1 cannot name a row.
MAX_ID = 2**63 - 1
ID_DIGITS = re.compile(r"[1-9][0-9]{0,18}")


def id_digits(value: Any) -> Any:
    """Ids in paths are plain digits: ``+5``, `` 5``, ``05`` or ``5.0`` name no row (int() would take them)."""
    if isinstance(value, str) and not ID_DIGITS.fullmatch(value):
        raise ValueError("must be digits 1-9 followed by 0-9 (no sign, spaces or leading zeros)")
    return value


NO_NUL = r"^[^\x00]*$"  # for free text: PostgreSQL can neither store nor compare NUL
MARKETPLACE_PATTERN = r"^[A-Za-z0-9._-]{1,100}$"  # seller ids are per marketplace
CURRENCY_PATTERN = r"^[A-Z]{3}$"  # ISO 4217
HTTP_URL_PATTERN = r"^https?://[^\s]+$"
# Documented in the OpenAPI; enforced here (one place), so errors keep their specific codes.
BRAND_SCHEMA = {"pattern": BRAND_PATTERN.pattern, "maxLength": 64}
LABEL_SCHEMA = {"enum": ["authentic", "counterfeit"]}
METADATA_MAX_BYTES = 16_384
METADATA_MAX_DEPTH = 8


def validate_brand(brand: str) -> str:
    if not BRAND_PATTERN.fullmatch(brand or ""):
        raise InvalidInput(
            "invalid_brand",
            f"Brand {brand!r} is invalid: use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit.",
        )
    return brand


def validate_label(label: str) -> Label:
    try:
        return Label(label)
    except ValueError:
        raise InvalidInput(
            "invalid_label", f"Label {label!r} is invalid: use 'authentic' or 'counterfeit'."
        ) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _nesting_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting outside strings, found without parsing (parsing deep input recurses)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def unstorable_text(value: str) -> str | None:
    """Why ``value`` cannot be stored by every database and sent back as UTF-8 JSON, or None when it can."""
    if "\x00" in value:
        return "a NUL character"  # PostgreSQL can neither store nor compare it
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "an unpaired surrogate (not a Unicode character)"  # e.g. JSON "\ud800": no UTF-8 encodes it
    return None


def json_problem(value: Any) -> str | None:
    """The first value in parsed JSON that could not be stored and rendered again: a non-finite number or
    unstorable text (keys too)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite"
    if isinstance(value, str):
        reason = unstorable_text(value)
        return f"text must not contain {reason}" if reason else None
    children = (
        [*value.keys(), *value.values()]
        if isinstance(value, dict)
        else value
        if isinstance(value, list)
        else []
    )
    return next((problem for child in children if (problem := json_problem(child))), None)


def parse_metadata(text: str | None) -> dict[str, Any]:
    """A JSON object of at most 16 KiB and 8 levels, finite numbers only (it is rendered in every listing)."""
    if text is None or text == "":
        return {}
    if len(text.encode()) > METADATA_MAX_BYTES:  # size first: nothing large is ever parsed
        raise InvalidInput("invalid_metadata", f"metadata is larger than {METADATA_MAX_BYTES // 1024} KiB.")
    if _nesting_depth(text) > METADATA_MAX_DEPTH:
        raise InvalidInput("invalid_metadata", f"metadata is nested deeper than {METADATA_MAX_DEPTH} levels.")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity
        raise InvalidInput("invalid_metadata", f"metadata is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput("invalid_metadata", "metadata must be a JSON object.")
    problem = json_problem(value)  # e.g. 1e999 parses to inf; "\ud800" to a lone surrogate
    if problem:
        raise InvalidInput("invalid_metadata", f"metadata {problem}.")
    return value


def validate_optional_text(name: str, value: str | None, max_length: int) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > max_length:
        raise InvalidInput(f"invalid_{name}", f"{name} is longer than {max_length} characters.")
    if any(ord(char) < 32 and char not in "\t" for char in value):
        raise InvalidInput(f"invalid_{name}", f"{name} must not contain control characters.")
    reason = unstorable_text(value)
    if reason:
        raise InvalidInput(f"invalid_{name}", f"{name} must not contain {reason}.")
    return value


def _form_bool(value: Any) -> Any:
    """Form booleans are the words ``true`` or ``false``; ``0``, ``yes``, ``on`` … are refused, not guessed."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    raise ValueError("must be 'true' or 'false'")


FormBool = Annotated[bool, BeforeValidator(_form_bool)]
