"""Running the reference PyTorch network over packed canvases, and reading a split for it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pokedex.core.preprocess import PreprocessSpec, canvases_to_input
from pokedex.data.split import SPLITS
from pokedex.errors import PokedexError

log = logging.getLogger(__name__)

PREPARE_HINT = "run `pokedex data prepare` first"


@dataclass
class NetOutputs:
    """What the network says about a set of images."""

    species: np.ndarray  # (N, C) logits
    types: np.ndarray  # (N, T) logits
    features: np.ndarray | None  # (N, D) penultimate features, when asked for


@torch.no_grad()
def run_net(
    net: Any,
    canvases: np.ndarray,
    spec: PreprocessSpec,
    *,
    features: bool = False,
    batch_size: int = 256,
) -> NetOutputs:
    """Run a :class:`PokedexNet` over RGBA canvases ``(N, S, S, 4)``, preprocessing batch by batch
    so a memory-mapped split is never expanded to float32 all at once."""
    from pokedex.models.net import net_input, to_numpy

    net.eval()
    species, types, feats = [], [], []
    for i in range(0, len(canvases), batch_size):
        x = canvases_to_input(np.asarray(canvases[i : i + batch_size]), spec)
        f = net.features(net_input(net, x))  # (B, D)
        # the heads on the features are forward() in eval mode (dropout is off)
        species.append(to_numpy(net.species_head(f)))
        types.append(to_numpy(net.types_head(f)))
        if features:
            feats.append(to_numpy(f))
    return NetOutputs(
        species=np.concatenate(species),
        types=np.concatenate(types),
        features=np.concatenate(feats) if features else None,
    )


@torch.no_grad()
def predict_logits(
    net: torch.nn.Module, inputs: np.ndarray, batch_size: int = 256, *, types: bool = False
) -> np.ndarray:
    """Species logits ``(N, C)`` for preprocessed inputs ``(N, 3, H, W)``; with ``types``, the
    species and type logits side by side ``(N, C + T)`` (export's parity reference)."""
    from pokedex.models.net import net_input, to_numpy

    was_training = net.training
    net.eval()
    out = []
    for i in range(0, len(inputs), batch_size):
        species, type_logits = net(net_input(net, inputs[i : i + batch_size]))  # (B, C), (B, T)
        out.append(to_numpy(torch.cat([species, type_logits], dim=1) if types else species))
    net.train(was_training)
    return np.concatenate(out)


def load_split(processed: Path, split: str, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Canvases ``(N, 128, 128, 4)`` and labels ``(N,)`` in the model's class order; images of
    species the model was not trained on (e.g. a ``max_classes`` run) are left out."""
    if split not in SPLITS:
        raise PokedexError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    needed = ["classes.json", f"{split}_images.npy", f"{split}_labels.npy"]
    missing = [name for name in needed if not (processed / name).is_file()]
    if missing:
        raise PokedexError(f"{processed} lacks {', '.join(missing)}: {PREPARE_HINT}")
    data_classes = json.loads((processed / "classes.json").read_text())
    index = {name: i for i, name in enumerate(classes)}
    to_model = np.array([index.get(name, -1) for name in data_classes])  # data label -> model label
    images = np.load(processed / f"{split}_images.npy", mmap_mode="r")
    labels = to_model[np.load(processed / f"{split}_labels.npy").astype(np.int64)]
    keep = labels >= 0
    if not keep.any():
        raise PokedexError(f"no {split} image in {processed} is of a species the model knows")
    if not keep.all():
        log.info(
            "%s: %d images of species the model does not know are left out", split, (~keep).sum()
        )
        images = np.asarray(images[np.flatnonzero(keep)])
    return images, labels[keep]
