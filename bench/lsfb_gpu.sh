#!/usr/bin/env bash
# The LSFB benchmark on a machine with an NVIDIA GPU, in one command:
#   bench/lsfb_gpu.sh [--clips 20000] [--epochs 5]
# Installs TensorFlow with its CUDA libraries (the `gpu` extra), shows the GPU TensorFlow
# sees, then runs bench/lsfb_pipeline.py: the train figure is then mixed precision on the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q uv
python3 -m uv sync -q --extra gpu
python3 -m uv run --extra gpu python -c \
  "import tensorflow as tf; gpus = tf.config.list_physical_devices('GPU'); print('GPUs:', gpus); assert gpus, 'TensorFlow sees no GPU'"
exec python3 -m uv run --extra gpu python bench/lsfb_pipeline.py --epochs 5 \
  --out bench/results/lsfb_pipeline_gpu.json "$@"
