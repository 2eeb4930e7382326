"""FastAPI application factory."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.embedding import QueueFull
from service.errors import ApiError
from service.routes import checks, jobs, references, reviews, signals, system
from service.runtime import Runtime
from service.settings import Settings

log = logging.getLogger(__name__)
MULTIPART_OVERHEAD = 1 << 20  # form fields and boundaries on top of the image itself


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


async def _tail_change_log(runtime: Runtime) -> None:
    """Pick up writes made by other processes (bulk import CLI, other replicas) and generation swaps."""
    while True:
        await asyncio.sleep(runtime.settings.change_poll_seconds)
        try:
            await run_in_threadpool(runtime.follow_generation)
            await run_in_threadpool(runtime.refresh_calibration)
            await run_in_threadpool(runtime.serving.index_sync.catch_up)
        except Exception:  # keep tailing; the next round retries
            log.exception("Applying the change log failed")


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """The app; ``runtime`` may be built beforehand so start-up errors surface before serving."""
    settings = runtime.settings if runtime else (settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        nonlocal runtime
        runtime = runtime or await run_in_threadpool(Runtime, settings)
        app.state.runtime = runtime
        tailer = asyncio.create_task(_tail_change_log(runtime))
        try:
            yield
        finally:
            tailer.cancel()
            await run_in_threadpool(runtime.close)

    app = FastAPI(
        title="counterfeit-check",
        version="0.1.0",
        description="Is this product photo probably counterfeit? Evidence from brands' reference images.",
        lifespan=lifespan,
    )

    @app.middleware("http")
    async def reject_oversized_bodies(request: Request, call_next):
        length = request.headers.get("content-length")
        images = settings.max_batch_images if request.url.path == "/v1/check/batch" else 1
        if length and length.isdigit() and int(length) > images * settings.max_image_bytes + MULTIPART_OVERHEAD:
            return error_response(413, "image_too_large",
                                  f"The request body is {length} bytes; images are limited to {settings.max_image_bytes} bytes.")
        return await call_next(request)

    @app.middleware("http")
    async def record_metrics(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        runtime = getattr(app.state, "runtime", None)
        route = request.scope.get("route")
        if runtime is not None:
            endpoint = getattr(route, "path", "unmatched")
            runtime.metrics.requests.labels(endpoint, request.method, str(response.status_code)).inc()
            runtime.metrics.latency.labels(endpoint, request.method).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(QueueFull)
    async def overloaded(_request: Request, exc: QueueFull):
        return error_response(503, "overloaded", f"The service is at capacity ({exc}); retry shortly.",
                              headers={"Retry-After": "1"})

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors())
        return error_response(422, "invalid_request", problems or "Invalid request.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    app.include_router(system.router)
    app.include_router(references.router)
    app.include_router(checks.router)
    app.include_router(jobs.router)
    app.include_router(reviews.router)
    app.include_router(signals.router)
    return app
