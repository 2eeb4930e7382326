"""Fine-tune the backbone on the banks: metric learning, so that a re-upload of a reference — cropped,
screenshotted, overlaid, recoloured, padded, flipped, re-compressed — lands next to it.

An ImageNet classifier is not a copy detector: it was trained to map *different* photos of one class
together, not to keep one photo's transformed copies closer to it than to everything else. Here each
step takes a batch of reference photos, makes two random copies of each with the transform families
of ``index.augment`` (the kinds DISC21 used), and trains with the symmetric InfoNCE loss: each
copy must find its twin among the batch (SimCLR's objective, on the banks' own photos).

Only the top of the network is trained (the last ``TRAINABLE_FRACTION`` of its parameter tensors, in
definition order: the last blocks and the head); batch-norm statistics stay frozen (the model stays
in eval mode). With few references that keeps the general features and moves the ones that decide
which photo this is. The result is a weights file; ``counterfeit reindex --model
timm:<architecture>@<file>`` then serves it (a new fingerprint, a new index generation, services
follow).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from index.augment import AUGMENTATIONS, recompress

TRAINABLE_FRACTION = 0.3
TEMPERATURE = 0.07


@dataclass
class FinetuneReport:
    images: int
    epochs: int
    trainable_parameters: int
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)  # mean loss per epoch


def copy_of(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """One random re-upload of ``image``: a transform family, then (half the time) re-compression."""
    families = list(AUGMENTATIONS.values())
    copy = families[int(rng.integers(len(families)))](image, rng)
    return recompress(copy, rng) if rng.random() < 0.5 else copy


def finetune(
    embedder,
    images: Sequence[Image.Image],
    epochs: int = 6,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> FinetuneReport:
    """Train ``embedder`` (a torch backbone: ``.model``, ``.preprocess``, ``.forward``) in place."""
    import torch
    import torch.nn.functional as F

    if len(images) < 2:
        raise ValueError(
            f"fine-tuning needs at least 2 reference photos (a batch needs negatives); got {len(images)}"
        )
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = embedder.model
    parameters = list(model.parameters())
    trainable = parameters[int(len(parameters) * (1 - TRAINABLE_FRACTION)) :]
    for parameter in parameters:
        parameter.requires_grad_(False)
    for parameter in trainable:
        parameter.requires_grad_(True)
    optimiser = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=1e-4)
    model.eval()  # frozen batch-norm statistics: a few hundred photos must not re-estimate them
    report = FinetuneReport(len(images), epochs, int(sum(p.numel() for p in trainable)))
    started = time.perf_counter()
    try:
        for epoch in range(epochs):
            losses = []
            order = rng.permutation(len(images))
            for start in range(0, len(order), batch_size):
                chosen = order[start : start + batch_size]
                if len(chosen) < 2:  # a lone leftover has no negative
                    continue
                first = embedder.preprocess([copy_of(images[i], rng) for i in chosen])
                second = embedder.preprocess([copy_of(images[i], rng) for i in chosen])
                with torch.enable_grad():
                    features = F.normalize(
                        embedder.forward(torch.cat([first, second]).to(embedder.device)).float(), dim=1
                    )
                    a, b = features[: len(chosen)], features[len(chosen) :]
                    logits = a @ b.T / TEMPERATURE
                    target = torch.arange(len(chosen), device=logits.device)
                    loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                losses.append(float(loss))
            report.losses.append(round(float(np.mean(losses)), 4))
            if progress is not None:
                progress(epoch, report.losses[-1])
    finally:
        for parameter in parameters:
            parameter.requires_grad_(False)
    report.seconds = round(time.perf_counter() - started, 1)
    return report


def save_weights(embedder, path: Path) -> Path:
    """The whole state dict (what ``timm:<architecture>@<file>`` loads), written atomically."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(embedder.model.state_dict(), partial)
    partial.replace(path)
    return path
