"""``PokedexNet.flip_average``: in eval mode the net answers for an image and its mirror image
alike, with the mean of their features; training is untouched."""

from __future__ import annotations

import torch

from pokedex.models.net import PokedexNet


def _pair(*, training: bool) -> tuple[PokedexNet, PokedexNet]:
    """The same weights without and with the flag, both in the given mode."""
    torch.manual_seed(0)
    plain = PokedexNet("resnet18", 7)
    flips = PokedexNet("resnet18", 7, flip_average=True)
    flips.load_state_dict(plain.state_dict())
    return plain.train(training), flips.train(training)


def test_eval_answers_with_the_mean_of_the_image_and_its_mirror_image() -> None:
    plain, flips = _pair(training=False)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        mean = (plain.features(x) + plain.features(x.flip(-1))) / 2
        torch.testing.assert_close(flips.features(x), mean, atol=1e-5, rtol=1e-5)
        species, types = flips(x)
        mirrored_species, mirrored_types = flips(x.flip(-1))
        torch.testing.assert_close(species, plain.species_head(mean), atol=1e-5, rtol=1e-5)
        # the same answer for a picture and its mirror image
        torch.testing.assert_close(species, mirrored_species, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(types, mirrored_types, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(plain(x)[0], plain(x.flip(-1))[0], atol=1e-3)  # not trivially


def test_training_runs_each_image_once() -> None:
    plain, flips = _pair(training=True)
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(flips.features(x), plain.features(x))
    assert flips.features(x).shape == (4, 512)
