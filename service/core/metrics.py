"""Prometheus metrics. One registry per app, so several apps (tests) never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
# Where a check spends its time; bench/api.py reads these to print the per-stage breakdown.
STAGES = (
    "decode",
    "pdq",
    "resize",
    "keypoint_image",
    "prepare_wait",
    "model_wait",
    "keypoints",
    "search",
    "score",
    "commit",
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "counterfeit_http_requests", "HTTP requests", ["endpoint", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "counterfeit_http_request_seconds",
            "HTTP request latency",
            ["endpoint", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "counterfeit_embed_batch_size", "Images per model forward pass", buckets=BATCH_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("counterfeit_embed_queue_depth", "Images waiting for the model", registry=r)
        self.embed_seconds = Histogram(
            "counterfeit_embed_seconds", "Model time per batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.search_seconds = Histogram(
            "counterfeit_search_seconds",
            "Index search time per query",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1),
            registry=r,
        )
        self.rejected = Counter(
            "counterfeit_embed_rejected", "Images refused because the queue was full", registry=r
        )
        self.rate_limited = Counter(
            "counterfeit_rate_limited", "Requests refused with 429, per key role", ["role"], registry=r
        )
        self.admission_rejected = Counter(
            "counterfeit_admission_rejected",
            "Check requests refused with 503 before their body was read",
            registry=r,
        )
        self.decode_memory = Gauge(
            "counterfeit_decode_memory_bytes", "Decode memory reserved right now", registry=r
        )
        self.stage_seconds = Histogram(
            "counterfeit_stage_seconds",
            "Seconds per check spent in each stage",
            ["stage"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
            registry=r,
        )
        self.commit_rows = Histogram(
            "counterfeit_check_commit_rows", "Check rows per group commit", buckets=BATCH_BUCKETS, registry=r
        )
        self.index_size = Gauge(
            "counterfeit_index_vectors", "Vectors in the live index", ["generation"], registry=r
        )
        self._complaint_metrics(r)

    def _complaint_metrics(self, r: CollectorRegistry) -> None:
        """Complaints' lanes, decisions and service levels (service/marketplace/complaints.py)."""
        self.complaints_filed = Counter(
            "counterfeit_complaints_filed", "Complaints filed, per triage lane", ["lane"], registry=r
        )
        self.complaint_decisions = Counter(
            "counterfeit_complaint_decisions",
            "Complaints decided, per outcome and lane, and whether the decision came after its due time",
            ["outcome", "lane", "breached"],
            registry=r,
        )
        self.complaint_decision_hours = Histogram(
            "counterfeit_complaint_decision_hours",
            "Hours from filing to decision",
            ["lane"],
            buckets=(0.25, 1, 4, 12, 24, 48, 72, 168, 336, 720),
            registry=r,
        )
        self.complaints_overdue = Gauge(
            "counterfeit_complaints_overdue",
            "Open complaints past their due time (read when scraped)",
            registry=r,
        )
