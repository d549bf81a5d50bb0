"""L1 pruning of a PokedexNet plus a short fine-tune, for the inference benchmark.

Structured: the inner channels of each residual block (``conv1`` -> ``bn1`` -> ``conv2``) with
the smallest L1 filter norms are masked, fine-tuned with the mask, then physically removed, so
the exported ONNX model is smaller and faster. The block's output width is untouched, so the
skip connections need no change. Unstructured: the smallest conv weights are zeroed; dense
kernels gain nothing from zeros, which the benchmark row then shows.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from pokedex.core.preprocess import PreprocessSpec
from pokedex.data.augment import BatchAugment

log = logging.getLogger(__name__)


def _blocks(net: nn.Module) -> list[nn.Module]:
    """Residual blocks whose inner width can shrink: torchvision BasicBlock and Bottleneck."""
    return [
        m
        for m in net.modules()
        if isinstance(getattr(m, "conv1", None), nn.Conv2d)
        and isinstance(getattr(m, "bn1", None), nn.BatchNorm2d)
        and isinstance(getattr(m, "conv2", None), nn.Conv2d)
        and m.conv1.groups == 1
        and m.conv2.groups == 1
    ]


def mask_channels(net: nn.Module, amount: float) -> int:
    """Mask the ``amount`` share of each block's inner channels with the smallest L1 norm.

    ``bn1``'s scale and shift are masked too, so a pruned channel is exactly zero after the
    ReLU and removing it later changes nothing. Returns how many channels were masked.
    """
    masked = 0
    for block in _blocks(net):
        prune.ln_structured(block.conv1, "weight", amount=amount, n=1, dim=0)
        keep = block.conv1.weight_mask[:, 0, 0, 0]  # (C_out,) of 0/1
        prune.custom_from_mask(block.bn1, "weight", keep)
        prune.custom_from_mask(block.bn1, "bias", keep)
        masked += int((keep == 0).sum())
    return masked


def mask_weights(net: nn.Module, amount: float) -> int:
    """Zero the ``amount`` share of every conv's weights with the smallest magnitude."""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        prune.l1_unstructured(conv, "weight", amount=amount)
    return sum(int((c.weight_mask == 0).sum()) for c in convs)


def make_permanent(net: nn.Module) -> None:
    """Fold every pruning mask into its parameter (the zeros stay)."""
    for module in net.modules():
        for name in ("weight", "bias"):
            if hasattr(module, f"{name}_orig"):
                prune.remove(module, name)


@torch.no_grad()
def remove_masked_channels(net: nn.Module) -> None:
    """Slice out the all-zero inner channels that :func:`mask_channels` left (after
    :func:`make_permanent`): ``conv1`` outputs, ``bn1`` entries and ``conv2`` inputs.
    """
    for block in _blocks(net):
        c1, bn, c2 = block.conv1, block.bn1, block.conv2
        # a channel with zero filters but a BN shift is a constant, not removable: keep it
        alive = (c1.weight.flatten(1).abs().sum(1) > 0) | (bn.bias != 0)
        keep = alive.nonzero().flatten()  # (C_kept,)
        if len(keep) == c1.out_channels:
            continue
        new1 = nn.Conv2d(
            c1.in_channels,
            len(keep),
            c1.kernel_size,
            c1.stride,
            c1.padding,
            c1.dilation,
            bias=False,
        )
        new1.weight.copy_(c1.weight[keep])
        new_bn = nn.BatchNorm2d(len(keep), eps=bn.eps, momentum=bn.momentum)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new_bn, name).copy_(getattr(bn, name)[keep])
        new_bn.train(bn.training)  # a fresh module is in training mode: keep eval stats in eval
        new2 = nn.Conv2d(
            len(keep),
            c2.out_channels,
            c2.kernel_size,
            c2.stride,
            c2.padding,
            c2.dilation,
            bias=False,
        )
        new2.weight.copy_(c2.weight[:, keep])
        block.conv1, block.bn1, block.conv2 = new1, new_bn, new2


def fine_tune(
    net: nn.Module,
    processed: Path,
    spec: PreprocessSpec,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-4,
    seed: int = 0,
) -> list[float]:
    """``steps`` AdamW steps of species cross-entropy on augmented training canvases."""
    images = np.load(processed / "train_images.npy", mmap_mode="r")
    labels = np.load(processed / "train_labels.npy").astype(np.int64)
    num_classes = net.species_head.out_features
    pool = np.flatnonzero(labels < num_classes)  # a bundle may cover fewer classes than the data
    augment = BatchAugment(spec.size, spec.mean, spec.std)
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    losses = []
    net.train()
    for _ in range(steps):
        idx = np.sort(rng.choice(pool, size=min(batch_size, len(pool)), replace=False))
        x = augment(torch.from_numpy(np.ascontiguousarray(images[idx])))  # (B, 3, size, size)
        logits, _ = net(x)
        loss = F.cross_entropy(logits, torch.from_numpy(labels[idx]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    net.eval()
    return losses


def prune_net(
    net: nn.Module,
    processed: Path | None,
    spec: PreprocessSpec,
    *,
    amount: float,
    steps: int,
    structured: bool = True,
    seed: int = 0,
) -> str:
    """Prune ``net`` in place, fine-tune it (when ``processed`` is given), make it permanent.

    Returns a one-line description for the benchmark table.
    """
    masked = mask_channels(net, amount) if structured else mask_weights(net, amount)
    kind = "inner channels" if structured else "conv weights"
    losses = fine_tune(net, processed, spec, steps=steps, seed=seed) if processed and steps else []
    make_permanent(net)
    if structured:
        remove_masked_channels(net)
    params = sum(p.numel() for p in net.parameters())
    tuned = (
        f"{steps} fine-tune steps (loss {losses[0]:.2f}→{losses[-1]:.2f})"
        if losses
        else "no fine-tune"
    )
    log.info("pruned %d %s; %s; %d parameters left", masked, kind, tuned, params)
    return f"L1 {'structured' if structured else 'unstructured'} {amount:.0%} of {kind}, {tuned}"
