"""Mixup and CutMix in the training loss: soft targets for species and types alike."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pokedex.models.module import PokedexModule

NET = {"arch": "resnet18", "stem_pool": True}


def module(**optim: float) -> PokedexModule:
    types = torch.zeros(4, 18)
    types[torch.arange(4), torch.tensor([0, 3, 3, 7])] = 1
    m = PokedexModule(NET, num_classes=4, type_targets=types, label_smoothing=0.1, **optim)
    return m.train()


def test_no_mixing_by_default() -> None:
    assert module().mix is None


def test_cutmix_pastes_a_box_and_mixes_both_targets_by_its_area() -> None:
    torch.manual_seed(0)
    m = module(cutmix=1.0)
    x = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 16, 16).clone()
    y = torch.tensor([0, 1, 2, 3])
    mixed_x, soft = m.mix(x, y)
    for i in range(4):
        own = (mixed_x[i] == x[i, 0, 0, 0]).float().mean()
        assert soft[i, y[i]] == pytest.approx(float(own), abs=1e-6)  # label share = pixel share
        assert soft[i].sum() == pytest.approx(1.0)
    assert (soft.max(1).values < 1).any()  # a box was pasted somewhere


def test_mixed_loss_is_the_weighted_sum_of_the_two_labels_losses() -> None:
    torch.manual_seed(1)
    m = module(mixup=0.4)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    torch.manual_seed(2)
    loss, _ = m._losses(x, y)
    torch.manual_seed(2)
    mixed_x, soft = m.mix(x, y)
    other = y.roll(1, 0)  # torchvision pairs each image with its neighbour in the batch
    lam = float(soft[0, y[0]])
    assert torch.allclose(mixed_x, lam * x + (1 - lam) * x[other])
    species, types = m(mixed_x)
    expected = lam * F.cross_entropy(species, y, label_smoothing=0.1) + (1 - lam) * F.cross_entropy(
        species, other, label_smoothing=0.1
    )
    t = lam * m.type_targets[y] + (1 - lam) * m.type_targets[other]
    expected = expected + 0.2 * F.binary_cross_entropy_with_logits(types, t)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_mix_prob_leaves_some_batches_unmixed_and_eval_never_mixes() -> None:
    torch.manual_seed(0)
    m = module(cutmix=1.0, mix_prob=0.5)
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    kinds = {m.mix(x, y)[1].ndim for _ in range(40)}
    assert kinds == {1, 2}
    m.eval()
    with torch.no_grad():
        loss, species = m._losses(x, y)
    assert float(loss) == pytest.approx(
        float(
            F.cross_entropy(species, y, label_smoothing=0.1)
            + 0.2 * F.binary_cross_entropy_with_logits(m(x)[1].detach(), m.type_targets[y])
        ),
        rel=1e-5,
    )
