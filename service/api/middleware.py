"""ASGI middleware that runs before any route: request ids, security headers, JSON 500s, metrics,
admission control and body limits.

Written as plain ASGI (not ``BaseHTTPMiddleware``) so a request is refused without its body
being read and an error raised anywhere still becomes a JSON answer with the request id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from typing import Callable

from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.metrics import Metrics
from service.settings import Settings

log = logging.getLogger("service.requests")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MULTIPART_OVERHEAD = 1 << 20  # form fields and boundaries on top of the images themselves
CHECK_PATHS = ("/v1/check", "/v1/check/batch", "/v1/listings/check")
# same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" even on the review page's own
# forms, and the forms must refuse that opaque origin (login CSRF from a sandboxed frame or data: page uses it).
# Other sites still get no Referer.
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


async def send_json(send: Send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def error_body(code: str, message: str, request_id: str | None) -> dict:
    return {"error": {"code": code, "message": message, "request_id": request_id}}


class RequestContext:
    """Outermost: gives every request an id (X-Request-ID), adds security headers, records metrics,
    and turns any unhandled exception into a JSON 500 that names the request id (also logged)."""

    def __init__(self, app: ASGIApp, metrics: Callable[[], Metrics | None]):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        # Not a secret, only unique enough to find a log line: no syscall per request (os.urandom showed in profiles).
        request_id = incoming if REQUEST_ID.fullmatch(incoming) else f"req_{random.getrandbits(64):016x}"
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                    *SECURITY_HEADERS,
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception(
                "Unhandled error in %s %s request_id=%s", scope["method"], scope["path"], request_id
            )
            if not response_started:
                await send_json(
                    send_with_headers,
                    500,
                    error_body(
                        "internal_error", "Something went wrong on our side; it has been logged.", request_id
                    ),
                )
        finally:
            metrics = self.metrics()
            if metrics is not None:
                endpoint = getattr(scope.get("route"), "path", "unmatched")
                metrics.requests.labels(endpoint, scope["method"], str(status)).inc()
                metrics.latency.labels(endpoint, scope["method"]).observe(time.perf_counter() - started)


class Admission:
    """Refuses check requests beyond ``max_inflight`` with 503 + Retry-After before parsing or decoding their
    bodies, so overload costs neither decoding nor memory (the bytes are read and dropped, see ``_drain``)."""

    def __init__(self, app: ASGIApp, max_inflight: int, metrics: Callable[[], Metrics | None]):
        self.app = app
        self.max_inflight = max_inflight
        self.metrics = metrics
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in CHECK_PATHS or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        if self.inflight >= self.max_inflight:
            metrics = self.metrics()
            if metrics is not None:
                metrics.admission_rejected.inc()
            request_id = scope.get("state", {}).get("request_id")
            # Read (and drop) the body before answering: a server that closes a connection with unread bytes in
            # its receive buffer makes the kernel send a reset, and the client loses the 503 and its Retry-After
            # (1,580 of 2,376 refusals at 320 clients). Nothing is kept, parsed or decoded.
            drained = await _drain(receive, DRAIN_MAX_BYTES, DRAIN_SECONDS)
            return await send_json(
                send,
                503,
                error_body(
                    "overloaded", f"{self.inflight} checks are in progress; retry shortly.", request_id
                ),
                {"Retry-After": "1"} if drained else {"Retry-After": "1", "Connection": "close"},
            )
        self.inflight += 1  # one event loop: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1


DRAIN_MAX_BYTES = 64 << 20  # a refused upload larger than this is cut off (its client may then see a reset)
DRAIN_SECONDS = 5.0


async def _drain(receive: Receive, max_bytes: int, seconds: float) -> bool:
    """Receive and discard the request body; True when all of it arrived within the bounds."""

    async def read_all() -> bool:
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return False  # the client went away
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
            if received > max_bytes:
                return False

    try:
        return await _within(seconds, read_all())
    except asyncio.TimeoutError:
        return False


async def _within(seconds: float, awaitable):
    """``asyncio.timeout`` where there is one (3.11+: no extra task per chunk), else ``wait_for``."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


class BodyGuard:
    """Per-endpoint body limits that also stop chunked uploads (no Content-Length) at the limit,
    and timeouts for bodies that arrive too slowly (idle between chunks, and in total)."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    def limit_for(self, path: str) -> int:
        s = self.settings
        if path == "/v1/check/batch":
            return s.max_batch_images * s.max_image_bytes + MULTIPART_OVERHEAD
        if path == "/v1/listings/check":
            return s.max_listing_images * s.max_image_bytes + MULTIPART_OVERHEAD
        if path == "/v1/scans":
            return s.max_scan_upload_bytes
        if path in ("/v1/check", "/v1/references"):
            return s.max_image_bytes + MULTIPART_OVERHEAD
        return s.max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:  # refused before a byte of the body is read
            return await send_json(
                send,
                413,
                error_body(
                    "body_too_large",
                    f"The request body is {int(declared)} bytes; this endpoint takes at most {limit}.",
                    scope.get("state", {}).get("request_id"),
                ),
                {"Connection": "close"},
            )
        idle, deadline = (
            self.settings.body_idle_timeout_seconds,
            time.monotonic() + self.settings.body_total_timeout_seconds,
        )
        complete = False

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:  # after the body: waiting for a disconnect is not a slow upload
                return await receive()
            timeout = max(min(idle, deadline - time.monotonic()), 0.001)
            try:
                message = await _within(timeout, receive())
            except (asyncio.TimeoutError, TimeoutError):
                raise HTTPException(408, "The request body arrived too slowly.") from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        # Counts the bytes as they arrive, so a chunked upload is stopped at the limit too.
        await RequestBodyLimitMiddleware(self.app, limit)(scope, timed_receive, send)
