"""`pokedex train`: compose the Hydra config, fit, test, and write a model bundle."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from pokedex.core.bundle import Bundle, write_bundle
from pokedex.core.preprocess import PreprocessSpec
from pokedex.data.augment import AugmentConfig
from pokedex.data.datamodule import PackedDataModule
from pokedex.data.pack import pack_provenance
from pokedex.errors import PokedexError
from pokedex.io import atomic_path
from pokedex.jobs.checkpoint import AtomicCheckpointIO
from pokedex.models.module import PokedexModule
from pokedex.provenance import data_version, git_state, package_versions

log = logging.getLogger(__name__)
# Lightning installs its own console handler; ours (on the root logger) already prints its records
for _name in ("lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_name).handlers.clear()
CONFIG_DIR = Path(__file__).parents[1] / "configs"
BUNDLED_NET_KEYS = ("stem_pool", "dropout", "flip_average")  # model.* keys a bundle keeps


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    metrics: dict[str, float]
    bundle: Bundle
    best_score: float  # best val/acc_top1 over the epochs


def compose_config(overrides: list[str] | None = None, config_name: str = "train") -> DictConfig:
    """The resolved training config for these Hydra overrides (e.g. ``experiment=smoke``)."""
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=list(overrides or []))
    except Exception as exc:  # Hydra's override/composition errors are user errors
        raise PokedexError(f"bad training config: {exc}") from exc
    OmegaConf.resolve(cfg)
    return cfg


def resolve_precision(trainer_cfg: DictConfig) -> str:
    """bf16 autocast only where it is fast: GPUs, and CPUs with bf16 instructions (AMX tiles or
    AVX-512 BF16; a ResNet-18 step at 96 px ran 1.9x fp32's images/s on an AVX-512 BF16 EPYC,
    docs/training.md). Elsewhere bf16 is emulated and many times slower than fp32."""
    if trainer_cfg.precision != "auto":
        return str(trainer_cfg.precision)
    if trainer_cfg.accelerator in ("gpu", "cuda"):
        return "bf16-mixed"
    return "bf16-mixed" if cpu_has_bf16() else "32-true"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX tiles or AVX-512 BF16)."""
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def _run_dir(cfg: DictConfig) -> tuple[Path, str | None]:
    base = Path(cfg.output_dir) / cfg.name
    if cfg.resume == "last":
        runs = sorted(p for p in base.glob("*") if (p / "checkpoints" / "last.ckpt").is_file())
        if not runs:
            raise PokedexError(f"nothing to resume under {base}")
        return runs[-1], str(runs[-1] / "checkpoints" / "last.ckpt")
    if cfg.resume:
        ckpt = Path(cfg.resume)
        if not ckpt.is_file():
            raise PokedexError(f"checkpoint {ckpt} not found")
        return ckpt.parent.parent, str(ckpt)
    return base / time.strftime("%Y%m%d-%H%M%S"), None


def train(cfg: DictConfig, extra_callbacks: list[L.Callback] | None = None) -> TrainResult:
    """Fit the model described by ``cfg``; return metrics and the bundle of the best epoch."""
    L.seed_everything(cfg.seed, workers=True)
    if cfg.trainer.num_threads:
        torch.set_num_threads(int(cfg.trainer.num_threads))
    run_dir, ckpt_path = _run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_yaml = OmegaConf.to_yaml(cfg)
    (run_dir / "config.yaml").write_text(config_yaml)

    spec = PreprocessSpec(size=int(cfg.model.input_size))
    dm = _datamodule(cfg, spec)
    module = _module(cfg, dm)
    init = _start_from(cfg, module, dm, resumed=ckpt_path is not None)
    provenance = _provenance(cfg, init)
    logger = build_logger(cfg.logger, run_dir, f"{cfg.name}-{run_dir.name}")
    logger.log_hyperparams({**_flatten(OmegaConf.to_container(cfg)), **provenance})
    callbacks = [*_callbacks(cfg, run_dir / "checkpoints"), *(extra_callbacks or [])]
    if cfg.real_photos:
        from pokedex.evaluation.photos import PhotoValidation

        callbacks.append(PhotoValidation(Path(cfg.real_photos), spec, dm.classes))
    trainer = _trainer(cfg, run_dir, logger, callbacks, str(provenance["precision"]))

    metrics, best_score = _fit_and_test(trainer, module, dm, ckpt_path)
    if cfg.real_photos and trainer.is_global_zero:
        from pokedex.evaluation.photos import evaluate_labelled

        photos = evaluate_labelled(module.net, spec, dm.classes, Path(cfg.real_photos))
        metrics.update({f"photos/{k}": v for k, v in photos.items()})
    final = {k: v for k, v in metrics.items() if isinstance(v, float | int)}
    logger.log_metrics(final, step=trainer.global_step)

    if cfg.logger.kind == "mlflow":
        provenance["mlflow_run_id"] = logger.run_id
    _plot_curves(cfg, logger, run_dir)
    bundle = _write_run_bundle(cfg, run_dir, module, dm, spec, metrics, provenance, config_yaml)
    if hasattr(logger, "experiment") and cfg.logger.kind == "mlflow":
        logger.experiment.log_artifacts(logger.run_id, str(bundle.path), artifact_path="bundle")
    log.info("run finished: %s", {k: round(v, 4) for k, v in metrics.items()})
    return TrainResult(run_dir=run_dir, metrics=metrics, bundle=bundle, best_score=best_score)


