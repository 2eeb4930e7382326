"""People: analysts' workbench accounts, managed by their tenant's key or by an admin (service/core/people.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.api.deps import AnyKey, RuntimeDep
from service.api.routes import StrictRoute
from service.api.schemas import NewPassword, PeoplePage, PersonBody, PersonCreated, PersonOut, error_responses
from service.core.auth import Principal
from service.core.errors import InvalidInput
from service.core.people import NewPerson, person_view
from service.core.validation import NO_NUL, validate_brand
from service.db.models import Access, Role

router = APIRouter(prefix="/v1", tags=["people"], route_class=StrictRoute)
PersonId = Annotated[str, Path(max_length=40, pattern=NO_NUL)]


def _new_person(body: PersonBody, principal: Principal) -> NewPerson:
    role = body.role or (principal.role.value if principal.role is not Role.admin else None)
    if role is None:
        raise InvalidInput("role_required", "An admin key says which tenant the person belongs to (role).")
    brand = body.brand if body.brand is not None else (principal.brand if role == "brand" else None)
    return NewPerson(
        username=body.username,
        access=Access(body.access),
        role=Role(role),
        brand=validate_brand(brand) if brand is not None else None,
        platform=validate_brand(body.platform) if body.platform is not None else None,
        display_name=body.display_name,
        password=body.password,
    )


@router.post(
    "/people",
    status_code=201,
    response_model=PersonCreated,
    responses=error_responses(409),
    summary="Add a person to the calling key's brand or platform (admins: anyone's); the password is shown once",
)
def add_person(runtime: RuntimeDep, principal: AnyKey, body: PersonBody):
    person, password = runtime.people.create(_new_person(body, principal), principal)
    return {**person_view(person), "password": password}


@router.get("/people", response_model=PeoplePage, responses=error_responses(), summary="The tenant's people")
def list_people(runtime: RuntimeDep, principal: AnyKey):
    return {"items": [person_view(p) for p in runtime.people.list(principal)]}


@router.post(
    "/people/{person_id}/disable",
    response_model=PersonOut,
    responses=error_responses(404),
    summary="No more logins for this person; their sessions end now (their decisions keep their name)",
)
def disable_person(runtime: RuntimeDep, principal: AnyKey, person_id: PersonId):
    return person_view(runtime.people.disable(person_id, principal))


@router.post(
    "/people/{person_id}/password",
    response_model=NewPassword,
    responses=error_responses(404),
    summary="A new generated password for this person (shown once); their sessions end",
)
def reset_password(runtime: RuntimeDep, principal: AnyKey, person_id: PersonId):
    return {"id": person_id, "password": runtime.people.reset_password(person_id, principal)}
