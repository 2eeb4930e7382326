"""Review cases in the workbench: a brand's analysts work the checks of one listing or seller together
(service/checks/review_cases.py): open one from an item, move it through its statuses, assign it, add notes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse

from service.api.deps import RuntimeDep
from service.api.review_pages import _decorate
from service.api.ui import Reviewer, _check_csrf, _page
from service.core.auth import Principal
from service.core.errors import not_found
from service.core.people import person_view
from service.core.validation import NO_NUL

router = APIRouter(prefix="/ui/review-cases", include_in_schema=False)
CaseId = Annotated[str, PathParam(max_length=40, pattern=NO_NUL)]
Csrf = Annotated[str, Form(max_length=100)]


def _brand_people(runtime, principal: Principal, brand: str) -> list[dict]:
    """Whom a case of ``brand`` may be assigned to: the brand's people who can decide."""
    people = runtime.people.list(principal)
    return [
        person_view(p)
        for p in people
        if p.brand == brand and p.disabled_at is None and p.access.value != "viewer"
    ]


@router.get("", response_class=HTMLResponse)
def cases_page(
    request: Request,
    runtime: RuntimeDep,
    who: Reviewer,
    status: Annotated[str, Query(pattern="^(|new|reviewing|action_taken|closed)$")] = "",
):
    principal, csrf = who
    cases = runtime.review_cases.list(principal, status or None)
    return _page(request, "review_cases.html", principal, csrf=csrf, cases=cases, shown_status=status)


@router.post("")
def open_case(
    request: Request,
    runtime: RuntimeDep,
    who: Reviewer,
    brand: Annotated[str, Form(max_length=64, pattern=NO_NUL)],
    kind: Annotated[Literal["listing", "seller"], Form()],
    subject: Annotated[str, Form(min_length=1, max_length=200, pattern=NO_NUL)],
    marketplace: Annotated[str, Form(max_length=100, pattern=NO_NUL)] = "",
    csrf: Csrf = "",
):
    principal, expected = who
    _check_csrf(request, expected, csrf)
    case = runtime.review_cases.open(principal, brand, kind, marketplace, subject)
    return RedirectResponse(f"/ui/review-cases/{case.id}", status_code=303)


@router.get("/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, runtime: RuntimeDep, who: Reviewer, case_id: CaseId):
    principal, csrf = who
    case = runtime.review_cases.get(principal, case_id)
    rows = runtime.review_cases.rows(principal, case)
    people = _brand_people(runtime, principal, case.brand)
    return _page(
        request,
        "review_case.html",
        principal,
        csrf=csrf,
        case=case,
        rows=rows,
        people=people,
        assignee=next((p["username"] for p in people if p["id"] == case.assignee_id), case.assignee_id),
        moves=sorted(runtime.review_cases.moves(case.status)),
        back="",
        **_decorate(runtime, principal, rows),
    )


@router.post("/{case_id}/status")
def move_case(
    request: Request,
    runtime: RuntimeDep,
    who: Reviewer,
    case_id: CaseId,
    status: Annotated[Literal["new", "reviewing", "action_taken", "closed"], Form()],
    csrf: Csrf = "",
):
    _check_csrf(request, who[1], csrf)
    runtime.review_cases.move(who[0], case_id, status)
    return RedirectResponse(f"/ui/review-cases/{case_id}", status_code=303)


@router.post("/{case_id}/assignee")
def assign_case(
    request: Request,
    runtime: RuntimeDep,
    who: Reviewer,
    case_id: CaseId,
    person_id: Annotated[str, Form(max_length=40, pattern=NO_NUL)] = "",
    csrf: Csrf = "",
):
    _check_csrf(request, who[1], csrf)
    runtime.review_cases.assign(who[0], case_id, person_id or None)
    return RedirectResponse(f"/ui/review-cases/{case_id}", status_code=303)


@router.post("/{case_id}/notes")
def add_note(
    request: Request,
    runtime: RuntimeDep,
    who: Reviewer,
    case_id: CaseId,
    text: Annotated[str, Form(min_length=1, max_length=2000)],
    csrf: Csrf = "",
):
    _check_csrf(request, who[1], csrf)
    runtime.review_cases.note(who[0], case_id, text)
    return RedirectResponse(f"/ui/review-cases/{case_id}", status_code=303)


seller_router = APIRouter(prefix="/ui/sellers", include_in_schema=False)
Name = Annotated[str, PathParam(min_length=1, max_length=200, pattern=NO_NUL)]


@seller_router.get("/{marketplace}/{seller_id}", response_class=HTMLResponse)
def seller_page(request: Request, runtime: RuntimeDep, who: Reviewer, marketplace: Name, seller_id: Name):
    """A seller as the brand sees it: its risk, linked sellers, peers' shared reports and its listings."""
    principal, csrf = who
    scope = principal.brand_scope()
    record = runtime.sellers.get(marketplace, seller_id, scope)
    if record is None:
        raise not_found("seller")
    return _page(
        request,
        "seller.html",
        principal,
        csrf=csrf,
        seller=record,
        history=runtime.sellers.history(marketplace, seller_id, scope),
    )
