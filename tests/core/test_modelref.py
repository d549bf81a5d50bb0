"""Model references: one parser, and the CLI, the jobs and the API's reload agree on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pokedex.core.modelref import (
    DEFAULT_MODEL,
    RegistryRef,
    default_ref,
    is_registry_ref,
    parse_registry_ref,
)
from pokedex.errors import PokedexError
from pokedex.serving.model import check_reload_ref
from pokedex.store.registry import resolve_model, resolve_ref

MALFORMED = [
    "models:/pokedex",  # an alias or a version is required
    "models:/",
    "models:/../../x",
    "models:/pokedex@prod#frag",
    "models:/pokedex@prod;rm",
    "models:/pokedex/latest",
    "models:/a b@production",
    "models:/pokedex@production/3",
]


def test_an_alias_or_a_version_is_parsed() -> None:
    assert parse_registry_ref("models:/pokedex@production") == RegistryRef("pokedex", "production")
    assert parse_registry_ref("models:/pokedex/3") == RegistryRef("pokedex", version="3")
    assert str(parse_registry_ref("models:/my.model-2@candidate")) == "models:/my.model-2@candidate"
    assert str(parse_registry_ref("models:/pokedex/12")) == "models:/pokedex/12"
    assert RegistryRef("pokedex", "candidate").uri("4") == "models:/pokedex/4"


@pytest.mark.parametrize("ref", MALFORMED)
def test_a_malformed_uri_is_a_usage_error(ref: str) -> None:
    with pytest.raises(PokedexError, match="malformed registry URI") as caught:
        parse_registry_ref(ref)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("ref", MALFORMED)
def test_every_end_refuses_the_same_uris_before_any_registry_is_asked(
    ref: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no store at all: a URI that got past the parser would fail on the missing store instead
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(PokedexError, match="malformed registry URI"):
        resolve_model(ref)  # the CLI and the jobs
    with pytest.raises(PokedexError, match="malformed registry URI"):
        resolve_ref(ref)  # the API at start-up
    with pytest.raises(ValueError, match="malformed registry URI"):
        check_reload_ref(ref, [str(tmp_path)])  # the API's admin reload: a 400
    assert not (tmp_path / "none.db").exists()


def test_registry_refs_and_folders_are_told_apart() -> None:
    assert is_registry_ref("models:/pokedex@production")
    assert not is_registry_ref("models/release")
    assert not is_registry_ref("./models:/x")


def test_the_default_is_the_option_then_the_environment_then_the_release(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("POKEDEX_MODEL", raising=False)
    assert default_ref(None) == DEFAULT_MODEL == "models/release"
    monkeypatch.setenv("POKEDEX_MODEL", "models:/pokedex@production")
    assert default_ref(None) == "models:/pokedex@production"
    assert default_ref("models/candidate") == "models/candidate"
