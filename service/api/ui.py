"""The review page: brand reviewers look at flagged checks and decide, in a browser.

Server-rendered (Jinja2, autoescaped) rather than a built front end: four small pages need no
JavaScript, no build step and no second deployable, and every decision still goes through the same
review service as ``POST /v1/checks/{id}/review``.

* **Log in with an API key** (brand keys; admin keys see every brand). The key is checked once and
  never stored in the browser: the cookie holds a random session token (HttpOnly, SameSite=Strict,
  Secure on https), kept here only as its SHA-256, valid ``ui_session_hours`` and only while the key
  is — a revoked key ends its sessions.
* **CSRF**: every form carries the session's own random token, compared in constant time; a POST
  from another origin is refused too (``Origin`` must be this host when the browser sends one).
* **Queue**: the brand's unreviewed checks, likely counterfeit ones first (highest probability
  first), then uncertain ones (closest to 0.5 first) — the ones a reviewer's word changes most.
  Another brand's checks never appear: an item of another brand is answered 404, like a missing one.
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from index.images import media_type_of
from service.api.deps import RuntimeDep
from service.core.auth import Principal
from service.core.errors import DomainError, Forbidden, not_found
from service.core.timestamps import aware
from service.core.validation import NO_NUL
from service.db.models import Check, Label, Listing, Person, Reference, Review, Role, ScanItem
from service.references.registry import NewReference

COOKIE = "counterfeit_session"
QUEUE_SIZE = 50
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


def queue(sessions: sessionmaker[Session], principal: Principal) -> dict[str, Any]:
    with sessions() as session:
        query = select(Check).where(
            Check.brand.is_not(None),
            Check.verdict.in_(("likely_counterfeit", "inconclusive")),
            Check.id.not_in(select(Review.check_id)),
        )
        scope = principal.brand_scope()
        if scope:
            query = query.where(Check.brand == scope)
        checks = list(session.scalars(query.order_by(Check.created_at.desc()).limit(2000)))
        likely = sorted(
            (c for c in checks if c.verdict == "likely_counterfeit"), key=lambda c: -c.probability
        )[:QUEUE_SIZE]
        uncertain = sorted(
            (c for c in checks if c.verdict == "inconclusive" and c.evidence),
            key=lambda c: abs(c.probability - 0.5),
        )[:QUEUE_SIZE]
        sources = _sources(session, likely + uncertain)
    return {"likely": likely, "uncertain": uncertain, "sources": sources}


def _sources(session: Session, checks: list[Check]) -> dict[str, str]:
    """Where a queued check came from, when a listing check or a catalogue scan made it: check id → words."""
    if not checks:
        return {}
    wanted = {c.id for c in checks}
    since = min(aware(c.created_at) for c in checks) - timedelta(
        minutes=5
    )  # a listing is stored just after its photos
    listings = {}
    for listing in session.scalars(select(Listing).where(Listing.created_at >= since)):
        for check_id in set(listing.check_ids) & wanted:
            listings[check_id] = listing
    scans = (
        dict(
            session.execute(
                select(ScanItem.listing_check_id, ScanItem.job_id).where(
                    ScanItem.listing_check_id.in_({listing.id for listing in listings.values()})
                )
            ).all()
        )
        if listings
        else {}
    )
    return {
        check_id: (f"scan {scans[listing.id]} · " if listing.id in scans else "listing ")
        + f"{listing.listing_id or listing.id}"
        + (f" · seller {listing.seller_id}" if listing.seller_id else "")
        for check_id, listing in listings.items()
    }


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


@router.get("", response_class=HTMLResponse)
def queue_page(request: Request, runtime: RuntimeDep, who: WorkbenchUser):
    principal, csrf = who
    if principal.role is Role.platform:
        return RedirectResponse("/ui/complaints", status_code=303)
    return _page(
        request,
        "queue.html",
        principal,
        csrf=csrf,
        **queue(runtime.sessions, principal),
        reviewed=request.query_params.get("reviewed"),
    )


@router.get("/checks/{check_id}", response_class=HTMLResponse)
def item_page(request: Request, runtime: RuntimeDep, who: Reviewer, check_id: CheckId):
    principal, csrf = who
    with runtime.sessions() as session:
        check = _visible_check(session, principal, check_id)
        reviews = list(session.scalars(select(Review).where(Review.check_id == check.id).order_by(Review.id)))
        ids = [e["reference_id"] for e in check.evidence or [] if e.get("reference_id") is not None]
        live = set(
            session.scalars(select(Reference.id).where(Reference.id.in_(ids), Reference.deleted_at.is_(None)))
        )
        people = dict(
            session.execute(
                select(Person.id, Person.username).where(Person.id.in_({r.person_id for r in reviews}))
            ).all()
        )
    return _page(
        request,
        "item.html",
        principal,
        csrf=csrf,
        check=check,
        reviews=reviews,
        reviewers=people,
        live_references=live,
        image_kept=runtime.blobs.exists(check.image_sha256),
    )


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


@router.post("/checks/{check_id}/review")
def review(
    request: Request,
    runtime: RuntimeDep,
    who: Reviewer,
    check_id: CheckId,
    label: Annotated[Label, Form()],
    csrf: Annotated[str, Form(max_length=100)] = "",
    add_to_bank: Annotated[bool, Form()] = False,
    note: Annotated[str | None, Form(max_length=1000)] = None,
):
    principal, expected = who
    _check_csrf(request, expected, csrf)
    if not principal.may_decide():
        raise Forbidden("viewer", "Your account may read the queue but not decide; ask your manager.")
    outcome = runtime.reviews.review(check_id, label, principal, note or None)
    if add_to_bank and outcome["added_reference_id"] is None:
        with runtime.sessions() as session:
            check = _visible_check(session, principal, check_id)
        if runtime.blobs.exists(check.image_sha256):
            try:
                runtime.registry.register(
                    NewReference(brand=check.brand, label=label, source=f"review:{check.id}"),
                    runtime.blobs.get(check.image_sha256),
                    principal,
                )
            except DomainError:
                pass  # e.g. already registered under the other label: the review itself stands
    return RedirectResponse(f"/ui?reviewed={check_id}", status_code=303)
