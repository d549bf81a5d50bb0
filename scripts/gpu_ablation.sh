#!/usr/bin/env bash
# The augmentation ablation in one GPU call (docs/training.md, "Ablation on the GPU"), run on the
# GPU machine from the repository root:
#   POKEDEX_REAL_PHOTOS=data/real-photos-val.zip scripts/gpu_ablation.sh BUDGET_SECONDS [OVERRIDES...]
#   e.g. 540 experiment=photo
# The same setup as scripts/gpu_train.sh (wheels, unpacking the pack), then `pokedex gpu ablation`:
# one probe, then the recipe as given and each change of pokedex.jobs.gpuablation.ARMS alone
# (POKEDEX_ABLATION_ARMS picks some, e.g. base,perspective) on one schedule, sized so that all of
# them end their one-cycle inside the budget (--max-epochs N caps it), each scored on the test
# split and the photos.
# $OUT (default gpu-out) gets ablation.json, ablation_curves.png and run.log, which ends with what
# each augmentation step costs per batch on that GPU (`pokedex benchmark augment --device cuda`).
set -euo pipefail
GPU_MODE=ablation exec "$(dirname "$0")/gpu_train.sh" "$@"
