#!/usr/bin/env bash
# The augmentation ablation and architecture comparison at equal CPU time (docs/training.md):
# each arm is one `experiment=ablation/<arm>` preset on the 151 Gen-1 species (those of the photo
# set), trained in turn, then one table of the test-split and real-photo figures from each run's
# bundle.json.
# Usage: POKEDEX_REAL_PHOTOS=…/real-photos-val.zip scripts/ablation.sh [ARM…]
#        scripts/ablation.sh --table          (only print the table of finished runs)
# Also draws each arm's validation and photo curves into reports/ablation/curves.png.
# Default arms: base heavy_geometry no_colour shufflenet96 resnet48 (about 25 min each on
# 2 cores).
set -euo pipefail

runs="${POKEDEX_RUNS:-runs}"
arms=("$@")
[[ ${#arms[@]} -eq 0 ]] && arms=(base heavy_geometry no_colour shufflenet96 resnet48)

if [[ "${arms[0]}" != "--table" ]]; then
  if [[ -z "${POKEDEX_REAL_PHOTOS:-}" ]]; then
    echo "set POKEDEX_REAL_PHOTOS to the labelled photo set: the ablation compares photo accuracy" >&2
    exit 2
  fi
  for arm in "${arms[@]}"; do
    pokedex train "experiment=ablation/$arm"
  done
fi

python - "$runs" <<'PY'
import json, sys
from pathlib import Path

from pokedex.jobs.curves import mlflow_history, plot_comparison
from pokedex.store.registry import tracking_uri

runs = Path(sys.argv[1])
histories = {}
print("| arm | epochs | fit min | test top-1 | test top-5 | types F1 | photos top-1 | photos top-5 |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for folder in sorted(runs.glob("ablation-*")):
    bundles = sorted(folder.glob("*/bundle/bundle.json"))
    if not bundles:
        continue
    arm, meta = folder.name.removeprefix("ablation-"), json.loads(bundles[-1].read_text())
    m = meta["metrics"]
    if meta.get("run", {}).get("mlflow_run_id"):
        histories[arm] = mlflow_history(tracking_uri(), meta["run"]["mlflow_run_id"])
    pct = lambda key: f"{100 * m[key]:.1f}" if key in m else "–"
    print(
        f"| {arm} | {m['epochs']:.0f} | {m['fit_seconds'] / 60:.0f}"
        f" | {pct('test/acc_top1')} | {pct('test/acc_top5')} | {m.get('test/types_f1', 0):.3f}"
        f" | {pct('photos/acc_top1')} | {pct('photos/acc_top5')} |"
    )
if histories:
    out = plot_comparison(histories, Path("reports/ablation/curves.png"), title="ablation arms")
    print(f"\ncurves: {out}")
PY
