"""The brand's reference banks in the workbench: browse the genuine and the known-fake photos, add one,
remove one — through the same registry as ``/v1/references`` (service/references/registry.py).

Reviewers add references (a photo they have established is genuine or fake); only managers remove them, since
a removal changes every later verdict that leaned on it. Another brand's reference is a missing one (404).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from service.api.deps import RuntimeDep
from service.api.ui import Reviewer, _check_csrf, _page
from service.core.errors import DomainError, Forbidden, InvalidInput
from service.core.validation import BRAND_PATTERN, NO_NUL, validate_brand, validate_optional_text
from service.db.models import Label
from service.references.registry import NewReference

router = APIRouter(prefix="/ui/references", include_in_schema=False)
PAGE = 48


@router.get("", response_class=HTMLResponse)
def bank_page(
    request: Request,
    runtime: RuntimeDep,
    who: Reviewer,
    label: Annotated[str, Query(pattern="^(|authentic|counterfeit)$")] = "",
    product: Annotated[str, Query(max_length=200, pattern=NO_NUL)] = "",
    brand: Annotated[str, Query(max_length=64, pattern=NO_NUL)] = "",
    cursor: Annotated[str, Query(max_length=40, pattern=NO_NUL)] = "",
    added: Annotated[str, Query(max_length=40, pattern=NO_NUL)] = "",
):
    principal, csrf = who
    shown_brand = principal.brand_scope() or (validate_brand(brand) if brand else None)
    try:
        rows, next_cursor = runtime.registry.list(
            shown_brand, Label(label) if label else None, product or None, cursor or None, PAGE
        )
    except DomainError:
        rows, next_cursor = [], None  # a stale or foreign cursor: the first page instead
    view = {"label": label, "product": product, "brand": brand}
    return _page(
        request,
        "bank.html",
        principal,
        csrf=csrf,
        references=rows,
        brand=shown_brand,
        view=view,
        next_link=urlencode({**{k: v for k, v in view.items() if v}, "cursor": next_cursor})
        if next_cursor
        else None,
        added=added,
    )


@router.post("")
async def add_reference(
    request: Request,
    runtime: RuntimeDep,
    who: Reviewer,
    image: Annotated[UploadFile, File()],
    label: Annotated[Label, Form()],
    csrf: Annotated[str, Form(max_length=100)] = "",
    product: Annotated[str, Form(max_length=200)] = "",
    brand: Annotated[str, Form(max_length=64)] = "",
):
    principal, expected = who
    _check_csrf(request, expected, csrf)
    if not principal.may_decide():
        raise Forbidden("viewer", "Your account may browse the banks but not change them.")
    owner = principal.brand_scope() or brand
    if not BRAND_PATTERN.fullmatch(owner or ""):
        raise InvalidInput("brand_required", "Say which brand's bank the photo joins.")
    new = NewReference(
        brand=owner,
        label=label,
        product=validate_optional_text("product", product or None, 200),
        source=f"workbench:{principal.person_name or principal.actor_id}",
    )
    reference, _ = await run_in_threadpool(runtime.registry.register, new, await image.read(), principal)
    return RedirectResponse(f"/ui/references?{urlencode({'added': reference.id})}", status_code=303)


@router.post("/{reference_id}/delete")
def remove_reference(
    request: Request,
    runtime: RuntimeDep,
    who: Reviewer,
    reference_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
    csrf: Annotated[str, Form(max_length=100)] = "",
):
    principal, expected = who
    _check_csrf(request, expected, csrf)
    if not principal.may_manage():
        raise Forbidden(
            "manager", "Only your brand's managers remove references: every later verdict changes."
        )
    runtime.registry.delete(reference_id, principal)
    return RedirectResponse("/ui/references", status_code=303)
