"""The MLflow model registry: bundles in as model versions, model REFs out as local folders.

A model version's source is a bundle folder logged as run artifacts: in the training run that
made it when the store holds that run, else in a registration run of its own. Two aliases
matter: ``candidate`` (what registration points at) and ``production`` (moved only by the
promotion gate, or by hand to roll back). Downloads land in a local cache keyed by version and
content, written atomically and checked against the digest recorded at registration.

No torch import here: serving and the jobs resolve their REFs through :func:`resolve_ref`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pokedex.core.bundle import Bundle, read_bundle
from pokedex.core.modelref import (
    DEFAULT_NAME,
    RegistryRef,
    default_ref,
    is_registry_ref,
    parse_registry_ref,
)
from pokedex.errors import PokedexError
from pokedex.io import atomic_path

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
EXPERIMENT = "pokedex"  # the training logger's experiment (configs/logger/mlflow.yaml)
CANDIDATE, PRODUCTION = "candidate", "production"
DIGEST_TAG = "bundle_sha256"


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else the local sqlite store the training runs use."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def open_client(*, create: bool = False) -> MlflowClient:
    """A client of the tracking store; ``create`` allows a new local sqlite store."""
    uri = tracking_uri()
    # MLflow would create a missing sqlite file empty: reading from one is a usage error
    sqlite_file = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
    if not create and sqlite_file is not None and not sqlite_file.is_file():
        raise PokedexError(
            f"no MLflow store at {uri}: register a model first "
            "(`pokedex registry register --bundle PATH`) or set MLFLOW_TRACKING_URI",
            exit_code=2,
        )
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep stderr clean
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def get_version(client: MlflowClient, ref: RegistryRef) -> ModelVersion:
    """The model version a REF names; exit-code-2 PokedexError when there is none."""
    from mlflow.exceptions import MlflowException

    known: dict[str, str] = {}
    try:
        # aliases are looked up in the model's own list: MLflow's error for a missing alias
        # is not a "not found" one
        known = dict(client.get_registered_model(ref.name).aliases)
        version = known.get(ref.alias) if ref.alias else ref.version
        if version is not None:
            return client.get_model_version(ref.name, str(version))
    except MlflowException as exc:
        if not _not_found(exc):
            raise PokedexError(f"{ref}: the registry at {tracking_uri()} failed: {exc}") from None
    hint = f" (aliases: {', '.join(sorted(known))})" if known else ""
    raise PokedexError(f"{ref} not found in {tracking_uri()}{hint}", exit_code=2)


def _aliases(client: MlflowClient, name: str) -> dict[str, str]:
    from mlflow.exceptions import MlflowException

    try:
        return dict(client.get_registered_model(name).aliases)
    except MlflowException:
        return {}


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    version = _aliases(client, name).get(alias)
    return None if version is None else client.get_model_version(name, str(version))


# --- downloading ---------------------------------------------------------------------------


def cache_root() -> Path:
    """``$POKEDEX_CACHE``, else ``~/.cache/pokedex`` (``$XDG_CACHE_HOME`` respected)."""
    if os.environ.get("POKEDEX_CACHE"):
        return Path(os.environ["POKEDEX_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pokedex"


def bundle_digest(folder: Path) -> str:
    """SHA-256 over a folder's relative file names and contents, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def download_bundle(ref: str) -> Path:
    """The local bundle folder of a ``models:/`` REF, downloaded once per version and reused
    while its content still matches the registered digest."""
    parsed = parse_registry_ref(ref)  # a malformed URI fails before any store is opened
    client = open_client()
    mv = get_version(client, parsed)
    _check_answer(parsed, mv)
    expected = mv.tags.get(DIGEST_TAG)
    # the key covers the content too: a store rebuilt from scratch reuses version numbers
    key = hashlib.sha256(f"{mv.source}\0{expected}".encode()).hexdigest()[:12]
    target = cache_root() / "registry" / parsed.name / f"{mv.version}-{key}"
    if (target / "bundle.json").is_file():
        # a cached copy changed in place (e.g. `pokedex evaluate` calibrating it) is fetched anew
        if expected is None or bundle_digest(target) == expected:
            log.debug("%s: reusing %s", ref, target)
            return target
        log.warning("%s: the cached copy in %s was modified: downloading it again", ref, target)
    from mlflow.artifacts import download_artifacts

    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix=".download-", dir=target.parent) as scratch,
        atomic_path(target) as tmp,
    ):
        local = Path(
            download_artifacts(
                artifact_uri=mv.source, dst_path=scratch, tracking_uri=tracking_uri()
            )
        )
        if not local.resolve().is_relative_to(Path(scratch).resolve()) or not local.is_dir():
            raise PokedexError(f"{ref}: version {mv.version} is not a bundle folder ({mv.source})")
        _check_download(local, ref, expected)
        os.replace(local, tmp)
    log.info("downloaded %s (version %s) to %s", ref, mv.version, target)
    return target


def resolve_ref(ref: str) -> Path:
    """The bundle folder a REF names (:mod:`pokedex.core.modelref`); registry URIs are
    downloaded first."""
    if is_registry_ref(ref):
        return download_bundle(ref)
    path = Path(ref)
    if not path.is_dir():
        raise PokedexError(
            f"model {ref!r} not found: give a bundle folder or models:/{DEFAULT_NAME}@alias"
        )
    return path


def resolve_model(ref: str | None) -> Bundle:
    """The bundle a REF names, or the default model (``$POKEDEX_MODEL``, else
    ``models/release``)."""
    return read_bundle(resolve_ref(default_ref(ref)))


