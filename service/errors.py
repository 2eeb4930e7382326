"""API errors rendered as ``{"error": {"code": ..., "message": ...}}``."""
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
