"""Seller identifier kinds, a registry: each module here declares one ``KIND`` (python-threatexchange's
``SignalType`` pattern). A kind's declaration gives its stored name, its form field and feed column, its length
limit, its OpenAPI description and its normalisation; the listing form, the scan feed, keying and the exchange
feed's validation all read it from :data:`IDENTIFIER_KINDS`. Adding a kind is adding a module."""

from __future__ import annotations

from typing import Any

from index.plugins import declared
from service.exchange.identifier_kinds.base import IdentifierKind

IDENTIFIER_KINDS: dict[str, IdentifierKind] = {
    kind.name: kind
    for kind in sorted(declared(__name__, __path__, "KIND"), key=lambda kind: (kind.order, kind.name))
}


def identifier_values(source: Any) -> dict[str, str | None]:
    """Kind name → the raw value a form or feed row carries in the kind's field."""
    return {kind.name: getattr(source, kind.field) for kind in IDENTIFIER_KINDS.values()}


__all__ = ["IDENTIFIER_KINDS", "IdentifierKind", "identifier_values"]
