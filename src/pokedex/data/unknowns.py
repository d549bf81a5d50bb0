"""Synthetic non-Pokémon pictures, deterministic per seed: what `pokedex evaluate` measures the
open-set threshold on, and the outliers training shows the net. Numpy + Pillow only."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from pokedex.core.preprocess import CANVAS

# what a user points a Pokédex at that is no Pokémon: noise, shapes, gradients, textures, a sky
# over grass, text, a screenshot of an app, and corners of real photos (background: last, it
# needs photos)
KINDS = (
    "uniform_noise",
    "gaussian_noise",
    "shapes",
    "gradient",
    "texture",
    "landscape",
    "text",
    "screenshot",
    "background",
)
WORDS = (
    *("the", "a", "pokedex", "photo", "image", "of", "is", "to", "and", "in", "your", "screen"),
    *("settings", "open", "save", "cancel", "12:45", "ok"),
)


def generate_unknowns(
    n: int, seed: int = 0, backgrounds: np.ndarray | None = None
) -> tuple[np.ndarray, list[str]]:
    """``n`` deterministic non-Pokémon canvases ``(n, 128, 128, 4)`` uint8 and their kinds.

    Kinds take turns; ``background`` crops the corners of ``backgrounds`` (photo canvases
    ``(M, 128, 128, 4)``) and is replaced by ``texture`` when none are given.
    """
    kinds = KINDS if backgrounds is not None and len(backgrounds) else KINDS[:-1]
    out = np.empty((n, CANVAS, CANVAS, 4), dtype=np.uint8)
    names = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        kind = kinds[i % len(kinds)]
        if kind == "background":
            assert backgrounds is not None
            rgb = _corner_crop(rng, backgrounds[(i // len(kinds)) % len(backgrounds)])
        else:
            rgb = _MAKERS[kind](rng)
        out[i, ..., :3] = rgb[..., :3]
        out[i, ..., 3] = rgb[..., 3] if rgb.shape[-1] == 4 else 255
        names.append(kind)
    return out, names


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.integers(0, 256, 3))
    return r, g, b


def _uniform_noise(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (CANVAS, CANVAS, 3), dtype=np.uint8)


def _gaussian_noise(rng: np.random.Generator) -> np.ndarray:
    mean = rng.uniform(40, 215, 3)
    noise = rng.normal(mean, rng.uniform(15, 70), (CANVAS, CANVAS, 3))
    return np.clip(noise, 0, 255).astype(np.uint8)


def _shapes(rng: np.random.Generator) -> np.ndarray:
    # every other image on transparency: a silhouette on the model's own background,
    # the unknown that looks most like a sprite
    transparent = bool(rng.integers(0, 2))
    image = Image.new(
        "RGBA", (CANVAS, CANVAS), (0, 0, 0, 0) if transparent else (*_colour(rng), 255)
    )
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = (int(v) for v in rng.integers(0, CANVAS - 16, 2))
        x1, y1 = (min(CANVAS - 1, int(v) + 16) for v in rng.integers((x0, y0), CANVAS, 2))
        fill = (*_colour(rng), 255)
        shape = int(rng.integers(0, 4))
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        elif shape == 2:
            draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=fill)
        else:
            draw.line((x0, y0, x1, y1), fill=fill, width=int(rng.integers(2, 10)))
    return np.asarray(image, dtype=np.uint8)


def _gradient(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS] / (CANVAS - 1)  # (H, W) each
    if rng.integers(0, 2):
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) / np.sqrt(0.5) + 0.5
    else:
        cx, cy = rng.uniform(0, 1, 2)
        t = np.hypot(xx - cx, yy - cy) / np.sqrt(2)
    t = np.clip(t, 0, 1)[..., None]  # (H, W, 1)
    a, b = np.asarray(_colour(rng)), np.asarray(_colour(rng))
    return (a * (1 - t) + b * t).astype(np.uint8)


def _texture(rng: np.random.Generator) -> np.ndarray:
    # low-frequency colour noise: a few random colours on a coarse grid, smoothly upsampled
    grid = int(rng.integers(2, 9))
    coarse = rng.integers(0, 256, (grid, grid, 3), dtype=np.uint8)
    image = Image.fromarray(coarse, mode="RGB").resize((CANVAS, CANVAS), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def _landscape(rng: np.random.Generator) -> np.ndarray:
    # a sky over grass, sand or water: the blue-and-green picture once named "Wailord 96 %"
    yy = np.linspace(0, 1, CANVAS)[:, None, None]  # (H, 1, 1)
    horizon = rng.uniform(0.35, 0.75)
    top = np.array([rng.uniform(20, 120), rng.uniform(90, 190), rng.uniform(180, 255)])
    low = np.array([rng.uniform(150, 230), rng.uniform(190, 240), rng.uniform(220, 255)])
    sky = top + (low - top) * np.clip(yy / horizon, 0, 1)
    ground_colour = [(40, 140, 40), (90, 170, 60), (200, 180, 120), (30, 90, 160)]
    g = np.array(ground_colour[int(rng.integers(0, len(ground_colour)))], dtype=float)
    ground = g * (1 - 0.4 * np.clip((yy - horizon) / (1 - horizon), 0, 1))
    rgb = np.where(yy < horizon, sky, ground) * np.ones((1, CANVAS, 1))
    rgb += rng.normal(0, rng.uniform(2, 12), rgb.shape)  # grain, leaves, waves
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _text(rng: np.random.Generator) -> np.ndarray:
    # a page or a sign: lines of words, dark on light or light on dark
    dark = bool(rng.integers(0, 2))
    paper = (20, 24, 28) if dark else (240, 238, 230)
    image = Image.new("RGB", (CANVAS, CANVAS), paper)
    draw = ImageDraw.Draw(image)
    ink = (230, 230, 230) if dark else (int(rng.integers(0, 80)),) * 3
    size = int(rng.integers(9, 20))
    for y in range(int(rng.integers(2, 8)), CANVAS - size, size + int(rng.integers(2, 8))):
        line = " ".join(WORDS[int(i)] for i in rng.integers(0, len(WORDS), 6))
        draw.text((int(rng.integers(2, 10)), y), line, fill=ink, font_size=size)
    return np.asarray(image, dtype=np.uint8)


def _screenshot(rng: np.random.Generator) -> np.ndarray:
    # an app's window: a title bar, a sidebar, panels, buttons and lines of text
    image = Image.new("RGB", (CANVAS, CANVAS), (245, 245, 247))
    draw = ImageDraw.Draw(image)
    bar = int(rng.integers(10, 22))
    draw.rectangle((0, 0, CANVAS, bar), fill=_colour(rng))
    side = int(rng.integers(0, 40))
    if side:
        draw.rectangle((0, bar, side, CANVAS), fill=(225, 228, 232))
    for _ in range(int(rng.integers(2, 6))):
        x0 = int(rng.integers(side + 2, CANVAS - 30))
        y0 = int(rng.integers(bar + 2, CANVAS - 20))
        w, h = (int(v) for v in rng.integers((20, 8), (90, 40)))
        draw.rounded_rectangle((x0, y0, x0 + w, y0 + h), radius=3, fill=_colour(rng))
    for y in range(bar + 6, CANVAS - 8, 11):
        if rng.random() < 0.6:
            draw.text((side + 4, y), " ".join(rng.choice(WORDS, 4)), fill=(40, 40, 40), font_size=9)
    return np.asarray(image, dtype=np.uint8)


def _corner_crop(rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
    # photo canvases are padded with transparency: crop inside the opaque part, at a corner,
    # where a photo of a figure usually shows background
    ys, xs = np.nonzero(canvas[..., 3])
    if len(ys) == 0:
        return _texture(rng)
    top, left, bottom, right = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
    side = max(8, min(bottom - top, right - left) // 3)
    y = top if rng.integers(0, 2) else bottom - side
    x = left if rng.integers(0, 2) else right - side
    crop = Image.fromarray(np.ascontiguousarray(canvas[y : y + side, x : x + side, :3]), mode="RGB")
    return np.asarray(crop.resize((CANVAS, CANVAS), Image.Resampling.BILINEAR), dtype=np.uint8)


_MAKERS = {
    "uniform_noise": _uniform_noise,
    "gaussian_noise": _gaussian_noise,
    "shapes": _shapes,
    "gradient": _gradient,
    "texture": _texture,
    "landscape": _landscape,
    "text": _text,
    "screenshot": _screenshot,
}
