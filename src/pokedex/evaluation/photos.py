"""Accuracy on a labelled photo set (``species/image`` files): once after training, or after
every validation epoch so the learning curves show the sprite-to-photo gap as it closes."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from pokedex.core.preprocess import PreprocessSpec, canvases_to_input
from pokedex.data.photos import load_labelled_canvases
from pokedex.evaluation.inference import predict_logits
from pokedex.evaluation.metrics import accuracy


def evaluate_labelled(
    net: torch.nn.Module, spec: PreprocessSpec, classes: list[str], source: Path
) -> dict[str, float]:
    """Accuracy on a folder/zip of ``species/image`` files, choosing among all ``classes``."""
    canvases, labels, _ = load_labelled_canvases(source, classes)
    logits = predict_logits(net, canvases_to_input(canvases, spec))
    return accuracy(logits, labels)


class PhotoValidation(L.Callback):
    """Top-1/top-5 on a labelled photo set after every validation epoch, logged as ``photos/*``,
    so the learning curves show the sprite-to-photo gap as it closes.
    """

    def __init__(self, source: Path, spec: PreprocessSpec, classes: list[str]) -> None:
        canvases, self.labels, _ = load_labelled_canvases(source, classes)
        self.inputs = canvases_to_input(canvases, spec)  # (N, 3, H, W), built once

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        scores = accuracy(predict_logits(module.net, self.inputs), self.labels)
        module.log_dict({f"photos/{k}": v for k, v in scores.items() if k != "n"})
