"""Brands' reference images: register, list, read, fetch the image, delete."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from service.auth import Principal, require
from service.db.models import Role
from service.errors import ApiError
from service.registry import NewReference, reference_to_dict
from service.validation import parse_metadata, validate_brand, validate_label, validate_optional_text

router = APIRouter(prefix="/v1/references", tags=["references"])
BrandOrAdmin = Annotated[Principal, Depends(require(Role.brand))]


def _registry(request: Request):
    return request.app.state.runtime.registry


@router.post("", status_code=201, summary="Register a reference image (idempotent per brand and bytes)")
def register_reference(
    request: Request,
    principal: BrandOrAdmin,
    image: Annotated[UploadFile, File(description="The image file")],
    label: Annotated[str, Form(description="authentic or counterfeit")],
    brand: Annotated[str | None, Form(description="Defaults to the brand of a brand key")] = None,
    product: Annotated[str | None, Form()] = None,
    source: Annotated[str | None, Form()] = None,
    metadata: Annotated[str | None, Form(description="A JSON object")] = None,
    share_signals: Annotated[bool, Form(description="Allow sharing this reference's signals (not the image)")] = False,
):
    brand = validate_brand(brand or principal.brand or "")
    if not principal.may_act_for(brand):
        raise ApiError(403, "forbidden", f"This key may only register references for brand '{principal.brand}'.")
    new = NewReference(
        brand=brand, label=validate_label(label), product=validate_optional_text("product", product, 200),
        source=validate_optional_text("source", source, 500), metadata=parse_metadata(metadata),
        share_signals=share_signals,
    )
    data = image.file.read()
    reference, created = _registry(request).register(new, data, content_type=image.content_type)
    return JSONResponse(reference_to_dict(reference), status_code=201 if created else 200)


@router.get("", summary="List references (cursor pagination)")
def list_references(
    request: Request,
    principal: BrandOrAdmin,
    brand: str | None = None,
    label: str | None = None,
    product: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
):
    scope = principal.brand_scope()
    if scope and brand and brand != scope:
        raise ApiError(403, "forbidden", f"This key may only list references of brand '{scope}'.")
    rows, next_cursor = _registry(request).list(
        scope or brand, validate_label(label) if label else None, product, cursor, limit)
    return {"items": [reference_to_dict(r) for r in rows], "next_cursor": next_cursor}


@router.get("/{reference_id}", summary="One reference")
def get_reference(request: Request, principal: BrandOrAdmin, reference_id: int):
    return reference_to_dict(_registry(request).get(reference_id, principal.brand_scope()))


@router.get("/{reference_id}/image", summary="The reference's image bytes")
def get_reference_image(request: Request, principal: BrandOrAdmin, reference_id: int):
    registry = _registry(request)
    reference = registry.get(reference_id, principal.brand_scope())
    return Response(registry.image_bytes(reference), media_type=reference.content_type or "application/octet-stream")


@router.delete("/{reference_id}", summary="Delete a reference (gone from search at once)")
def delete_reference(request: Request, principal: BrandOrAdmin, reference_id: int):
    reference = _registry(request).delete(reference_id, principal.brand_scope())
    return {"id": reference.id, "deleted": True}
