"""HTTP routes, one module per resource. Every router uses :class:`StrictRoute`."""
from __future__ import annotations

from typing import Any, Callable

from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import Request

from service.errors import ApiError


def _query_names(dependant: Dependant) -> set[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


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


async def refuse_empty_form_fields(request: Request) -> None:
    """An empty form field is refused, not read as "not given": leave the field out instead.

    (FastAPI drops empty form values before validation, so ``brand=`` would silently mean "all brands".)"""
    form = await request.form()  # already parsed for the route: this is the cached form
    empty = sorted({name for name, value in form.multi_items() if isinstance(value, str) and value == ""})
    if empty:
        raise ApiError(422, "invalid_request", f"Empty form field(s): {', '.join(empty)}; leave a field out to omit it.")


class StrictRoute(APIRoute):
    """Refuses query parameters the route does not declare (a misspelt filter must not silently match all)
    and NUL characters in any query or path parameter."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()
        allowed = _query_names(self.dependant)

        async def strict_handler(request: Request) -> Any:
            # NUL is no character a name, id or filter has, and PostgreSQL refuses to store or compare it.
            if any("\x00" in value for value in (*request.query_params.values(), *request.path_params.values())):
                raise ApiError(422, "invalid_request", "Query and path parameters must not contain NUL characters.")
            unknown = sorted(set(request.query_params) - allowed)
            if unknown:
                raise ApiError(422, "unknown_parameter", f"Unknown query parameter(s): {', '.join(unknown)}; "
                               f"this endpoint takes: {', '.join(sorted(allowed)) or 'none'}.")
            return await handler(request)

        return strict_handler
