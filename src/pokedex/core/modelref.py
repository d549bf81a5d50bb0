"""Model references (REFs), parsed here and nowhere else.

A REF is a bundle folder or a registry URI: ``models:/<name>@<alias>`` or
``models:/<name>/<version>``, one of the two required and nothing else accepted (no paths, no
URLs), so a REF can neither steer a download out of the registry cache nor make the API fetch
a URL. Turning a REF into a local bundle folder is :func:`pokedex.store.registry.resolve_ref`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from pokedex.errors import PokedexError

REGISTRY_PREFIX = "models:/"
DEFAULT_NAME = "pokedex"  # the registered model
DEFAULT_MODEL = "models/release"  # the REF when neither an option nor $POKEDEX_MODEL names one
_REGISTRY_URI = re.compile(
    r"models:/(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,127})"
    r"(?:@(?P<alias>[A-Za-z0-9_-]{1,64})|/(?P<version>[0-9]{1,9}))"
)


@dataclass(frozen=True)
class RegistryRef:
    """A parsed ``models:/`` URI: a name and either an alias or a version."""

    name: str
    alias: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else self.uri(self.version)

    def uri(self, version: str | None) -> str:
        """The URI of one version of this model."""
        return f"models:/{self.name}/{version}"


def is_registry_ref(ref: str) -> bool:
    """Whether a REF names a registry version rather than a bundle folder."""
    return ref.startswith(REGISTRY_PREFIX)


def parse_registry_ref(ref: str) -> RegistryRef:
    """Parse ``models:/name@alias`` or ``models:/name/version``; exit-code-2 PokedexError if not."""
    match = _REGISTRY_URI.fullmatch(ref)
    if match is None or ".." in ref:
        raise PokedexError(
            f"malformed registry URI {ref!r}: use models:/{DEFAULT_NAME}@alias or "
            f"models:/{DEFAULT_NAME}/version",
            exit_code=2,
        )
    return RegistryRef(match["name"], match["alias"], match["version"])


def default_ref(ref: str | None) -> str:
    """``ref``, else ``$POKEDEX_MODEL``, else the release bundle."""
    return ref or os.environ.get("POKEDEX_MODEL") or DEFAULT_MODEL
