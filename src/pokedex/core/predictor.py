"""Inference on an exported bundle with ONNX Runtime: no torch, no web framework.

decode -> preprocess (THE preprocessing from the bundle's spec) -> run -> postprocess.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pokedex.core.bundle import Bundle, read_bundle, read_centroids
from pokedex.core.openset import cosine_score
from pokedex.core.preprocess import decode, image_to_input
from pokedex.errors import PokedexError

log = logging.getLogger(__name__)

VARIANTS = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
OUTPUTS = ("species", "types", "features")  # names fixed by `pokedex export`
# f32 explicitly: on CPUs with bf16 (AVX-512 BF16, AMX) OpenVINO's CPU plugin would otherwise run
# the float parts in bf16 and the answers would drift from ONNX Runtime's (the server and the
# inference benchmark compile with this)
OPENVINO_CPU_CONFIG: dict[str, Any] = {
    "PERFORMANCE_HINT": "LATENCY",
    "INFERENCE_PRECISION_HINT": "f32",
}


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``(N, C)`` logits at a temperature."""
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass
class Outputs:
    """Model outputs for a batch of N images."""

    probabilities: np.ndarray  # (N, C) calibrated species probabilities
    type_probabilities: np.ndarray  # (N, 18) independent sigmoid scores
    features: np.ndarray  # (N, D) penultimate embedding (drift monitoring)
    energy: np.ndarray = field(
        default_factory=lambda: np.zeros(0)
    )  # (N,) -logsumexp: open-set score
    cosine: np.ndarray = field(
        default_factory=lambda: np.zeros(0)
    )  # (N,) largest cosine to the species centroids; empty when the bundle has none


def default_variant(bundle: Bundle) -> str:
    """The variant to serve: the one `pokedex benchmark inference` chose, else the first present.

    The benchmark records its choice (the fastest variant within 1 point of top-1) as
    ``serving.variant`` in bundle.json; a bundle exported but not benchmarked serves fp32.
    """
    chosen = bundle.meta.get("serving", {}).get("variant")
    if chosen in VARIANTS and (bundle.path / VARIANTS[chosen]).is_file():
        return str(chosen)
    for name in ("fp32", "int8"):
        if (bundle.path / VARIANTS[name]).is_file():
            return name
    raise PokedexError(
        f"model bundle {bundle.path} has no ONNX model: run `pokedex export --model {bundle.path}`"
    )


def default_runtime(bundle: Bundle) -> str:
    """OpenVINO where the benchmark chose it and the package is installed, else ONNX Runtime."""
    if bundle.meta.get("serving", {}).get("runtime") != "openvino":
        return "onnxruntime"
    if importlib.util.find_spec("openvino") is None:
        log.warning("the bundle prefers OpenVINO, which is not installed: using ONNX Runtime")
        return "onnxruntime"
    return "openvino"


class OnnxPredictor:
    """An ONNX Runtime (or OpenVINO) session over one bundle variant; thread-safe ``run``.

    Both runtimes read the same exported ONNX file; neither needs torch.
    """

    def __init__(
        self,
        bundle: Bundle | str | Path,
        variant: str = "auto",
        threads: int = 0,
        runtime: str = "auto",
    ) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else read_bundle(bundle)
        if variant == "auto":
            variant = default_variant(self.bundle)
        if variant not in VARIANTS:
            raise PokedexError(f"unknown model variant {variant!r}: use one of {sorted(VARIANTS)}")
        path = self.bundle.file(VARIANTS[variant])
        from pokedex.core.onnx_check import load_onnx_checked

        load_onnx_checked(path)  # single-file models only: never follow external data paths
        self.variant = variant
        self.spec = self.bundle.preprocess
        centroids = read_centroids(self.bundle)  # (C, D) float16 on disk; float32 once, here
        self.centroids = None if centroids is None else centroids.astype(np.float32)
        self.runtime = default_runtime(self.bundle) if runtime == "auto" else runtime
        if self.runtime == "openvino":
            self._open_openvino(path, threads)
        elif self.runtime == "onnxruntime":
            self._open_onnxruntime(path, threads)
        else:
            raise PokedexError(f"unknown runtime {runtime!r}: use auto, onnxruntime or openvino")

    def _open_openvino(self, path: Path, threads: int) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise PokedexError("runtime openvino needs `pip install pokedex[openvino]`") from exc
        config = dict(OPENVINO_CPU_CONFIG)
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = ov.Core().compile_model(str(path), "CPU", config)
        self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        request, lock = compiled.create_infer_request(), threading.Lock()
        outputs = [compiled.output(name) for name in OUTPUTS]

        def infer(x: np.ndarray) -> list[np.ndarray]:
            with lock:  # one request object: calls from several threads take turns
                result = request.infer({0: x})
                return [np.array(result[o]) for o in outputs]

        self._infer = infer

    def _open_onnxruntime(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # no busy-waiting between batches: it halves latency when the CPU is shared
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.precision = "f32"  # the CPU provider runs float ops as the graph types them
        name = self.session.get_inputs()[0].name
        self._infer = lambda x: self.session.run(list(OUTPUTS), {name: x})

    def preprocess(self, data: bytes, max_pixels: int = 40_000_000) -> np.ndarray:
        """Image bytes -> ``(3, H, W)`` float32 input; ValueError/OSError on bad input."""
        return self.preprocess_image(decode(data, max_pixels=max_pixels))

    def preprocess_image(self, image: Image.Image) -> np.ndarray:
        """An already decoded image -> ``(3, H, W)`` float32 model input."""
        return image_to_input(image, self.spec)[0]

    def run(self, inputs: np.ndarray) -> Outputs:
        """Outputs for a preprocessed batch ``(N, 3, H, W)``."""
        species, types, features = self._infer(inputs)
        t = self.bundle.temperature
        energy = -t * _logsumexp(species / t)
        usable = self.centroids is not None and self.centroids.shape[1] == features.shape[1]
        return Outputs(
            probabilities=softmax(species, t),
            type_probabilities=1.0 / (1.0 + np.exp(-types)),
            features=features,
            energy=energy,
            # one product per batch, in the inference thread, not one per image on the loop
            cosine=cosine_score(features, self.centroids) if usable else np.zeros(0),
        )

    def info(self) -> dict[str, Any]:
        """Name, version and variant of the served model."""
        return {
            "name": self.bundle.name,
            "variant": self.variant,
            "runtime": self.runtime,
            "precision": self.precision,
            "classes": len(self.bundle.classes),
        }


def _logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1)
    return m + np.log(np.exp(x - m[:, None]).sum(axis=1))
