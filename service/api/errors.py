"""Every error the service answers, rendered one way at the edge: ``{"error": {"code", "message", "request_id"}}``
with its status (domain errors, the batcher's queue, request validation and Starlette's own HTTP errors)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

from service.api.middleware import error_body
from service.core.errors import DomainError, Unauthenticated, overloaded
from service.serving.embedding import QueueFull


def error_response(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, getattr(request.state, "request_id", None)),
        status_code=status,
        headers=headers,
    )


def headers_for(error: DomainError) -> dict[str, str] | None:
    """The HTTP headers a domain error's kind needs: when to retry, and how to authenticate."""
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    return headers or None


def domain_error_response(request: Request, error: DomainError) -> JSONResponse:
    return error_response(request, error.status, error.code, error.message, headers_for(error))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, exc: QueueFull):
        return domain_error_response(request, overloaded(str(exc)))

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError):
        return domain_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors()
        )
        return error_response(request, 422, "invalid_request", problems or "Invalid request.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 413:
            limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
            return error_response(
                request,
                413,
                "body_too_large",
                f"The request body is larger than this endpoint takes ({limit} bytes).",
            )
        if exc.status_code == 400:  # malformed multipart or body: a field problem like any other
            return error_response(request, 422, "invalid_request", str(exc.detail))
        code = {404: "not_found", 405: "method_not_allowed", 408: "request_timeout"}.get(
            exc.status_code, "http_error"
        )
        headers = dict(getattr(exc, "headers", None) or {})
        if (
            exc.status_code == 405
        ):  # every method the path has, not only those of the first route that matched it
            headers["Allow"] = ", ".join(
                sorted(
                    {
                        method
                        for route in request.app.routes
                        if isinstance(route, APIRoute) and route.path_regex.match(request.url.path)
                        for method in route.methods
                    }
                )
            )
        if exc.status_code == 408:
            headers["Connection"] = "close"
        return error_response(request, exc.status_code, code, str(exc.detail), headers or None)
