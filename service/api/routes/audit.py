"""The audit log of state-changing actions, and rotating one's own API key."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Query

from service.api.deps import BrandKey, EveryKey, RuntimeDep
from service.api.routes import StrictRoute
from service.api.schemas import AuditPage, RotateBody, RotatedKey, error_responses
from service.core.audit import audit_event
from service.core.auth import rotate_key
from service.core.cursors import CURSOR_SCHEMA
from service.core.timestamps import iso_utc
from service.core.validation import NO_NUL

router = APIRouter(prefix="/v1", tags=["audit and keys"], route_class=StrictRoute)


@router.get(
    "/audit",
    response_model=AuditPage,
    responses=error_responses(),
    summary="Who changed what, newest first (admins: everything; brands: their own data)",
)
def list_audit(
    runtime: RuntimeDep,
    principal: BrandKey,
    action: Annotated[str | None, Query(max_length=40, pattern=NO_NUL)] = None,
    cursor: Annotated[str | None, Query(json_schema_extra=CURSOR_SCHEMA)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
):
    rows, next_cursor = runtime.audit.list(principal.brand_scope(), action, cursor, limit)
    items = [
        {
            "id": e.id,
            "at": iso_utc(e.at),
            "actor_key_id": e.actor_key_id,
            "actor_role": e.actor_role,
            "actor_person_id": e.actor_person_id,
            "action": e.action,
            "brand": e.brand,
            "target": e.target,
            "details": e.details,
            "request_id": e.request_id,
        }
        for e in rows
    ]
    return {"items": items, "next_cursor": next_cursor}


@router.post(
    "/keys/rotate",
    status_code=201,
    response_model=RotatedKey,
    responses=error_responses(409),
    summary="Issue a new key like the calling one; the calling key keeps working for the overlap",
)
def rotate_own_key(
    runtime: RuntimeDep, principal: EveryKey, body: Annotated[RotateBody | None, Body()] = None
):
    body = body or RotateBody()
    with runtime.sessions() as session:
        new, token, old = rotate_key(session, principal.key_id or "", timedelta(hours=body.overlap_hours))
        session.add(
            audit_event(
                principal,
                "key.rotate",
                new.brand,
                old.id,
                new_key_id=new.id,
                overlap_hours=body.overlap_hours,
            )
        )
        session.commit()
    return {
        "id": new.id,
        "key": token,
        "role": new.role.value,
        "brand": new.brand,
        "expires_at": iso_utc(new.expires_at) if new.expires_at else None,
        "previous_key_id": old.id,
        "previous_key_expires_at": iso_utc(old.expires_at),
    }
