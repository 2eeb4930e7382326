#!/usr/bin/env bash
# Installs everything the service and its tests need into a virtual environment (default ./.venv), so
# Debian's own python3 (PEP 668: no pip into the system) works as well as any other. torch/torchvision
# are pinned to the builds this project is tested with (pip takes them from a local wheel cache where
# one exists); everything else comes from pyproject.toml. A stamp of what was installed (pyproject.toml,
# this script, the extras) makes a re-run with nothing changed a no-op: no slow re-install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
TORCH_VERSION="${TORCH_VERSION:-2.14.1}"
TORCHVISION_VERSION="${TORCHVISION_VERSION:-0.29.1}"
EXTRAS="${EXTRAS:-test}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# axe-core from npm for the workbench's accessibility check (tests only; skipped where npm is missing).
if [[ "$EXTRAS" == *test* ]] && command -v npm >/dev/null 2>&1 \
   && [ ! -f tests/browser/node_modules/axe-core/axe.min.js ]; then
  npm ci --prefix tests/browser --no-audit --no-fund --silent
fi
stamp="$VENV/.counterfeit-installed"
want="$(cat pyproject.toml "$0" | sha256sum | cut -c1-16) $EXTRAS $TORCH_VERSION $TORCHVISION_VERSION"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if ! "$PY" -c "import torch, torchvision, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  "$PY" -m pip install --quiet "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi
"$PY" -m pip install --quiet -e ".[$EXTRAS]"
echo "$want" > "$stamp"
