"""The workbench's sessions, login, shared page headers and images (the pages live in review_pages.py and
workbench.py).

Server-rendered (Jinja2, autoescaped) rather than a built front end: no build step and no second
deployable; a little progressive JavaScript (keyboard shortcuts, zoom) from ``/ui/static`` where it earns
its keep, and every decision goes through the same domain services as the API.

* **Log in as a person** (service/core/people.py) or with an API key (operators). A key or password is
  checked once and never stored in the browser: the cookie holds a random session token (HttpOnly,
  SameSite=Strict, Secure on https), kept here only as its SHA-256, valid ``ui_session_hours`` and only
  while the person or key is valid.
* **CSRF**: every form carries the session's own random token, compared in constant time; a POST
  from another origin is refused too (``Origin`` must be this host when the browser sends one).
* Another brand's checks never appear: an item of another brand is answered 404, like a missing one.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from index.images import media_type_of
from service.api.deps import RuntimeDep
from service.core.auth import Principal
from service.core.errors import DomainError, Forbidden, not_found
from service.core.validation import NO_NUL
from service.db.models import Check, Role

COOKIE = "counterfeit_session"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(prefix="/ui", include_in_schema=False)
CheckId = Annotated[str, PathParam(max_length=40, pattern=NO_NUL)]


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the login form."""


def workbench_user(request: Request, runtime: RuntimeDep) -> tuple[Principal, str]:
    """Whoever holds a valid session: a brand's analyst, a platform's moderator or an admin (and its CSRF token)."""
    found = runtime.ui_sessions.resolve(request.cookies.get(COOKIE))
    if found is None:
        raise LoginRequired()
    return found


WorkbenchUser = Annotated[tuple[Principal, str], Depends(workbench_user)]


def reviewer(who: WorkbenchUser) -> tuple[Principal, str]:
    """A brand's analyst or an admin: the review queue is brands' (a platform's key works complaints instead)."""
    if who[0].role is Role.platform:
        raise Forbidden(
            "forbidden", "The review queue is for brand (or admin) keys; platforms work complaints."
        )
    return who


Reviewer = Annotated[tuple[Principal, str], Depends(reviewer)]


def _same_origin(request: Request) -> None:
    """A form posted from another site is refused: an ``Origin`` other than this host, the opaque ``null``
    origin (a sandboxed frame or a data: page can post with it: login CSRF), or a browser's own word that the
    request is cross-site (``Sec-Fetch-Site``). Clients that send neither header are no browser."""
    origin = request.headers.get("origin")
    cross_site = request.headers.get("sec-fetch-site") == "cross-site"
    if cross_site or (
        origin is not None and (origin == "null" or urlsplit(origin).netloc != request.headers.get("host"))
    ):
        raise Forbidden("cross_origin", "A form from another site cannot act here.")


def _check_csrf(request: Request, expected: str, given: str) -> None:
    _same_origin(request)
    if not hmac.compare_digest(expected.encode(), (given or "").encode()):
        raise Forbidden("csrf", "This form has expired or did not come from this page; reload it.")


def _visible_check(session: Session, principal: Principal, check_id: str) -> Check:
    check = session.get(Check, check_id)
    scope = principal.brand_scope()
    if check is None or check.brand is None or (scope is not None and check.brand != scope):
        raise not_found("check")
    return check


def _page(
    request: Request, name: str, principal: Principal | None = None, status: int = 200, **context: Any
) -> Response:
    response = templates.TemplateResponse(
        request, name, {"principal": principal, **context}, status_code=status
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request):
    return _page(request, "login.html")


@router.post("/login")
def login(
    request: Request,
    runtime: RuntimeDep,
    username: Annotated[str | None, Form(max_length=64)] = None,
    password: Annotated[str | None, Form(max_length=200)] = None,
    api_key: Annotated[str | None, Form(max_length=200)] = None,
):
    _same_origin(request)
    try:
        if api_key:
            token, _ = runtime.ui_sessions.open(api_key.strip())
        else:
            token, _ = runtime.ui_sessions.open_person(username or "", password or "")
    except DomainError as exc:
        return _page(request, "login.html", error=exc.message, status=exc.status)
    response = RedirectResponse("/ui", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/ui",
        secure=request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https",
        max_age=int(runtime.ui_sessions.lifetime.total_seconds()),
    )
    return response


@router.post("/logout")
def logout(
    request: Request, runtime: RuntimeDep, who: WorkbenchUser, csrf: Annotated[str, Form(max_length=100)] = ""
):
    _check_csrf(request, who[1], csrf)
    runtime.ui_sessions.close(request.cookies.get(COOKIE))
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


def _image(data: bytes) -> Response:
    """Stored bytes as an image, typed by what they really are (never served as anything a browser would run)."""
    return Response(
        data,
        media_type=media_type_of(data),
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private"},
    )


@router.get("/checks/{check_id}/image")
def check_image(runtime: RuntimeDep, who: Reviewer, check_id: CheckId):
    with runtime.sessions() as session:
        check = _visible_check(session, who[0], check_id)
    if not runtime.blobs.exists(check.image_sha256):
        raise not_found("image")
    return _image(runtime.blobs.get(check.image_sha256))


@router.get("/references/{reference_id}/image")
def reference_image(
    runtime: RuntimeDep, who: Reviewer, reference_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)]
):
    reference = runtime.registry.get(reference_id, who[0].brand_scope())
    return _image(runtime.registry.image_bytes(reference))


STATIC = Path(__file__).parent / "static"


@router.get("/static/workbench.js")
def workbench_script():
    """Keyboard shortcuts and zoom: the pages work without it."""
    return Response(
        (STATIC / "workbench.js").read_bytes(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )
