#!/usr/bin/env bash
# Every GPU figure of this project in one run (< 8 minutes on one H200-class GPU, no network).
#
#   bench/gpu.sh [WHEELS_DIR]
#
# The GPU machine has torch, torchvision and timm but not the rest: WHEELS_DIR (default .whl,
# made by ../shared/gpu/wheels.sh) holds the other wheels and the pdqhash sdist; they are
# installed into /tmp/site. Without WHEELS_DIR the current Python environment is used as is.
# Output: every line on stdout (and in $OUT/gpu.log when $OUT is set), the SUMMARY lines last.
#
# GPU_BENCH_DEVICE=cpu GPU_BENCH_MODEL=open_clip:tiny-random GPU_BENCH_SMALL=1 bench/gpu.sh runs every step
# on any machine in a few minutes, with small counts: a check of the script itself before GPU minutes are spent.
set -u
cd "$(dirname "$0")/.."
WHEELS="${1:-.whl}"
if [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
    && python3 -m pip install -q --no-build-isolation --no-deps --no-cache-dir --target /tmp/site "$WHEELS"/pdqhash-*.tar.gz \
    || { echo "installing the wheels from $WHEELS failed"; exit 1; }
  export PYTHONPATH="/tmp/site:$PWD"
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:-$PWD}"
LOG="${OUT:-/tmp}/gpu.log"
: > "$LOG"
MODEL="${GPU_BENCH_MODEL:-open_clip:ViT-B-32@random}"   # same FLOPs as the pretrained tower; no weights to download
DEVICE="${GPU_BENCH_DEVICE:-cuda}"
# Small: a few batches, and three times the time limits (a 2-core CPU machine runs the steps, possibly beside others).
if [ -n "${GPU_BENCH_SMALL:-}" ]; then BATCHES=4 REQUESTS=256 REFERENCES=128 SLACK=3; else BATCHES=20 REQUESTS=4096 REFERENCES=2048 SLACK=1; fi
CORES=$(nproc)
run() {  # a step that fails or runs out of its time is reported and the next one still runs
  local limit=$(( $1 * SLACK )); shift
  echo "### $*" | tee -a "$LOG"
  timeout "$limit" "$@" 2>&1 | grep -v -e "RANDOM weights" -e "No pretrained weights" | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || echo "STEP FAILED (exit $rc): $*" | tee -a "$LOG"
}
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee -a "$LOG"
run 60  python3 -m bench.identity --model "$MODEL" --device "$DEVICE"   # an fp16 replica serves a CPU-built index
run 90  python3 -m bench.embed --model "$MODEL" --device "$DEVICE" --batch-size 256 --batches "$BATCHES" --workers "$CORES" --rounds 1
run 60  python3 -m bench.embed --model "$MODEL" --device "$DEVICE" --batch-size 32 --batches $((BATCHES * 2)) --workers "$CORES" --rounds 1
run 60  python3 -m bench.embed --model "$MODEL" --device "$DEVICE" --batch-size 256 --batches "$BATCHES" --device-decode off --workers "$CORES" --rounds 1
# ONNX Runtime's GPU providers (onnxruntime-gpu): the same full path with the forward on CUDA / TensorRT.
if python3 -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" 2>/dev/null; then
  run 120 python3 -m bench.embed --model "$MODEL" --device "$DEVICE" --runtime onnx --batch-size 256 --batches "$BATCHES" --workers "$CORES" --rounds 1
else
  echo "SKIPPED onnx on $DEVICE: no ONNX Runtime CUDA provider here (pip install onnxruntime-gpu)" | tee -a "$LOG"
fi
run 90  python3 -m bench.embed --model "$MODEL" --device cpu --null-model --device-decode off --batch-size 64 --batches "$BATCHES" --workers "1,2,8,$CORES" --rounds 1
run 150 python3 -m bench.api --model "$MODEL" --device "$DEVICE" --clients 16,64 --requests "$REQUESTS" --summary-clients 64 --client-processes 4
run 90  python3 -m bench.reindex --model "$MODEL" --device "$DEVICE" --n "$REFERENCES" --engines local --rounds 1
echo "### summary" | tee -a "$LOG"
grep -e "^SUMMARY" -e "STEP FAILED" "$LOG"
