"""FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse

from service.api import bank_pages, case_pages, review_pages, ui, workbench
from service.api.docs import serve_offline_docs
from service.api.errors import install_error_handlers
from service.api.middleware import Admission, BodyGuard, RequestContext
from service.api.routes import (
    ReadableJSONResponse,
    audit,
    calibrations,
    cases,
    checks,
    complaints,
    jobs,
    listings,
    people,
    purchases,
    references,
    reports,
    reviews,
    scans,
    signals,
    system,
    webhooks,
)
from service.core.change_notify import ChangeListener, listen_url
from service.runtime import Runtime
from service.settings import Settings

log = logging.getLogger(__name__)


async def _tail_change_log(runtime: Runtime) -> None:
    """Pick up writes made by other processes (bulk import CLI, other replicas) and generation swaps: every poll
    interval, and on PostgreSQL also the moment a change commits (service.core.change_notify: then only the log)."""
    loop = asyncio.get_running_loop()
    pushed = asyncio.Event()
    url = listen_url(runtime.settings.resolved_database_url)
    listener = ChangeListener(url, lambda: loop.call_soon_threadsafe(pushed.set)).start() if url else None
    next_round = loop.time() + runtime.settings.change_poll_seconds
    try:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(pushed.wait(), max(0.0, next_round - loop.time()))
            pushed.clear()
            try:
                if loop.time() >= next_round:
                    next_round = loop.time() + runtime.settings.change_poll_seconds
                    await run_in_threadpool(runtime.maintain)
                    await run_in_threadpool(runtime.follow_generation)
                    await run_in_threadpool(runtime.scoring.refresh)
                await run_in_threadpool(runtime.serving.index_sync.catch_up)
            except Exception:  # keep tailing; the next round retries
                log.exception("Applying the change log failed")
    finally:
        if listener is not None:
            await run_in_threadpool(listener.stop)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    def metrics():
        running = getattr(app.state, "runtime", None)
        return running.metrics if running is not None else None

    # Added innermost first: a request meets RequestContext, then CORS, Admission, BodyGuard.
    app.add_middleware(BodyGuard, settings=settings)
    app.add_middleware(Admission, max_inflight=settings.max_inflight_checks, metrics=metrics)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(RequestContext, metrics=metrics)


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
        version="0.2.0",
        description="Is this product photo probably counterfeit? Evidence from brands' reference images.",
        lifespan=lifespan,
        default_response_class=ReadableJSONResponse,
        docs_url=None,  # served offline below
        redoc_url=None,
    )

    _add_middleware(app, settings)
    install_error_handlers(app)
    _include_routers(app)
    serve_offline_docs(app)

    @app.exception_handler(ui.LoginRequired)
    async def _to_login(request: Request, exc: ui.LoginRequired):
        return RedirectResponse("/ui/login", status_code=303)

    _complete_openapi(app, settings)
    return app


API_ROUTES = (
    system,
    references,
    checks,
    listings,
    complaints,
    purchases,
    cases,
    reports,
    scans,
    jobs,
    reviews,
)
API_ROUTES += (calibrations, signals, webhooks, audit, people)
WORKBENCH = (ui.router, review_pages.router, case_pages.router, case_pages.seller_router, bank_pages.router)


def _include_routers(app: FastAPI) -> None:
    """The API's resources, the exchange feed, then the workbench's pages."""
    for module in API_ROUTES:
        app.include_router(module.router)
    app.include_router(signals.exchange)
    for router in (*WORKBENCH, workbench.router):
        app.include_router(router)


def _complete_openapi(app: FastAPI, settings: Settings) -> None:
    """Put what only settings or FastAPI's form-model quirks decide into the OpenAPI document.

    * limits that are settings (k's maximum, images per batch);
    * forms with files are ``multipart/form-data``: FastAPI labels a form *model* as urlencoded
      even when it holds UploadFile fields.
    """
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        forms = schema["components"]["schemas"]
        for name in ("CheckForm", "CheckBatchForm", "ListingCheckForm"):
            forms[name]["properties"]["k"]["maximum"] = settings.max_k
        forms["CheckBatchForm"]["properties"]["images"].update(minItems=1, maxItems=settings.max_batch_images)
        forms["ListingCheckForm"]["properties"]["images"].update(
            minItems=1, maxItems=settings.max_listing_images
        )
        for operations in schema["paths"].values():
            for operation in operations.values():
                content = operation.get("requestBody", {}).get("content", {})
                form = content.get("application/x-www-form-urlencoded")
                if form and form["schema"]["$ref"].rsplit("/", 1)[-1] in (
                    "RegisterForm",
                    "CheckForm",
                    "CheckBatchForm",
                    "ListingCheckForm",
                ):
                    content["multipart/form-data"] = content.pop("application/x-www-form-urlencoded")
        return schema

    app.openapi = openapi
