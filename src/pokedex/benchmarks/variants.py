"""How each row of the inference benchmark loads its model: one small loader per backend.

A loader takes the bundle context and a variant name and returns a :class:`Loaded`: a
``predict`` function (preprocessed batch in, species logits out), the model's file size and a
note for the table.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pokedex.benchmarks.pruning import prune_net
from pokedex.core.bundle import Bundle
from pokedex.core.onnx_check import load_onnx_checked
from pokedex.core.predictor import OPENVINO_CPU_CONFIG, VARIANTS, OnnxPredictor
from pokedex.jobs.export import export_onnx
from pokedex.models.net import load_net

Predict = Callable[[np.ndarray], np.ndarray]  # (N, 3, H, W) float32 -> (N, C) species logits
BATCH = 32  # the throughput batch; compiled code is warmed up on it
EAGER = "PyTorch eager fp32"


@dataclass
class Context:
    """What the loaders share."""

    bundle: Bundle
    processed: Path  # training canvases for the pruned model's fine-tune
    work: Path  # scratch folder for the pruned model
    threads: int
    prune: dict[str, Any]  # keyword arguments of :func:`pokedex.benchmarks.pruning.prune_net`


@dataclass
class Loaded:
    """A ready model: how to run it, how big its file is, what to say about it."""

    predict: Predict
    size_mb: float
    note: str = ""


class NotInstalledError(Exception):
    """An optional backend is missing: its row says so instead of failing the run."""


def _mb(path: Path) -> float:
    return path.stat().st_size / 1e6


def torch_predict(net: torch.nn.Module, bf16: bool = False) -> Predict:
    """PyTorch on channels-last input (as evaluation runs it), optionally under bf16 autocast."""
    net = net.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def predict(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            return net(t)[0].float().numpy()

    return predict


def ort_predict(bundle_dir: Path, variant: str, threads: int) -> Predict:
    """The serving predictor's own ONNX Runtime session, so the options match serving."""
    session = OnnxPredictor(bundle_dir, variant, threads=threads, runtime="onnxruntime").session
    return lambda x: session.run(None, {"input": x})[0]


def _pytorch(ctx: Context, variant: str) -> Loaded:
    size = _mb(ctx.bundle.file("weights.safetensors"))
    net = load_net(ctx.bundle)
    if variant != "compile":
        return Loaded(torch_predict(net, bf16=variant == "bf16"), size)
    predict = torch_predict(torch.compile(net))  # default inductor backend
    side = ctx.bundle.preprocess.size
    start = time.perf_counter()
    predict(np.zeros((BATCH, 3, side, side), np.float32))  # compiles now: errors surface here
    return Loaded(
        predict, size, f"default inductor, compiled in {time.perf_counter() - start:.0f} s"
    )


def _onnxruntime(ctx: Context, variant: str) -> Loaded:
    path = ctx.bundle.file(VARIANTS[variant])
    return Loaded(ort_predict(ctx.bundle.path, variant, ctx.threads), _mb(path))


def _openvino(ctx: Context, variant: str) -> Loaded:
    try:
        import openvino as ov
    except ImportError as exc:
        raise NotInstalledError("not installed (`pip install openvino`)") from exc
    path = ctx.bundle.file(VARIANTS[variant])
    config = {**OPENVINO_CPU_CONFIG, "INFERENCE_NUM_THREADS": ctx.threads}  # as the server runs
    compiled = ov.Core().compile_model(str(path), "CPU", config)  # reads the ONNX file as is
    request, species = compiled.create_infer_request(), compiled.output("species")
    # say what actually ran
    precision = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
    note = f"OpenVINO {ov.get_version().split('-')[0]}, float ops in {precision}"
    return Loaded(lambda x: request.infer({0: x})[species], _mb(path), note)


def _pruned(ctx: Context, variant: str) -> Loaded:
    net = load_net(ctx.bundle)
    note = prune_net(net, ctx.processed, ctx.bundle.preprocess, **ctx.prune)
    # a bundle folder of its own, so the pruned model runs through the serving predictor
    for name in ("bundle.json", "classes.json"):
        shutil.copyfile(ctx.bundle.path / name, ctx.work / name)
    path = export_onnx(net, ctx.bundle.preprocess.size, ctx.work / VARIANTS["fp32"])
    load_onnx_checked(path)
    return Loaded(ort_predict(ctx.work, "fp32", ctx.threads), _mb(path), note)


# (row name, backend, variant, loader), in table order
ROWS: list[tuple[str, str, str, Callable[[Context, str], Loaded]]] = [
    (EAGER, "pytorch", "fp32", _pytorch),
    ("PyTorch bf16 autocast", "pytorch", "bf16", _pytorch),
    ("torch.compile fp32", "pytorch", "compile", _pytorch),
    ("ONNX Runtime fp32", "onnxruntime", "fp32", _onnxruntime),
    ("ONNX Runtime INT8 (static QDQ)", "onnxruntime", "int8", _onnxruntime),
    ("OpenVINO fp32 ONNX", "openvino", "fp32", _openvino),
    ("OpenVINO INT8 ONNX", "openvino", "int8", _openvino),
    ("Pruned + fine-tuned, ONNX Runtime fp32", "onnxruntime", "pruned", _pruned),
]
