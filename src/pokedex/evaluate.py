"""Model evaluation on labelled image sets (test split, real photos)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pokedex.data.photos import load_labelled_canvases
from pokedex.data.preprocess import PreprocessSpec, canvases_to_input


@torch.no_grad()
def predict_logits(net: torch.nn.Module, inputs: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Species logits ``(N, C)`` for preprocessed inputs ``(N, 3, H, W)``."""
    was_training = net.training
    net.eval()
    out = []
    for i in range(0, len(inputs), batch_size):
        x = torch.from_numpy(inputs[i : i + batch_size]).contiguous(memory_format=torch.channels_last)
        out.append(net(x)[0].float().numpy())
    net.train(was_training)
    return np.concatenate(out)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1, top-5 and species-macro top-1."""
    top5 = np.argsort(-logits, axis=1)[:, :5]
    hit1 = top5[:, 0] == labels
    per_class = [hit1[labels == c].mean() for c in np.unique(labels)]
    return {
        "acc_top1": float(hit1.mean()),
        "acc_top5": float((top5 == labels[:, None]).any(1).mean()),
        "acc_macro": float(np.mean(per_class)),
        "n": float(len(labels)),
    }


def evaluate_labelled(
    net: torch.nn.Module, spec: PreprocessSpec, classes: list[str], source: Path
) -> dict[str, float]:
    """Accuracy on a folder/zip of ``species/image`` files, choosing among all ``classes``."""
    canvases, labels, _ = load_labelled_canvases(source, classes)
    logits = predict_logits(net, canvases_to_input(canvases, spec))
    return accuracy(logits, labels)
