"""Training data: the packed arrays of `data/processed`, memory-mapped, augmented per batch."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler

from pokedex.core.preprocess import CANVAS, PreprocessSpec, canvases_to_input
from pokedex.data.augment import AugmentConfig, BatchAugment, photo_tiles
from pokedex.errors import PokedexError

log = logging.getLogger(__name__)


class CanvasBatches(Dataset):
    """Indexed by a *list* of positions: one fancy-index read of the memory map per batch."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        order = np.sort(np.asarray(idx))  # sorted reads are sequential on disk
        images = torch.from_numpy(np.ascontiguousarray(self.images[order]))  # (B, S, S, 4) uint8
        return images, torch.from_numpy(self.labels[order].astype(np.int64))


class EpochBatchSampler(BatchSampler):
    """Random batches whose order depends only on (seed, epoch), so a resumed run sees the
    same batches as an uninterrupted one. Lightning calls :meth:`set_epoch`.
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0
        super().__init__(range(n), batch_size, drop_last=True)

    def __len__(self) -> int:
        world = 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            world = torch.distributed.get_world_size()
        return (self.n // world) // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of each epoch."""
        self.epoch = epoch

    def __iter__(self):  # type: ignore[override]
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # each rank takes its own slice of the same permutation (same length on every rank)
            world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
            perm = perm[rank : len(perm) - len(perm) % world : world]
        for i in range(0, len(perm) - self.batch_size + 1, self.batch_size):
            yield perm[i : i + self.batch_size]


