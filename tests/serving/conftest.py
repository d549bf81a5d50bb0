"""A tiny model bundle made without torch: an ONNX graph built by hand, plus catalog and chart.

The graph maps the per-channel mean of the input to an 8-d "embedding" and three heads, with
the output names `pokedex export` uses, so the real OnnxPredictor runs it in milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper, numpy_helper

from pokedex.benchmarks.localserver import free_port, stop
from pokedex.core.preprocess import PreprocessSpec
from pokedex.dex.catalog import Species, save_catalog
from pokedex.dex.typechart import TYPES, TypeChart
from pokedex.serving.app import create_app
from pokedex.serving.settings import Settings
from tests.conftest import encode, sprite

SIZE = 32
EMBED = 8
# name, display name, number, types
SPECIES = [
    ("bulbasaur", "Bulbasaur", 1, ("grass", "poison")),
    ("charizard", "Charizard", 6, ("fire", "flying")),
    ("pikachu", "Pikachu", 25, ("electric",)),
    ("geodude", "Geodude", 74, ("rock", "ground")),
    ("gengar", "Gengar", 94, ("ghost", "poison")),
    ("mr-mime", "Mr. Mime", 122, ("psychic", "fairy")),
]
CLASSES = [s[0] for s in SPECIES]
# non-neutral factors of the test chart; charizard (fire/flying) takes x4 from rock
FACTORS = {
    ("rock", "fire"): 2.0,
    ("rock", "flying"): 2.0,
    ("water", "fire"): 2.0,
    ("electric", "flying"): 2.0,
    ("ground", "fire"): 2.0,
    ("ground", "flying"): 0.0,
    ("ice", "flying"): 2.0,
    ("fire", "fire"): 0.5,
}


def _onnx_model(num_classes: int, seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)

    def init(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 1, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),  # (N, 3, 1, 1)
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),  # (N, 3)
        helper.make_node("Gemm", ["flat", "w1", "b1"], ["hidden"]),  # (N, 8)
        helper.make_node("Relu", ["hidden"], ["features"]),
        helper.make_node("Gemm", ["features", "w2", "b2"], ["species"]),  # (N, C)
        helper.make_node("Gemm", ["features", "w3", "b3"], ["types"]),  # (N, 18)
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-pokedex",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [
            helper.make_tensor_value_info("species", TensorProto.FLOAT, ["batch", num_classes]),
            helper.make_tensor_value_info("types", TensorProto.FLOAT, ["batch", len(TYPES)]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", EMBED]),
        ],
        [
            init("w1", (3, EMBED)),
            init("b1", (EMBED,)),
            init("w2", (EMBED, num_classes)),
            init("b2", (num_classes,)),
            init("w3", (EMBED, len(TYPES))),
            init("b3", (len(TYPES),)),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def write_bundle(path: Path, *, version: str = "v1", seed: int = 0, **meta: Any) -> Path:
    """A complete bundle folder (fp32 and int8 variants) at ``path``."""
    path.mkdir(parents=True)
    catalog = {
        name: Species(
            name=name,
            display_name=display,
            national_number=number,
            pokeapi_id=number,
            types=types,
            stats={
                s: 40 + 5 * i
                for i, s in enumerate(
                    ("hp", "attack", "defense", "special-attack", "special-defense", "speed")
                )
            },
            generation=1,
        )
        for name, display, number, types in SPECIES
    }
    save_catalog(catalog, path / "catalog.json", with_descriptions=False)
    factors = {a: {d: FACTORS.get((a, d), 1.0) for d in TYPES} for a in TYPES}
    (path / "typechart.json").write_text(json.dumps(TypeChart(factors).to_dict()))
    (path / "classes.json").write_text(json.dumps(CLASSES))
    bundle_meta = {
        "format_version": 1,
        "num_classes": len(CLASSES),
        "name": "pokedex-test",
        "version": version,
        "preprocess": PreprocessSpec(size=SIZE).to_dict(),
        "temperature": 1.0,
        "metrics": {"test/acc_top1": 0.5},
        **meta,
    }
    (path / "bundle.json").write_text(json.dumps(bundle_meta))
    onnx.save(_onnx_model(len(CLASSES), seed), path / "model.onnx")
    shutil.copyfile(path / "model.onnx", path / "model.int8.onnx")
    return path


def write_model_root(root: Path) -> Path:
    """A models folder holding two different bundles, ``v1`` and ``v2``."""
    write_bundle(root / "v1", version="v1")
    write_bundle(root / "v2", version="v2", seed=1)
    return root


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An allowlisted models folder holding bundles v1 and v2."""
    return write_model_root(tmp_path_factory.mktemp("models"))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read POKEDEX_* variables: tests must not see the developer's."""
    import os

    for key in list(os.environ):
        if key.startswith("POKEDEX_"):
            monkeypatch.delenv(key)


MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_settings(model_root: Path, tmp_path: Path) -> MakeSettings:
    """Factory: test settings (bundle v1, a private SQLite log) with overrides."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "model": str(model_root / "v1"),
            "prediction_log_url": f"sqlite:///{tmp_path / 'predictions.db'}",
            "model_roots": [str(model_root)],
            "max_wait_ms": 1.0,
            "preprocess_threads": 1,
            "threads": 1,
        }
        return Settings(**{**values, **overrides})

    return make


@pytest.fixture
def client(make_settings: MakeSettings) -> Iterator[TestClient]:
    """A test client over a fully started app (model loaded, workers running)."""
    with TestClient(create_app(make_settings())) as c:
        yield c


@pytest.fixture(scope="session")
def png() -> bytes:
    """A valid RGBA sprite as PNG."""
    return encode(sprite(1), "PNG")


@pytest.fixture(scope="session")
def images() -> dict[str, bytes]:
    """The same kind of sprite in every accepted format."""
    return {
        "png": encode(sprite(2), "PNG"),
        "jpeg": encode(sprite(3, rgb=True), "JPEG", quality=90),
        "webp": encode(sprite(4)),
    }


@contextlib.contextmanager
def serving_process(
    stderr: int | None = None, **serve_kwargs: Any
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A real `serve()` process on a free 127.0.0.1 port, yielded once ready; stopped after.

    ``serve_kwargs`` go to `pokedex.serving.server.serve` (model, prediction_log_url, ...).
    """
    port = free_port()
    args = "".join(f", {key}={value!r}" for key, value in serve_kwargs.items())
    code = f"from pokedex.serving.server import serve; serve(port={port}{args})"
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=stderr, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # generous: a loaded CI box imports slowly
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "server exited"
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.1)
        yield proc, base
    finally:
        stop(proc)
