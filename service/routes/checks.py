"""Platforms check a listing photo."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from service.auth import Principal, require
from service.db.models import Role
from service.errors import ApiError
from service.validation import validate_brand

router = APIRouter(prefix="/v1", tags=["checks"])


@router.post("/check", summary="How likely is this photo counterfeit, and why")
def check_image(
    request: Request,
    principal: Annotated[Principal, Depends(require(Role.platform))],
    image: Annotated[UploadFile, File()],
    brand: Annotated[str | None, Form(description="Brand hint: search only this brand's references")] = None,
    k: Annotated[int | None, Form(description="How many neighbours to consider")] = None,
):
    settings = request.app.state.runtime.settings
    k = settings.default_k if k is None else k
    if not 1 <= k <= settings.max_k:
        raise ApiError(422, "invalid_k", f"k must be between 1 and {settings.max_k}.")
    brand = validate_brand(brand) if brand else None
    return request.app.state.runtime.checker.check(image.file.read(), brand, k, principal.key_id)