class PackedDataModule(L.LightningDataModule):
    """Train batches are raw RGBA canvases augmented after transfer (on the GPU if there is one);
    val/test batches are built once with THE preprocessing that serving uses.
    """

    def __init__(
        self,
        root: str | Path,
        preprocess: PreprocessSpec,
        augment: AugmentConfig | None = None,
        *,
        batch_size: int = 128,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        pin_memory: bool = False,
        max_classes: int | None = None,
        max_per_class: int | None = None,
        generations: list[int] | None = None,
        seed: int = 0,
        backgrounds: str | Path | None = None,
        outliers: int = 0,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.spec = preprocess
        tiles, bank = None, None
        if (augment is not None and augment.background_photo > 0) or outliers > 0:
            from pokedex.data.backgrounds import load_tiles

            bank = load_tiles(Path(backgrounds or ""))  # (N, T, T, 3)
            tiles = photo_tiles(bank)
        self.outliers = outliers
        self.outlier_pool = _outlier_pool(bank, seed) if outliers > 0 else None
        self.augment = BatchAugment(
            preprocess.size, preprocess.mean, preprocess.std, augment, tiles
        )
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.max_classes, self.max_per_class, self.seed = max_classes, max_per_class, seed
        self.generations = sorted(set(generations)) if generations else None
        catalog = self._read_catalog()
        # the species this model learns, and each packed label's index among them (-1: left out)
        self.classes, self._relabel = self._read_classes(catalog)
        self.type_targets = self._type_targets(catalog)  # (C, T) multi-hot, or None
        self.data: dict[str, CanvasBatches] = {}
        self.eval_inputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def _read_catalog(self) -> dict[str, Any] | None:
        path = self.root / "catalog.json"
        if not path.is_file():
            log.warning("%s missing: the types head gets no targets", path)
            return None
        from pokedex.dex.catalog import load_catalog

        return load_catalog(path)

    def _read_classes(self, catalog: dict[str, Any] | None) -> tuple[list[str], np.ndarray]:
        path = self.root / "classes.json"
        if not path.is_file():
            raise PokedexError(f"{path} not found: run `pokedex data prepare` first")
        packed: list[str] = json.loads(path.read_text())
        keep = packed
        if self.generations:
            if catalog is None:
                raise PokedexError(
                    f"{self.root / 'catalog.json'} not found: data.generations needs the "
                    "species catalog"
                )
            keep = [n for n in packed if n in catalog and catalog[n].generation in self.generations]
            if not keep:
                raise PokedexError(f"no species of generations {self.generations} in {path}")
        keep = keep[: self.max_classes] if self.max_classes else keep
        index = {name: i for i, name in enumerate(keep)}
        return keep, np.array([index.get(name, -1) for name in packed], dtype=np.int64)

    def _type_targets(self, catalog: dict[str, Any] | None) -> torch.Tensor | None:
        if catalog is None:
            return None
        from pokedex.dex.typechart import TYPES

        targets = torch.zeros(len(self.classes), len(TYPES))
        for i, name in enumerate(self.classes):
            for t in catalog[name].types if name in catalog else ():
                targets[i, TYPES.index(t)] = 1.0
        return targets

    @property
    def num_classes(self) -> int:
        """Number of species the model predicts."""
        return len(self.classes)

    def _load(self, split: str) -> CanvasBatches:
        images = np.load(self.root / f"{split}_images.npy", mmap_mode="r")
        labels = self._relabel[np.load(self.root / f"{split}_labels.npy")]
        keep = labels >= 0
        if self.max_per_class:
            seen: dict[int, int] = {}
            for i, lab in enumerate(labels):
                seen[lab] = seen.get(lab, 0) + 1
                keep[i] &= seen[lab] <= self.max_per_class
        if not keep.all():
            idx = np.flatnonzero(keep)
            images, labels = np.asarray(images[idx]), labels[idx]
        return CanvasBatches(images, labels)

    def setup(self, stage: str | None = None) -> None:
        """Open the memory maps; preprocess the evaluation splits once."""
        for split in ("train", "val", "test"):
            if split not in self.data:
                self.data[split] = self._load(split)
        for split in ("val", "test"):
            if split not in self.eval_inputs:
                ds = self.data[split]
                x = torch.from_numpy(canvases_to_input(np.asarray(ds.images), self.spec))
                self.eval_inputs[split] = (x, torch.from_numpy(ds.labels.astype(np.int64)))

    def train_dataloader(self) -> DataLoader:
        ds = self.data["train"]
        sampler = EpochBatchSampler(len(ds), min(self.batch_size, len(ds)), self.seed)
        return DataLoader(
            ds,
            sampler=sampler,
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def _eval_loader(self, split: str) -> DataLoader:
        x, y = self.eval_inputs[split]
        ds = torch.utils.data.TensorDataset(x, y)
        return DataLoader(ds, batch_size=self.eval_batch_size, sampler=SequentialSampler(ds))

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Augment raw training canvases where the batch now lives (CPU or GPU); with
        ``outliers``, that many non-Pokémon canvases join each batch, labelled -1."""
        x, y = batch
        if x.dtype == torch.uint8:
            self.augment.to(x.device)
            # seeded by the optimizer step, which a resumed run restores, not by global RNG state
            step = self.trainer.global_step if self.trainer else 0
            step_seed = self.seed * 1_000_003 + step
            if self.outlier_pool is not None:
                pick = torch.Generator().manual_seed(step_seed)
                idx = torch.randint(len(self.outlier_pool), (self.outliers,), generator=pick)
                x = torch.cat([x, self.outlier_pool[idx].to(x.device)])
                y = torch.cat([y, y.new_full((self.outliers,), -1)])
            devices = [x.device.index or 0] if x.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(step_seed)
                x = self.augment(x)
        return x, y


OUTLIER_POOL = 2048  # generated non-Pokémon canvases a run draws its outliers from
OUTLIER_SEED = 1_000  # the evaluation generates its unknowns from seeds 0 and 1


def _outlier_pool(bank: np.ndarray | None, seed: int) -> torch.Tensor:
    """``(OUTLIER_POOL, S, S, 4)`` uint8 non-Pokémon canvases for outlier exposure: the kinds of
    :func:`pokedex.data.unknowns.generate_unknowns`, with corners of the training
    background photos (never the validation photos) as its photo kind."""
    from PIL import Image

    from pokedex.data.unknowns import generate_unknowns

    photos = None
    if bank is not None:
        photos = np.empty((len(bank), CANVAS, CANVAS, 4), dtype=np.uint8)
        for i, tile in enumerate(bank):
            photos[i, ..., :3] = Image.fromarray(tile).resize((CANVAS, CANVAS))
        photos[..., 3] = 255
    images, _ = generate_unknowns(OUTLIER_POOL, seed=OUTLIER_SEED + seed, backgrounds=photos)
    return torch.from_numpy(images)
