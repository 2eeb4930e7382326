"""Domain errors: what the domain refuses and why, as a stable machine-readable ``code`` and a message for people.

Domain code raises these by *kind* (not found, conflict, invalid input, too large, busy, ...) and never writes a
status number. The edge renders them: ``service/api/errors.py`` as ``{"error": {"code", "message",
"request_id"}}`` with the kind's status and headers, the CLI as one error line and an exit code. A kind's
``status`` is the HTTP status the API documents for it; batch and listing results carry it per photo.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    status: ClassVar[int] = 500

    def __init__(self, code: str, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after  # seconds after which the same request may succeed


class MalformedInput(DomainError):
    """The request's content is empty or not what its type says (an empty image)."""

    status = 400


class Unauthenticated(DomainError):
    """No key, or one that is unknown, expired or revoked."""

    status = 401


class Forbidden(DomainError):
    """The caller's role or tenant may not do this."""

    status = 403


class NotFound(DomainError):
    """No such thing, or not one this caller may see (the same answer: ids of other tenants leak nothing)."""

    status = 404


class TimedOut(DomainError):
    """Something the request depends on (a URL it named, its own body) took too long."""

    status = 408


class Conflict(DomainError):
    """The request contradicts the current state (a running job, the same photo under the other label)."""

    status = 409


class TooLarge(DomainError):
    """Over a size limit (bytes, pixels, rows, decode memory)."""

    status = 413


class InvalidInput(DomainError):
    """A field is invalid; the message names it."""

    status = 422


class RateLimited(DomainError):
    """Over the key's request rate."""

    status = 429


class Busy(DomainError):
    """At capacity, or a dependency is unavailable: retry after ``retry_after`` seconds."""

    status = 503


ERROR_KINDS: dict[int, type[DomainError]] = {
    kind.status: kind
    for kind in (
        MalformedInput,
        Unauthenticated,
        Forbidden,
        NotFound,
        TimedOut,
        Conflict,
        TooLarge,
        InvalidInput,
        RateLimited,
        Busy,
    )
}


def error_of_status(status: int, code: str, message: str) -> DomainError:
    """The error a per-photo result (``{"status", "error"}``) stands for, raised again for the whole request."""
    return ERROR_KINDS.get(status, DomainError)(code, message)


def not_found(what: str = "reference") -> NotFound:
    return NotFound("not_found", f"No such {what}.")


def overloaded(reason: str, retry_after: int = 1) -> Busy:
    return Busy(
        "overloaded", f"The service is at capacity ({reason}); retry shortly.", retry_after=retry_after
    )
