#!/usr/bin/env bash
# Fill wheels/ (git-ignored) with what the GPU machine's image lacks for scripts/gpu_train.sh:
# that machine has no network, so the wheels travel with the run (`carry: ["wheels", ...]`).
# Its image: Python 3.12 with torch, torchvision, lightning, numpy, pandas, pillow, typer, rich,
# matplotlib, scipy, safetensors, onnx and onnxruntime already installed.
set -euo pipefail
dest="${1:-wheels}"
mkdir -p "$dest"
pip download -q --dest "$dest" --only-binary=:all: --python-version 3.12 \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --implementation cp \
  hydra-core omegaconf pydantic pydantic-core pydantic-settings python-dotenv \
  annotated-types typing-inspection typing-extensions pyyaml pytest pluggy iniconfig packaging
# antlr4 4.9.3 (what omegaconf 2.3 pins) is published as source only: build its pure-Python wheel
pip wheel -q --no-deps --wheel-dir "$dest" antlr4-python3-runtime==4.9.3
du -sh "$dest"
