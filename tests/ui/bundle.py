"""A "colour Pokédex" model bundle made without torch, whose answers are known in advance.

Each species has a sprite: a blob of its own colour on transparency. The ONNX graph pools the
preprocessed input to its mean colour (the 3-d "embedding") and scores every species by the
negative squared distance to that species' sprite, so a species' sprite is recognized as that
species, and an image far from every sprite (a black photo) is rejected by the energy rule.
Species facts (numbers, types, base stats) are the real ones; the descriptions are ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageDraw

from pokedex.core.bundle import EMBEDDINGS_FILE
from pokedex.core.preprocess import CANVAS, PreprocessSpec, image_to_input
from pokedex.dex.catalog import STATS, Species, save_catalog
from pokedex.dex.typechart import TYPES, TypeChart
from pokedex.evaluation.metrics import confused_pairs
from pokedex.io import write_json_atomic

SPEC = PreprocessSpec(size=64)
SHARPNESS = 6.0  # logits = -SHARPNESS * squared distance: a clear winner, a readable top-5


@dataclass(frozen=True)
class Entry:
    """One species of the colour Pokédex."""

    name: str
    display_name: str
    number: int
    types: tuple[str, ...]
    stats: tuple[int, int, int, int, int, int]  # in STATS order
    colour: tuple[int, int, int]
    description: str


SPECIES = (
    Entry("bulbasaur", "Bulbasaur", 1, ("grass", "poison"), (45, 49, 49, 65, 65, 45),
          (70, 170, 120), "Carries a seed on its back from birth; it sprouts as it grows."),
    Entry("charmander", "Charmander", 4, ("fire",), (39, 52, 43, 60, 50, 65),
          (245, 140, 40), "The flame on its tail shows how it feels and how healthy it is."),
    Entry("charizard", "Charizard", 6, ("fire", "flying"), (78, 84, 78, 109, 85, 100),
          (170, 40, 30), "Flies high in search of strong rivals and never picks on the weak."),
    Entry("squirtle", "Squirtle", 7, ("water",), (44, 48, 65, 50, 64, 43),
          (80, 150, 235), "Withdraws into its shell and sprays water back at its foes."),
    Entry("pikachu", "Pikachu", 25, ("electric",), (35, 55, 40, 50, 50, 90),
          (250, 215, 30), "Stores electricity in its cheeks and lets it out when alarmed."),
    Entry("jigglypuff", "Jigglypuff", 39, ("normal", "fairy"), (115, 45, 20, 45, 25, 20),
          (250, 170, 210), "Its lullaby puts any listener to sleep before the song ends."),
    Entry("geodude", "Geodude", 74, ("rock", "ground"), (40, 80, 100, 30, 30, 20),
          (140, 130, 110), "Often mistaken for a boulder on mountain trails."),
    Entry("gengar", "Gengar", 94, ("ghost", "poison"), (60, 65, 60, 130, 75, 110),
          (100, 60, 150), "Hides in shadows, and the air around it turns cold."),
    Entry("snorlax", "Snorlax", 143, ("normal",), (160, 110, 65, 65, 110, 30),
          (20, 70, 90), "Eats a mountain of food each day, then sleeps it off."),
)  # fmt: skip
BY_NAME = {e.name: e for e in SPECIES}
# the type chart of the games (generation 6 on): per attack type, the x2, x0.5 and x0 defenders
_CHART = {
    "normal": ((), ("rock", "steel"), ("ghost",)),
    "fighting": (("normal", "rock", "steel", "ice", "dark"),
                 ("flying", "poison", "bug", "psychic", "fairy"), ("ghost",)),
    "flying": (("fighting", "bug", "grass"), ("rock", "steel", "electric"), ()),
    "poison": (("grass", "fairy"), ("poison", "ground", "rock", "ghost"), ("steel",)),
    "ground": (("poison", "rock", "steel", "fire", "electric"), ("bug", "grass"), ("flying",)),
    "rock": (("flying", "bug", "fire", "ice"), ("fighting", "ground", "steel"), ()),
    "bug": (("grass", "psychic", "dark"),
            ("fighting", "flying", "poison", "ghost", "steel", "fire", "fairy"), ()),
    "ghost": (("ghost", "psychic"), ("dark",), ("normal",)),
    "steel": (("rock", "ice", "fairy"), ("steel", "fire", "water", "electric"), ()),
    "fire": (("bug", "steel", "grass", "ice"), ("rock", "fire", "water", "dragon"), ()),
    "water": (("ground", "rock", "fire"), ("water", "grass", "dragon"), ()),
    "grass": (("ground", "rock", "water"),
              ("flying", "poison", "bug", "steel", "fire", "grass", "dragon"), ()),
    "electric": (("flying", "water"), ("grass", "electric", "dragon"), ("ground",)),
    "psychic": (("fighting", "poison"), ("steel", "psychic"), ("dark",)),
    "ice": (("flying", "ground", "grass", "dragon"), ("steel", "fire", "water", "ice"), ()),
    "dragon": (("dragon",), ("steel",), ("fairy",)),
    "dark": (("ghost", "psychic"), ("fighting", "dark", "fairy"), ()),
    "fairy": (("fighting", "dragon", "dark"), ("poison", "steel", "fire"), ()),
}  # fmt: skip


def sprite(entry: Entry) -> Image.Image:
    """The species' sprite: an outlined blob of its colour on a transparent canvas."""
    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    outline = tuple(c // 2 for c in entry.colour)
    draw = ImageDraw.Draw(image)
    draw.ellipse((24, 30, 104, 110), fill=(*entry.colour, 255), outline=(*outline, 255), width=4)
    draw.ellipse((44, 12, 84, 52), fill=(*entry.colour, 255), outline=(*outline, 255), width=4)
    return image


def stranger() -> Image.Image:
    """A picture of no known species: a dark photo-like frame, far from every sprite."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 40, (96, 128, 3), dtype=np.uint8)  # (H, W, 3)
    return Image.fromarray(pixels, mode="RGB")


def sprite_means() -> np.ndarray:
    """``(C, 3)`` mean model input of each species' sprite."""
    return np.stack([image_to_input(sprite(e), SPEC).mean(axis=(0, 2, 3)) for e in SPECIES])


def _graph(prototypes: np.ndarray) -> onnx.ModelProto:
    k = SHARPNESS
    n_classes = len(prototypes)
    weights = [
        numpy_helper.from_array((2 * k * prototypes.T).astype(np.float32), "w"),  # (3, C)
        numpy_helper.from_array((-k * (prototypes**2).sum(1)).astype(np.float32), "b"),  # (C,)
        numpy_helper.from_array(np.array([-k], dtype=np.float32), "neg_k"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.zeros((3, len(TYPES)), dtype=np.float32), "w_types"),
    ]
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),  # (N, 3, 1, 1)
        helper.make_node("Flatten", ["pooled"], ["features"], axis=1),  # (N, 3)
        helper.make_node("Mul", ["features", "features"], ["squares"]),  # (N, 3)
        helper.make_node("ReduceSum", ["squares", "axis1"], ["norm2"], keepdims=1),  # (N, 1)
        helper.make_node("Gemm", ["features", "w", "b"], ["cross"]),  # (N, C)
        helper.make_node("Mul", ["norm2", "neg_k"], ["own"]),  # (N, 1)
        # -k * |f - p|^2 = 2k f.p - k|p|^2 - k|f|^2
        helper.make_node("Add", ["cross", "own"], ["species"]),  # (N, C)
        helper.make_node("MatMul", ["features", "w_types"], ["types"]),  # (N, 18)
    ]
    graph = helper.make_graph(
        nodes,
        "colour-pokedex",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, None, None])],
        [
            helper.make_tensor_value_info("species", TensorProto.FLOAT, ["batch", n_classes]),
            helper.make_tensor_value_info("types", TensorProto.FLOAT, ["batch", len(TYPES)]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 3]),
        ],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def typechart() -> TypeChart:
    factors = {a: dict.fromkeys(TYPES, 1.0) for a in TYPES}
    for attack, buckets in _CHART.items():
        for factor, defenders in zip((2.0, 0.5, 0.0), buckets, strict=True):
            for defender in defenders:
                factors[attack][defender] = factor
    return TypeChart(factors)


