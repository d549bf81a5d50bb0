"""Training: the smoke preset end to end, reproducibility, resume, DDP, configs, checkpoints."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pokedex.core.bundle import read_bundle
from pokedex.errors import PokedexError
from pokedex.jobs.checkpoint import AtomicCheckpointIO
from pokedex.jobs.predict import TorchPredictor
from pokedex.jobs.train import compose_config, train
from tests.conftest import smoke_overrides

POKEDEX = str(Path(sys.executable).with_name("pokedex"))


def _weights(bundle_path: Path) -> dict[str, torch.Tensor]:
    return load_file(bundle_path / "weights.safetensors")


def test_smoke_run_writes_config_metrics_and_a_usable_bundle(
    processed: Path, tmp_path: Path
) -> None:
    result = train(
        compose_config(
            smoke_overrides(processed, tmp_path, "bundle_dir=" + str(tmp_path / "release"))
        )
    )

    assert (result.run_dir / "config.yaml").read_text().startswith("data:")
    assert {"test/acc_top1", "test/acc_top5", "test/loss", "fit_seconds"} <= set(result.metrics)
    assert 0.0 <= result.metrics["test/acc_top1"] <= result.metrics["test/acc_top5"] <= 1.0
    bundle = read_bundle(tmp_path / "release")
    assert bundle.classes == json.loads((processed / "classes.json").read_text())
    assert (
        bundle.meta["run"]["data_version"]
        == json.loads((processed / "summary.json").read_text())["data_version"]
    )
    assert bundle.preprocess.size == 32
    assert bundle.meta["run"]["precision"] in {"bf16-mixed", "32-true"}  # what `auto` became
    # the bundle predicts on an image file through THE preprocessing
    image = next((processed / "quarantine").parent.parent.glob("raw/**/*.webp"))
    record = TorchPredictor(bundle).predict_image(image.read_bytes(), top_k=3)
    assert len(record["species"]) == 3
    assert abs(sum(s["probability"] for s in record["species"]) - 1.0) < 1.0 + 1e-6
    assert record["species"][0]["name"] in bundle.classes


def test_same_seed_gives_same_weights_and_metrics(processed: Path, tmp_path: Path) -> None:
    a = train(compose_config(smoke_overrides(processed, tmp_path / "a")))
    b = train(compose_config(smoke_overrides(processed, tmp_path / "b")))
    c = train(compose_config(smoke_overrides(processed, tmp_path / "c", "seed=1")))

    assert a.metrics["test/loss"] == b.metrics["test/loss"]
    wa, wb, wc = _weights(a.bundle.path), _weights(b.bundle.path), _weights(c.bundle.path)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def _cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_resume_after_kill_matches_an_uninterrupted_run(processed: Path, tmp_path: Path) -> None:
    args = smoke_overrides(processed, tmp_path / "runs", "trainer.max_epochs=4", "name=resume")
    reference = train(
        compose_config(smoke_overrides(processed, tmp_path / "ref", "trainer.max_epochs=4"))
    )

    proc = subprocess.Popen(
        [POKEDEX, "train", *args],
        env=_cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list((tmp_path / "runs").glob("resume/*/checkpoints/last.ckpt")):
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # kill -9: no cleanup, no final checkpoint
    proc.wait()

    resumed = train(compose_config([*args, "resume=last"]))
    # a kill inside a save leaves its temporary file; the resumed run's first save removes it
    assert not list((tmp_path / "runs").glob("resume/*/checkpoints/.*.tmp")), "temp file left"
    assert resumed.metrics["epochs"] == reference.metrics["epochs"]
    assert resumed.metrics["test/loss"] == pytest.approx(reference.metrics["test/loss"], rel=1e-4)
    wr, wf = _weights(reference.bundle.path), _weights(resumed.bundle.path)
    assert max(float((wr[k].float() - wf[k].float()).abs().max()) for k in wr) < 1e-4


def test_ddp_on_two_cpu_processes(processed: Path, tmp_path: Path) -> None:
    args = smoke_overrides(processed, tmp_path, "trainer=ddp", "trainer.max_epochs=1", "name=ddp")
    done = subprocess.run(
        [POKEDEX, "train", *args], env=_cli_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(summary["bundle"], "weights.safetensors").is_file()


@pytest.mark.parametrize(
    "experiment", ["smoke", "cpu", "gpu", "finetune", "photo", "photo_finetune"]
)
def test_every_experiment_preset_composes(experiment: str) -> None:
    cfg = compose_config([f"experiment={experiment}"])
    assert cfg.name == experiment
    assert cfg.model.input_size > 0
    assert cfg.data.batch_size > 0


def test_the_gpu_preset_is_the_cpu_recipe_scaled_up() -> None:
    cpu, gpu = compose_config(["experiment=cpu"]), compose_config(["experiment=gpu"])
    assert gpu.augment == cpu.augment  # what the ablation chose, not the default preset
    assert gpu.model.arch == cpu.model.arch
    assert (gpu.optim.schedule, gpu.optim.weight_decay) == (
        cpu.optim.schedule,
        cpu.optim.weight_decay,
    )
    assert gpu.data.batch_size > cpu.data.batch_size
    assert gpu.optim.lr > cpu.optim.lr  # scaled with the batch
    assert gpu.trainer.max_epochs > cpu.trainer.max_epochs


def test_the_photo_presets_put_photographs_behind_the_sprites_with_colour_jitter() -> None:
    for name in ("photo", "photo_finetune", "photo_outliers", "photo96", "photo128"):
        cfg = compose_config([f"experiment={name}", "init=models/release"])
        assert cfg.augment.background_photo > 0
        assert cfg.augment.brightness > 0  # the cpu recipe's no-colour choice is undone
        assert cfg.optim.cutmix > 0
    assert compose_config(["experiment=photo"]).trainer.accelerator == "gpu"
    assert compose_config(["experiment=photo_finetune"]).init == "models/release"
    outliers = compose_config(["experiment=photo_outliers"])
    assert outliers.data.outliers > 0  # outlier exposure, on top of the photo recipe
    assert outliers.augment.jpeg > 0
    v9 = compose_config(["experiment=photo96"])  # release v9: the same at 96 px, a full cycle
    assert v9.model.input_size == 96
    assert v9.data.outliers == outliers.data.outliers
    assert v9.init == "models/release"
    assert v9.trainer.max_epochs > outliers.trainer.max_epochs


def test_the_photo128_preset_is_exactly_release_v10s_command() -> None:
    """v10 was trained with overrides on photo96; the preset must compose to the same config."""
    run = ["experiment=photo96", "name=photo128", "model.input_size=128"]
    run += ["trainer.max_epochs=16", "trainer.max_time=00:02:10:00"]
    assert compose_config(["experiment=photo128"]) == compose_config(run)


def test_the_polish128_preset_is_exactly_release_v11s_last_command() -> None:
    """v11's last step was overrides on photo128; the preset must compose to the same config."""
    init = "init=runs/photo128/cycle2/bundle"
    run = ["experiment=photo128", "name=polish128", init, "optim.cutmix=0.0"]
    run += ["optim.lr=2.0e-4", "optim.warmup_epochs=0.2", "trainer.max_epochs=4"]
    polish = compose_config(["experiment=polish128", init])
    assert polish == compose_config(run)
    assert polish.optim.cutmix == 0
    assert polish.augment.background_photo > 0  # the photo recipe otherwise unchanged


