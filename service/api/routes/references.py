"""Brands' reference images: register, list, read, fetch the image, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from index.images import media_type_of
from service.api.deps import BrandKey, Registry
from service.api.params import ReferenceId
from service.api.routes import StrictRoute, refuse_empty_form_fields
from service.api.schemas import Deleted, ReferenceOut, ReferencePage, RegisterForm, error_responses
from service.core.cursors import CURSOR_SCHEMA
from service.core.errors import Forbidden
from service.core.validation import (
    BRAND_SCHEMA,
    LABEL_SCHEMA,
    NO_NUL,
    parse_metadata,
    validate_brand,
    validate_label,
    validate_optional_text,
)
from service.references.registry import NewReference, reference_to_dict

router = APIRouter(prefix="/v1/references", tags=["references"], route_class=StrictRoute)


@router.post(
    "",
    status_code=201,
    dependencies=[Depends(refuse_empty_form_fields)],
    response_model=ReferenceOut,
    summary="Register a reference image (idempotent per brand and bytes)",
    responses={
        200: {"model": ReferenceOut, "description": "The same bytes were already registered with this label"},
        **error_responses(400, 408, 409, 413, 503),
    },
)
async def register_reference(registry: Registry, principal: BrandKey, form: Annotated[RegisterForm, Form()]):
    brand = validate_brand(form.brand or principal.brand or "")
    if not principal.may_act_for(brand):
        raise Forbidden("forbidden", f"This key may only register references for brand '{principal.brand}'.")
    new = NewReference(
        brand=brand,
        label=validate_label(form.label),
        product=validate_optional_text("product", form.product, 200),
        source=validate_optional_text("source", form.source, 500),
        metadata=parse_metadata(form.metadata),
        share_signals=form.share_signals,
    )
    data = await form.image.read()
    reference, created = await run_in_threadpool(registry.register, new, data, principal)
    return JSONResponse(
        ReferenceOut(**reference_to_dict(reference)).model_dump(mode="json"),
        status_code=201 if created else 200,
    )


@router.get(
    "",
    response_model=ReferencePage,
    summary="List references (cursor pagination)",
    responses=error_responses(),
)
def list_references(
    registry: Registry,
    principal: BrandKey,
    brand: Annotated[str | None, Query(json_schema_extra=BRAND_SCHEMA)] = None,
    label: Annotated[str | None, Query(json_schema_extra=LABEL_SCHEMA)] = None,
    product: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    cursor: Annotated[str | None, Query(json_schema_extra=CURSOR_SCHEMA)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
):
    scope = principal.brand_scope()
    if brand is not None:
        validate_brand(brand)
    if scope and brand and brand != scope:
        raise Forbidden("forbidden", f"This key may only list references of brand '{scope}'.")
    rows, next_cursor = registry.list(
        scope or brand, validate_label(label) if label is not None else None, product, cursor, limit
    )
    return {"items": [reference_to_dict(r) for r in rows], "next_cursor": next_cursor}


@router.get(
    "/{reference_id}", response_model=ReferenceOut, summary="One reference", responses=error_responses(404)
)
def get_reference(registry: Registry, principal: BrandKey, reference_id: ReferenceId):
    return reference_to_dict(registry.get(reference_id, principal.brand_scope()))


@router.get(
    "/{reference_id}/image",
    summary="The reference's image bytes, as the format they really are",
    response_class=Response,
    responses={
        200: {
            "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The stored image",
        },
        **error_responses(404),
    },
)
def get_reference_image(registry: Registry, principal: BrandKey, reference_id: ReferenceId):
    registry = registry
    data = registry.image_bytes(registry.get(reference_id, principal.brand_scope()))
    # Never the uploader's declared type: a stored "text/html" must not render in a browser.
    return Response(
        data,
        media_type=media_type_of(data),
        headers={"Content-Disposition": "attachment", "Content-Security-Policy": "default-src 'none'"},
    )


@router.delete(
    "/{reference_id}",
    response_model=Deleted,
    summary="Delete a reference (gone from search at once)",
    responses=error_responses(404),
)
def delete_reference(registry: Registry, principal: BrandKey, reference_id: ReferenceId):
    reference = registry.delete(reference_id, principal)
    return {"id": reference.id, "deleted": True}
