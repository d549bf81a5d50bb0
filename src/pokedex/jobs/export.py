"""`pokedex export`: ONNX fp32 and INT8 (static QDQ) variants of a bundle's network.

Both files are written to a hidden folder inside the bundle, checked (onnx full check, no
external data, parity with PyTorch on real test images), and only then moved next to the
weights: a failed check leaves the bundle as it was. The figures go into ``bundle.json``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnxruntime import __version__ as ort_version
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    quant_pre_process,
    quantize_static,
)
from torch import nn

from pokedex.core.bundle import Bundle, update_meta
from pokedex.core.onnx_check import load_onnx_checked
from pokedex.core.predictor import OUTPUTS, VARIANTS
from pokedex.core.preprocess import CANVAS, canvases_to_input
from pokedex.errors import PokedexError
from pokedex.evaluation.inference import predict_logits
from pokedex.io import atomic_file
from pokedex.models.net import PokedexNet, load_net

log = logging.getLogger(__name__)
OPSET = 18
FP32_TOLERANCE = 1e-3  # max |Δlogit| between ONNX Runtime fp32 and PyTorch
INT8_MIN_AGREEMENT = 0.98  # share of images where INT8 and PyTorch pick the same species
# recorded in bundle.json; quantize_int8 says why each is set
QUANTIZATION = {
    "format": "QDQ",
    "calibration": "MinMax",
    "per_channel": True,
    "reduce_range": True,
    "fp32_nodes": ["species head", "types head"],
}


@dataclass
class ExportReport:
    """What `pokedex export` wrote and the parity figures it measured."""

    bundle: Path
    opset: int
    calibration_images: int
    parity_images: int
    fp32_max_abs_diff: dict[str, float]  # {"batch1": ..., "batch32": ...}, species + type logits
    int8_top1_agreement: float
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> file, bytes, sha256
    top1: dict[str, float] = field(default_factory=dict)  # vs labels, when the images have them
    quantization: dict[str, Any] = field(default_factory=lambda: dict(QUANTIZATION))
    versions: dict[str, str] = field(default_factory=dict)  # torch, onnx, onnxruntime
    data: str = "real"  # or "synthetic" (no processed folder given: a smoke test only)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, as stored under ``export`` in bundle.json."""
        d = asdict(self)
        d.pop("bundle")
        return d


