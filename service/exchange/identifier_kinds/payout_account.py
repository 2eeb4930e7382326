"""Payout accounts (IBAN-like): separators dropped, upper-cased."""

from __future__ import annotations

import re

from service.core.errors import InvalidInput
from service.exchange.identifier_kinds.base import IdentifierKind


def normalise(value: str, default_region: str | None = None) -> str:
    account = re.sub(r"[\s\-.]", "", value).upper()
    if not re.fullmatch(r"[A-Z0-9]{4,64}", account):
        raise InvalidInput(
            "invalid_identifier", "payout_account must be 4-64 letters and digits (IBAN-like)."
        )
    return account


KIND = IdentifierKind("payout_account", "payout_account", 80, "Kept only as a keyed hash", normalise, order=3)
