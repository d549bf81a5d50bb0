"""The MLflow registry and the promotion gate, on a private sqlite store and real small models.

The models come from the colour world of the evaluation tests: a 16 px ResNet-18 whose heads
are fitted (it tells the six colours apart) and one with untrained heads (it guesses).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner, Result

from pokedex.cli import app
from pokedex.core.bundle import read_bundle, update_meta
from pokedex.errors import PokedexError
from pokedex.models.net import PokedexNet
from pokedex.store import registry
from pokedex.store.registry import resolve_model, resolve_ref
from tests.evaluation.conftest import CLASSES, NET, fit_heads, write_model_bundle, write_processed

runner = CliRunner()


@dataclass
class World:
    """Processed data and three bundles: good, an equally good retrain, and a bad one."""

    processed: Path
    good: Path
    retrain: Path  # the good weights under another bundle version: scores exactly equal
    bad: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("registry-world")
    processed = write_processed(root / "processed")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        good = write_model_bundle(root / "good", fit_heads(processed, CLASSES), processed, CLASSES)
        torch.manual_seed(1)
        guesser = PokedexNet(num_classes=len(CLASSES), **NET).eval()  # random heads
        bad = write_model_bundle(root / "bad", guesser, processed, CLASSES)
    finally:
        torch.set_num_threads(before)
    update_meta(bad, version="random-heads")
    shutil.copytree(good.path, root / "retrain")
    update_meta(read_bundle(root / "retrain"), version="retrain")
    return World(processed, good.path, root / "retrain", bad.path)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised empty sqlite store: building the schema takes seconds, a copy does not."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(empty_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A private tracking store and download cache; the working folder is the test's own, so
    MLflow's default artifact root (./mlruns) lands there too."""
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("POKEDEX_CACHE", str(tmp_path / "cache"))
    for name in ("POKEDEX_GATE_MAX_TOP1_DROP", "POKEDEX_GATE_MAX_ECE_RISE", "POKEDEX_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return uri


def cli(*args: str) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def register(bundle: Path) -> str:
    result = cli("registry", "register", "--bundle", bundle)
    assert result.exit_code == 0, result.output
    return result.stdout.split("version ")[1].split()[0]


def promote(world: World, *extra: str) -> Result:
    return cli("registry", "promote", "--processed", world.processed, *extra)


def aliases(uri: str) -> dict[str, str]:
    return {k: str(v) for k, v in MlflowClient(uri).get_registered_model("pokedex").aliases.items()}


def test_register_sets_candidate_and_both_uri_forms_download_the_bundle(
    world: World, store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli("registry", "register", "--bundle", world.good)
    assert result.exit_code == 0, result.output
    assert "version 1" in result.stdout
    assert "models:/pokedex/1" in result.stdout
    assert aliases(store) == {"candidate": "1"}

    by_alias = registry.download_bundle("models:/pokedex@candidate")
    assert by_alias.is_relative_to(tmp_path / "cache")
    assert registry.bundle_digest(by_alias) == registry.bundle_digest(world.good)
    assert registry.download_bundle("models:/pokedex/1") == by_alias

    # a downloaded version is reused, without asking the artifact store again
    def no_download(**_: object) -> str:
        raise AssertionError("downloaded again")

    with monkeypatch.context() as patch:
        patch.setattr("mlflow.artifacts.download_artifacts", no_download)
        # and the URI works wherever a model REF is accepted
        assert resolve_model("models:/pokedex@candidate").path == by_alias
        assert resolve_ref("models:/pokedex/1") == by_alias

    # a cached copy changed in place is not trusted: it is fetched again
    update_meta(read_bundle(by_alias), temperature=2.0)
    assert registry.download_bundle("models:/pokedex/1") == by_alias
    assert registry.bundle_digest(by_alias) == registry.bundle_digest(world.good)


def test_the_same_bundle_is_one_version(world: World, store: str) -> None:
    assert register(world.good) == register(world.good) == "1"
    assert register(world.bad) == "2"
    assert aliases(store) == {"candidate": "2"}


def test_a_version_is_linked_to_its_training_run_when_the_store_has_it(
    world: World, store: str, tmp_path: Path
) -> None:
    client = MlflowClient(store)
    run_id = client.create_run(client.create_experiment("train")).info.run_id
    linked = shutil.copytree(world.good, tmp_path / "linked")
    update_meta(read_bundle(linked), run={"mlflow_run_id": run_id})
    stranger = shutil.copytree(world.good, tmp_path / "stranger")
    update_meta(read_bundle(stranger), run={"mlflow_run_id": "0" * 32})

    v1 = client.get_model_version("pokedex", register(linked))
    assert v1.run_id == run_id
    assert v1.source.startswith(client.get_run(run_id).info.artifact_uri)
    v2 = client.get_model_version("pokedex", register(stranger))
    assert v2.run_id not in (None, run_id)
    assert client.get_run(v2.run_id).info.run_name.startswith("register ")
    assert registry.bundle_digest(registry.download_bundle("models:/pokedex/1")) == (
        registry.bundle_digest(linked)
    )


def test_first_promotion_then_an_equal_candidate_is_promoted_and_can_be_rolled_back(
    world: World, store: str
) -> None:
    register(world.good)
    first = promote(world)
    assert first.exit_code == 0, first.output
    assert "no production model yet" in first.stdout
    assert aliases(store)["production"] == "1"

    register(world.retrain)
    second = promote(world)
    assert second.exit_code == 0, second.output
    assert "candidate v2" in second.stdout
    assert "production v1" in second.stdout
    assert "+0.00 pp" in second.stdout  # same weights, same images: nothing changed
    assert aliases(store) == {"candidate": "2", "production": "2"}
    tags = MlflowClient(store).get_model_version("pokedex", "2").tags
    assert tags["gate.replaced"] == "1"
    assert float(tags["gate.acc_top1"]) > 0.9

    again = promote(world)
    assert again.exit_code == 0
    assert "already is production" in again.stdout

    back = cli("registry", "alias", "production", "1")
    assert back.exit_code == 0, back.output
    assert aliases(store)["production"] == "1"
    listing = cli("registry", "list")
    assert listing.exit_code == 0, listing.output
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[1:]}
    assert set(rows) == {"1", "2"}
    assert "production" in rows["1"]
    assert "candidate" in rows["2"]


def test_a_worse_candidate_is_refused_and_production_stays(
    world: World, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(world.good)
    assert promote(world).exit_code == 0
    register(world.bad)

    refused = promote(world)
    assert refused.exit_code == 1, refused.output
    assert "REFUSED" in refused.stdout
    assert "top-1 drops" in refused.stdout
    assert "top-5" in refused.stdout
    assert "ECE" in refused.stdout
    assert aliases(store) == {"candidate": "2", "production": "1"}

    # margins from the environment: wide enough to let it through, in a dry run
    monkeypatch.setenv("POKEDEX_GATE_MAX_TOP1_DROP", "1")
    monkeypatch.setenv("POKEDEX_GATE_MAX_ECE_RISE", "1")
    dry = promote(world, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would move" in dry.stdout
    assert aliases(store)["production"] == "1"


@pytest.mark.parametrize(
    "args",
    [
        ["registry", "promote", "--model", "models:/pokedex@nope"],
        ["registry", "promote", "--model", "models:/ghost/1"],
        ["registry", "promote", "--model", "models:/../../etc"],
        ["registry", "promote", "--model", "models:/pokedex@prod#frag"],
        ["registry", "promote", "--model", "models/release"],
        ["registry", "promote", "--max-top1-drop", "-0.5"],
        ["registry", "register", "--bundle", "models/release", "--alias", "production"],
        ["predict", ".", "--model", "models:/pokedex@nope"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(world: World, store: str, args: list[str]) -> None:
    register(world.good)
    result = cli(*args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output


def test_a_missing_store_is_reported_not_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    result = cli("registry", "promote")
    assert result.exit_code == 2
    assert "no MLflow store" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_a_tampered_artifact_is_refused(world: World, store: str, tmp_path: Path) -> None:
    version = MlflowClient(store).get_model_version("pokedex", register(world.good))
    with open(Path(version.source) / "classes.json", "a") as fh:
        fh.write(" ")
    with pytest.raises(PokedexError, match="digest"):
        registry.download_bundle("models:/pokedex/1")
    assert not list((tmp_path / "cache" / "registry" / "pokedex").glob("1-*"))
