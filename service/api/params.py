"""Path parameters shared by several routes, with the rules the OpenAPI states and the checks it cannot."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BeforeValidator

from service.core.validation import MAX_ID, id_digits

ReferenceId = Annotated[int, Path(ge=1, le=MAX_ID, description="A reference id"), BeforeValidator(id_digits)]