def _check_answer(ref: RegistryRef, mv: ModelVersion) -> None:
    """Refuse a model version whose name or number could not be a cache folder name.

    Both come from the server's answer and make up the cache path: a hostile server answering
    version ``../../x`` would otherwise steer the download out of the cache (T9).
    """
    if mv.name != ref.name or not re.fullmatch(r"[0-9]{1,9}", str(mv.version)):
        raise PokedexError(
            f"{ref}: the registry at {tracking_uri()} answered with model {mv.name!r} "
            f"version {mv.version!r}: not the model asked for, or not a version number"
        )


def _check_download(folder: Path, ref: str, expected: str | None) -> None:
    odd = [p.name for p in folder.rglob("*") if p.is_symlink() or not (p.is_file() or p.is_dir())]
    if odd:
        raise PokedexError(f"{ref}: the download holds links or special files: {odd[:3]}")
    if expected and bundle_digest(folder) != expected:
        raise PokedexError(
            f"{ref}: the downloaded bundle does not match the digest recorded at registration"
        )
    read_bundle(folder)


# --- registering and aliases ---------------------------------------------------------------


def register_bundle(
    path: Path, *, name: str = DEFAULT_NAME, alias: str | None = CANDIDATE
) -> ModelVersion:
    """Log a bundle folder and make it a version of ``name``; point ``alias`` at it.

    A bundle already registered (same content digest) is not logged twice: its version is
    reused. ``production`` cannot be set here: only the gate (or a rollback) moves it.
    """
    if alias == PRODUCTION:
        raise PokedexError(
            "the production alias moves only through `pokedex registry promote`", exit_code=2
        )
    bundle = read_bundle(path)
    digest = bundle_digest(bundle.path)
    client = open_client(create=True)
    _ensure_model(client, name)
    found = client.search_model_versions(f"name = '{name}' and tags.{DIGEST_TAG} = '{digest}'")
    if found:
        mv = found[0]
        log.info("%s is already version %s of %s", bundle.path, mv.version, name)
    else:
        run_id = _training_run(client, bundle) or _registration_run(client, bundle)
        artifact_path = f"bundle-{digest[:12]}"
        client.log_artifacts(run_id, str(bundle.path), artifact_path)
        source = f"{client.get_run(run_id).info.artifact_uri}/{artifact_path}"
        mv = client.create_model_version(
            name, source, run_id=run_id, tags=_version_tags(bundle, digest)
        )
    if alias:
        client.set_registered_model_alias(name, alias, mv.version)
    return mv


def _ensure_model(client: MlflowClient, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if not _not_found(exc):
            raise PokedexError(f"the registry at {tracking_uri()} failed: {exc}") from None
        client.create_registered_model(name, description="Pokédex model bundles")


def _training_run(client: MlflowClient, bundle: Bundle) -> str | None:
    run_id = (bundle.meta.get("run") or {}).get("mlflow_run_id")
    if not run_id:
        return None
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id).info.run_id
    except MlflowException:
        log.info("training run %s is not in %s: registering without it", run_id, tracking_uri())
        return None


def _registration_run(client: MlflowClient, bundle: Bundle) -> str:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    run = client.create_run(
        experiment_id, run_name=f"register {bundle.name}", tags={"pokedex.kind": "registration"}
    )
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _version_tags(bundle: Bundle, digest: str) -> dict[str, str]:
    meta, run = bundle.meta, bundle.meta.get("run") or {}
    tags = {
        DIGEST_TAG: digest,
        "bundle_name": str(meta.get("name", "pokedex")),
        "bundle_version": str(meta.get("version", "unknown")),
        "data_version": str(run.get("data_version", "unknown")),
        "git_commit": str(run.get("git_commit", "unknown")),
    }
    metrics = meta.get("metrics") or {}
    for key in ("test/acc_top1", "test/acc_top5", "photos/acc_top1"):
        if isinstance(metrics.get(key), int | float):
            tags[f"train.{key}"] = f"{metrics[key]:.4f}"
    return tags


def set_alias(name: str, alias: str, version: str) -> str | None:
    """Point ``alias`` at ``version`` with no gate (a rollback); return the version it left."""
    client = open_client()
    mv = get_version(client, RegistryRef(name, version=version))
    before = _aliases(client, name).get(alias)
    client.set_registered_model_alias(name, alias, mv.version)
    return None if before is None else str(before)


# --- listing -------------------------------------------------------------------------------


def list_versions(name: str = DEFAULT_NAME) -> list[dict[str, Any]]:
    """One row per version, newest first: aliases, bundle version and the recorded metrics."""
    client = open_client()
    by_version: dict[str, list[str]] = {}
    for alias, version in _aliases(client, name).items():
        by_version.setdefault(str(version), []).append(alias)
    versions = client.search_model_versions(f"name = '{name}'")
    if not versions:
        raise PokedexError(f"no model named {name!r} in {tracking_uri()}", exit_code=2)
    rows = []
    for mv in sorted(versions, key=lambda v: int(v.version), reverse=True):
        tags = mv.tags
        rows.append(
            {
                "version": str(mv.version),
                "aliases": ",".join(sorted(by_version.get(str(mv.version), []))) or "-",
                "bundle": tags.get("bundle_version", "?"),
                "train_top1": tags.get("train.test/acc_top1", "-"),
                "gate_top1": tags.get("gate.acc_top1", "-"),
                "gate_ece": tags.get("gate.ece", "-"),
                "run": mv.run_id or "-",
            }
        )
    return rows


def format_versions(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of :func:`list_versions` rows."""
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)
