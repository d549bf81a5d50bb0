"""Batch augmentation as tensor ops: runs wherever the batch is (CPU or GPU), no per-item PIL.

Input: packed RGBA canvases ``(N, S, S, 4)`` uint8. Output: normalized model input
``(N, 3, size, size)`` float32. The alpha channel lets us put a new background behind each
sprite, which is what makes a sprite-trained model usable on photos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2 import functional as tvf

from pokedex.errors import PokedexError

# Above half the side, a corner can cross the diagonal between its neighbours and fold the image.
MAX_PERSPECTIVE = 0.5


@dataclass
class AugmentConfig:
    """Strengths and probabilities of each augmentation (0 disables one)."""

    scale: tuple[float, float] = (0.55, 1.0)  # side of the crop as a fraction of the canvas
    shift: float = 0.15  # max translation, fraction of the canvas
    rotate: float = 15.0  # max rotation, degrees
    flip: float = 0.5
    perspective: float = 0.0  # share of images seen at a slant (a random homography)
    # each corner of the view moves inward by up to this fraction of half the side, on each axis
    # (torchvision's RandomPerspective distortion_scale)
    perspective_distortion: float = 0.3
    background_white: float = 0.15  # the evaluation background, kept in the training mix
    background_solid: float = 0.3  # random colours; the rest goes to gradients and textures
    background_gradient: float = 0.3
    background_photo: float = 0.0  # real photographs (a tile bank, see data/backgrounds.py)
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.4
    hue: float = 0.05  # fraction of a full turn
    grayscale: float = 0.05
    blur: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.5)  # in output pixels
    noise: float = 0.3
    noise_std: float = 0.06
    lowres: float = 0.25  # down-then-up sampling, like a small or compressed photo
    lowres_factor: tuple[float, float] = (0.3, 0.7)
    jpeg: float = 0.0  # JPEG compression artefacts, as in photos sent from a phone
    jpeg_quality: tuple[int, int] = (30, 90)

    def __post_init__(self) -> None:
        if not 0 <= self.perspective <= 1:
            raise PokedexError(
                f"augment.perspective={self.perspective}: a share of images, between 0 and 1"
            )
        if not 0 <= self.perspective_distortion <= MAX_PERSPECTIVE:
            raise PokedexError(
                f"augment.perspective_distortion={self.perspective_distortion}: choose between 0 "
                f"and {MAX_PERSPECTIVE} (a fraction of half the side; beyond it a corner can "
                "fold the image)"
            )


def _uniform(n: int, lo: float, hi: float, device: torch.device) -> torch.Tensor:
    return torch.empty(n, device=device).uniform_(lo, hi)


def _coin(n: int, p: float, device: torch.device) -> torch.Tensor:
    return torch.rand(n, device=device) < p


def photo_tiles(bank: np.ndarray | None) -> torch.Tensor | None:
    """A tile bank as ``pokedex data backgrounds`` stores it, ``(N, T, T, 3)`` uint8, in the
    ``(N, 3, T, T)`` layout :class:`BatchAugment` takes (None stays None)."""
    return None if bank is None else torch.from_numpy(bank).permute(0, 3, 1, 2).contiguous()


class BatchAugment(nn.Module):
    """Random geometry, background, colour and degradation for a batch of RGBA canvases."""

    def __init__(
        self,
        size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        config: AugmentConfig | None = None,
        backgrounds: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.size = size
        self.cfg = config or AugmentConfig()
        if self.cfg.background_photo > 0 and backgrounds is None:
            raise ValueError("background_photo > 0 needs a tile bank (backgrounds)")
        # (K, 3, T, T) uint8 photo tiles, moved with the module to the batch's device
        tiles = (
            backgrounds if backgrounds is not None else torch.zeros(0, 3, 1, 1, dtype=torch.uint8)
        )
        self.register_buffer("tiles", tiles, persistent=False)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, canvases: torch.Tensor) -> torch.Tensor:
        """``(N, S, S, 4)`` uint8 -> ``(N, 3, size, size)`` float32, normalized."""
        # Full-resolution work is the cost here (the profiler put 75% of this method in
        # float conversion, division and concatenation at S x S): convert once, premultiply in
        # place so edges do not bleed, and leave the 1/255 scaling until after resampling.
        x = canvases.permute(0, 3, 1, 2).float()  # (N, 4, S, S), values 0-255
        x[:, :3] *= x[:, 3:]  # premultiplied: 0-255^2
        out = self._geometry(x)  # (N, 4, size, size): linear, so scaling commutes with it
        rgb, alpha = out[:, :3] * (1 / 255**2), (out[:, 3:] * (1 / 255)).clamp(0, 1)
        rgb = rgb + self._background(rgb.shape[0], rgb.device) * (1 - alpha)
        rgb = self._colour(rgb.clamp(0, 1))
        rgb = self._degrade(rgb)
        return ((rgb.clamp(0, 1) - self.mean) / self.std).contiguous(
            memory_format=torch.channels_last
        )

    def _geometry(self, x: torch.Tensor) -> torch.Tensor:
        n, dev, c = x.shape[0], x.device, self.cfg
        scale = _uniform(n, *c.scale, dev)
        angle = _uniform(n, -c.rotate, c.rotate, dev) * math.pi / 180
        flip = torch.where(_coin(n, c.flip, dev), -1.0, 1.0)
        tx, ty = (_uniform(n, -c.shift, c.shift, dev) * 2 for _ in range(2))
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack(  # (N, 2, 3): output grid -> input coordinates
            [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
        )
        if c.perspective > 0:  # drawn only when on: other recipes keep their random numbers
            slant = perspective_homography(n, c.perspective, c.perspective_distortion, dev)
            grid = _projective_grid(_to_3x3(theta) @ slant, self.size)
        else:
            grid = F.affine_grid(theta, [n, 4, self.size, self.size], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _background(self, n: int, dev: torch.device) -> torch.Tensor:
        """``(N, 3, size, size)``: solid colours, linear gradients, photographs or smooth
        colour noise (whatever share the others leave)."""
        s, c = self.size, self.cfg
        pick = torch.rand(n, device=dev)
        p1 = c.background_white + c.background_solid
        p2 = p1 + c.background_gradient
        p3 = p2 + c.background_photo
        colour = torch.rand(n, 3, 1, 1, device=dev)
        colour[pick < c.background_white] = 1.0
        out = colour.expand(n, 3, s, s).clone()  # solid
        grad = ((pick >= p1) & (pick < p2)).nonzero().flatten()
        if len(grad):  # between two random colours along a random direction
            k = len(grad)
            a, b = torch.rand(k, 3, 1, 1, device=dev), torch.rand(k, 3, 1, 1, device=dev)
            ang = _uniform(k, 0, 2 * math.pi, dev).view(k, 1, 1)
            line = torch.linspace(-0.5, 0.5, s, device=dev)
            t = line.view(1, 1, s) * torch.cos(ang) + line.view(1, s, 1) * torch.sin(ang)
            t = (t - t.amin((1, 2), keepdim=True)) / (
                t.amax((1, 2), keepdim=True) - t.amin((1, 2), keepdim=True) + 1e-6
            )
            out[grad] = a + (b - a) * t.unsqueeze(1)
        photo = ((pick >= p2) & (pick < p3)).nonzero().flatten()
        if len(photo):  # a random tile, flipped half the time, resampled to the input size
            k = len(photo)
            idx = torch.randint(0, len(self.tiles), (k,), device=dev)
            tiles = self.tiles[idx].float() * (1 / 255)  # (k, 3, T, T)
            flip = _coin(k, 0.5, dev).view(k, 1, 1, 1)
            tiles = torch.where(flip, tiles.flip(3), tiles)
            out[photo] = F.interpolate(
                tiles, size=(s, s), mode="bilinear", antialias=True, align_corners=False
            )
        tex = (pick >= p3).nonzero().flatten()
        if len(tex):  # low-frequency colour noise plus fine grain, like clutter or a wall
            cells = int(torch.randint(2, 9, (1,)).item())
            coarse = torch.rand(len(tex), 3, cells, cells, device=dev)
            coarse = F.interpolate(coarse, size=(s, s), mode="bilinear", align_corners=False)
            out[tex] = coarse + 0.08 * torch.randn_like(coarse)
        return out.clamp(0, 1)

    def _colour(self, rgb: torch.Tensor) -> torch.Tensor:
        """Brightness, contrast, saturation, hue and greyscale, in that order, as ONE affine map
        per image: each step is linear in the pixels given per-image constants, so they compose
        into a 3x3 matrix and an offset and the pixels are touched once (``(N, 3, H, W)``)."""
        n, dev, c = rgb.shape[0], rgb.device, self.cfg
        luma = torch.tensor([0.299, 0.587, 0.114], device=dev)
        eye, ones = torch.eye(3, device=dev), torch.ones(3, 1, device=dev)
        to_grey = ones * luma  # (3, 3): every channel becomes the luma
        b = _uniform(n, 1 - c.brightness, 1 + c.brightness, dev).view(n, 1, 1)
        k = _uniform(n, 1 - c.contrast, 1 + c.contrast, dev).view(n, 1, 1)
        t = _uniform(n, 1 - c.saturation, 1 + c.saturation, dev).view(n, 1, 1)
        # x -> b x;  contrast around the mean luma m of b x;  saturation around the luma of b x
        mean_luma = (rgb.mean((2, 3)) @ luma).view(n, 1, 1)  # (N, 1, 1): m / b
        matrix = b * (t * k * eye + (1 - t) * to_grey)  # (N, 3, 3)
        offset = b * t * (1 - k) * mean_luma * ones  # (N, 3, 1)
        if c.hue > 0:
            hue = _hue_rotation(_uniform(n, -c.hue, c.hue, dev) * 2 * math.pi)  # (N, 3, 3)
            matrix, offset = hue @ matrix, hue @ offset
        grey = _coin(n, c.grayscale, dev).view(n, 1, 1)  # the luma of b x, no other change
        matrix = torch.where(grey, b * to_grey, matrix)
        offset = torch.where(grey, torch.zeros_like(offset), offset)
        out = torch.einsum("nij,njhw->nihw", matrix, rgb) + offset.view(n, 3, 1, 1)
        return out.clamp_(0, 1)

    def _degrade(self, rgb: torch.Tensor) -> torch.Tensor:
        n, dev, c = rgb.shape[0], rgb.device, self.cfg
        # each degradation runs only on the images that drew it
        sel = _coin(n, c.lowres, dev).nonzero().flatten()
        if len(sel):
            small = max(8, round(self.size * float(_uniform(1, *c.lowres_factor, dev))))
            down = F.interpolate(rgb[sel], size=(small, small), mode="bilinear", antialias=True)
            rgb[sel] = F.interpolate(down, size=(self.size, self.size), mode="bilinear")
        sel = _coin(n, c.blur, dev).nonzero().flatten()
        if len(sel):
            rgb[sel] = _gaussian_blur(rgb[sel], float(_uniform(1, *c.blur_sigma, dev)))
        sel = _coin(n, c.noise, dev).nonzero().flatten()
        if len(sel):
            sigma = _uniform(len(sel), 0, c.noise_std, dev).view(-1, 1, 1, 1)
            rgb[sel] = rgb[sel] + sigma * torch.randn_like(rgb[sel])
        sel = _coin(n, c.jpeg, dev).nonzero().flatten()
        if len(sel):  # torchvision's codec runs on the CPU: the selected images go there and back
            quality = int(torch.randint(c.jpeg_quality[0], c.jpeg_quality[1] + 1, (1,)).item())
            pixels = (rgb[sel].clamp(0, 1) * 255).round().to(torch.uint8).cpu()
            rgb[sel] = tvf.jpeg(pixels, quality).to(dev, rgb.dtype) * (1 / 255)
        return rgb


def perspective_homography(
    n: int, share: float, distortion: float, device: torch.device
) -> torch.Tensor:
    """``(N, 3, 3)`` maps from output to input coordinates (normalized, -1..1) that show the
    input at a slant on a random ``share`` of the images, the identity on the others: each
    corner of the input lands inward of the output's corner by up to ``distortion`` of half the
    side on each axis (torchvision's RandomPerspective, drawn per image)."""
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], device=device)
    inward = torch.rand(n, 4, 2, device=device) * distortion  # (N, 4, 2)
    moved = corners * (1 - inward)  # (N, 4, 2): where each input corner shows in the output
    slant = _homography(moved, corners.expand(n, 4, 2))
    on = _coin(n, share, device).view(n, 1, 1)
    return torch.where(on, slant, torch.eye(3, device=device).expand(n, 3, 3))


