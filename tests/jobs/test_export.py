"""`pokedex export`: both ONNX variants, parity figures, all-or-nothing writes, T10 refusals."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from safetensors.torch import save_file

import pokedex.jobs.export as export_module
from pokedex.core.bundle import Bundle, read_bundle, write_bundle
from pokedex.core.onnx_check import load_onnx_checked
from pokedex.core.predictor import VARIANTS, OnnxPredictor
from pokedex.core.preprocess import CANVAS, PreprocessSpec, canvases_to_input
from pokedex.errors import PokedexError
from pokedex.jobs.export import export
from pokedex.models.net import PokedexNet, load_net

CLASSES = 10
SIZE = 32
# a random network has near-ties between classes, so INT8 agreement is checked, not required
LOOSE = {"calibration_images": 16, "parity_images": 16, "int8_min_agreement": 0.0}


def make_tiny_bundle(out: Path, *, seed: int = 0, nan: bool = False) -> Bundle:
    """A resnet18 bundle with random weights, 10 classes, 32 px input."""
    torch.manual_seed(seed)
    net = PokedexNet("resnet18", CLASSES)
    if nan:
        with torch.no_grad():
            net.species_head.weight[0, 0] = float("nan")
    weights = out.parent / f"{out.name}.safetensors"
    save_file(net.state_dict(), str(weights))
    meta = {
        "name": "pokedex-tiny",
        "version": "test",
        "net": {"arch": "resnet18", "pretrained": False, "stem_pool": True, "dropout": 0.0},
        "preprocess": PreprocessSpec(size=SIZE).to_dict(),
    }
    return write_bundle(
        out, meta=meta, classes=[f"species-{i}" for i in range(CLASSES)], weights=weights
    )


def make_processed(out: Path, *, train: int = 40, test: int = 24, seed: int = 0) -> Path:
    """Packed train/test canvases: coloured squares on transparency, random labels."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True)
    for split, n in (("train", train), ("test", test)):
        canvases = np.zeros((n, CANVAS, CANVAS, 4), dtype=np.uint8)
        for i in range(n):
            y, x = rng.integers(0, CANVAS // 2, 2)
            canvases[i, y : y + 64, x : x + 64] = [*rng.integers(0, 256, 3), 255]
        np.save(out / f"{split}_images.npy", canvases)
        np.save(out / f"{split}_labels.npy", rng.integers(0, CLASSES, n).astype(np.int16))
    return out


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Bundle, Path, export_module.ExportReport]:
    """One export shared by the read-only checks below (an export takes a few seconds)."""
    base = tmp_path_factory.mktemp("export")
    bundle = make_tiny_bundle(base / "bundle")
    processed = make_processed(base / "processed")
    report = export(bundle.path, processed=processed, **LOOSE)
    return read_bundle(bundle.path), processed, report


def test_export_writes_both_variants_and_records_parity(
    exported: tuple[Bundle, Path, export_module.ExportReport],
) -> None:
    bundle, _, report = exported
    recorded = bundle.meta["export"]
    assert recorded == json.loads(json.dumps(report.to_dict()))
    assert recorded["data"] == "real"
    assert recorded["opset"] == export_module.OPSET
    assert recorded["parity_images"] == 16
    assert recorded["calibration_images"] == 16
    assert set(recorded["fp32_max_abs_diff"]) == {"batch1", "batch32"}
    assert all(
        0 <= d <= export_module.FP32_TOLERANCE for d in recorded["fp32_max_abs_diff"].values()
    )
    assert 0.0 <= recorded["int8_top1_agreement"] <= 1.0
    assert set(recorded["top1"]) == {"pytorch", "int8"}
    for name in ("fp32", "int8"):
        info = recorded["variants"][name]
        assert (bundle.path / info["file"]).stat().st_size == info["bytes"]
    # INT8 weights take a quarter of the space; only the fp32 heads and scales stay wide
    assert recorded["variants"]["int8"]["bytes"] < 0.4 * recorded["variants"]["fp32"]["bytes"]
    assert not [p.name for p in bundle.path.iterdir() if p.name.startswith(".")]


