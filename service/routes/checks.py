"""Platforms check listing photos, one per request or many in one."""
from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from service.auth import Principal, require
from service.db.models import Role
from service.embedding import QueueFull
from service.errors import ApiError
from service.validation import validate_brand

router = APIRouter(prefix="/v1", tags=["checks"])
Platform = Annotated[Principal, Depends(require(Role.platform))]


def _check_params(request: Request, brand: str | None, k: int | None) -> tuple[str | None, int]:
    settings = request.app.state.runtime.settings
    k = settings.default_k if k is None else k
    if not 1 <= k <= settings.max_k:
        raise ApiError(422, "invalid_k", f"k must be between 1 and {settings.max_k}.")
    return (validate_brand(brand) if brand else None), k


@router.post("/check", summary="How likely is this photo counterfeit, and why")
async def check_image(
    request: Request,
    principal: Platform,
    image: Annotated[UploadFile, File()],
    brand: Annotated[str | None, Form(description="Brand hint: search only this brand's references")] = None,
    k: Annotated[int | None, Form(description="How many neighbours to consider")] = None,
):
    brand, k = _check_params(request, brand, k)
    return await request.app.state.runtime.checker.check_async(await image.read(), brand, k, principal.key_id)


@router.post("/check/batch", summary="Check several photos in one request; results in the same order")
async def check_batch(
    request: Request,
    principal: Platform,
    images: Annotated[list[UploadFile], File(description="Up to COUNTERFEIT_MAX_BATCH_IMAGES image files")],
    brand: Annotated[str | None, Form()] = None,
    k: Annotated[int | None, Form()] = None,
):
    brand, k = _check_params(request, brand, k)
    runtime = request.app.state.runtime
    if len(images) > runtime.settings.max_batch_images:
        raise ApiError(413, "too_many_images", f"{len(images)} images; one batch takes at most {runtime.settings.max_batch_images}.")
    payloads = [await image.read() for image in images]
    outcomes = await asyncio.gather(
        *(runtime.checker.check_async(data, brand, k, principal.key_id) for data in payloads), return_exceptions=True)
    results = []
    for index, (upload, outcome) in enumerate(zip(images, outcomes)):
        if isinstance(outcome, QueueFull):
            outcome = ApiError(503, "overloaded", str(outcome))
        if isinstance(outcome, ApiError):
            results.append({"index": index, "filename": upload.filename, "status": outcome.status,
                            "error": {"code": outcome.code, "message": outcome.message}})
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            results.append({"index": index, "filename": upload.filename, "status": 200, **outcome})
    return {"results": results}
