"""`pokedex sweep`: an Optuna study shared through its storage, pruned through a callback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch

from pokedex.jobs.sweep import PruneOnValidation, suggest, sweep
from tests.conftest import smoke_overrides

POKEDEX = str(Path(sys.executable).with_name("pokedex"))


def _trainer(value: float, epoch: int) -> SimpleNamespace:
    metrics = {"val/acc_top1": torch.tensor(value)}
    return SimpleNamespace(sanity_checking=False, callback_metrics=metrics, current_epoch=epoch)


def test_callback_reports_each_epoch_and_raises_when_the_pruner_says_so() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(0.5))
    trial = study.ask()
    callback = PruneOnValidation(trial)
    callback.on_validation_end(_trainer(0.8, 0), None)  # above the threshold: goes on
    with pytest.raises(optuna.TrialPruned, match="epoch 1"):
        callback.on_validation_end(_trainer(0.1, 1), None)
    reported = trial.storage.get_trial(trial._trial_id).intermediate_values
    assert reported == pytest.approx({0: 0.8, 1: 0.1})


def test_sanity_check_epochs_are_not_reported() -> None:
    trial = optuna.create_study(direction="maximize").ask()
    trainer = _trainer(0.0, 0)
    trainer.sanity_checking = True
    PruneOnValidation(trial).on_validation_end(trainer, None)
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {}


def test_suggest_samples_within_the_search_space() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    cfg = suggest(study.ask(), ["experiment=smoke", "model=shufflenet"])
    assert 3e-4 <= cfg.optim.lr <= 1e-2
    assert 1e-4 <= cfg.optim.weight_decay <= 0.2
    assert all(0.0 <= cfg.augment[k] <= 1.0 for k in ("blur", "noise", "lowres"))
    assert cfg.model.arch.startswith("shufflenet_v2")


@pytest.mark.slow
def test_two_workers_share_one_study(processed: Path, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    overrides = smoke_overrides(processed, tmp_path / "runs", "trainer.max_epochs=1")
    first = sweep(overrides, trials=2, study="shared", storage=storage)
    # a second worker (here: a second process through the CLI) adds to the same study
    done = subprocess.run(
        [POKEDEX, "sweep", "--trials", "1", "--study", "shared", "--storage", storage, *overrides],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    second = json.loads(done.stdout.strip().splitlines()[-1])
    assert first.trials == 2
    assert second["trials"] == 3
    assert set(second["best_params"]) == {"lr", "weight_decay", "augment_strength"}
    trials = optuna.load_study(study_name="shared", storage=storage).trials
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.params["lr"] for t in trials}) == 3
