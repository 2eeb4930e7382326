"""The workbench beyond the review queue: complaints, transparency reports and enforcement cases in a browser.

Same sessions, CSRF and page headers as the review page (service/api/ui.py); every action goes through the
same domain services as the API, with the same scoping: a brand's analyst sees its own complaints and
reports, a platform's moderator its tenant's complaints (and decides them), reports and cases; managers
add and disable their tenant's people.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.api.deps import RuntimeDep
from service.api.routes.reports import report_scope
from service.api.ui import WorkbenchUser, _check_csrf, _image, _page
from service.core.auth import Principal
from service.core.errors import DomainError, Forbidden, InvalidInput, not_found
from service.core.people import NewPerson, person_view
from service.core.validation import NO_NUL
from service.db.models import Access, Role
from service.marketplace.report_pdf import report_chart, report_pdf
from service.marketplace.reports import period, report_csv, report_rows

router = APIRouter(prefix="/ui", include_in_schema=False)
ComplaintId = Annotated[str, PathParam(max_length=40, pattern=NO_NUL)]
Text = Annotated[str, Query(max_length=200, pattern=NO_NUL)]


def _deciders(principal: Principal) -> bool:
    """The platform (or an admin) decides complaints, and among its people only reviewers and managers."""
    return principal.role in (Role.platform, Role.admin) and principal.may_decide()


@router.get("/complaints", response_class=HTMLResponse)
def complaints_page(
    request: Request,
    runtime: RuntimeDep,
    who: WorkbenchUser,
    state: Annotated[str, Query(pattern="^(|open|upheld|rejected)$")] = "",
    lane: Annotated[str, Query(pattern="^(|fast|normal)$")] = "",
):
    principal, csrf = who
    listed = runtime.complaints.list(principal, state or None, lane or None, None, 200)
    return _page(
        request,
        "complaints.html",
        principal,
        csrf=csrf,
        complaints=listed,
        state=state,
        lane=lane,
        decided=request.query_params.get("decided"),
    )


@router.get("/complaints/{complaint_id}", response_class=HTMLResponse)
def complaint_page(request: Request, runtime: RuntimeDep, who: WorkbenchUser, complaint_id: ComplaintId):
    principal, csrf = who
    complaint = runtime.complaints.get(complaint_id, principal)
    return _page(
        request, "complaint.html", principal, csrf=csrf, c=complaint, can_decide=_deciders(principal)
    )


@router.get("/complaints/{complaint_id}/photos/{sha256}")
def complaint_photo(
    runtime: RuntimeDep,
    who: WorkbenchUser,
    complaint_id: ComplaintId,
    sha256: Annotated[str, PathParam(pattern="^[0-9a-f]{64}$")],
):
    complaint = runtime.complaints.get(complaint_id, who[0])  # 404 unless the caller sees the complaint
    if sha256 not in {p["sha256"] for p in complaint["photos"]} or not runtime.blobs.exists(sha256):
        raise not_found("photo")
    return _image(runtime.blobs.get(sha256))


@router.post("/complaints/{complaint_id}/decision")
def decide(
    request: Request,
    runtime: RuntimeDep,
    who: WorkbenchUser,
    complaint_id: ComplaintId,
    outcome: Annotated[str, Form(pattern="^(upheld|rejected)$")],
    csrf: Annotated[str, Form(max_length=100)] = "",
    action: Annotated[str | None, Form(max_length=20)] = None,
    reason: Annotated[str | None, Form(max_length=2000)] = None,
):
    principal, expected = who
    _check_csrf(request, expected, csrf)
    if not _deciders(principal):
        raise Forbidden("forbidden", "The platform's reviewers decide complaints.")
    runtime.complaints.decide(
        complaint_id, outcome, action if outcome == "upheld" else None, reason or None, principal
    )
    return RedirectResponse(f"/ui/complaints?decided={complaint_id}", status_code=303)


@router.post("/complaints/{complaint_id}/counter-notice")
def counter_notice(
    request: Request,
    runtime: RuntimeDep,
    who: WorkbenchUser,
    complaint_id: ComplaintId,
    statement: Annotated[str, Form(min_length=1, max_length=5000)],
    csrf: Annotated[str, Form(max_length=100)] = "",
):
    principal, expected = who
    _check_csrf(request, expected, csrf)
    if not _deciders(principal):
        raise Forbidden("forbidden", "The platform's reviewers relay counter-notices.")
    runtime.complaints.counter_notice(complaint_id, statement, principal)
    return RedirectResponse(f"/ui/complaints/{complaint_id}", status_code=303)


def _report_request(principal, brand, platform, start, end) -> tuple[str, str, date, date, str]:
    brand = brand or principal.brand
    if not brand:
        raise InvalidInput("brand_required", "Choose a brand.")
    brand, platform = report_scope(principal, brand, platform or None)
    first, last = period(start, end)
    query = urlencode({"brand": brand, "platform": platform, "start": first, "end": last})
    return brand, platform, first, last, query


@router.get("/reports", response_class=HTMLResponse)
async def report_page(
    request: Request,
    runtime: RuntimeDep,
    who: WorkbenchUser,
    brand: Text = "",
    platform: Text = "",
    start: date | None = None,
    end: date | None = None,
):
    principal, csrf = who
    context: dict[str, Any] = {"brand": brand or principal.brand, "platform": platform or principal.platform}
    if context["brand"] and context["platform"]:
        brand, platform, first, last, query = _report_request(principal, brand, platform, start, end)
        report = await run_in_threadpool(runtime.reports.brand_report, brand, platform, first, last)
        context.update(report=report, rows=report_rows(report), query=query, start=first, end=last)
    return _page(request, "report.html", principal, csrf=csrf, **context)


@router.get("/reports/chart.png")
async def report_chart_png(
    runtime: RuntimeDep, who: WorkbenchUser, brand: Text, platform: Text, start: date, end: date
):
    brand, platform, first, last, _ = _report_request(who[0], brand, platform, start, end)
    report = await run_in_threadpool(runtime.reports.brand_report, brand, platform, first, last)
    return _image(await run_in_threadpool(report_chart, report))


@router.get("/reports/download")
async def report_download(
    runtime: RuntimeDep,
    who: WorkbenchUser,
    brand: Text,
    platform: Text,
    start: date,
    end: date,
    format: Annotated[str, Query(pattern="^(csv|pdf)$")],
):
    brand, platform, first, last, _ = _report_request(who[0], brand, platform, start, end)
    report = await run_in_threadpool(runtime.reports.brand_report, brand, platform, first, last)
    name = f"report-{brand}-{platform}-{first}-{last}.{format}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "csv":
        return Response(report_csv(report), media_type="text/csv; charset=utf-8", headers=disposition)
    return Response(
        await run_in_threadpool(report_pdf, report), media_type="application/pdf", headers=disposition
    )


def _case_caller(who) -> Any:
    principal = who[0]
    if principal.role is Role.brand:
        raise Forbidden("forbidden", "Cases are the platform's (or an admin's).")
    return principal


@router.get("/cases", response_class=HTMLResponse)
async def case_page(
    request: Request,
    runtime: RuntimeDep,
    who: WorkbenchUser,
    marketplace: Text = "",
    seller_id: Text = "",
    hops: Annotated[int, Query(ge=1, le=4)] = 2,
):
    principal = _case_caller(who)
    context: dict[str, Any] = {"marketplace": marketplace, "seller_id": seller_id, "hops": hops}
    if marketplace and seller_id:
        graph = await run_in_threadpool(
            runtime.cases.network, marketplace, seller_id, principal.platform_scope(), hops
        )
        links: dict[str, set[str]] = {}
        for edge in graph["edges"]:
            for end in (edge["source"], edge["target"]):
                links.setdefault(end, set()).update(edge["via"])
        context.update(
            graph=graph,
            sellers=[n for n in graph["nodes"] if n["type"] == "seller"],
            peers=[n for n in graph["nodes"] if n["type"] == "peer"],
            links={k: sorted(v) for k, v in links.items()},
            query=urlencode({"marketplace": marketplace, "seller_id": seller_id, "hops": hops}),
        )
    return _page(request, "case.html", principal, csrf=who[1], **context)


@router.get("/cases/network.png")
async def case_network_png(
    runtime: RuntimeDep,
    who: WorkbenchUser,
    marketplace: Text,
    seller_id: Text,
    hops: Annotated[int, Query(ge=1, le=4)],
):
    from service.marketplace.cases import network_picture

    principal = _case_caller(who)
    graph = await run_in_threadpool(
        runtime.cases.network, marketplace, seller_id, principal.platform_scope(), hops
    )
    return _image(await run_in_threadpool(network_picture, graph))


@router.get("/cases/package")
async def case_package(
    runtime: RuntimeDep,
    who: WorkbenchUser,
    marketplace: Text,
    seller_id: Text,
    hops: Annotated[int, Query(ge=1, le=4)],
):
    principal = _case_caller(who)
    data = await run_in_threadpool(
        runtime.cases.package, marketplace, seller_id, principal.platform_scope(), hops
    )
    return Response(
        data, media_type="application/zip", headers={"Content-Disposition": 'attachment; filename="case.zip"'}
    )


# ---- people: a manager adds and disables their tenant's analysts -------------------------------------
def _manager(who: WorkbenchUser) -> tuple[Principal, str]:
    if not who[0].may_manage():
        raise Forbidden("forbidden", "Only your brand's or platform's managers manage people.")
    return who


Manager = Annotated[tuple[Principal, str], Depends(_manager)]


def _people_page(
    request: Request, runtime: RuntimeDep, who: tuple[Principal, str], **context: Any
) -> Response:
    principal, csrf = who
    people = [person_view(p) for p in runtime.people.list(principal)]
    keeps = runtime.policies.keeps_check_images(principal.brand) if principal.role is Role.brand else None
    return _page(request, "people.html", principal, csrf=csrf, people=people, keeps_photos=keeps, **context)


@router.get("/people", response_class=HTMLResponse)
def people_page(request: Request, runtime: RuntimeDep, who: Manager):
    return _people_page(request, runtime, who)


@router.post("/people", response_class=HTMLResponse)
def add_person(
    request: Request,
    runtime: RuntimeDep,
    who: Manager,
    username: Annotated[str, Form(max_length=64)],
    access: Annotated[Access, Form()],
    csrf: Annotated[str, Form(max_length=100)] = "",
    display_name: Annotated[str | None, Form(max_length=200, pattern=NO_NUL)] = None,
):
    principal, expected = who
    _check_csrf(request, expected, csrf)
    new = NewPerson(
        username=username.strip().lower(),
        access=access,
        role=principal.role,
        brand=principal.brand if principal.role is Role.brand else None,
        platform=principal.platform if principal.role is Role.platform else None,
        display_name=display_name or None,
    )
    try:
        person, password = runtime.people.create(new, principal)
    except DomainError as exc:
        return _people_page(request, runtime, who, error=exc.message)
    return _people_page(request, runtime, who, added=person.username, password=password)


@router.post("/people/{person_id}/disable")
def disable_person(
    request: Request,
    runtime: RuntimeDep,
    who: Manager,
    person_id: Annotated[str, PathParam(max_length=40, pattern=NO_NUL)],
    csrf: Annotated[str, Form(max_length=100)] = "",
):
    _check_csrf(request, who[1], csrf)
    runtime.people.disable(person_id, who[0])
    return RedirectResponse("/ui/people", status_code=303)


@router.post("/policy")
def keep_photos(
    request: Request,
    runtime: RuntimeDep,
    who: Manager,
    keep: Annotated[bool, Form()] = False,
    csrf: Annotated[str, Form(max_length=100)] = "",
):
    """A brand's manager decides whether checked photos are kept (and confirmed fakes join the bank); the
    thresholds stay as the operator set them."""
    principal, expected = who
    _check_csrf(request, expected, csrf)
    if principal.role is not Role.brand:
        raise Forbidden("forbidden", "This setting is a brand's.")
    current = runtime.policies.get(principal.brand)
    runtime.policies.put(
        principal.brand,
        current.counterfeit_threshold if current else None,
        current.authentic_threshold if current else None,
        keep,
        principal,
    )
    return RedirectResponse("/ui/people", status_code=303)
