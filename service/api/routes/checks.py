"""Platforms check listing photos, one per request or many in one; checks are read back by id or as a list."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query
from starlette.concurrency import run_in_threadpool

from service.api.deps import AnyKey, Checks, Config, Fetcher, History, PlatformKey
from service.api.routes import StrictRoute, refuse_empty_form_fields
from service.api.schemas import (
    BatchResult,
    CheckBatchForm,
    CheckForm,
    CheckPage,
    CheckResult,
    StoredCheck,
    Verdict,
    error_responses,
)
from service.checks.checker import Checker
from service.checks.history import CHECK_CURSOR
from service.core.errors import InvalidInput, TooLarge
from service.core.validation import BRAND_SCHEMA, NO_NUL, validate_brand
from service.settings import Settings

router = APIRouter(prefix="/v1", tags=["checks"], route_class=StrictRoute)


def check_params(
    settings: Settings, brand: str | None, k: int | None, checker: Checker | None = None
) -> tuple[str | None, int]:
    """The brand hint and k as given or defaulted; a hint for a brand with no references (or shared signals)
    here is refused: it would silently judge nothing (an answer of "inconclusive" that means "typo")."""
    k = settings.default_k if k is None else k
    if not 1 <= k <= settings.max_k:
        raise InvalidInput("invalid_k", f"k must be between 1 and {settings.max_k}.")
    if brand is not None:
        brand = validate_brand(brand)
        if checker is not None and not checker.knows_brand(brand):
            raise InvalidInput(
                "unknown_brand",
                f"No references of brand {brand!r} here, and no peer shared any: leave brand out, or register "
                "the brand's references first.",
            )
    return brand, k


def refuse_too_many(images: list, limit: int, what: str) -> None:
    if len(images) > limit:
        raise TooLarge("too_many_images", f"{len(images)} images; {what} takes at most {limit}.")


@router.post(
    "/check",
    dependencies=[Depends(refuse_empty_form_fields)],
    response_model=CheckResult,
    summary="How likely is this photo counterfeit, and why",
    responses=error_responses(400, 408, 413, 503),
)
async def check_image(
    checker: Checks,
    fetcher: Fetcher,
    settings: Config,
    principal: PlatformKey,
    form: Annotated[CheckForm, Form()],
):
    brand, k = check_params(settings, form.brand, form.k, checker)
    if (form.image is None) == (form.image_url is None):
        raise InvalidInput("image_or_url", "Give exactly one of image (a file) and image_url.")
    if form.image is not None:
        data = await form.image.read()
    else:
        data = (await run_in_threadpool(fetcher.fetch, form.image_url)).data
    return await checker.check_async(data, brand, k, principal.key_id)


@router.post(
    "/check/batch",
    dependencies=[Depends(refuse_empty_form_fields)],
    response_model=BatchResult,
    summary="Check several photos in one request; results in the same order",
    responses=error_responses(400, 408, 413, 503),
)
async def check_batch(
    checker: Checks, settings: Config, principal: PlatformKey, form: Annotated[CheckBatchForm, Form()]
):
    brand, k = check_params(settings, form.brand, form.k, checker)
    refuse_too_many(form.images, settings.max_batch_images, "one batch")
    payloads = [(image.filename, await image.read()) for image in form.images]
    return {"results": await checker.check_many(payloads, brand, k, principal.key_id, principal.request_id)}


@router.get(
    "/checks/{check_id}",
    response_model=StoredCheck,
    summary="A check as it was answered, with its reviews (a platform: its tenant's; a brand: its brand's)",
    responses=error_responses(404),
)
def get_check(
    history: History, principal: AnyKey, check_id: Annotated[str, Path(max_length=40, pattern=NO_NUL)]
):
    return history.get(check_id, principal)


@router.get(
    "/checks",
    response_model=CheckPage,
    summary="Checks, newest first, with filters; page with cursor=",
    responses=error_responses(),
)
def list_checks(
    history: History,
    principal: AnyKey,
    verdict: Verdict | None = None,
    brand: Annotated[str | None, Query(json_schema_extra=BRAND_SCHEMA)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Annotated[
        str | None, Query(pattern=CHECK_CURSOR.pattern, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
):
    if brand is not None:
        validate_brand(brand)
    return history.list(principal, verdict, brand, since, until, cursor, limit)
