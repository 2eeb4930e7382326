"""Settings → loading a model and the image limits that go with it: the one adapter the service,
the CLI, the reindexer and Ray actors all use (it pickles, so a Ray actor gets exactly the same)."""

from __future__ import annotations

from dataclasses import dataclass

from index.embedder import Embedder
from index.images import DecodeBudget, at_least
from index.models import load_embedder, resolve_device
from service.serving.model_artefacts import DatabaseArtefacts
from service.serving.uploads import ImageLimits
from service.settings import Settings

GPU_BATCH, CPU_BATCH = 256, 32


@dataclass(frozen=True)
class ModelOptions:
    device: str
    batch_size: int
    cache_dir: str | None
    max_image_bytes: int
    max_image_pixels: int
    device_decode: bool | None = None
    null_forward: bool = False
    decode_min_side: int = 512
    # The database that holds derived model artefacts (service.serving.model_artefacts): a URL, so the options still
    # pickle for Ray actors, which open it themselves.
    database_url: str | None = None
    runtime: str = "torch"
    threads: int | None = None  # the model's CPU threads (ONNX Runtime's intra-op threads)

    @classmethod
    def from_settings(
        cls, settings: Settings, device: str | None = None, runtime: str | None = None
    ) -> "ModelOptions":
        device = resolve_device(device or settings.device)
        # Batches up to 256 on a GPU (its throughput keeps rising to there); 32 on CPU, where bigger only adds latency.
        batch_size = settings.batch_size or (GPU_BATCH if device.startswith("cuda") else CPU_BATCH)
        device_decode = {"auto": None, "on": True, "off": False}[settings.device_decode]
        return cls(
            device,
            batch_size,
            str(settings.model_cache) if settings.model_cache else None,
            settings.max_image_bytes,
            settings.max_image_pixels,
            device_decode,
            settings.benchmark_null_forward,
            settings.decode_min_side,
            settings.resolved_database_url,
            runtime or settings.runtime,
            settings.torch_threads,
        )

    def load(self, spec: str) -> Embedder:
        """The model, centred with the artefacts every process of this deployment shares (stored in the
        database by the first one that needed them, unless the package ships them)."""
        if self.database_url is None:
            return self._load(spec, None)
        from service.db.session import make_engine, make_session_factory
        from service.serving.model_artefacts import DatabaseArtefacts

        engine = make_engine(self.database_url)
        try:
            return self._load(spec, DatabaseArtefacts(make_session_factory(engine)))
        finally:
            engine.dispose()

    def _load(self, spec: str, artefacts: DatabaseArtefacts | None) -> Embedder:
        return load_embedder(
            spec,
            device=self.device,
            batch_size=self.batch_size,
            cache_dir=self.cache_dir,
            device_decode=self.device_decode,
            null_forward=self.null_forward,
            artefacts=artefacts,
            runtime=self.runtime,
            runtime_threads=self.threads,
        )

    def limits(self, embedder: Embedder, budget: DecodeBudget | None = None) -> ImageLimits:
        """Decode exactly as registration did: the same byte and pixel limits, and JPEGs decoded (draft) to at
        least the model's input and ``decode_min_side`` — PDQ is hashed from that image, and a hash from a
        small decode drifts from one of the full image (tests/index/test_prepare.py measures it)."""
        return ImageLimits(
            self.max_image_bytes,
            self.max_image_pixels,
            at_least(embedder.draft_size, self.decode_min_side),
            budget,
        )
