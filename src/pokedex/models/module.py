"""The LightningModule: losses, metrics and optimization around :class:`PokedexNet`."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from pokedex.errors import PokedexError
from pokedex.models.net import PokedexNet


class PokedexModule(L.LightningModule):
    """Species classification (+ multi-label types) with AdamW and warmup + cosine/one-cycle."""

    def __init__(
        self,
        net: dict[str, Any],
        num_classes: int,
        type_targets: torch.Tensor | None = None,
        *,
        lr: float = 3e-3,
        weight_decay: float = 0.05,
        warmup_epochs: float = 1.0,
        schedule: str = "cosine",
        label_smoothing: float = 0.1,
        types_weight: float = 0.2,
        mixup: float = 0.0,
        cutmix: float = 0.0,
        mix_prob: float = 1.0,
        outlier_weight: float = 0.5,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["type_targets"])
        self.net = PokedexNet(num_classes=num_classes, **net).to(memory_format=torch.channels_last)
        targets = type_targets if type_targets is not None else torch.zeros(num_classes, 18)
        self.register_buffer("type_targets", targets.float(), persistent=False)
        self.use_types = type_targets is not None and types_weight > 0
        mixes = [
            mix(alpha=alpha, num_classes=num_classes)
            for mix, alpha in ((v2.MixUp, mixup), (v2.CutMix, cutmix))
            if alpha > 0
        ]  # with both on, each batch draws one of them
        self.mix = v2.RandomApply([v2.RandomChoice(mixes)], p=mix_prob) if mixes else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Species and type logits."""
        return self.net(x)

    def _losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss, and the species logits of the batch's Pokémon.

        Images labelled -1 are non-Pokémon (``data.outliers``): outlier exposure pulls their
        species distribution towards uniform, so that the open-set scores fall on them.
        """
        hp = self.hparams
        outlier = y < 0
        x, x_out, y = x[~outlier], x[outlier], y[~outlier]
        target = y  # class indices, or (N, C) class probabilities once mixed
        if self.training and self.mix is not None:
            x, mixed = self.mix(x, y)
            target = mixed if mixed.ndim == 2 else y  # RandomApply left the batch as it was
        species, types = self(torch.cat([x, x_out]) if len(x_out) else x)
        species, species_out, types = species[: len(x)], species[len(x) :], types[: len(x)]
        loss = F.cross_entropy(species, target, label_smoothing=hp.label_smoothing)
        if self.use_types:
            t = self.type_targets[target] if target.ndim == 1 else target @ self.type_targets
            loss = loss + hp.types_weight * F.binary_cross_entropy_with_logits(types.float(), t)
        if len(species_out):  # cross-entropy to the uniform distribution
            uniform = -species_out.float().log_softmax(1).mean(1).mean()
            loss = loss + hp.outlier_weight * uniform
        return loss, species

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        loss, species = self._losses(x, y)
        self.log("train/loss", loss, prog_bar=True)
        known = y[y >= 0]
        self.log("train/acc_top1", (species.argmax(1) == known).float().mean(), prog_bar=True)
        return loss

    def _eval_step(self, stage: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        x, y = batch
        x = x.contiguous(memory_format=torch.channels_last)
        species, types = self(x)
        loss = F.cross_entropy(species.float(), y)
        top5 = species.topk(min(5, species.shape[1]), dim=1).indices
        self.log(f"{stage}/loss", loss, sync_dist=True)
        self.log(
            f"{stage}/acc_top1", (top5[:, 0] == y).float().mean(), prog_bar=True, sync_dist=True
        )
        self.log(f"{stage}/acc_top5", (top5 == y[:, None]).any(1).float().mean(), sync_dist=True)
        if self.use_types:
            pred, true = types > 0, self.type_targets[y] > 0.5
            tp = (pred & true).sum()
            f1 = 2 * tp / (pred.sum() + true.sum()).clamp(min=1)
            self.log(f"{stage}/types_f1", f1.float(), sync_dist=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step("test", batch)

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        decay, no_decay = [], []
        for p in self.parameters():
            (decay if p.ndim > 1 else no_decay).append(p)  # no decay on norms and biases
        opt = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": hp.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=hp.lr,
        )
        total = max(1, self.trainer.estimated_stepping_batches)
        warmup = min(
            total - 1, int(hp.warmup_epochs * total / max(1, self.trainer.max_epochs or 1))
        )
        if hp.schedule == "onecycle":
            check_onecycle(total, warmup, hp.warmup_epochs)
            sched: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=hp.lr, total_steps=total, pct_start=warmup / total
            )
        else:

            def factor(step: int) -> float:
                if step < warmup:
                    return (step + 1) / (warmup + 1)
                progress = (step - warmup) / max(1, total - warmup)
                return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def check_onecycle(total: int, warmup: int, warmup_epochs: float) -> None:
    """Refuse a one-cycle schedule that cannot fit its phases: OneCycleLR divides by the length
    of each phase, so the warm-up and the annealing both need at least two optimizer steps."""
    if warmup >= 2 and total - warmup >= 2:
        return
    raise PokedexError(
        f"the one-cycle schedule has {total} optimizer steps, too few for a warm-up of "
        f"{warmup_epochs:g} epochs ({warmup} steps) and an annealing phase (2 steps each at "
        "least): raise trainer.max_epochs or trainer.limit_train_batches, or change "
        "optim.warmup_epochs"
    )


def count_parameters(module: nn.Module) -> int:
    """Trainable parameter count."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