class _ExportWrapper(nn.Module):
    """The network with all three outputs the predictor reads: species, types, features."""

    def __init__(self, net: PokedexNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.net.features(x)
        return self.net.species_head(features), self.net.types_head(features), features


def export_onnx(net: nn.Module, size: int, target: Path) -> Path:
    """Write a PokedexNet-like module as single-file ONNX with a dynamic batch axis."""
    example = torch.zeros(2, 3, size, size)
    with torch.no_grad():
        torch.onnx.export(
            _ExportWrapper(net).eval(),  # type: ignore[arg-type]
            (example,),
            str(target),
            input_names=["input"],
            output_names=list(OUTPUTS),
            dynamic_axes={"input": {0: "batch"}, **{name: {0: "batch"} for name in OUTPUTS}},
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter needs no onnxscript and matched to 2e-6
        )
    return target


class _CalibrationReader(CalibrationDataReader):
    """Feeds preprocessed calibration batches to ONNX Runtime's calibrator."""

    def __init__(self, inputs: np.ndarray, batch_size: int = 32) -> None:
        self.batches = iter([inputs[i : i + batch_size] for i in range(0, len(inputs), batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {"input": batch}


def quantize_int8(fp32: Path, target: Path, calibration: np.ndarray) -> Path:
    """Static QDQ INT8 with per-channel weights, calibrated on ``calibration`` inputs."""
    prepared = target.with_name(f"{target.stem}.pre.onnx")
    quant_pre_process(str(fp32), str(prepared))  # shape inference + graph fusions
    reader = _CalibrationReader(calibration)
    # the heads stay fp32 (a sliver of the compute): quantized logits would tie near the top
    graph = onnx.load(str(prepared)).graph
    heads = [n.name for n in graph.node if {"species", "types"} & set(n.output)]
    # static QDQ, not quantize_dynamic: dynamic ConvInteger kernels make CNNs 10-20x slower here.
    # 7-bit weights (reduce_range): without VNNI, x86 int8 kernels sum pairs of u8*s8 products
    # in int16 and saturate; on AVX2 this halved the logit error of a ResNet-18 for no speed.
    quantize_static(
        str(prepared),
        str(target),
        reader,
        quant_format=QuantFormat.QDQ,
        calibrate_method=CalibrationMethod.MinMax,
        per_channel=True,
        reduce_range=True,
        nodes_to_exclude=heads,
    )
    prepared.unlink()
    return target


def _ort_outputs(path: Path, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """Species and type logits ``(N, C + T)`` from ONNX Runtime, run ``batch_size`` at a time."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = []
    for i in range(0, len(inputs), batch_size):
        species, types = session.run(["species", "types"], {"input": inputs[i : i + batch_size]})
        out.append(np.concatenate([species, types], axis=1))
    return np.concatenate(out)


def sample_canvases(
    processed: Path, split: str, n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random canvases ``(n, S, S, 4)`` of a processed split, and their labels."""
    path = processed / f"{split}_images.npy"
    if not path.is_file():
        raise PokedexError(
            f"{path} not found: run `pokedex data prepare` or give the right --processed"
        )
    images = np.load(path, mmap_mode="r")
    labels = np.load(processed / f"{split}_labels.npy")
    idx = np.sort(np.random.default_rng(seed).permutation(len(images))[:n])
    return np.asarray(images[idx]), labels[idx].astype(np.int64)


def synthetic_canvases(n: int, seed: int = 0) -> np.ndarray:
    """``n`` canvases of random coloured blobs on transparency (when no real data is at hand)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS]
    out = np.zeros((n, CANVAS, CANVAS, 4), dtype=np.uint8)
    for i in range(n):
        for _ in range(3):
            (cy, cx), r = rng.integers(24, CANVAS - 24, 2), rng.integers(10, 40)
            blob = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            out[i][blob] = [*rng.integers(0, 256, 3).tolist(), 255]
    return out


def _file_info(path: Path, name: str) -> dict[str, Any]:
    data = path.read_bytes()
    return {"file": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def halve_weights(bundle: Bundle) -> Bundle:
    """Store the bundle's floating-point weights as fp16 (half the bytes); records the dtype.

    The network still runs in fp32: `load_state_dict` casts back on load. Rounding to fp16 moves
    logits by ~1e-3, far below what changes a prediction, and an export made afterwards is
    checked against the rounded weights, so parity stays exact.
    """
    from safetensors.torch import load_file, save

    target = bundle.file("weights.safetensors")
    half = {k: v.half() if v.is_floating_point() else v for k, v in load_file(target).items()}
    with atomic_file(target) as fh:
        fh.write(save(half))
    return update_meta(bundle, weights_dtype="float16")


def _with_flips(bundle: Bundle) -> dict[str, Any]:
    """The metadata of ``bundle`` answering with the mean of each image and its mirror image:
    ``net.flip_average`` set, the version marked ``+flip``."""
    version = str(bundle.meta.get("version", "unknown"))
    return {
        "net": {**bundle.meta["net"], "flip_average": True},
        "version": version if version.endswith("+flip") else f"{version}+flip",
    }


def export(
    ref: str | Path,
    *,
    processed: Path | None = None,
    calibration_images: int = 256,
    parity_images: int = 512,
    fp32_tolerance: float = FP32_TOLERANCE,
    int8_min_agreement: float = INT8_MIN_AGREEMENT,
    seed: int = 0,
    flip_average: bool = False,
) -> ExportReport:
    """Add ``model.onnx`` and ``model.int8.onnx`` to a bundle after checking them against PyTorch.

    ``flip_average`` makes the model answer with the mean of each image and its mirror image
    (twice the backbone work): both variants include it, and so, through ``net.flip_average``
    in bundle.json, do PyTorch, calibration and every figure measured afterwards.

    Calibration uses training canvases and parity uses test canvases of ``processed``; without
    it both use synthetic canvases, which is only good for a smoke test (logged as a warning).
    Raises PokedexError, leaving the bundle untouched, when a check fails.
    """
    from pokedex.store.registry import resolve_model

    bundle = resolve_model(str(ref))
    net = load_net(bundle)
    net.flip_average = net.flip_average or flip_average
    spec = bundle.preprocess
    labels: np.ndarray | None = None
    if processed is not None:
        calibration, _ = sample_canvases(processed, "train", calibration_images, seed)
        parity, labels = sample_canvases(processed, "test", parity_images, seed)
    else:
        log.warning("no processed data given: calibrating and checking on synthetic images")
        calibration = synthetic_canvases(calibration_images, seed)
        parity = synthetic_canvases(parity_images, seed + 1)
    calib_inputs = canvases_to_input(calibration, spec)  # (N, 3, size, size)
    parity_inputs = canvases_to_input(parity, spec)
    # the PyTorch reference: species and type logits (N, C + T) in fp32
    reference = predict_logits(net, parity_inputs, batch_size=64, types=True)
    if not np.isfinite(reference).all():
        raise PokedexError(
            f"{bundle.path}: the PyTorch model gives non-finite logits; refusing to export"
        )

    # a hidden folder inside the bundle: the same filesystem, so the final moves are atomic
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=bundle.path))
    try:
        report = _build_and_check(
            bundle,
            net,
            work,
            calib_inputs,
            (parity_inputs, reference, labels),
            fp32_tolerance,
            int8_min_agreement,
        )
        if processed is None:
            report.data = "synthetic"
        for name in ("fp32", "int8"):
            os.replace(work / VARIANTS[name], bundle.path / VARIANTS[name])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # one write: the flag and the variants that include it land together or not at all
    update_meta(bundle, export=report.to_dict(), **(_with_flips(bundle) if flip_average else {}))
    log.info("exported %s: %s", bundle.path, ", ".join(VARIANTS.values()))
    return report


def _build_and_check(
    bundle: Bundle,
    net: PokedexNet,
    work: Path,
    calib_inputs: np.ndarray,
    parity: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    fp32_tolerance: float,
    int8_min_agreement: float,
) -> ExportReport:
    """Write both variants into ``work`` and check them; raise PokedexError on any failure.

    ``parity`` is (inputs, PyTorch logits, labels or None) of the parity images.
    """
    parity_inputs, reference, labels = parity
    fp32 = export_onnx(net, bundle.preprocess.size, work / VARIANTS["fp32"])
    load_onnx_checked(fp32)
    diffs = {}
    for batch in (1, 32):
        diffs[f"batch{batch}"] = float(
            np.abs(_ort_outputs(fp32, parity_inputs, batch) - reference).max()
        )
    log.info("fp32 parity: max |Δlogit| %s on %d images", diffs, len(parity_inputs))
    worst = max(diffs, key=lambda k: diffs[k])
    if not diffs[worst] <= fp32_tolerance:  # `not <=` also catches NaN
        raise PokedexError(
            f"fp32 ONNX parity failed: max |Δlogit| {diffs[worst]:.2e} at {worst}"
            f" > {fp32_tolerance:.0e}"
        )

    int8 = quantize_int8(fp32, work / VARIANTS["int8"], calib_inputs)
    load_onnx_checked(int8)
    classes = len(bundle.classes)
    int8_top = _ort_outputs(int8, parity_inputs, 32)[:, :classes].argmax(1)
    torch_top = reference[:, :classes].argmax(1)
    agreement = float((int8_top == torch_top).mean())
    log.info(
        "int8 parity: top-1 agreement with PyTorch %.4f on %d images", agreement, len(parity_inputs)
    )
    if agreement < int8_min_agreement:
        raise PokedexError(
            f"INT8 ONNX parity failed: top-1 agreement {agreement:.4f} < {int8_min_agreement}"
        )

    top1 = {}
    if labels is not None:
        top1 = {
            "pytorch": float((torch_top == labels).mean()),
            "int8": float((int8_top == labels).mean()),
        }
    return ExportReport(
        bundle=bundle.path,
        opset=OPSET,
        calibration_images=len(calib_inputs),
        parity_images=len(parity_inputs),
        fp32_max_abs_diff=diffs,
        int8_top1_agreement=agreement,
        variants={name: _file_info(work / f, f) for name, f in VARIANTS.items()},
        top1=top1,
        versions={"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort_version},
    )
