"""Load an :class:`~index.embedder.Embedder` from a model spec string."""

from __future__ import annotations

from index.embedder import Embedder
from index.models.artefacts import ArtefactStore, resolve_artefacts
from index.models.centering import CenteredEmbedder
from index.models.errors import ModelIdentityError, ModelUnavailableError
from index.models.spec import ModelSpec, ModelSpecError, parse_model_spec

__all__ = [
    "load_embedder",
    "resolve_device",
    "ArtefactStore",
    "ModelSpec",
    "ModelSpecError",
    "ModelIdentityError",
    "ModelUnavailableError",
    "parse_model_spec",
]


def resolve_device(requested: str | None) -> str:
    """``cuda`` when a GPU is present, else ``cpu``; an explicit request wins."""
    if requested and requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_embedder(
    spec: str,
    device: str | None = None,
    cache_dir: str | None = None,
    batch_size: int = 32,
    device_decode: bool | None = None,
    null_forward: bool = False,
    artefacts: ArtefactStore | None = None,
    runtime: str = "torch",
    runtime_threads: int | None = None,
) -> Embedder:
    """Load the model, then centre its embeddings on its stored mean (see centering.py, artefacts.py).

    ``artefacts``: where this deployment keeps derived model artefacts (shipped ones are read first; without
    a store, a model nobody shipped them for derives them in this process). ``device_decode``: decode JPEG bytes on the model's device (None: on CUDA only). ``null_forward``:
    BENCHMARKS ONLY — the forward pass becomes a no-op, to measure how fast the pipeline feeds a model.
    ``runtime``: ``torch``, ``onnx`` or ``auto`` (index/runtimes.py); the exported forward is cached under
    ``cache_dir`` (or the user's cache), and ``runtime_threads`` is ONNX Runtime's thread count."""
    parsed = parse_model_spec(spec)
    options = {
        "device_decode": device_decode,
        "null_forward": null_forward,
        "runtime": runtime,
        "runtime_cache": cache_dir,
        "runtime_threads": runtime_threads,
    }
    if parsed.backend == "open_clip":
        from index.models.open_clip_backend import OpenClipEmbedder

        base = OpenClipEmbedder(
            parsed, device=resolve_device(device), cache_dir=cache_dir, batch_size=batch_size, **options
        )
    elif parsed.backend == "timm":
        from index.models.timm_backend import TimmEmbedder

        base = TimmEmbedder(parsed, device=resolve_device(device), batch_size=batch_size, **options)
    else:  # parse_model_spec already rejects unknown backends
        raise ModelSpecError(f"Unsupported backend {parsed.backend!r}")
    return CenteredEmbedder(base, resolve_artefacts(base, artefacts))
