"""The `pokedex` command line: thin commands that parse options and call one function each.

One module per command group (:mod:`~pokedex.cli.data`, :mod:`~pokedex.cli.jobs`,
:mod:`~pokedex.cli.registry`, :mod:`~pokedex.cli.serve`, :mod:`~pokedex.cli.drift`,
:mod:`~pokedex.cli.benchmark`, :mod:`~pokedex.cli.gpu`, :mod:`~pokedex.cli.feedback`: `pokedex db`
and `pokedex data feedback`); the app and its groups are in
:mod:`~pokedex.cli.groups`, the options several commands share in :mod:`~pokedex.cli.options`.
"""

from __future__ import annotations

from pokedex.cli import benchmark, data, drift, feedback, gpu, jobs, registry, serve
from pokedex.cli.groups import app

# importing a command module registers its commands; `pokedex --help` lists the top-level ones
# in this order
TOP_LEVEL = ("train", "predict", "sweep", "export", "serve", "ui", "card", "evaluate")
app.registered_commands.sort(key=lambda command: TOP_LEVEL.index(command.name or ""))

__all__ = ["app", "benchmark", "data", "drift", "feedback", "gpu", "jobs", "registry", "serve"]
