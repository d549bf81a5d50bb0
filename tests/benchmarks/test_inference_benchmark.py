"""`pokedex benchmark inference`: every row present, failures reported in rows, the choice rule."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import pokedex.jobs.export as export_module
from pokedex.benchmarks import inference, variants
from pokedex.benchmarks.inference import (
    Row,
    format_table,
    record_serving_default,
    run,
    serving_default,
)
from pokedex.benchmarks.pruning import make_permanent, mask_channels, remove_masked_channels
from pokedex.core.bundle import Bundle, read_bundle
from pokedex.core.predictor import OnnxPredictor, default_variant
from pokedex.errors import PokedexError
from pokedex.jobs.export import export
from pokedex.models.net import PokedexNet
from tests.jobs.test_export import (
    LOOSE,
    copy_instead_of_quantizing,
    make_processed,
    make_tiny_bundle,
)

TINY = {
    "repeats": 2,
    "images": 16,
    "batch1_iters": 3,
    "batch32_iters": 2,
    "budget_s": 1.0,
    "bf16_images": 8,
    "threads": 1,
    "prune_steps": 2,
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Bundle, Path]:
    """An exported tiny bundle whose "INT8" file is an fp32 copy: real quantization is slow
    and tested in test_export.py; here the benchmark's bookkeeping is under test."""
    base = tmp_path_factory.mktemp("benchmark")
    bundle = make_tiny_bundle(base / "bundle")
    processed = make_processed(base / "processed", train=24, test=20)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(export_module, "quantize_int8", copy_instead_of_quantizing)
        export(
            bundle.path,
            processed=processed,
            **{**LOOSE, "calibration_images": 8, "parity_images": 8},
        )
    return bundle, processed


def test_the_table_has_every_row_and_a_failing_row_does_not_stop_the_run(
    exported: tuple[Bundle, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, processed = exported

    def no_compiler(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no C++ compiler | here")

    monkeypatch.setattr(torch, "compile", no_compiler)  # compiling takes minutes: test the failure
    rows = run(bundle.path, processed, **TINY)
    by = {r.name: r for r in rows}
    assert list(by) == [name for name, *_ in variants.ROWS]
    assert by["torch.compile fp32"].error == "RuntimeError: no C++ compiler | here"
    measured = [r for r in rows if r.error is None]
    # OpenVINO is an optional extra: without it its rows say so instead of measuring
    absent = [r for r in rows if r.error and r.error.startswith("not installed")]
    assert all(r.backend == "openvino" for r in absent)
    assert len(measured) == len(rows) - 1 - len(absent)
    for r in measured:
        assert r.top1 is not None
        assert 0.0 <= r.top1 <= 1.0
        assert r.size_mb is not None
        assert r.size_mb > 0
        assert len(r.latency_ms) == TINY["repeats"]
        assert all(1 <= len(s) <= TINY["batch1_iters"] for s in r.latency_ms)
        assert r.p99_ms is not None
        assert r.p99_ms >= min(r.p50_ms) > 0
        assert len(r.throughput) == TINY["repeats"]
        assert min(r.throughput) > 0
    assert by[variants.EAGER].images == 16  # a subset of the 20 test images, as asked
    assert by["PyTorch bf16 autocast"].images == 8
    assert "eager fp32 there" in by["PyTorch bf16 autocast"].note
    # ONNX Runtime fp32 runs the same network as eager: the same predictions
    assert by["ONNX Runtime fp32"].top1 == by[variants.EAGER].top1
    fp32 = by["ONNX Runtime fp32"]
    assert fp32.size_mb is not None
    pruned = by["Pruned + fine-tuned, ONNX Runtime fp32"]
    assert pruned.size_mb is not None
    assert pruned.size_mb < 0.85 * fp32.size_mb  # channels really removed, not just zeroed
    assert "structured 30%" in pruned.note

    table = format_table(rows)
    lines = table.splitlines()
    assert len(lines) == 2 + len(rows) + 2
    for r in rows:
        assert any(line.startswith(f"| {r.name} |") for line in lines)
    assert "no C++ compiler \\| here" in table  # escaped, so the row keeps its columns
    assert all(line.count(" | ") == 7 for line in lines[2 : 2 + len(rows)])
    choice = serving_default(rows)
    assert "Serving default" in lines[-1]
    if choice is not None:
        assert choice.backend in ("onnxruntime", "openvino")
        assert choice.name in lines[-1]


def test_openvino_row_says_not_installed(
    exported: tuple[Bundle, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle, processed = exported
    monkeypatch.setitem(sys.modules, "openvino", None)  # makes `import openvino` fail
    ctx = variants.Context(bundle, processed, tmp_path, 1, {})
    with pytest.raises(variants.NotInstalledError, match="not installed"):
        variants.ROWS[5][3](ctx, "fp32")


def test_a_bundle_without_onnx_files_is_refused(tmp_path: Path) -> None:
    bundle = make_tiny_bundle(tmp_path / "bundle")
    processed = make_processed(tmp_path / "processed", train=4, test=4)
    with pytest.raises(PokedexError, match="pokedex export"):
        run(bundle.path, processed, **TINY)


def _row(
    name: str, backend: str, variant: str, top1: float, tput: float, error: str | None = None
) -> Row:
    return Row(name, backend, variant, 1.0, top1, 100, [[1.0]], [tput], error=error)


def test_the_serving_default_is_the_fastest_torch_free_bundle_variant_within_one_point() -> None:
    rows = [
        _row(variants.EAGER, "pytorch", "fp32", 0.800, 600),
        _row("bf16", "pytorch", "bf16", 0.800, 5000),  # needs torch: never the default
        _row("ort", "onnxruntime", "fp32", 0.800, 700),
        _row("ort int8", "onnxruntime", "int8", 0.791, 900),  # 0.9 point lower: allowed
        _row("ov int8", "openvino", "int8", 0.785, 2000),  # 1.5 points lower: refused
        _row("ov fp32", "openvino", "fp32", 0.800, 3000, error="RuntimeError: boom"),
        _row("pruned", "onnxruntime", "pruned", 0.800, 4000),  # not a file of the bundle
    ]
    assert serving_default(rows) is rows[3]
    assert "**ort int8**" in format_table(rows).splitlines()[-1]
    rows[3].top1 = 0.70
    assert serving_default(rows) is rows[2]
    rows[0].error, rows[0].top1 = "boom", None  # no reference, no choice
    assert serving_default(rows) is None


def test_structured_pruning_removes_channels_without_changing_outputs() -> None:
    torch.manual_seed(0)
    net = PokedexNet("resnet18", 5).eval()
    with torch.no_grad():  # non-trivial BN statistics, as a trained network has
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.3, 0.3)
    before = sum(p.numel() for p in net.parameters())
    assert mask_channels(net, 0.5) > 0
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        masked = net(x)[0]
    make_permanent(net)
    remove_masked_channels(net)
    with torch.no_grad():
        pruned = net(x)[0]
    np.testing.assert_allclose(pruned.numpy(), masked.numpy(), atol=1e-4)
    assert net.backbone.layer1[0].conv1.out_channels == 32
    assert net.backbone.layer1[0].conv2.in_channels == 32
    assert sum(p.numel() for p in net.parameters()) < 0.6 * before
    assert inference.MAX_TOP1_LOSS == 0.01


def test_the_recorded_choice_is_what_an_auto_server_loads(tmp_path: Path) -> None:
    from tests.serving.conftest import write_bundle

    bundle = read_bundle(write_bundle(tmp_path / "bundle"))
    assert default_variant(bundle) == "fp32"  # exported, not benchmarked
    assert OnnxPredictor(bundle).runtime == "onnxruntime"
    rows = [
        _row(variants.EAGER, "pytorch", "fp32", 0.800, 600),
        _row("ort", "onnxruntime", "fp32", 0.800, 700),
        _row("ort int8", "onnxruntime", "int8", 0.795, 900),
    ]
    assert record_serving_default(bundle.path, rows) is rows[2]
    bundle = read_bundle(bundle.path)
    assert (
        bundle.meta["serving"] | {"variant": "int8", "runtime": "onnxruntime"}
        == (bundle.meta["serving"])
    )
    assert OnnxPredictor(bundle).variant == "int8"
    (bundle.path / "model.int8.onnx").unlink()  # a stale choice falls back to what is there
    assert default_variant(bundle) == "fp32"
    (bundle.path / "model.onnx").unlink()
    with pytest.raises(PokedexError, match="pokedex export"):
        default_variant(bundle)


def test_openvino_serves_the_same_predictions_when_chosen(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    from tests.serving.conftest import write_bundle

    bundle = read_bundle(write_bundle(tmp_path / "bundle"))
    rows = [
        _row(variants.EAGER, "pytorch", "fp32", 0.800, 600),
        _row("ort", "onnxruntime", "fp32", 0.800, 700),
        _row("ov", "openvino", "fp32", 0.800, 2000),
    ]
    assert record_serving_default(bundle.path, rows) is rows[2]
    served = OnnxPredictor(read_bundle(bundle.path))
    assert (served.runtime, served.variant, served.precision) == ("openvino", "fp32", "f32")
    reference = OnnxPredictor(bundle, runtime="onnxruntime")
    side = bundle.preprocess.size
    x = np.random.default_rng(0).standard_normal((3, 3, side, side)).astype(np.float32)
    got, want = served.run(x), reference.run(x)
    assert np.allclose(got.probabilities, want.probabilities, atol=1e-4)
    assert np.allclose(got.features, want.features, atol=1e-3)


def test_an_unknown_runtime_is_refused(tmp_path: Path) -> None:
    from tests.serving.conftest import write_bundle

    with pytest.raises(PokedexError, match="unknown runtime"):
        OnnxPredictor(write_bundle(tmp_path / "bundle"), runtime="tensorrt")