def test_exported_variants_load_in_the_predictor_and_match_torch(
    exported: tuple[Bundle, Path, export_module.ExportReport],
) -> None:
    bundle, processed, _ = exported
    inputs = canvases_to_input(np.load(processed / "test_images.npy")[:8], bundle.preprocess)
    with torch.no_grad():
        expected = torch.softmax(load_net(bundle)(torch.from_numpy(inputs))[0], dim=1).numpy()
    for variant, file in VARIANTS.items():
        load_onnx_checked(bundle.path / file)  # single file, passes onnx's full check
        out = OnnxPredictor(bundle, variant, threads=1).run(inputs)
        assert out.probabilities.shape == (8, CLASSES)
        assert out.type_probabilities.shape == (8, 18)
        np.testing.assert_allclose(out.probabilities.sum(1), 1.0, atol=1e-5)
    fp32 = OnnxPredictor(bundle, "fp32", threads=1).run(inputs).probabilities
    np.testing.assert_allclose(fp32, expected, atol=1e-4)


def copy_instead_of_quantizing(fp32: Path, target: Path, calibration: np.ndarray) -> Path:
    """Stands in for ORT's quantizer (the slow part) where the test is about something else."""
    shutil.copyfile(fp32, target)
    return target


def _snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.mark.parametrize("failure", ["fp32", "int8"])
def test_parity_failure_raises_and_leaves_the_bundle_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    bundle = make_tiny_bundle(tmp_path / "bundle")
    processed = make_processed(tmp_path / "processed", train=16, test=8)
    before = _snapshot(bundle.path)
    options = {**LOOSE, "calibration_images": 8, "parity_images": 8}
    if failure == "fp32":
        original = export_module.export_onnx

        def corrupted(net: torch.nn.Module, size: int, target: Path) -> Path:
            with torch.no_grad():  # the file no longer matches the PyTorch reference
                net.species_head.bias += 0.01
            return original(net, size, target)

        monkeypatch.setattr(export_module, "export_onnx", corrupted)
    else:
        monkeypatch.setattr(export_module, "quantize_int8", copy_instead_of_quantizing)
        options["int8_min_agreement"] = 1.01  # unreachable: the INT8 check must refuse
    with pytest.raises(PokedexError, match="parity failed"):
        export(bundle.path, processed=processed, **options)
    assert _snapshot(bundle.path) == before  # no ONNX file, no temp folder, same bundle.json


def test_export_without_data_calibrates_on_synthetic_images(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_module, "quantize_int8", copy_instead_of_quantizing)
    bundle = make_tiny_bundle(tmp_path / "bundle", seed=1)
    with caplog.at_level(logging.WARNING, logger="pokedex.jobs.export"):
        report = export(bundle.path, **{**LOOSE, "calibration_images": 8, "parity_images": 8})
    assert report.data == "synthetic"
    assert report.top1 == {}  # synthetic images have no labels
    assert "synthetic" in caplog.text
    assert read_bundle(bundle.path).meta["export"]["data"] == "synthetic"
    assert (bundle.path / "model.int8.onnx").is_file()


def test_export_refuses_a_model_with_nan_weights(tmp_path: Path) -> None:
    bundle = make_tiny_bundle(tmp_path / "bundle", nan=True)
    with pytest.raises(PokedexError, match="non-finite"):
        export(bundle.path, **{**LOOSE, "calibration_images": 4, "parity_images": 4})
    assert not (bundle.path / "model.onnx").exists()


def _tiny_model(external: str | None = None, in_constant: bool = False) -> onnx.ModelProto:
    """y = x + w, with ``w`` an initializer or a Constant node, optionally stored externally."""
    w = numpy_helper.from_array(np.ones(4, dtype=np.float32), name="w")
    if external is not None:
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        entry = w.external_data.add()
        entry.key, entry.value = "location", external
    nodes = [helper.make_node("Add", ["x", "w"], ["y"])]
    initializers = [w]
    if in_constant:
        nodes.insert(0, helper.make_node("Constant", [], ["w"], value=w))
        initializers = []
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize(
    ("location", "in_constant"),
    [("../x", False), ("/etc/hostname", False), ("weights.bin", False), ("../x", True)],
)
def test_a_model_with_external_data_is_refused(
    tmp_path: Path, location: str, in_constant: bool
) -> None:
    (tmp_path / "weights.bin").write_bytes(np.ones(4, dtype=np.float32).tobytes())
    path = tmp_path / "model.onnx"
    path.write_bytes(_tiny_model(location, in_constant).SerializeToString())
    with pytest.raises(PokedexError, match="external data"):
        load_onnx_checked(path)


def test_a_single_file_model_passes_and_garbage_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.onnx"
    good.write_bytes(_tiny_model().SerializeToString())
    assert load_onnx_checked(good).graph.name == "tiny"
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\xffnot a protobuf" * 10)
    with pytest.raises(PokedexError, match="not a readable ONNX"):
        load_onnx_checked(bad)


def test_fp16_weights_halve_the_file_and_keep_predictions(tmp_path: Path) -> None:
    from pokedex.jobs.export import halve_weights
    from pokedex.models.net import load_net

    bundle = make_tiny_bundle(tmp_path / "b")
    x = torch.randn(4, 3, bundle.preprocess.size, bundle.preprocess.size)
    with torch.no_grad():
        before = load_net(bundle)(x)[0]
    size = (bundle.path / "weights.safetensors").stat().st_size
    bundle = halve_weights(bundle)
    assert (bundle.path / "weights.safetensors").stat().st_size < 0.55 * size
    assert bundle.meta["weights_dtype"] == "float16"
    net = load_net(bundle)
    assert next(net.parameters()).dtype == torch.float32  # runs in fp32 after loading
    with torch.no_grad():
        after = net(x)[0]
    assert torch.allclose(before, after, atol=2e-2)
    assert torch.equal(before.argmax(1), after.argmax(1))


def test_flip_average_is_in_both_variants_and_in_the_metadata(tmp_path: Path) -> None:
    bundle = make_tiny_bundle(tmp_path / "bundle", seed=2)
    processed = make_processed(tmp_path / "processed", train=16, test=8)
    export(bundle.path, processed=processed, flip_average=True, **LOOSE)
    bundle = read_bundle(bundle.path)
    assert bundle.meta["net"]["flip_average"] is True
    assert bundle.meta["version"] == "test+flip"
    inputs = canvases_to_input(np.load(processed / "test_images.npy")[:5], bundle.preprocess)
    mirrored = np.ascontiguousarray(inputs[..., ::-1])
    net = load_net(bundle)  # the flag travels through bundle.json to PyTorch
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(inputs))[0], dim=1).numpy()
    fp32 = OnnxPredictor(bundle, "fp32", threads=1)
    out = fp32.run(inputs)
    np.testing.assert_allclose(out.probabilities, expected, atol=1e-4)
    # the same answer for an image and its mirror image
    np.testing.assert_allclose(fp32.run(mirrored).probabilities, out.probabilities, atol=1e-4)
    # INT8 calibrates each pass on its own activations, so it is symmetric only loosely: count
    # instead that it runs every convolution twice
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    graph = onnx.load(str(bundle.path / VARIANTS["int8"])).graph
    assert sum(n.op_type == "Conv" for n in graph.node) == 2 * convs
    export(bundle.path, processed=processed, flip_average=True, **LOOSE)
    assert read_bundle(bundle.path).meta["version"] == "test+flip"  # marked once


def test_a_failed_flip_export_leaves_the_flag_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_module, "quantize_int8", copy_instead_of_quantizing)
    bundle = make_tiny_bundle(tmp_path / "bundle")
    before = _snapshot(bundle.path)
    with pytest.raises(PokedexError, match="parity failed"):
        export(bundle.path, flip_average=True, **{**LOOSE, "int8_min_agreement": 1.01})
    assert _snapshot(bundle.path) == before
