"""The generated non-Pokémon images."""

from __future__ import annotations

import numpy as np

from pokedex.data.unknowns import KINDS, generate_unknowns


def test_unknowns_are_deterministic_and_cover_every_kind() -> None:
    images, kinds = generate_unknowns(20, seed=3)
    again, _ = generate_unknowns(20, seed=3)
    other, _ = generate_unknowns(20, seed=4)
    assert images.shape == (20, 128, 128, 4)
    assert images.dtype == np.uint8
    assert np.array_equal(images, again)
    assert not np.array_equal(images, other)
    assert set(kinds) == set(KINDS) - {"background"}  # no photos given: textures stand in
    for i, kind in enumerate(kinds):
        if kind != "shapes":  # shapes may sit on transparency, like a sprite; the rest is opaque
            assert (images[i, ..., 3] == 255).all()
        assert images[i, ..., :3].std() > 5  # never a blank canvas


def test_background_crops_come_from_the_opaque_part_of_photos() -> None:
    photo = np.zeros((128, 128, 4), dtype=np.uint8)
    photo[32:96, :, :3] = (10, 200, 30)  # a wide photo, letterboxed with transparency
    photo[32:96, :, 3] = 255
    images, kinds = generate_unknowns(2 * len(KINDS), seed=0, backgrounds=photo[None])
    crops = images[[i for i, k in enumerate(kinds) if k == "background"]]
    assert len(crops) == 2
    assert (crops[..., 3] == 255).all()
    assert (crops[..., :3] == (10, 200, 30)).all()  # no transparent padding was cropped
