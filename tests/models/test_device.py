"""A net runs where its weights are: every place that feeds it sends inputs to its device.

On a CPU machine the net is put on the ``meta`` device (weights without storage) and a hook on
its first convolution records where the inputs arrived, then stops the forward pass; a float64
net checks the dtype the same way. Where CUDA exists, a real training run with photo
validation runs on the GPU (the crash of issue 19). scripts/gpu_train.sh runs this file there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pokedex.core.preprocess import PreprocessSpec, canvases_to_input
from pokedex.evaluation.inference import predict_logits, run_net
from pokedex.models.net import PokedexNet
from tests.conftest import smoke_overrides, write_photo_folder

SPEC = PreprocessSpec(size=32)


class PlacedError(Exception):
    """Raised by the hook once it has seen where the input went."""


def _record_placement(net: nn.Module) -> list[tuple[torch.device, torch.device]]:
    seen: list[tuple[torch.device, torch.device]] = []
    conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d))

    def hook(module: nn.Conv2d, args: tuple[torch.Tensor, ...]) -> None:
        seen.append((args[0].device, module.weight.device))
        raise PlacedError

    conv.register_forward_pre_hook(hook)
    return seen


def _canvases(n: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 128, 128, 4), dtype=np.uint8)


RUNNERS: dict[str, Callable[[nn.Module, np.ndarray], object]] = {
    "predict_logits (evaluation, photo validation, predict)": lambda net, c: predict_logits(
        net, canvases_to_input(c, SPEC)
    ),
    "run_net (evaluation, calibration, embeddings, centroids)": lambda net, c: run_net(
        net, c, SPEC, features=True
    ),
    "predict_logits(types=True) (export parity)": lambda net, c: predict_logits(
        net, canvases_to_input(c, SPEC), types=True
    ),
}


@pytest.mark.parametrize("runner", RUNNERS, ids=lambda name: name.split(" ")[0])
def test_inputs_are_sent_to_the_device_of_the_weights(runner: str) -> None:
    net = PokedexNet("resnet18", 4).to("meta")
    seen = _record_placement(net)
    with pytest.raises(PlacedError):
        RUNNERS[runner](net, _canvases())
    assert seen == [(torch.device("meta"), torch.device("meta"))]


@pytest.mark.parametrize("runner", RUNNERS, ids=lambda name: name.split(" ")[0])
def test_inputs_take_the_dtype_of_the_weights_and_come_back_as_float32(runner: str) -> None:
    net = PokedexNet("resnet18", 4).double().eval()
    out = RUNNERS[runner](net, _canvases())
    arrays = [out] if isinstance(out, np.ndarray) else [out.species, out.features]
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in arrays)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_gpu_run_with_photo_validation_trains_and_scores_the_photos(
    processed: Path, tmp_path: Path
) -> None:
    from pokedex.jobs.train import compose_config, train

    photos = write_photo_folder(processed, tmp_path / "photos")
    cfg = compose_config(
        smoke_overrides(processed, tmp_path / "runs", "trainer=gpu", f"real_photos={photos}")
    )
    result = train(cfg)
    assert 0.0 <= result.metrics["photos/acc_top1"] <= 1.0
    net = PokedexNet("resnet18", 4).cuda()
    cpu = predict_logits(net.cpu(), canvases_to_input(_canvases(), SPEC))
    gpu = predict_logits(net.cuda(), canvases_to_input(_canvases(), SPEC))
    assert np.allclose(cpu, gpu, atol=1e-3)


def test_photo_validation_runs_in_a_cpu_training_run(processed: Path, tmp_path: Path) -> None:
    from pokedex.jobs.train import compose_config, train

    photos = write_photo_folder(processed, tmp_path / "photos")
    cfg = compose_config(smoke_overrides(processed, tmp_path / "runs", f"real_photos={photos}"))
    result = train(cfg)
    assert 0.0 <= result.metrics["photos/acc_top1"] <= 1.0
