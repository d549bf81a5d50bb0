"""The games' conventional type colours, shared by the UI badges and the embedding map."""

from __future__ import annotations

TYPE_COLOURS = {
    "normal": "#A8A77A", "fighting": "#C22E28", "flying": "#A98FF3", "poison": "#A33EA1",
    "ground": "#E2BF65", "rock": "#B6A136", "bug": "#A6B91A", "ghost": "#735797",
    "steel": "#B7B7CE", "fire": "#EE8130", "water": "#6390F0", "grass": "#7AC74C",
    "electric": "#F7D02C", "psychic": "#F95587", "ice": "#96D9D6", "dragon": "#6F35FC",
    "dark": "#705746", "fairy": "#D685AD",
}  # fmt: skip
UNKNOWN_COLOUR = "#999999"


def text_colour(background: str) -> str:
    """Black or white, whichever reads better on a ``#RRGGBB`` background (WCAG luminance)."""
    r, g, b = (int(background[i : i + 2], 16) / 255 for i in (1, 3, 5))

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    # contrast with black (L + 0.05) / 0.05 against white 1.05 / (L + 0.05): equal at L ~ 0.179
    return "#000000" if luminance > 0.179 else "#FFFFFF"
