#!/usr/bin/env bash
# Fill wheels/ (git-ignored) with what the GPU machine's image lacks for scripts/gpu_train.sh:
# that machine has no network, so the wheels travel with the run (`carry: ["wheels", ...]`).
# Its image: Python 3.12 with torch, torchvision, lightning, numpy, pandas, pillow, typer, rich,
# matplotlib, scipy, safetensors, onnx, onnxruntime, pytest and pyyaml already installed.
# Versions come from the train image's lock; without them pip's resolver, limited to binary
# wheels, backtracks to hydra-core 0.11 (hydra 1.3 needs antlr4 4.9.3, published as source only).
set -euo pipefail
dest="${1:-wheels}"
lock="$(dirname "$0")/../dockerfiles/requirements/train.txt"
names="hydra-core omegaconf pydantic pydantic-core pydantic-settings python-dotenv \
annotated-types typing-inspection typing-extensions"
pins=()
for name in $names antlr4-python3-runtime; do
  pin=$(grep -i "^$name==" "$lock") || { echo "$name is not pinned in $lock" >&2; exit 1; }
  pins+=("$pin")
done
rm -rf "$dest"
mkdir -p "$dest"
pip download -q --no-deps --dest "$dest" --only-binary=:all: --python-version 3.12 \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --implementation cp \
  "${pins[@]:0:${#pins[@]}-1}"
# antlr4 4.9.3 (what omegaconf 2.3 pins) is published as source only: build its pure-Python wheel
pip wheel -q --no-deps --wheel-dir "$dest" "${pins[-1]}"
ls "$dest"
du -sh "$dest"
