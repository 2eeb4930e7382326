"""Phone numbers: E.164, read with the deployment's default region when they have no country code."""

from __future__ import annotations

from service.core.errors import InvalidInput
from service.exchange.identifier_kinds.base import IdentifierKind


def normalise(value: str, default_region: str | None = None) -> str:
    import phonenumbers

    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise InvalidInput(
            "invalid_identifier", "seller_phone is not a phone number (E.164, e.g. +4915112345678)."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


KIND = IdentifierKind("phone", "seller_phone", 40, "E.164; kept only as a keyed hash", normalise, order=2)
