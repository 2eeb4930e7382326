"""Runs the model for the service: one forward pass at a time, off the event loop."""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
from PIL import Image

from index.embedder import Embedder, EmbedderInfo


class ModelRunner:
    """Serialises model calls (PyTorch already uses every core per call; overlapping calls only thrash)."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self._lock = threading.Lock()

    @property
    def info(self) -> EmbedderInfo:
        return self.embedder.info

    @property
    def draft_size(self) -> tuple[int, int] | None:
        return self.embedder.draft_size

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        with self._lock:
            return self.embedder.embed(images)