def embedding_map(prototypes: np.ndarray) -> tuple[dict[str, object], list[dict[str, object]]]:
    """A seeded stand-in for `pokedex evaluate --embeddings`: a cluster per species, with a
    few images "predicted" as their nearest neighbour species; and the confused pairs.
    """
    rng = np.random.default_rng(0)
    names = [e.name for e in SPECIES]
    centres = prototypes[:, :2] * 4  # (C, 2): nearby colours land near each other
    labels = np.repeat(np.arange(len(names)), 24)  # (N,)
    xy = centres[labels] + rng.normal(0, 0.35, (len(labels), 2))  # (N, 2)
    distances = ((centres[:, None] - centres[None]) ** 2).sum(-1) + np.eye(len(names)) * 1e9
    pred = np.where(rng.random(len(labels)) < 0.1, distances.argmin(1)[labels], labels)
    record = {
        "split": "test",
        "x": [round(float(v), 4) for v in xy[:, 0]],
        "y": [round(float(v), 4) for v in xy[:, 1]],
        "species": [names[i] for i in labels],
        "predicted": [names[i] for i in pred],
        "types": [list(SPECIES[i].types) for i in labels],
    }
    return record, confused_pairs(labels, pred, names, k=10)


def write_colour_bundle(path: Path) -> Path:
    """Write the colour Pokédex bundle (fp32 and int8 file, catalog, chart, map) to ``path``."""
    path.mkdir(parents=True)
    catalog = {
        e.name: Species(
            name=e.name,
            display_name=e.display_name,
            national_number=e.number,
            pokeapi_id=e.number,
            types=e.types,
            stats=dict(zip(STATS, e.stats, strict=True)),
            generation=1,
            description=e.description,
        )
        for e in SPECIES
    }
    save_catalog(catalog, path / "catalog.json")
    write_json_atomic(path / "typechart.json", typechart().to_dict())
    write_json_atomic(path / "classes.json", [e.name for e in SPECIES])
    prototypes = sprite_means()
    record, pairs = embedding_map(prototypes)
    write_json_atomic(path / EMBEDDINGS_FILE, record)
    gaps = ((prototypes[:, None] - prototypes[None]) ** 2).sum(-1)  # (C, C) squared distances
    radius2 = float(gaps[~np.eye(len(SPECIES), dtype=bool)].min()) / 4  # half the closest gap
    correct = np.mean([a == b for a, b in zip(record["species"], record["predicted"], strict=True)])
    meta = {
        "format_version": 1,
        "name": "pokedex-colours",
        "version": "e2e-1",
        "num_classes": len(SPECIES),
        "preprocess": SPEC.to_dict(),
        "temperature": 1.0,
        # energy = T * logsumexp(-k d^2 / T) >= -k d_min^2: known within the radius
        "open_set": {"score": "energy", "threshold": -SHARPNESS * radius2},
        "metrics": {"test/acc_top1": round(float(correct), 4), "test/acc_top5": 1.0},
        "confused_pairs": pairs,
    }
    write_json_atomic(path / "bundle.json", meta)
    model = _graph(prototypes)
    onnx.save(model, path / "model.onnx")
    onnx.save(model, path / "model.int8.onnx")
    return path
