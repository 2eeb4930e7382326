"""Evaluation metrics: calibration error and copy-detection micro-average precision."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def expected_calibration_error(
    probabilities: Sequence[float], labels: Sequence[int], bins: int = 10
) -> float:
    """Σ over equal-width probability bins of (bin share) × |mean predicted − observed frequency|."""
    p, y = np.asarray(probabilities, float), np.asarray(labels, float)
    if len(p) == 0:
        return 0.0
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    return float(
        sum(
            abs(p[which == b].mean() - y[which == b].mean()) * (which == b).mean()
            for b in range(bins)
            if (which == b).any()
        )
    )


def micro_average_precision(scored_pairs: Sequence[tuple[float, bool]], positives: int) -> float:
    """ISC2021/DISC21 µAP: all (query, reference, score) predictions pooled and sorted by score;
    average precision against the total number of true query→reference pairs (missed ones count)."""
    if positives == 0:
        return 0.0
    ordered = sorted(scored_pairs, key=lambda pair: -pair[0])
    hits, total = 0, 0.0
    for rank, (_, correct) in enumerate(ordered, start=1):
        if correct:
            hits += 1
            total += hits / rank
    return total / positives


def reliability_curve(probabilities: Sequence[float], labels: Sequence[int], bins: int = 10):
    p, y = np.asarray(probabilities, float), np.asarray(labels, float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows = [
        (p[which == b].mean(), y[which == b].mean(), int((which == b).sum()))
        for b in range(bins)
        if (which == b).any()
    ]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
