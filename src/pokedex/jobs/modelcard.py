"""`pokedex card`: write MODEL_CARD.md into a bundle from what the bundle and its evaluation record.

Every figure in the card is read from ``bundle.json``, ``config.yaml`` and (optionally) the
``metrics.json`` of `pokedex evaluate`, so the card can be rebuilt at any time and never drifts
from the model it describes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pokedex.core.bundle import Bundle
from pokedex.io import write_bytes_atomic

CARD = "MODEL_CARD.md"


def _pct(value: Any) -> str:
    return f"{100 * float(value):.1f}%" if isinstance(value, int | float) else "–"


def _recipe(
    config: dict[str, Any], metrics: dict[str, Any], ran_as: str | None = None
) -> list[str]:
    model, optim = config.get("model", {}), config.get("optim", {})
    trainer, data = config.get("trainer", {}), config.get("data", {})
    augment = config.get("augment", {})
    minutes = float(metrics.get("fit_seconds", 0)) / 60
    precision = f"`{trainer.get('precision')}`"
    if ran_as and ran_as != trainer.get("precision"):  # `auto` resolved per machine
        precision += f" (ran as `{ran_as}`)"
    return [
        "## Training recipe",
        f"- Backbone `{model.get('arch')}` at {model.get('input_size')} px, "
        f"pretrained: {model.get('pretrained', False)}; a species head (1,000 classes) and a "
        f"multi-label types head (loss weight {optim.get('types_weight')}).",
        f"- AdamW, lr {optim.get('lr')}, weight decay {optim.get('weight_decay')}, "
        f"{optim.get('schedule')} schedule with {optim.get('warmup_epochs')} warm-up epoch(s), "
        f"label smoothing {optim.get('label_smoothing')}, {_mixing(optim)}.",
        f"- Batch {data.get('batch_size')}, {metrics.get('epochs', '?')} epochs "
        f"({minutes:.0f} min), precision {precision}, gradient clipping "
        f"{trainer.get('gradient_clip_val')}.",
        "- Augmentation (as tensor ops on whole batches): "
        + ", ".join(f"{k} {v}" for k, v in augment.items())
        + ".",
        "",
    ]


def _mixing(optim: dict[str, Any]) -> str:
    mixup, cutmix = optim.get("mixup", 0.0) or 0.0, optim.get("cutmix", 0.0) or 0.0
    if not (mixup or cutmix):
        return "no mixup or CutMix"
    parts = [f"{name} {alpha}" for name, alpha in (("mixup", mixup), ("CutMix", cutmix)) if alpha]
    return f"{' and '.join(parts)} on {optim.get('mix_prob', 1.0):.0%} of batches"


def _metrics(bundle: Bundle, evaluation: dict[str, Any] | None) -> list[str]:
    m = bundle.meta.get("metrics", {})
    lines = [
        "## Metrics",
        "| split | images | top-1 | top-5 | other |",
        "|---|---:|---:|---:|---|",
        f"| test (at the end of training) | – | {_pct(m.get('test/acc_top1'))} | "
        f"{_pct(m.get('test/acc_top5'))} | types F1 {m.get('test/types_f1', 0):.3f} |",
    ]
    # photos measured by the training run, else by `pokedex evaluate --photos`
    photos = {k.removeprefix("photos/"): v for k, v in m.items() if k.startswith("photos/")}
    photos = photos or (evaluation or {}).get("photos") or {}
    lines.append(
        f"| real photos, 149 Gen-1 species (validation only, never trained on) | "
        f"{int(photos.get('n', 0))} | {_pct(photos.get('acc_top1'))} | "
        f"{_pct(photos.get('acc_top5'))} | macro top-1 {_pct(photos.get('acc_macro'))} |"
    )
    if evaluation:
        cal = evaluation.get("calibration", {})
        lines.append(
            f"| {evaluation.get('split')} (`pokedex evaluate`) | – | "
            f"{_pct(evaluation.get('acc_top1'))} | {_pct(evaluation.get('acc_top5'))} | "
            f"macro top-1 {_pct(evaluation.get('acc_macro'))}, "
            f"ECE {_pct(cal.get('ece_before'))} → {_pct(cal.get('ece_after'))} |"
        )
    lines.append("")
    return lines


def _serving(bundle: Bundle, evaluation: dict[str, Any] | None) -> list[str]:
    meta = bundle.meta
    open_set, export = meta.get("open_set", {}), meta.get("export", {})
    lines = [
        "## Calibration, open set and serving",
        f"- Temperature {meta.get('temperature', 1.0):.3f} (fitted on val).",
    ]
    if bundle.flip_average:
        lines.append(
            "- Answers with the mean of the image and its mirror image (`pokedex export"
            " --flip-average`): twice the network's work; the `pokedex evaluate` figures and"
            " those below include it."
        )
    if open_set:
        lines.append(
            f"- Open-set rejection by `{open_set.get('score')}` ≥ {open_set.get('threshold'):.4g}:"
            f" false reject {_pct(open_set.get('false_reject'))} on test images, false accept"
            f" {_pct(open_set.get('false_accept'))} on generated non-Pokémon images."
        )
        by_kind = (evaluation or {}).get("open_set", {}).get("false_accept_by_kind", {})
        if by_kind:
            worst = sorted(by_kind.items(), key=lambda kv: -kv[1])
            lines.append(
                "- False accept by kind of non-Pokémon image: "
                + ", ".join(f"{kind.replace('_', ' ')} {_pct(v)}" for kind, v in worst)
                + "."
            )
    if export:
        agreement = export.get("int8_top1_agreement")
        worst = max(export.get("fp32_max_abs_diff", {"": 0.0}).values())
        lines.append(
            f"- ONNX (opset {export.get('opset')}): fp32 max |Δlogit| vs PyTorch {worst:.1e}; "
            f"INT8 static QDQ top-1 agreement {_pct(agreement)} on "
            f"{export.get('parity_images')} test images."
        )
    serving = meta.get("serving")
    if serving:
        lines.append(
            f"- Served variant: `{serving.get('variant')}` (top-1 {_pct(serving.get('top1'))}, "
            f"{serving.get('batch32_img_s', 0):.0f} img/s at batch 32, measured "
            f"{serving.get('measured')} by `pokedex benchmark inference`)."
        )
    return [*lines, ""]


LIMITATIONS = """## Limitations
- Trained from scratch on ~20 sprite images per species (official artwork and game sprites on
  transparent backgrounds). Real photos, toys and fan art are far harder: see the photo row.
