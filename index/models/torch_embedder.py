"""What every PyTorch image backbone shares: batching, fast preprocessing, device and precision."""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from index.embedder import Embedder, EmbedderInfo, ModelInput, l2_normalise
from index.models.errors import ModelRuntimeError
from index.pdq import PdqHash, compute_pdq
from index.preprocess import FastPreprocessor, PreprocessConfig
from index.regions import WHOLE, EncodedRegion
from index.runtimes import (
    RUNTIMES,
    SAME_SPACE_COSINE,
    Agreement,
    OnnxForward,
    RuntimeUnavailable,
    default_cache_dir,
    load_onnx_forward,
    onnx_is_faster,
)
from index.synthetic import synthetic_image
from index.tensor_preprocess import TensorPreprocessor

log = logging.getLogger(__name__)

NULL_FORWARD_KIND = "random (NULL FORWARD: BENCHMARK ONLY)"


class TorchImageEmbedder(Embedder):
    """Subclasses set ``model``, ``reference_transform``, ``fast_config`` and ``_info``, and implement ``forward``."""

    model: torch.nn.Module
    reference_transform: Callable[[Image.Image], torch.Tensor]  # the library's own eval transform
    fast_config: PreprocessConfig | None  # None when the fast path cannot reproduce the library's transform
    _info: EmbedderInfo

    def __init__(
        self,
        device: str,
        batch_size: int = 32,
        device_decode: bool | None = None,
        null_forward: bool = False,
        runtime: str = "torch",
        runtime_cache: str | None = None,
        runtime_threads: int | None = None,
    ):
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        self.device = torch.device(device)
        self.requested_runtime = runtime
        self.runtime_cache = runtime_cache
        self.runtime_threads = runtime_threads
        self._onnx: OnnxForward | None = None
        self.runtime_agreement: Agreement | None = None
        self.batch_size = batch_size
        # Decode JPEG bytes on the model's device: worth it on CUDA (nvJPEG); on CPU Pillow's draft decoding wins.
        self.device_decode = self.device.type == "cuda" if device_decode is None else device_decode
        self.null_forward = null_forward

    def _finish_setup(self) -> None:
        self.model = self.model.eval().to(self.device)
        self._fast = FastPreprocessor(self.fast_config) if self.fast_config else None
        self._tensor = TensorPreprocessor(self.fast_config, self.device) if self.fast_config else None
        if self.null_forward:  # benchmarks: measure the pipeline without the model; never comparable vectors
            from dataclasses import replace

            self._info = replace(self._info, weights_kind=NULL_FORWARD_KIND)
        else:
            self._select_runtime()

    @property
    def runtime(self) -> str:
        """The runtime that runs the forward pass: ``onnx`` or ``torch``."""
        if self._onnx is None:
            return "torch"
        return "onnx-int8" if self._onnx.path.stem.endswith("-int8") else "onnx"

    def _onnx_is_faster(self, probe: torch.Tensor) -> bool:
        batch = probe.repeat(2, 1, 1, 1)  # 8 images: closer to a served batch than the 4 probes alone
        pixels = batch.cpu().numpy()

        def on_torch():
            with torch.inference_mode():
                return self.forward(batch)

        return onnx_is_faster(on_torch, lambda: self._onnx(pixels))

    def _select_runtime(self) -> None:
        """ONNX Runtime when asked (or, for ``auto``, on CPU) and the export verifies; torch otherwise. An explicit
        ``onnx`` that cannot run fails the load; ``auto`` says why it stays on torch."""
        wanted = self.requested_runtime
        if wanted == "torch" or (wanted == "auto" and self.device.type != "cpu"):
            return
        probe = self.preprocess([synthetic_image(seed, size=(256, 256)) for seed in range(4)]).to(self.device)
        identity = {
            "spec": self._info.spec,
            "weights_sha256": self._info.weights_sha256,
            "preprocessing": self._info.preprocessing,
            "input": list(probe.shape[1:]),
        }
        int8 = wanted == "onnx-int8"
        try:
            self._onnx, self.runtime_agreement = load_onnx_forward(
                self.forward,
                self.model,
                probe,
                identity,
                default_cache_dir(self.runtime_cache),
                str(self.device),
                self.runtime_threads,
                int8,
            )
        except RuntimeUnavailable as exc:
            if wanted != "auto":
                raise ModelRuntimeError(self._info.spec, str(exc)) from exc
            log.warning("Runtime auto: %s serves on torch (%s)", self._info.spec, exc)
            return
        if wanted == "auto" and not self._onnx_is_faster(probe):
            log.info("Runtime auto: %s serves on torch (faster than ONNX Runtime here)", self._info.spec)
            self._onnx = None
            return
        if int8 and self.runtime_agreement.min_cosine < SAME_SPACE_COSINE:
            # Another embedding space: its own fingerprint, so an index built on the fp32 vectors is not searched
            # with these (the service asks for a reindex).
            from dataclasses import replace

            self._info = replace(
                self._info, weights_kind=f"{self._info.weights_kind} + int8 dynamic quantisation"
            )
            log.warning(
                "%s on onnx-int8: min cosine %.4f to torch's vectors (< %s): a fingerprint of its own, reindex to use it",
                self._info.spec,
                self.runtime_agreement.min_cosine,
                SAME_SPACE_COSINE,
            )

    @property
    def info(self) -> EmbedderInfo:
        return self._info

    @property
    def draft_size(self) -> tuple[int, int] | None:
        """Decoders may scale JPEGs down to this size while decoding (see index.images.decode_image)."""
        return self.fast_config.draft_size() if self.fast_config else None

    @property
    def pixel_config(self) -> PreprocessConfig | None:
        return self.fast_config

    @property
    def decodes_on_device(self) -> bool:
        return self.device_decode and self._tensor is not None

    @property
    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        if self._fast is not None:
            return self._fast(images)
        return torch.stack([self.reference_transform(image) for image in images])

    @abstractmethod
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Image features for a preprocessed batch already on the device."""

    @torch.inference_mode()
    def forward_batch(self, batch: torch.Tensor) -> np.ndarray:
        if self._onnx is not None:
            return l2_normalise(self._onnx(batch.cpu().numpy()))
        batch = batch.to(self.device, non_blocking=True)
        if self.null_forward:
            features = batch.flatten(1)[:, : self.dimension] + 1.0  # touches the batch, costs nothing
        elif (
            self.device.type == "cuda"
        ):  # half precision on GPU; CPU stays float32 (autocast there is slower)
            with torch.autocast("cuda", dtype=torch.float16):
                features = self.forward(batch)
        else:
            features = self.forward(batch)
        return l2_normalise(features.float().cpu().numpy())

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        chunks = [
            self.forward_batch(self.preprocess(images[i : i + self.batch_size]))
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(chunks)

    @torch.inference_mode()
    def input_tensors(
        self, inputs: Sequence[ModelInput], hashes: dict[int, PdqHash] | None = None
    ) -> tuple[torch.Tensor | None, list[int], dict[int, str]]:
        """Mixed inputs → one normalised batch on the device, the input rows it holds, and the failures.

        Pixels from CPU workers travel as uint8 and are normalised on the device; encoded bytes are
        decoded there (nvJPEG on CUDA) in one batched call, each image the device decoder does not
        take falling back to Pillow alone; PIL images take the fast (or the library's) transform."""
        assert self._fast is not None and self._tensor is not None
        parts: dict[int, torch.Tensor] = {}
        failures: dict[int, str] = {}
        pixel_rows = [i for i, item in enumerate(inputs) if isinstance(item, np.ndarray)]
        if len(pixel_rows) == len(
            inputs
        ):  # the common case (CPU workers made every input): one stacked batch
            return self._fast.normalise(np.stack(inputs), self.device), pixel_rows, failures
        if pixel_rows:
            stacked = self._fast.normalise(np.stack([inputs[i] for i in pixel_rows]), self.device)
            parts.update(zip(pixel_rows, stacked))
        byte_rows = [i for i, item in enumerate(inputs) if isinstance(item, (bytes, EncodedRegion))]
        if byte_rows:
            self._encoded_inputs(inputs, byte_rows, hashes, parts, failures)
        image_rows = [i for i, item in enumerate(inputs) if isinstance(item, Image.Image)]
        if image_rows:
            parts.update(zip(image_rows, self._fast([inputs[i] for i in image_rows]).to(self.device)))
        rows = sorted(parts)
        return (torch.stack([parts[i] for i in rows]) if rows else None), rows, failures

    def _encoded_inputs(
        self,
        inputs: Sequence[ModelInput],
        byte_rows: list[int],
        hashes: dict[int, PdqHash] | None,
        parts: dict[int, torch.Tensor],
        failures: dict[int, str],
    ) -> None:
        """Encoded bytes (whole images or regions) → normalised tensors in ``parts``: decoded on the device in one
        batched call (nvJPEG on CUDA), each image the device decoder does not take by Pillow alone, once for all
        its regions; a rejected image goes to ``failures``."""
        from index.images import ImageRejected, at_least, decode_image, pdq_source

        datas = [inputs[i].data if isinstance(inputs[i], EncodedRegion) else inputs[i] for i in byte_rows]
        regions = [inputs[i].region if isinstance(inputs[i], EncodedRegion) else WHOLE for i in byte_rows]
        device_hashes: dict[int, PdqHash] | None = {} if hashes is not None else None
        decoded = (
            self._tensor.decode(datas, device_hashes, regions)
            if self.device_decode
            else [None] * len(byte_rows)
        )
        fallbacks: dict[
            int, Image.Image | ImageRejected
        ] = {}  # id(bytes) -> decoded once, for all its regions
        for position, (i, tensor) in enumerate(zip(byte_rows, decoded)):
            region = regions[position]
            if tensor is None:  # Pillow fallback for this image only
                key = id(datas[position])
                if key not in fallbacks:
                    try:
                        fallbacks[key] = decode_image(
                            datas[position], 1 << 62, 1 << 62, draft_size=at_least(self.draft_size)
                        )
                    except ImageRejected as exc:
                        fallbacks[key] = exc
                image = fallbacks[key]
                if isinstance(image, ImageRejected):
                    failures[i] = f"{image.code}: {image.message}"
                    continue
                if hashes is not None and region.is_whole:
                    hashes[i] = compute_pdq(pdq_source(image))
                image = region.crop(image)
                tensor = (
                    torch.from_numpy(np.array(self._fast.resize_and_crop(image)))
                    .permute(2, 0, 1)
                    .to(self.device)
                )
            elif hashes is not None and device_hashes is not None and position in device_hashes:
                hashes[i] = device_hashes[position]
            parts[i] = self._fast.normalise_chw(tensor.unsqueeze(0))[0]

    def embed_inputs(
        self, inputs: Sequence[ModelInput], hashes: dict[int, PdqHash] | None = None
    ) -> tuple[np.ndarray, dict[int, str]]:
        if self._fast is None or self._tensor is None:
            return super().embed_inputs(inputs, hashes)
        out = np.zeros((len(inputs), self.dimension), dtype=np.float32)
        failures: dict[int, str] = {}
        for start in range(0, len(inputs), self.batch_size):
            chunk_hashes: dict[int, PdqHash] | None = {} if hashes is not None else None
            batch, rows, failed = self.input_tensors(inputs[start : start + self.batch_size], chunk_hashes)
            if hashes is not None and chunk_hashes is not None:
                hashes.update({start + i: h for i, h in chunk_hashes.items()})
            failures.update({start + i: reason for i, reason in failed.items()})
            if batch is not None:
                out[[start + i for i in rows]] = self.forward_batch(batch)
        return out, failures