def _datamodule(cfg: DictConfig, spec: PreprocessSpec) -> PackedDataModule:
    """The packed splits, augmented as ``cfg.augment`` says."""
    return PackedDataModule(
        cfg.data.root,
        spec,
        AugmentConfig(**OmegaConf.to_container(cfg.augment)),  # type: ignore[arg-type]
        batch_size=cfg.data.batch_size,
        eval_batch_size=cfg.data.eval_batch_size,
        num_workers=cfg.data.num_workers,
        pin_memory=cfg.data.pin_memory,
        max_classes=cfg.data.max_classes,
        max_per_class=cfg.data.max_per_class,
        generations=cfg.data.get("generations"),
        seed=cfg.seed,
        backgrounds=cfg.data.get("backgrounds"),
        outliers=int(cfg.data.get("outliers") or 0),
    )


def _module(cfg: DictConfig, dm: PackedDataModule) -> PokedexModule:
    """The net and its training loop, sized by the data's classes and types."""
    net_cfg = {k: cfg.model[k] for k in ("arch", "pretrained", *BUNDLED_NET_KEYS)}
    return PokedexModule(
        net_cfg,
        dm.num_classes,
        dm.type_targets,
        **OmegaConf.to_container(cfg.optim),  # type: ignore[arg-type]
    )


def _start_from(
    cfg: DictConfig, module: PokedexModule, dm: PackedDataModule, *, resumed: bool
) -> dict[str, str]:
    """Load the weights of the bundle ``cfg.init`` names (unless the run resumes from its own
    checkpoint); the version started from, for the provenance."""
    if not cfg.init:
        return {}
    from pokedex.models.net import init_from_bundle
    from pokedex.store.registry import resolve_model

    start = resolve_model(str(cfg.init))
    if not resumed:
        init_from_bundle(module.net, start, dm.classes)
    return {"init_version": str(start.meta.get("version", start.path.name))}


def _provenance(cfg: DictConfig, init: dict[str, str]) -> dict[str, Any]:
    """The code, data, seed and package versions behind this run."""
    return {
        **git_state(),
        **init,
        "data_version": data_version(Path(cfg.data.root)),
        **pack_provenance(Path(cfg.data.root)),
        "seed": cfg.seed,
        "precision": resolve_precision(cfg.trainer),  # what `auto` became on this machine
        **{f"version/{k}": v for k, v in package_versions().items()},
    }


def _callbacks(cfg: DictConfig, ckpt_dir: Path) -> list[L.Callback]:
    """Keep the best and the last checkpoint, stop early, log the learning rate."""
    return [
        L.pytorch.callbacks.ModelCheckpoint(
            dirpath=ckpt_dir, filename="best", monitor="val/acc_top1", mode="max", save_last=True
        ),
        L.pytorch.callbacks.EarlyStopping(
            monitor="val/acc_top1", mode="max", patience=cfg.trainer.early_stopping_patience
        ),
        L.pytorch.callbacks.LearningRateMonitor(logging_interval="epoch"),
    ]


