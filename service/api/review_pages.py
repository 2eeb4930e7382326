"""The review queue and its items in the workbench: filter, page, zoom, decide one by one or in bulk.

The queue itself (what waits, in which order, one row per photo) is service/checks/review_queue.py; these
routes render it, carry the reviewer's filters from the queue to an item and on to the next item after a
decision, and decide through the same review service as ``POST /v1/checks/{id}/review``. A photo seen
several times is decided once: its repeats get the same review.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from PIL import Image
from pydantic import BaseModel, Field
from sqlalchemy import select

from service.api.deps import RuntimeDep
from service.api.ui import CheckId, Reviewer, WorkbenchUser, _check_csrf, _page, _visible_check
from service.checks.match_picture import match_picture
from service.checks.review_queue import QueueFilter, QueueRow
from service.core.auth import Principal
from service.core.errors import DomainError, Forbidden, InvalidInput, not_found
from service.core.validation import NO_NUL
from service.db.models import Label, Person, Reference, Review, Role
from service.references.registry import NewReference

router = APIRouter(prefix="/ui", include_in_schema=False)
PROBABILITY = r"^(|0(\.[0-9]{1,6})?|1(\.0{1,6})?)$"
DAY = r"^(|[0-9]{4}-[0-9]{2}-[0-9]{2})$"
Words = Field("", max_length=200, pattern=NO_NUL)


class QueueQuery(BaseModel):
    """The queue's filters as the page's GET form sends them (empty fields: no filter)."""

    verdict: Literal["", "likely_counterfeit", "inconclusive"] = ""
    min_probability: str = Field("", pattern=PROBABILITY)
    max_probability: str = Field("", pattern=PROBABILITY)
    since: str = Field("", pattern=DAY)
    until: str = Field("", pattern=DAY)
    source: Literal["", "api", "listing", "scan"] = ""
    marketplace: str = Words
    seller: str = Words
    product: str = Words
    q: str = Words
    page: int = Field(1, ge=1, le=100_000)
    size: int = Field(25, ge=5, le=100)

    def to_filter(self) -> QueueFilter:
        def number(text: str) -> float | None:
            return float(text) if text else None

        def day(text: str) -> date | None:
            return date.fromisoformat(text) if text else None

        return QueueFilter(
            verdict=self.verdict or None,
            min_probability=number(self.min_probability),
            max_probability=number(self.max_probability),
            since=day(self.since),
            until=day(self.until),
            source=self.source or None,
            marketplace=self.marketplace or None,
            seller=self.seller or None,
            product=self.product or None,
            search=self.q or None,
        )

    def query_string(self, **change: Any) -> str:
        """These filters (and the page, unless changed) as a query string: links keep the reviewer's view."""
        values = {**self.model_dump(), **change}
        return urlencode(
            {
                k: v
                for k, v in values.items()
                if v not in ("", None) and (k, v) not in (("size", 25), ("page", 1))
            }
        )


Filters = Annotated[QueueQuery, Query()]


def _parse_filters(text: str) -> QueueQuery:
    """A queue view carried through a form (``back``): invalid or foreign text falls back to no filter."""
    from urllib.parse import parse_qsl

    try:
        return QueueQuery.model_validate(dict(parse_qsl(text)))
    except ValueError:
        return QueueQuery()


def _decorate(runtime, principal: Principal, rows: list[QueueRow]) -> dict[str, Any]:
    """What the rows' pictures need: which checked photos are kept and which matched references live."""
    kept = {r.check.id for r in rows if runtime.blobs.exists(r.check.image_sha256)}
    wanted = {r.top.get("reference_id") for r in rows} - {None}
    with runtime.sessions() as session:
        live = set(
            session.scalars(
                select(Reference.id).where(Reference.id.in_(wanted), Reference.deleted_at.is_(None))
            )
        )
    return {"kept": kept, "live_references": live}


@router.get("", response_class=HTMLResponse)
def queue_page(request: Request, runtime: RuntimeDep, who: WorkbenchUser, filters: Filters):
    principal, csrf = who
    if principal.role is Role.platform:
        return RedirectResponse("/ui/complaints", status_code=303)
    found = runtime.review_queue.page(principal, filters.to_filter(), filters.page, filters.size)
    return _page(
        request,
        "queue.html",
        principal,
        csrf=csrf,
        f=filters,
        back=filters.query_string(),
        reviewed=request.query_params.get("reviewed"),
        **found,
        **_decorate(runtime, principal, found["rows"]),
    )


def _reviewers(session, reviews: list[Review]) -> dict[str, str]:
    ids = {r.person_id for r in reviews} - {None}
    return dict(session.execute(select(Person.id, Person.username).where(Person.id.in_(ids))).all())


