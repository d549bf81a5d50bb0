"""`pokedex sweep`: an Optuna study over the training config, pruned by validation accuracy.

The study lives in an RDB storage (sqlite by default), so several `pokedex sweep` processes
pointed at the same storage and study name share the work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import lightning as L
import optuna
from omegaconf import DictConfig

from pokedex.jobs.train import compose_config, train

log = logging.getLogger(__name__)

# augmentation knobs scaled together by one "strength" parameter
AUGMENT_STRENGTH_KEYS = ("brightness", "contrast", "saturation", "blur", "noise", "lowres")
WIDTHS = {
    "shufflenet_v2_x0_5": "narrow",
    "shufflenet_v2_x1_0": "base",
    "shufflenet_v2_x1_5": "wide",
}


@dataclass
class SweepResult:
    """The best trial of a finished study."""

    study: str
    best_value: float
    best_params: dict[str, Any]
    trials: int


class PruneOnValidation(L.Callback):
    """Report ``val/acc_top1`` to the trial each epoch and stop the run when Optuna says so."""

    def __init__(self, trial: optuna.Trial, monitor: str = "val/acc_top1") -> None:
        self.trial, self.monitor = trial, monitor

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        self.trial.report(float(trainer.callback_metrics[self.monitor]), trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {trainer.current_epoch}")


def suggest(trial: optuna.Trial, overrides: list[str]) -> DictConfig:
    """The trial's config: the base overrides plus sampled lr, weight decay, augmentation, width."""
    cfg = compose_config([*overrides, f"name=sweep-{trial.study.study_name}"])
    cfg.optim.lr = trial.suggest_float("lr", 3e-4, 1e-2, log=True)
    cfg.optim.weight_decay = trial.suggest_float("weight_decay", 1e-4, 0.2, log=True)
    strength = trial.suggest_float("augment_strength", 0.0, 1.5)
    for key in AUGMENT_STRENGTH_KEYS:
        cfg.augment[key] = min(1.0, float(cfg.augment[key]) * strength)
    if cfg.model.arch in WIDTHS:
        cfg.model.arch = trial.suggest_categorical("arch", sorted(WIDTHS))
    return cfg


def sweep(
    overrides: list[str], *, trials: int, study: str, storage: str, seed: int | None = None
) -> SweepResult:
    """Run ``trials`` trials (added to any already in the shared study); return the best.

    ``seed`` fixes the sampler for a single-worker study; leave it None when several workers
    share the study, or each would draw the same start-up trials.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study(
        study_name=study,
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        load_if_exists=True,
    )

    def objective(trial: optuna.Trial) -> float:
        cfg = suggest(trial, overrides)
        result = train(cfg, extra_callbacks=[PruneOnValidation(trial)])
        return result.best_score

    s.optimize(objective, n_trials=trials, catch=())
    done = [t for t in s.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise RuntimeError("no trial completed")
    log.info("best trial %d: %.4f %s", s.best_trial.number, s.best_value, s.best_params)
    return SweepResult(study, float(s.best_value), dict(s.best_params), len(s.trials))