def _trainer(
    cfg: DictConfig, run_dir: Path, logger: Any, callbacks: list[L.Callback], precision: str
) -> L.Trainer:
    """The Lightning trainer ``cfg.trainer`` describes at ``precision`` (the one the provenance
    records), writing checkpoints atomically."""
    t = cfg.trainer
    return L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        precision=precision,  # type: ignore[arg-type]
        max_epochs=t.max_epochs,
        gradient_clip_val=t.gradient_clip_val,
        deterministic=t.deterministic,
        log_every_n_steps=t.log_every_n_steps,
        limit_train_batches=t.limit_train_batches,
        max_time=t.max_time,
        logger=logger,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        profiler=cfg.profiler,
        default_root_dir=str(run_dir),
        use_distributed_sampler=False,
        enable_model_summary=False,
    )


def _fit_and_test(
    trainer: L.Trainer, module: PokedexModule, dm: PackedDataModule, ckpt_path: str | None
) -> tuple[dict[str, float], float]:
    """Fit, then test the best epoch: its test metrics with the fit time and epochs, and its
    val/acc_top1."""
    started = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    fit_seconds = time.perf_counter() - started
    checkpoint = trainer.checkpoint_callback
    best = checkpoint.best_model_path or None  # type: ignore[union-attr]
    best_score = float(checkpoint.best_model_score or 0.0)  # type: ignore[union-attr]
    test = trainer.test(module, datamodule=dm, ckpt_path=best or "last", verbose=False)[0]
    metrics = {k: float(v) for k, v in test.items()}
    metrics["fit_seconds"] = round(fit_seconds, 1)
    metrics["epochs"] = trainer.current_epoch
    return metrics, best_score


def _plot_curves(cfg: DictConfig, logger: Any, run_dir: Path) -> None:
    from pokedex.jobs.curves import csv_history, mlflow_history, plot_history

    if cfg.logger.kind == "mlflow":
        history = mlflow_history(cfg.logger.tracking_uri, logger.run_id)
    elif (run_dir / "metrics.csv").is_file():
        history = csv_history(run_dir / "metrics.csv")
    else:
        return
    plot_history(history, run_dir / "learning_curves.png", title=f"{cfg.name} {run_dir.name}")


def _write_run_bundle(
    cfg: DictConfig,
    run_dir: Path,
    module: PokedexModule,
    dm: PackedDataModule,
    spec: PreprocessSpec,
    metrics: dict[str, float],
    provenance: dict[str, Any],
    config_yaml: str,
) -> Bundle:
    from safetensors.torch import save_file

    weights = run_dir / "weights.safetensors"
    state = {k: v.detach().contiguous().cpu() for k, v in module.net.state_dict().items()}
    save_file(state, str(weights))
    version = f"{run_dir.name}-{str(provenance['git_commit'])[:7]}"
    meta = {
        "name": f"pokedex-{cfg.model.arch}",
        "version": version,
        "net": {k: cfg.model[k] for k in ("arch", *BUNDLED_NET_KEYS)} | {"pretrained": False},
        "preprocess": spec.to_dict(),
        "temperature": 1.0,
        "metrics": metrics,
        "run": {**provenance, "run_dir": run_dir.name, "experiment": cfg.name},
    }
    bundle = write_bundle(
        run_dir / "bundle",
        meta=meta,
        classes=dm.classes,
        weights=weights,
        processed=Path(cfg.data.root),
        config_yaml=config_yaml,
    )
    if cfg.bundle_dir:
        with atomic_path(Path(cfg.bundle_dir)) as tmp:
            shutil.copytree(bundle.path, tmp)
    return bundle


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, f"{key}/"))
        else:
            out[key] = v
    return out


def build_logger(cfg: Any, run_dir: Path, run_name: str) -> Any:
    """The Lightning logger for ``cfg.kind``: mlflow (default), csv or wandb."""
    kind = cfg.kind
    if kind == "mlflow":
        from lightning.pytorch.loggers import MLFlowLogger

        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        return MLFlowLogger(
            experiment_name=cfg.experiment,
            tracking_uri=cfg.tracking_uri,
            run_name=run_name,
            log_model=False,
        )
    if kind == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(save_dir=str(run_dir), name="", version="")
    if kind == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        if not os.environ.get("WANDB_API_KEY"):
            os.environ.setdefault("WANDB_MODE", "offline")
        return WandbLogger(project=cfg.project, name=run_name, save_dir=str(run_dir))
    raise ValueError(f"unknown logger kind {kind!r}: use mlflow, csv or wandb")
