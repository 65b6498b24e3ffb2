#!/usr/bin/env bash
# The LSFB model's training on this machine's GPU, through the project's own code, with no
# network: bench/lsfb_gpu.sh [--wheels DIR] [bench/lsfb_gpu.py options]
#   --wheels DIR   install what is missing (keras, namex, optree, ...) from a folder of
#                  wheels, never from an index
# Uses $PYTHON (default python3) as found: TensorFlow with CUDA if it is there, else JAX or
# PyTorch (bench/lsfb_gpu.py picks the first that sees a GPU). Prints one JSON, and writes
# it to bench/results/lsfb_gpu.json unless --out says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
wheels=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) wheels="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
missing=()
for module in numpy keras namex optree; do
  "$PYTHON" -c "import $module" 2>/dev/null || missing+=("$module")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ -z "$wheels" ]; then
    echo "missing: ${missing[*]} (give --wheels DIR with their wheels)" >&2
    exit 2
  fi
  "$PYTHON" -m pip install -q --no-index --find-links "$wheels" "${missing[@]}"
fi
case " ${args[*]-} " in
  *" --out "*) ;;
  *) args+=(--out bench/results/lsfb_gpu.json) ;;
esac
exec "$PYTHON" -m bench.lsfb_gpu "${args[@]}"
