"""Inference runtimes: the network's forward pass is the one part a runtime replaces.

Preprocessing (the uint8 batch path), batching, normalisation, centring and everything after the vectors stay
ours and identical, so both runtimes embed into one space: the same fingerprint, no reindex when switching.

* ``torch`` — eager PyTorch (fp16 autocast on CUDA).
* ``onnx`` — the feature forward exported once to ONNX (dynamic batch), **verified against torch** on a fixed
  probe batch (refused below cosine 0.9999), cached by the model's identity, and run by ONNX Runtime with the
  providers present: CUDA/TensorRT with ``onnxruntime-gpu`` on a GPU, the CPU provider otherwise. On this
  project's 2-core CPU box it runs the offline backbone ~2× faster than torch eager (``bench.embed``).
* ``onnx-int8`` — the same export with its weights quantised to int8 (ONNX Runtime dynamic quantisation):
  measured, optional; vectors within cosine 0.999 of torch's keep the fingerprint, else it gets its own.
* ``auto`` — ONNX Runtime on CPU where the model exports, verifies and is faster than torch on this machine (timed
  on the probe batch at start-up); torch otherwise (and on GPUs, where
  torch fp16 is the measured default until the ONNX Runtime GPU providers are measured, ``bench/gpu.sh``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from index.atomic import write_atomic

log = logging.getLogger(__name__)
RUNTIMES = ("auto", "torch", "onnx", "onnx-int8")
EXPORT_FORMAT = 1  # bump when the export recipe changes: cached files of the old recipe are not reused
OPSET = 18
MIN_COSINE = 0.9999
# A quantised variant whose vectors stay this close to torch's keeps the model's embedding space; below it the
# variant is an embedding space of its own (its own fingerprint: a reindex), and below the floor it is refused.
SAME_SPACE_COSINE = 0.999
QUANTISED_FLOOR_COSINE = 0.98


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot run this model here (not installed, export failed, outputs differ from torch)."""


@dataclass(frozen=True)
class Agreement:
    """How closely the ONNX forward reproduces torch's on the probe batch."""

    max_abs_diff: float
    min_cosine: float


class OnnxForward:
    """An ONNX Runtime session for one exported feature forward: float32 NCHW batch in, features out."""

    def __init__(self, path: Path, device: str, threads: int | None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.providers = providers_for(device, ort.get_available_providers())
        self.session = ort.InferenceSession(str(path), options, providers=self.providers)
        self.input_name = self.session.get_inputs()[0].name
        self.path = path

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]


def providers_for(device: str, available: list[str]) -> list[str]:
    """The execution providers for a device, best first; CPU always last (ONNX Runtime's own fallback)."""
    wanted = ["TensorrtExecutionProvider", "CUDAExecutionProvider"] if device.startswith("cuda") else []
    chosen = [provider for provider in wanted if provider in available]
    if device.startswith("cuda") and not chosen:
        raise RuntimeUnavailable(
            "ONNX Runtime has no CUDA provider here (install onnxruntime-gpu, or use COUNTERFEIT_RUNTIME=torch)"
        )
    return [*chosen, "CPUExecutionProvider"]