- Species that differ mainly in size or colour (regional forms, evolutions with the same
  silhouette) are the most confused pairs; `pokedex evaluate` lists them.
- The open-set threshold is fitted on generated non-Pokémon images (noise, shapes, gradients,
  textures, sky over ground, text, app screenshots, corners of real photos); other real-world
  pictures may be accepted more often.
- Alternate forms share one label with their species; shiny colourings are not modelled.
"""


def _gpu_run(path: Path) -> list[str]:
    """A line on the GPU run that made the bundle (`pokedex gpu collect` leaves gpu_run.json)."""
    if not path.is_file():
        return []
    run = json.loads(path.read_text())
    return [
        f"- Trained by `scripts/gpu_train.sh` on {run.get('device')}: {run.get('epochs_run')} of "
        f"{run.get('epochs_planned')} planned epochs in {run.get('train_s')} s "
        f"(budget {run.get('budget_s')} s)."
    ]


def render_card(bundle: Bundle, evaluation: dict[str, Any] | None = None) -> str:
    """The markdown model card of ``bundle``."""
    run = bundle.meta.get("run", {})
    config_path = bundle.path / "config.yaml"
    config: Any = (
        OmegaConf.to_container(OmegaConf.load(config_path)) if config_path.is_file() else {}
    )
    intro = [
        f"# Model card: {bundle.name}",
        "",
        "Recognises a Pokémon species (1,000 classes, Generations 1-8) and its types from one "
        "image. For the Pokédex API and UI; not for any decision about people.",
        "",
        "## Provenance",
        f"- Training run: experiment `{run.get('experiment')}`, "
        + (
            f"MLflow run `{run['mlflow_run_id']}`"
            if run.get("mlflow_run_id")
            else "no MLflow run (logged as CSV)"
        )
        + f", seed {run.get('seed')}, git commit "
        f"`{str(run.get('git_commit', ''))[:12]}`{' (dirty)' if run.get('git_dirty') else ''}.",
        *(
            [f"- Fine-tuned: started from the weights of `{run['init_version']}` (`init=`)."]
            if run.get("init_version")
            else []
        ),
        f"- Data: the Kaggle 1000 Pokémon dataset, processed data version "
        f"`{run.get('data_version')}` (80/10/10 split with duplicate groups kept in one split; "
        "see the data card).",
        *(
            [
                f"- Trained on pack `{run['data_pack']}` of that data ({run.get('data_pack_lossy')}"
                ", restored to 128 px canvases by `pokedex data unpack`)."
            ]
            if run.get("data_pack")
            else []
        ),
        *_gpu_run(bundle.path / "gpu_run.json"),
        "",
    ]
    ran_as = bundle.meta.get("run", {}).get("precision")
    body = _recipe(config, bundle.meta.get("metrics", {}), ran_as) + _metrics(bundle, evaluation)
    return "\n".join([*intro, *body, *_serving(bundle, evaluation), LIMITATIONS])


def write_card(bundle: Bundle, evaluation_json: Path | None = None) -> Path:
    """Write MODEL_CARD.md into the bundle (atomically) and return its path."""
    evaluation = json.loads(evaluation_json.read_text()) if evaluation_json else None
    target = bundle.path / CARD
    write_bytes_atomic(target, render_card(bundle, evaluation).encode("utf-8"))
    return target
