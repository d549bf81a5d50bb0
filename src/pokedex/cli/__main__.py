"""`python -m pokedex.cli`, where the entry point is not installed."""

from pokedex.cli import app

app()
