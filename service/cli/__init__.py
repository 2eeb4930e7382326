"""The `counterfeit` command line. Each sub-module adds one group of commands to ``app`` (service/cli/common.py).

Offline tools (evaluation sets, ``eval``, ``train``) live with the offline code in ``training/`` and join the same
command line as a plugin: an entry point in the ``counterfeit.cli`` group (pyproject.toml). The service never
imports them, so an image built without ``training/`` still serves and still has every service command.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from service.cli.common import app

__all__ = ["app"]
log = logging.getLogger(__name__)

# Imported in the order `counterfeit --help` shows their sections (each module registers its commands).
COMMAND_MODULES = (
    "serve",
    "references",
    "index",
    "models",
    "scans",
    "keys",
    "people",
    "exchange",
    "hub",
    "cases",
    "maintenance",
    "db",
    "calibrations",
)
for module in COMMAND_MODULES:
    importlib.import_module(f"service.cli.{module}")

for plugin in entry_points(group="counterfeit.cli"):
    try:
        plugin.load()  # importing the module adds its commands to ``app``
    except ModuleNotFoundError as exc:  # installed metadata, package left out of this image
        log.debug("CLI plugin %s not available: %s", plugin.name, exc)