def _homography(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """``(N, 3, 3)`` projective maps taking the 4 points ``src`` ``(N, 4, 2)`` to ``dst``: the
    8 unknowns of each (the ninth entry fixed at 1) from 8 linear equations."""
    n = src.shape[0]
    x, y = src[..., 0], src[..., 1]  # (N, 4)
    u, v = dst[..., 0], dst[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], -1)  # (N, 4, 8)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], -1)
    a = torch.cat([rows_u, rows_v], 1)  # (N, 8, 8)
    b = torch.cat([u, v], 1)  # (N, 8)
    h = torch.linalg.solve(a, b)  # (N, 8)
    return torch.cat([h, torch.ones(n, 1, device=src.device)], 1).view(n, 3, 3)


def _to_3x3(theta: torch.Tensor) -> torch.Tensor:
    """``(N, 2, 3)`` affine maps as ``(N, 3, 3)`` projective ones."""
    last = torch.tensor([0.0, 0.0, 1.0], device=theta.device).expand(theta.shape[0], 1, 3)
    return torch.cat([theta, last], 1)


def _projective_grid(maps: torch.Tensor, size: int) -> torch.Tensor:
    """The ``grid_sample`` grid ``(N, size, size, 2)`` of projective maps ``(N, 3, 3)`` from output
    to input coordinates, on the same pixel centres as ``affine_grid(align_corners=False)``."""
    n = maps.shape[0]
    line = (torch.arange(size, device=maps.device) * 2 + 1) / size - 1  # pixel centres, -1..1
    ys, xs = torch.meshgrid(line, line, indexing="ij")
    points = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, size * size, 3)
    mapped = points @ maps.transpose(1, 2)  # (N, size * size, 3)
    w = mapped[..., 2:]
    # At strong slants the horizon (w = 0) can reach a corner of the view; the points on it or
    # beyond map outside the input anyway, so sample outside (transparent), never divide by 0.
    xy = torch.where(w > 1e-6, mapped[..., :2] / w.clamp_min(1e-6), 2.0)
    return xy.view(n, size, size, 2)


def _hue_rotation(angle: torch.Tensor) -> torch.Tensor:
    """``(N, 3, 3)`` RGB matrices rotating hue by ``angle`` radians per image, in YIQ space."""
    to_yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
        device=angle.device,
    )
    to_rgb = torch.linalg.inv(to_yiq)
    cos, sin = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(cos), torch.zeros_like(cos)
    rot = torch.stack(
        [
            torch.stack([one, zero, zero], 1),
            torch.stack([zero, cos, -sin], 1),
            torch.stack([zero, sin, cos], 1),
        ],
        1,
    )  # (N, 3, 3)
    return to_rgb @ rot @ to_yiq


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(2 * sigma))
    k = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(k**2) / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, 1, -1).repeat(x.shape[1], 1, 1, 1)  # (C, 1, 1, K)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k, groups=x.shape[1])
    return F.conv2d(
        F.pad(x, (0, 0, radius, radius), mode="reflect"), k.transpose(2, 3), groups=x.shape[1]
    )
