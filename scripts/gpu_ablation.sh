#!/usr/bin/env bash
# The augmentation ablation in one GPU call (docs/training.md, "Ablation on the GPU"), run on the
# GPU machine from the repository root:
#   POKEDEX_REAL_PHOTOS=data/real-photos-val.zip scripts/gpu_ablation.sh BUDGET_SECONDS [OVERRIDES...]
#   e.g. 540 experiment=photo
# The same setup as scripts/gpu_train.sh (wheels, unpacking the pack), then `pokedex gpu ablation`:
# one probe, one schedule sized so every arm ends its one-cycle inside its share of the budget,
# the recipe as given and each change of pokedex.gpuablation.ARMS alone (POKEDEX_ABLATION_ARMS
# picks some, e.g. base,perspective), each scored on the test split and the photos.
# $OUT (default gpu-out) gets ablation.json, ablation_curves.png and run.log.
set -euo pipefail
GPU_MODE=ablation exec "$(dirname "$0")/gpu_train.sh" "$@"
