"""Seller identifier kinds, a registry: each module here declares one ``KIND`` (python-threatexchange's
``SignalType`` pattern). A kind's declaration gives its stored name, its form field and feed column, its length
limit, its OpenAPI description and its normalisation; the listing form, the scan feed, keying and the exchange
feed's validation all read it from :data:`IDENTIFIER_KINDS`. Adding a kind is adding a module."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from service.exchange.identifier_kinds.base import IdentifierKind


def _discover() -> dict[str, IdentifierKind]:
    kinds = []
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            kinds.append(importlib.import_module(f"{__name__}.{module.name}").KIND)
    return {kind.name: kind for kind in sorted(kinds, key=lambda kind: (kind.order, kind.name))}


IDENTIFIER_KINDS: dict[str, IdentifierKind] = _discover()


def identifier_values(source: Any) -> dict[str, str | None]:
    """Kind name → the raw value a form or feed row carries in the kind's field."""
    return {kind.name: getattr(source, kind.field) for kind in IDENTIFIER_KINDS.values()}


__all__ = ["IDENTIFIER_KINDS", "IdentifierKind", "identifier_values"]
