"""Domain errors that carry their HTTP rendering: ``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def not_found(what: str = "reference") -> ApiError:
    return ApiError(404, "not_found", f"No such {what}.")


def overloaded(reason: str, retry_after: int = 1) -> ApiError:
    return ApiError(
        503,
        "overloaded",
        f"The service is at capacity ({reason}); retry shortly.",
        headers={"Retry-After": str(retry_after)},
    )