SPRITE_POLISH_RUN = [  # release v12's first step, as it was typed
    "experiment=polish128", "name=sprite_polish", "init=models/release", "trainer.max_epochs=3",
    "augment.background_white=0.4", "augment.background_solid=0.15",
    "augment.background_gradient=0.1", "augment.background_photo=0.25", "augment.blur=0.1",
    "augment.noise=0.08", "augment.lowres=0.1", "augment.jpeg=0.1", "augment.scale=[0.8,1.0]",
]  # fmt: skip
SPRITE_POLISH2_RUN = [  # and its second
    "experiment=polish128", "name=sprite_polish2", "init=runs/sprite_polish/a/bundle",
    "trainer.max_epochs=3", "optim.lr=1.0e-4", "augment.background_white=0.5",
    "augment.background_solid=0.2", "augment.background_gradient=0.05",
    "augment.background_photo=0.15", "augment.blur=0.05", "augment.noise=0.04",
    "augment.lowres=0.05", "augment.jpeg=0.05", "augment.scale=[0.85,1.0]", "augment.shift=0.08",
]  # fmt: skip


def test_the_sprite_polish_presets_are_exactly_release_v12s_two_commands() -> None:
    """v12's two steps were overrides on polish128; each preset must compose to the same config,
    and the second must lean further toward the sprites' look than the first."""
    first = compose_config(["experiment=sprite_polish"])
    assert first == compose_config(SPRITE_POLISH_RUN)
    second = compose_config(["experiment=sprite_polish2", "init=runs/sprite_polish/a/bundle"])
    assert second == compose_config(SPRITE_POLISH2_RUN)
    v11 = compose_config(["experiment=polish128"]).augment
    for key in ("background_photo", "blur", "noise", "lowres", "jpeg"):
        assert v11[key] > first.augment[key] > second.augment[key] > 0
    assert v11.background_white < first.augment.background_white < second.augment.background_white


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "expected"),
    [(True, False, "bf16-mixed"), (False, True, "bf16-mixed"), (False, False, "32-true")],
)
def test_auto_precision_is_bf16_only_on_cpus_that_compute_it(
    monkeypatch: pytest.MonkeyPatch, amx: bool, avx512_bf16: bool, expected: str
) -> None:
    from pokedex.jobs.train import resolve_precision

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    cpu = compose_config(["experiment=smoke"]).trainer
    assert cpu.precision == "auto"
    assert resolve_precision(cpu) == expected
    assert resolve_precision(compose_config(["experiment=gpu"]).trainer) == "bf16-mixed"
    pinned = compose_config(["experiment=smoke", "trainer.precision=32-true"]).trainer
    assert resolve_precision(pinned) == "32-true"


