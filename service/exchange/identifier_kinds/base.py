"""What a seller identifier kind declares (one module per kind in this package)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class IdentifierKind:
    name: str  # stored, keyed ("name:value" is what the HMAC covers) and exchanged between platforms
    field: str  # the listing check form's field and the scan feed's column
    max_length: int  # of the raw value a client may send
    description: str  # for the OpenAPI
    # raw value (stripped, no invisible characters), default phone region → the canonical form two spellings of one
    # identifier share; raises InvalidInput naming ``field`` for a value that is none
    normalise: Callable[[str, str | None], str]
    order: int = 100  # where its field comes in forms, feeds and the OpenAPI