@router.get("/checks/{check_id}", response_class=HTMLResponse)
def item_page(request: Request, runtime: RuntimeDep, who: Reviewer, check_id: CheckId, filters: Filters):
    principal, csrf = who
    with runtime.sessions() as session:
        check = _visible_check(session, principal, check_id)
        reviews = list(session.scalars(select(Review).where(Review.check_id == check.id).order_by(Review.id)))
        reviewers = _reviewers(session, reviews)
    row = runtime.review_queue.row(principal, check_id)
    previous, following = runtime.review_queue.neighbours(principal, filters.to_filter(), check_id)
    return _page(
        request,
        "item.html",
        principal,
        csrf=csrf,
        check=check,
        row=row,
        reviews=reviews,
        reviewers=reviewers,
        previous=previous,
        following=following,
        back=filters.query_string(),
        image_kept=runtime.blobs.exists(check.image_sha256),
        live_references=_live(runtime, check),
    )


def _live(runtime, check) -> set[int]:
    ids = [e["reference_id"] for e in check.evidence or [] if e.get("reference_id") is not None]
    with runtime.sessions() as session:
        return set(
            session.scalars(select(Reference.id).where(Reference.id.in_(ids), Reference.deleted_at.is_(None)))
        )


@router.get("/checks/{check_id}/matches/{reference_id}")
def matches_picture(
    runtime: RuntimeDep,
    who: Reviewer,
    check_id: CheckId,
    reference_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
):
    """The checked photo and a reference side by side, their agreeing keypoints drawn (PNG)."""
    with runtime.sessions() as session:
        check = _visible_check(session, who[0], check_id)
    if not runtime.blobs.exists(check.image_sha256):
        raise not_found("image")
    reference = runtime.registry.get(reference_id, who[0].brand_scope())
    query = Image.open(io.BytesIO(runtime.blobs.get(check.image_sha256)))
    shown = Image.open(io.BytesIO(runtime.registry.image_bytes(reference)))
    picture, inliers = match_picture(query, shown)
    return Response(
        picture, media_type="image/png", headers={"Cache-Control": "private", "X-Inliers": str(inliers)}
    )


def _decide(runtime, principal: Principal, check_id: str, label: Label, note: str | None) -> dict:
    """Review a check and every waiting repeat of its photo alike."""
    if not principal.may_decide():
        raise Forbidden("viewer", "Your account may read the queue but not decide; ask your manager.")
    repeats = runtime.review_queue.repeats(principal, check_id)
    outcome = runtime.reviews.review(check_id, label, principal, note)
    for repeat in repeats:
        try:
            runtime.reviews.review(repeat, label, principal, f"the same photo as {check_id}")
        except DomainError:
            pass  # decided meanwhile by someone else: theirs stands
    return outcome


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
    back: Annotated[str, Form(max_length=2000)] = "",
):
    principal, expected = who
    _check_csrf(request, expected, csrf)
    filters = _parse_filters(back)
    _, following = runtime.review_queue.neighbours(principal, filters.to_filter(), check_id)
    outcome = _decide(runtime, principal, check_id, label, note or None)
    if add_to_bank and outcome["added_reference_id"] is None:
        _add_to_bank(runtime, principal, check_id, label)
    view = filters.query_string(reviewed=check_id)
    if following is not None:  # on to the next item of the same view, not back to the top
        return RedirectResponse(f"/ui/checks/{following}?{view}", status_code=303)
    return RedirectResponse(f"/ui?{view}", status_code=303)


def _add_to_bank(runtime, principal: Principal, check_id: str, label: Label) -> None:
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


@router.post("/reviews")
def bulk_review(
    request: Request,
    runtime: RuntimeDep,
    who: Reviewer,
    label: Annotated[Label, Form()],
    check_ids: Annotated[list[str] | None, Form()] = None,
    csrf: Annotated[str, Form(max_length=100)] = "",
    back: Annotated[str, Form(max_length=2000)] = "",
):
    """Decide the ticked rows alike (each with its repeats); rows decided meanwhile are skipped."""
    principal, expected = who
    _check_csrf(request, expected, csrf)
    if not principal.may_decide():
        raise Forbidden("viewer", "Your account may read the queue but not decide; ask your manager.")
    chosen = list(dict.fromkeys(check_ids or []))
    if not chosen or len(chosen) > 100 or any(len(c) > 40 for c in chosen):
        raise InvalidInput("check_ids", "Tick 1 to 100 rows of the queue.")
    done = 0
    for check_id in chosen:
        try:
            _decide(runtime, principal, check_id, label, "bulk decision")
            done += 1
        except DomainError:
            continue  # already reviewed, or not this brand's (404): nothing to do
    view = _parse_filters(back).query_string(reviewed=f"{done} items", page=1)
    return RedirectResponse(f"/ui?{view}", status_code=303)
