#!/usr/bin/env bash
# Installs everything the service and its tests need into the current Python environment.
# torch/torchvision are pinned to the builds this project is tested with (pip takes them from a
# local wheel cache where one exists); everything else comes from pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.14.1}"
TORCHVISION_VERSION="${TORCHVISION_VERSION:-0.29.1}"
EXTRAS="${EXTRAS:-test}"

if ! "$PYTHON" -c "import torch, torchvision, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  "$PYTHON" -m pip install --quiet "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi
"$PYTHON" -m pip install --quiet -e ".[$EXTRAS]"
