"""Shop URLs: host (without www.) and path, lower-cased; scheme, query and trailing slash dropped."""

from __future__ import annotations

from urllib.parse import urlsplit

from service.core.errors import InvalidInput
from service.exchange.identifier_kinds.base import IdentifierKind


def normalise(value: str, default_region: str | None = None) -> str:
    parts = urlsplit(value if "://" in value else f"https://{value}")
    host = (parts.hostname or "").lower().removeprefix("www.")
    if not host or "." not in host:
        raise InvalidInput("invalid_identifier", "shop_url is not a URL.")
    return host + parts.path.rstrip("/").lower()


KIND = IdentifierKind("shop_url", "shop_url", 2000, "Kept only as a keyed hash", normalise, order=4)
