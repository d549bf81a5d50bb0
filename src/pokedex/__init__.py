"""pokedex: recognize Pokémon from a picture, with the full MLOps lifecycle around it."""

__version__ = "0.1.0"
