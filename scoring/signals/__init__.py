"""Evidence signals, a registry: each module here declares one ``SIGNAL`` (python-threatexchange's
``SignalType`` pattern) — its name, when it runs, and how it finds evidence about a query in the sources it
searches. :func:`scoring.evidence.gather_evidence` runs every registered signal in order. Adding a signal is
adding a module (and, where the scorer should weigh it, its features in ``scoring.features``)."""

from __future__ import annotations

import importlib
import pkgutil

from scoring.signals.base import EvidenceQuery, EvidenceSignal, EvidenceSources, ReferenceFacts, SharedSignal


def _discover() -> dict[str, EvidenceSignal]:
    signals = []
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            signals.append(importlib.import_module(f"{__name__}.{module.name}").SIGNAL)
    return {signal.name: signal for signal in sorted(signals, key=lambda signal: (signal.order, signal.name))}


EVIDENCE_SIGNALS: dict[str, EvidenceSignal] = _discover()

__all__ = [
    "EVIDENCE_SIGNALS",
    "EvidenceQuery",
    "EvidenceSignal",
    "EvidenceSources",
    "ReferenceFacts",
    "SharedSignal",
]
