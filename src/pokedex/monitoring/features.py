"""What the monitor measures per image: ONE definition, shared by the profile and the server.

Image statistics are computed on the 128 px RGBA canvas that the preprocessing builds for the
model (``fit_square(to_rgba(image), CANVAS)``), composited on the model's background, so a
served upload and a packed training image are measured the same way. Numpy only: serving
imports this module.
"""

from __future__ import annotations

import numpy as np

from pokedex.core.preprocess import flatten

# name -> one-line meaning (the docs and the HTML report print these)
IMAGE_FEATURES = {
    "brightness": "mean luma in [0, 1], on the model's background",
    "contrast": "standard deviation of that luma",
    "colourfulness": "Hasler-Süsstrunk colourfulness of the composited image",
    "sharpness": "mean absolute Laplacian of the luma (blur lowers it, noise raises it)",
    "alpha_coverage": "fraction of canvas pixels at least half opaque (1.0 for a photo)",
}
MODEL_FEATURES = {
    "confidence": "top-1 calibrated probability",
    "embedding_norm": "L2 norm of the penultimate embedding",
}
EMBEDDING_HEAD = 8  # leading embedding dimensions logged per prediction (the multivariate test)
EMBEDDING = "embedding"  # the name of that joint test
DRIFT_FEATURES = (*IMAGE_FEATURES, *MODEL_FEATURES, EMBEDDING)  # every drift test, by name
# rows: luma (BT.601), red-green, yellow-blue (Hasler & Süsstrunk's opponent axes)
_OPPONENT = np.array([[0.299, 0.587, 0.114], [1.0, -1.0, 0.0], [0.5, 0.5, -1.0]], dtype=np.float32)


def canvas_stats(canvases: np.ndarray, background: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """The :data:`IMAGE_FEATURES` of RGBA canvases ``(N, S, S, 4)`` uint8, each ``(N,)``."""
    return flat_stats(flatten(canvases, background), canvases[..., 3])


def flat_stats(rgb: np.ndarray, alpha: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`canvas_stats` from the composited canvases ``(N, S, S, 3)`` in [0, 1] and their
    alpha ``(N, S, S)`` uint8 (the server composites once for these and the model input)."""
    n, h, w, _ = rgb.shape
    # luma and the two opponent colour axes as contiguous planes (N, 3, S*S), one product
    planes = _OPPONENT @ rgb.reshape(n, h * w, 3).transpose(0, 2, 1)
    mean, std = planes.mean(axis=2), planes.std(axis=2)
    luma = planes[:, 0].reshape(n, h, w)
    # 4-neighbour Laplacian on the interior pixels: (N, S-2, S-2)
    lap = (
        4 * luma[:, 1:-1, 1:-1]
        - luma[:, :-2, 1:-1]
        - luma[:, 2:, 1:-1]
        - luma[:, 1:-1, :-2]
        - luma[:, 1:-1, 2:]
    )
    return {
        "brightness": mean[:, 0],
        "contrast": std[:, 0],
        # Hasler & Süsstrunk (2003): spread and offset of the r-g and yellow-blue axes
        "colourfulness": np.hypot(std[:, 1], std[:, 2]) + 0.3 * np.hypot(mean[:, 1], mean[:, 2]),
        "sharpness": np.abs(lap).mean(axis=(1, 2)),
        "alpha_coverage": (alpha >= 128).mean(axis=(1, 2)),
    }


def embedding_summary(features: np.ndarray) -> dict[str, np.ndarray]:
    """Norm ``(N,)``, mean ``(N,)`` and leading dimensions ``(N, 8)`` of embeddings ``(N, D)``."""
    f = features.astype(np.float64)
    return {
        "embedding_norm": np.linalg.norm(f, axis=1),
        "embedding_mean": f.mean(axis=1) if f.shape[1] else np.zeros(len(f)),
        "embedding_head": f[:, :EMBEDDING_HEAD],
    }
