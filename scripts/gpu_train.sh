#!/usr/bin/env bash
# One command for a GPU run (docs/training.md, "GPU run"), run on the GPU machine from the
# repository root:
#   scripts/gpu_train.sh BUDGET_SECONDS [OVERRIDES...]    e.g. 420 experiment=photo
# 1. installs what the machine's image lacks, from wheels carried in wheels/ (no network there;
#    `scripts/gpu_wheels.sh` fills that folder here); the package itself runs from src/;
# 2. restores data/processed (and the photo backgrounds) from the pack in data/pack (the
#    folders can be moved with POKEDEX_PACK, POKEDEX_PROCESSED and POKEDEX_BACKGROUNDS);
# 3. `pokedex gpu run`: a short probe measures an epoch after warm-up, the epochs are sized so
#    the one-cycle schedule ends inside the budget, the run trains and tests;
# 4. runs the device tests on the real device;
# 5. leaves at most 8 files of at most 15 MiB in $OUT (default gpu-out): the bundle as tar parts,
#    curves, metrics and a manifest. Here, `pokedex gpu collect DIR` restores the bundle and
#    scripts/release.sh + `pokedex registry register/promote` take it through the gate.
# POKEDEX_REAL_PHOTOS, when set and carried, adds the photo figures to the curves and metrics.
# GPU_MODE=ablation (what scripts/gpu_ablation.sh sets) runs `pokedex gpu ablation` in step 3
# instead: the recipe and one change at a time on one sized schedule, no bundle, no device tests.
set -euo pipefail
budget="${1:?usage: scripts/gpu_train.sh BUDGET_SECONDS [OVERRIDES...]}"
shift
out="${OUT:-gpu-out}"
mode="${GPU_MODE:-run}"  # run: one sized run and its bundle; ablation: scripts/gpu_ablation.sh
[[ "$mode" == run || "$mode" == ablation ]] || { echo "GPU_MODE=$mode: run or ablation" >&2; exit 2; }
python="${PYTHON:-python3}"
pack="${POKEDEX_PACK:-data/pack}"
export POKEDEX_PROCESSED="${POKEDEX_PROCESSED:-data/processed}"
export POKEDEX_BACKGROUNDS="${POKEDEX_BACKGROUNDS:-data/backgrounds}"
started=$(date +%s)

if ! "$python" -c "import hydra, omegaconf, pydantic_settings" 2>/dev/null; then
  "$python" -m pip install -q --no-index --find-links wheels \
    hydra-core omegaconf antlr4-python3-runtime==4.9.3 pydantic pydantic-core \
    pydantic-settings python-dotenv annotated-types typing-inspection
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # this package, its dependencies as above
pokedex="$python -m pokedex.cli"

if [[ ! -f "$POKEDEX_PROCESSED/train_images.npy" ]]; then
  $pokedex data unpack --pack "$pack" --out "$POKEDEX_PROCESSED" \
    --backgrounds "$POKEDEX_BACKGROUNDS" --workers "$(nproc)"
fi
echo "setup took $(( $(date +%s) - started )) s"
left=$(( budget - ($(date +%s) - started) ))
mkdir -p "$out"
$pokedex gpu "$mode" "$left" --out "$out" logger=csv data.num_workers=8 "$@" 2>&1 | tee "$out/run.log"
if [[ "$mode" == ablation ]] \
  && "$python" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  # what each augmentation step costs per batch on this GPU (the perspective warp's among them)
  $pokedex benchmark augment --device cuda --processed "$POKEDEX_PROCESSED" \
    --backgrounds "$POKEDEX_BACKGROUNDS" 2>&1 | tail -8 | tee -a "$out/run.log" || true
fi
if [[ "$mode" == run && "${GPU_TRAIN_TESTS:-1}" == 1 ]] \
  && "$python" -c "import pytest" 2>/dev/null; then  # the device tests, on the real device
  "$python" -m pytest -q -p no:cacheprovider tests/models/test_device.py 2>&1 | tail -5 \
    | tee -a "$out/run.log" || true
fi
ls -la "$out"
echo "gpu_train.sh took $(( $(date +%s) - started )) s"