def test_the_cpu_feature_probes_exist_in_this_torch() -> None:
    """A renamed probe must fail here, not silently turn bf16 off (it once read a missing
    attribute through getattr's default and never picked bf16 on AMX)."""
    from pokedex.jobs.train import cpu_has_bf16

    assert isinstance(cpu_has_bf16(), bool)


@pytest.mark.parametrize(("total", "warmup"), [(2, 1), (10, 0), (10, 9), (3, 2)])
def test_a_one_cycle_too_short_for_its_phases_is_refused(total: int, warmup: int) -> None:
    from pokedex.models.module import check_onecycle

    with pytest.raises(PokedexError, match="too few"):
        check_onecycle(total, warmup, 1.0)
    check_onecycle(20, 2, 1.0)  # fits: no error


def test_a_schedule_that_cannot_fit_its_warmup_is_one_line_before_any_step(
    processed: Path, tmp_path: Path
) -> None:
    args = smoke_overrides(
        processed,
        tmp_path,
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "optim.schedule=onecycle",
    )
    done = subprocess.run(
        [POKEDEX, "train", *args], env=_cli_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: the one-cycle schedule has 2 optimizer steps")
    assert "trainer.max_epochs" in error
    assert "Traceback" not in done.stderr


def test_a_mistyped_override_fails_before_training() -> None:
    with pytest.raises(PokedexError, match="bad training config"):
        compose_config(["optim.learning_rate=0.1"])


class _Canary:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # runs on unpickling if the loader allows arbitrary objects
        return (Path.write_text, (self.path, "pwned"))


def test_checkpoint_loader_refuses_pickled_code(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Canary(canary)}, ckpt)
    with pytest.raises(pickle.UnpicklingError):
        AtomicCheckpointIO().load_checkpoint(ckpt)
    assert not canary.exists()


def test_checkpoint_save_is_atomic_when_serialization_fails(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": torch.tensor(1)}, path)
    good = path.read_bytes()
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):
        io.save_checkpoint({"bad": lambda: None}, path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_init_starts_a_run_from_a_bundles_weights(
    processed: Path, smoke_bundle: Path, tmp_path: Path
) -> None:
    # a learning rate too small to move anything: the run's parameters stay the bundle's
    def tiny_lr(out: Path) -> list[str]:
        return smoke_overrides(processed, out, "optim.lr=1e-12", "trainer.max_epochs=1")

    result = train(compose_config([*tiny_lr(tmp_path / "init"), f"init={smoke_bundle}"]))

    start = read_bundle(smoke_bundle)
    assert result.bundle.meta["run"]["init_version"] == start.meta["version"]
    before, after = _weights(smoke_bundle), _weights(result.bundle.path)
    params = [k for k in before if not k.endswith(("running_mean", "running_var", "tracked"))]
    assert params
    assert all(torch.allclose(after[k], before[k], atol=1e-6) for k in params)
    scratch = _weights(train(compose_config(tiny_lr(tmp_path / "scratch"))).bundle.path)
    assert not all(torch.allclose(scratch[k], before[k], atol=1e-6) for k in params)


def test_init_refuses_a_bundle_of_other_species_or_architecture(
    processed: Path, smoke_bundle: Path
) -> None:
    from pokedex.models.net import PokedexNet, init_from_bundle

    bundle = read_bundle(smoke_bundle)
    with pytest.raises(PokedexError, match="species"):
        init_from_bundle(PokedexNet("resnet18", 3), bundle, bundle.classes[:3])
    other = PokedexNet("shufflenet_v2_x0_5", len(bundle.classes))
    with pytest.raises(PokedexError, match="do not fit"):
        init_from_bundle(other, bundle, bundle.classes)
