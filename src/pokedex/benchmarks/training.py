"""`pokedex benchmark training`: training images/s of three input pipelines on one model.

- naive:   decode each image file per item, PIL transforms, fp32 (how a first prototype does it)
- ours:    packed memory-mapped canvases, augmentation as batch tensor ops
- ceiling: random tensors already in memory (data loading for free)
All three run the same model, batch size and optimizer in one process, in fp32; each further
precision (``bf16-mixed``: autocast, as ``trainer.precision`` gives it) times ours and the
ceiling again, so its gain is a ratio measured in the same run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from pokedex.core.preprocess import IMAGENET_MEAN, IMAGENET_STD, PreprocessSpec
from pokedex.data.augment import AugmentConfig, BatchAugment, photo_tiles
from pokedex.data.datamodule import PackedDataModule
from pokedex.errors import PokedexError
from pokedex.models.net import PokedexNet


@dataclass
class PipelineResult:
    """Throughput of one pipeline."""

    name: str
    images_per_s: list[float]  # one figure per repeat

    @property
    def best(self) -> float:
        """The fastest repeat (least disturbed by other load)."""
        return max(self.images_per_s)

    @property
    def median(self) -> float:
        """The median repeat."""
        return float(np.median(self.images_per_s))


class FileDataset(Dataset):
    """Decode one image file per item with PIL, torchvision-style transforms."""

    def __init__(self, files: list[Path], labels: list[int], size: int) -> None:
        import torchvision.transforms as T

        self.files, self.labels = files, labels
        self.transform = T.Compose(
            [
                T.RandomResizedCrop(size, scale=(0.55, 1.0)),
                T.RandomHorizontalFlip(),
                T.ColorJitter(0.3, 0.3, 0.4, 0.05),
                T.ToTensor(),
                T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = Image.open(self.files[i]).convert("RGB")
        return self.transform(image), self.labels[i]


FP32 = "32-true"
PRECISIONS = (FP32, "bf16-mixed")


def _time_steps(
    model: torch.nn.Module, batches, steps: int, warmup: int = 2, precision: str = FP32
) -> float:
    """Images/s over ``steps`` optimizer steps after ``warmup`` untimed ones."""
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    model.train()
    it = iter(batches)
    n, start = 0, 0.0
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        x, y = next(it)
        with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16-mixed"):
            logits, _ = model(x.contiguous(memory_format=torch.channels_last))
            loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= warmup:
            n += x.shape[0]
    return n / (time.perf_counter() - start)


def run(
    processed: Path,
    raw: Path,
    *,
    arch: str = "resnet18",
    size: int = 64,
    batch_size: int = 64,
    augment: AugmentConfig | None = None,
    steps: int = 10,
    repeats: int = 2,
    tiles: np.ndarray | None = None,
    precisions: tuple[str, ...] = (),
) -> list[PipelineResult]:
    """Measure the three pipelines, interleaved ``repeats`` times so drift hits all alike.

    ``tiles`` is the photo bank ``(N, T, T, 3)`` an augmentation with ``background_photo`` needs;
    each of ``precisions`` other than fp32 adds ours and the ceiling at that precision.
    """
    extra = [p for p in dict.fromkeys(precisions) if p != FP32]
    for precision in extra:
        if precision not in PRECISIONS:
            raise PokedexError(f"precision {precision!r}: choose from {', '.join(PRECISIONS)}")
    torch.manual_seed(0)
    dm = PackedDataModule(processed, PreprocessSpec(size=size), batch_size=batch_size)
    dm.setup("fit")
    bank = photo_tiles(tiles)
    augmenter = BatchAugment(size, IMAGENET_MEAN, IMAGENET_STD, augment, bank)
    manifest = np.genfromtxt(
        processed / "manifest.csv", delimiter=",", names=True, dtype=None, encoding="utf-8"
    )
    train = manifest[manifest["split"] == "train"]
    if "source" in (manifest.dtype.names or ()):  # users' photos live in the feedback export
        train = train[train["source"] != "feedback"]
    root = _dataset_root(raw)
    files = [root / p for p in train["path"]]
    naive = DataLoader(
        FileDataset(files, list(train["label"]), size),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
    )

    def ours():
        for x, y in dm.train_dataloader():
            yield augmenter(x), y

    def ceiling():
        x = torch.randn(batch_size, 3, size, size)
        y = torch.randint(0, dm.num_classes, (batch_size,))
        while True:
            yield x, y

    model = PokedexNet(arch, dm.num_classes).to(memory_format=torch.channels_last)
    runs = [("naive", lambda: naive, FP32), ("ours", ours, FP32), ("ceiling", ceiling, FP32)]
    for p in extra:
        runs += [(f"ours {p}", ours, p), (f"ceiling {p}", ceiling, p)]
    results = {name: PipelineResult(name, []) for name, _, _ in runs}
    for _ in range(repeats):
        for name, batches, precision in runs:
            rate = _time_steps(model, batches(), steps, precision=precision)
            results[name].images_per_s.append(rate)
    return list(results.values())


@dataclass(frozen=True)
class Recipe:
    """What the benchmark takes from a training preset: model, input, batch, augmentation."""

    arch: str
    size: int
    batch_size: int
    augment: AugmentConfig


def recipe(experiment: str = "cpu") -> Recipe:
    """The model, input size, batch size and augmentation of ``experiment=<experiment>``."""
    from omegaconf import OmegaConf

    from pokedex.jobs.train import compose_config

    cfg = compose_config([f"experiment={experiment}"])
    augment = AugmentConfig(**OmegaConf.to_container(cfg.augment))  # type: ignore[arg-type]
    return Recipe(cfg.model.arch, cfg.model.input_size, cfg.data.batch_size, augment)


def augment_preset(name: str) -> AugmentConfig:
    """The augmentation strengths of ``configs/augment/<name>.yaml``."""
    from omegaconf import OmegaConf

    from pokedex.errors import PokedexError
    from pokedex.jobs.train import CONFIG_DIR

    path = Path(CONFIG_DIR) / "augment" / f"{name}.yaml"
    if not path.is_file():
        presets = ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml")))
        raise PokedexError(f"no augmentation preset {name!r}: choose one of {presets}")
    return AugmentConfig(**OmegaConf.to_container(OmegaConf.load(path)))  # type: ignore[arg-type]


def _dataset_root(raw: Path) -> Path:
    from pokedex.data.prepare import find_dataset_root

    return find_dataset_root(raw)


def format_table(results: list[PipelineResult], machine: str = "") -> str:
    """A markdown table with ratios against the naive pipeline and the fp32 ceiling."""
    by = {r.name: r for r in results}
    rows = [f"Training steps on {machine}.", ""] if machine else []
    rows += [
        "| pipeline | img/s (best) | img/s (median) | × naive | / ceiling |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| {r.name} | {r.best:.1f} | {r.median:.1f} | {r.best / by['naive'].best:.2f} | "
            f"{r.best / by['ceiling'].best:.2f} |"
        )
    return "\n".join(rows)
