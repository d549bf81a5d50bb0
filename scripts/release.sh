#!/usr/bin/env bash
# Turn a trained candidate bundle into a release bundle, every step a `pokedex` command:
#   export ONNX fp32 and INT8 with parity checks, the weights first stored as fp16 (what is
#   committed, so every figure below is of those weights), evaluate (temperature + open-set
#   threshold fitted on val, embedding map), benchmark inference (records the variant the
#   server runs), drift reference profile, model card. Reports land in reports/release/.
# Usage: scripts/release.sh [CANDIDATE_BUNDLE] (default models/candidate); then review the
# reports and move the bundle into models/release (or register it: `pokedex registry register`).
# POKEDEX_REAL_PHOTOS (a labelled photo set, validation only) adds the photo figures;
# POKEDEX_FLIP_AVERAGE=1 makes the model answer with the mean of each image and its mirror image
# (`pokedex export --flip-average`: twice the network's work per image).
set -euo pipefail

candidate="${1:-models/candidate}"
processed="${POKEDEX_PROCESSED:-data/processed}"
reports="reports/release"
photos=()
[[ -n "${POKEDEX_REAL_PHOTOS:-}" ]] && photos=(--photos "$POKEDEX_REAL_PHOTOS")
flips=()
[[ "${POKEDEX_FLIP_AVERAGE:-0}" == 1 ]] && flips=(--flip-average)

rm -rf "$reports/evaluation"
mkdir -p "$reports"
pokedex export --model "$candidate" --processed "$processed" --fp16-weights "${flips[@]}"
pokedex evaluate --model "$candidate" --processed "$processed" --out "$reports/evaluation" \
  --embeddings "${photos[@]}"
pokedex benchmark inference --model "$candidate" --processed "$processed" \
  | tee "$reports/inference-benchmark.md"
pokedex drift profile --model "$candidate" --processed "$processed"
pokedex card --model "$candidate" --evaluation "$reports/evaluation/metrics.json"
du -sh "$candidate"/*
