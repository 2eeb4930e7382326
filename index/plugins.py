"""Registries filled by modules: each module of a package declares one object under a known name
(python-threatexchange's ``SignalType`` pattern), so adding one is adding a module."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Iterable


def declared(
    package: str, path: Iterable[str], attribute: str, skip: tuple[str, ...] = ("base",)
) -> list[Any]:
    """The ``attribute`` of every module of ``package`` (its ``__name__`` and ``__path__``) but ``skip``."""
    return [
        getattr(importlib.import_module(f"{package}.{module.name}"), attribute)
        for module in pkgutil.iter_modules(path)
        if module.name not in skip
    ]
