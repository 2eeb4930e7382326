"""E-mail addresses: lower-cased, sub-addressing (+tag) dropped, since it reaches the same mailbox."""

from __future__ import annotations

from service.core.errors import InvalidInput
from service.exchange.identifier_kinds.base import IdentifierKind


def normalise(value: str, default_region: str | None = None) -> str:
    local, at, domain = value.lower().rpartition("@")
    if not at or not local or "." not in domain:
        raise InvalidInput("invalid_identifier", "seller_email is not an e-mail address.")
    return f"{local.split('+', 1)[0]}@{domain}"


KIND = IdentifierKind(
    "email",
    "seller_email",
    320,
    "Kept only as a keyed hash (HMAC under the consortium key)",
    normalise,
    order=1,
)