def export_key(identity: dict) -> str:
    """The cache key: the model's identity (spec, weights hash, preprocessing, input shape) and the recipe."""
    payload = {**identity, "format": EXPORT_FORMAT, "opset": OPSET, "torch": torch.__version__.split("+")[0]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def export_forward(
    forward: Callable[[torch.Tensor], torch.Tensor],
    module: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
) -> None:
    """Export ``forward`` (which runs ``module``) with a dynamic batch dimension, written atomically (processes
    may race to export)."""

    class Features(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.network = module  # a submodule, so its weights export as initialisers, not traced constants

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            return forward(pixels)

    # Grad enabled: in no-grad mode nn.MultiheadAttention takes its fused fast path, which has no ONNX op.
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.enable_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            Features().eval(),
            (example,),
            buffer,
            input_names=["pixels"],
            output_names=["features"],
            dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    write_atomic(path, buffer.getvalue(), durable=False)  # a cache: a lost file is exported again


def agreement(reference: np.ndarray, candidate: np.ndarray) -> Agreement:
    if reference.shape != candidate.shape:  # another network altogether (a damaged or swapped file)
        return Agreement(float("inf"), -1.0)
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    cosine = (reference * candidate).sum(axis=1) / np.maximum(norms, 1e-12)
    return Agreement(float(np.abs(reference - candidate).max()), float(cosine.min()))


def quantise(source: Path, path: Path) -> None:
    """Dynamic int8 quantisation of an exported forward's weights, written atomically."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as scratch:  # the quantiser writes to a path; the cache takes it whole
        output = Path(scratch) / path.name
        # Matrix products only, per output channel: quantising convolutions too (ONNX Runtime's default) took
        # EfficientNet-Lite0's depthwise convolutions to cosine 0.68 of torch's vectors (refused, below 0.98).
        quantize_dynamic(
            source,
            output,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gemm"],
        )
        write_atomic(path, output.read_bytes(), durable=False)


def load_onnx_forward(
    forward: Callable[[torch.Tensor], torch.Tensor],
    module: torch.nn.Module,
    probe: torch.Tensor,
    identity: dict,
    cache_dir: Path,
    device: str,
    threads: int | None,
    int8: bool = False,
) -> tuple[OnnxForward, Agreement]:
    """The cached (or freshly exported) ONNX forward, checked against torch's on ``probe``; ``int8``: its
    dynamically quantised variant, held to :data:`QUANTISED_FLOOR_COSINE` instead of :data:`MIN_COSINE`."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise RuntimeUnavailable(f"onnxruntime is not installed ({exc})") from exc
    path = cache_dir / f"{export_key(identity)}.onnx"
    cached = path.is_file()
    try:
        return _verified(forward, module, probe, path, device, threads, int8)
    except RuntimeUnavailable:
        if not cached:
            raise
        # A cached export that no longer matches torch (weights replaced under the same identity, a file damaged):
        # export once more rather than serve a stale graph or give ONNX Runtime up.
        log.warning("The cached ONNX forward %s does not match torch's; exporting it again", path)
        for stale in (path, path.with_name(path.stem + "-int8.onnx")):
            stale.unlink(missing_ok=True)
        return _verified(forward, module, probe, path, device, threads, int8)


def _verified(
    forward: Callable[[torch.Tensor], torch.Tensor],
    module: torch.nn.Module,
    probe: torch.Tensor,
    path: Path,
    device: str,
    threads: int | None,
    int8: bool,
) -> tuple[OnnxForward, Agreement]:
    """Export (if not cached) and, for ``int8``, quantise; then load and hold it to torch's output on ``probe``."""
    if not path.is_file():
        try:
            export_forward(forward, module, probe, path)
        except Exception as exc:  # an architecture the exporter cannot trace: torch serves it
            raise RuntimeUnavailable(
                f"the model does not export to ONNX: {type(exc).__name__}: {exc}"
            ) from exc
        log.info("Exported the model's forward to %s", path)
    if int8:
        quantised = path.with_name(path.stem + "-int8.onnx")
        if not quantised.is_file():
            try:
                quantise(path, quantised)
            except Exception as exc:
                raise RuntimeUnavailable(f"int8 quantisation failed: {type(exc).__name__}: {exc}") from exc
        path = quantised
    runner = OnnxForward(path, device, threads)
    with torch.inference_mode():
        expected = forward(probe).float().cpu().numpy()
    measured = agreement(expected, runner(probe.cpu().numpy()))
    floor = QUANTISED_FLOOR_COSINE if int8 else MIN_COSINE
    if not measured.min_cosine >= floor:
        raise RuntimeUnavailable(
            f"ONNX Runtime's features differ from torch's on the probe batch (min cosine {measured.min_cosine:.6f} "
            f"< {floor}, max |Δ| {measured.max_abs_diff:.2e}); {path} is not used"
        )
    return runner, measured


def seconds_per_run(run: Callable[[], object], repeats: int = 2) -> float:
    """The best of ``repeats`` timed runs, after one untimed warm-up (allocations, ONNX Runtime's first run)."""
    run()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def onnx_is_faster(
    torch_run: Callable[[], object], onnx_run: Callable[[], object], margin: float = 0.95
) -> bool:
    """For ``auto``: whether ONNX Runtime's forward beats torch's here by at least ``1 - margin`` (measured: 4-6×
    on EfficientNet-Lite0 on this project's 2-core CPU, but slower than torch on ViT-B-32 there)."""
    return seconds_per_run(onnx_run) < margin * seconds_per_run(torch_run)


def default_cache_dir(model_cache: str | None) -> Path:
    """Next to the weights when a model cache is configured, else the user's cache directory."""
    if model_cache:
        return Path(model_cache) / "onnx"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "counterfeit-check" / "onnx"
