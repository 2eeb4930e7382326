"""HTTP routes, one module per resource. Every router uses :class:`StrictRoute`."""

from __future__ import annotations

import json
from typing import Any, Callable, get_args, get_origin

from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette import formparsers
from starlette.requests import Request

from service.core.errors import InvalidInput


def _query_names(dependant: Dependant) -> set[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _strict_decode(src: bytes | bytearray, codec: str) -> str:
    """Starlette decodes a form field that is not valid UTF-8 as Latin-1 instead (``_user_safe_decode``): the
    bytes were stored as mojibake nobody sent. Refuse them: the multipart parser turns this into a 400, which
    the app answers as 422 ``invalid_request``. Starlette has no setting for it, so its decoder is replaced
    here, once; tests/system/test_hostile.py sends invalid UTF-8 in a field and a file name, so a Starlette that
    stops calling it fails there."""
    try:
        return src.decode(codec)
    except (UnicodeDecodeError, LookupError):
        raise formparsers.MultiPartException(
            f"A form field or file name is not valid {codec} text."
        ) from None


formparsers._user_safe_decode = _strict_decode


def _readable(value: Any) -> Any:
    """``value`` with every unpaired surrogate replaced by U+FFFD (keys too)."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_readable(k): _readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_readable(v) for v in value]
    return value


class ReadableJSONResponse(JSONResponse):
    """Renders any stored row, even one written before its text was validated: an unpaired surrogate (which no
    UTF-8 encodes) becomes U+FFFD instead of a 500 on every later list and read of that row."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return super().render(_readable(content))


def _repeatable_form_fields(route: APIRoute) -> set[str]:
    """The form fields a route takes as lists (e.g. ``images``): the only ones that may appear more than once."""
    names: set[str] = set()
    for param in route.dependant.body_params:
        model = param.field_info.annotation
        fields = model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else {}
        names |= {
            name
            for name, field in fields.items()
            if get_origin(field.annotation) is list
            or list in {get_origin(arg) for arg in get_args(field.annotation)}
        }
    return names


async def refuse_empty_form_fields(request: Request) -> None:
    """An empty form field is refused, not read as "not given": leave the field out instead. A field given twice
    is refused too (which of two labels or images would count?), unless the route takes it as a list.

    (FastAPI drops empty form values before validation, so ``brand=`` would silently mean "all brands".)"""
    form = await request.form()  # already parsed for the route: this is the cached form
    names = [name for name, _ in form.multi_items()]
    empty = sorted({name for name, value in form.multi_items() if isinstance(value, str) and value == ""})
    if empty:
        raise InvalidInput(
            "invalid_request", f"Empty form field(s): {', '.join(empty)}; leave a field out to omit it."
        )
    repeated = sorted(
        {name for name in names if names.count(name) > 1} - _repeatable_form_fields(request.scope["route"])
    )
    if repeated:
        raise InvalidInput("invalid_request", f"Form field(s) given more than once: {', '.join(repeated)}.")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise InvalidInput("invalid_request", f"JSON field(s) given more than once: {', '.join(repeated)}.")
    return dict(pairs)


def _refuse_duplicate_json_keys(body: bytes) -> None:
    """JSON parsers keep the last of two equal keys; a strict API refuses the object instead. A body that is
    not JSON at all is left to the route's own validation (its error says what is wrong)."""
    if not body:
        return
    try:
        json.loads(body, object_pairs_hook=_no_duplicates)
    except ValueError:
        pass


class StrictRoute(APIRoute):
    """Refuses query parameters the route does not declare (a misspelt filter must not silently match all)
    and NUL characters in any query or path parameter."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()
        allowed = _query_names(self.dependant)

        async def strict_handler(request: Request) -> Any:
            # NUL is no character a name, id or filter has, and PostgreSQL refuses to store or compare it.
            if any(
                "\x00" in value for value in (*request.query_params.values(), *request.path_params.values())
            ):
                raise InvalidInput(
                    "invalid_request", "Query and path parameters must not contain NUL characters."
                )
            keys = [name for name, _ in request.query_params.multi_items()]
            repeated = sorted({name for name in keys if keys.count(name) > 1})
            if repeated:  # every query parameter here is one value: which of two would count?
                raise InvalidInput(
                    "invalid_request", f"Query parameter(s) given more than once: {', '.join(repeated)}."
                )
            unknown = sorted(set(request.query_params) - allowed)
            if unknown:
                raise InvalidInput(
                    "unknown_parameter",
                    f"Unknown query parameter(s): {', '.join(unknown)}; "
                    f"this endpoint takes: {', '.join(sorted(allowed)) or 'none'}.",
                )
            if request.headers.get("content-type", "").startswith("application/json"):
                _refuse_duplicate_json_keys(await request.body())  # the body is cached for the handler
            return await handler(request)

        return strict_handler
