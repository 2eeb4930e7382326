"""Evidence signals, a registry: each module here declares one ``SIGNAL`` (python-threatexchange's
``SignalType`` pattern) — its name, when it runs, and how it finds evidence about a query in the sources it
searches. :func:`scoring.evidence.gather_evidence` runs every registered signal in order. Adding a signal is
adding a module (and, where the scorer should weigh it, its features in ``scoring.features``)."""

from __future__ import annotations

from index.plugins import declared
from scoring.signals.base import EvidenceQuery, EvidenceSignal, EvidenceSources, ReferenceFacts, SharedSignal

EVIDENCE_SIGNALS: dict[str, EvidenceSignal] = {
    signal.name: signal
    for signal in sorted(
        declared(__name__, __path__, "SIGNAL"), key=lambda signal: (signal.order, signal.name)
    )
}

__all__ = [
    "EVIDENCE_SIGNALS",
    "EvidenceQuery",
    "EvidenceSignal",
    "EvidenceSources",
    "ReferenceFacts",
    "SharedSignal",
]
