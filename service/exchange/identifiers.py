"""Seller identifiers as keyed hashes: normalised, then HMAC-SHA256 under the consortium key(s).

A counterfeiter reopens under a new shop name but keeps the phone, e-mail or payout account. To
link those across shops (and, through signed feeds, across platforms) without anyone holding
another's sellers' personal data, identifiers are stored and compared only as
``HMAC-SHA256(consortium key, kind ":" normalised value)``. A *plain* hash is not enough: phone
numbers (~10¹⁰ per country) and most e-mail addresses are a small space, so anyone holding
``SHA-256(phone)`` can hash every number and read it back in minutes. Without the key — held only
by the participating platforms (``COUNTERFEIT_CONSORTIUM_KEYS``) — the HMAC reveals nothing.

Rotation: every configured key id gets its own digest; a new key is added next to the old one
(overlap window: both match), then the old one is removed. Raw identifiers are never stored,
logged or returned.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from dataclasses import dataclass, field
from typing import Mapping

from service.core.errors import InvalidInput
from service.exchange.identifier_kinds import IDENTIFIER_KINDS

KINDS = tuple(IDENTIFIER_KINDS)


# Control, format (bidi overrides, zero-width), surrogate and private-use characters, and separators.
INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}


@dataclass(frozen=True)
class KeyedIdentifier:
    kind: str
    key_id: str
    digest: str  # hex HMAC-SHA256


def normalise(kind: str, value: str, default_region: str | None = None) -> str:
    """The canonical form two spellings of one identifier share (the kind's own rule); 422 for a value that is
    none, or that hides characters no identifier has."""
    declared = IDENTIFIER_KINDS[kind]
    value = value.strip()
    hidden = [char for char in value if unicodedata.category(char) in INVISIBLE_CATEGORIES]
    if hidden:  # e.g. U+202E turns "moc.live@x" into what reads as "x@evil.com": no identifier has them
        raise InvalidInput(
            "invalid_identifier",
            f"{declared.field} contains an invisible or control character (U+{ord(hidden[0]):04X}).",
        )
    return declared.normalise(value, default_region)


def keyed(
    kind: str, value: str, keys: Mapping[str, bytes], default_region: str | None = None
) -> list[KeyedIdentifier]:
    """One digest per consortium key id (all of them match during a rotation's overlap)."""
    canonical = f"{kind}:{normalise(kind, value, default_region)}".encode()
    return [
        KeyedIdentifier(kind, key_id, hmac.new(key, canonical, hashlib.sha256).hexdigest())
        for key_id, key in sorted(keys.items())
    ]


@dataclass(frozen=True)
class IdentifierKeying:
    """How this platform keys seller identifiers: its consortium keys (key id → secret; several during a
    rotation) and the phone region national numbers are read in."""

    keys: Mapping[str, bytes] = field(default_factory=dict)
    default_phone_region: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.keys)

    def key(self, kind: str, value: str) -> list[KeyedIdentifier]:
        return keyed(kind, value, self.keys, self.default_phone_region)
