"""The Dockerfiles: hadolint-clean, multi-stage, pinned, non-root, and nothing they run untested."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.delivery.conftest import (
    DOCKERFILES,
    IMAGES,
    REPO,
    SERVICES,
    Dockerfile,
    needs_posix,
    tool,
)

PIP = [sys.executable, "-m", "pip"]
# Every command a RUN line runs, and where the suite runs the same command outside Docker.
# OS set-up (users, folders, the venv) has no project logic and is listed as such.
RUN_COMMANDS = {
    r"python -m venv /opt/venv": "OS set-up",
    r"groupadd --system --gid 10001 \w+": "OS set-up",
    r"useradd --system --uid 10001 .*": "OS set-up",
    r"mkdir (var|mlartifacts)": "OS set-up",
    r"chown (-R )?10001:10001 \S+": "OS set-up",
    r"pip install --no-cache-dir -r /tmp/requirements.txt": "test_locks_install_here",
    r"pip install --no-cache-dir --no-deps \.": "test_wheel_ships_every_package_file",
    r'pip install --no-cache-dir --index-url "\$\{TORCH_INDEX_URL\}" torch==\S+ torchvision==\S+': (
        "test_torch_pins_match_pyproject"
    ),
    r"pip install --no-cache-dir safetensors==\S+": "test_torch_pins_match_pyproject",
    r"test -f models/release/model.onnx \|\| pokedex export .*": "test_api_image_*",
}


def _run_commands(dockerfile: Dockerfile) -> list[str]:
    return [" ".join(part.split()) for value in dockerfile.all("RUN") for part in value.split("&&")]


@pytest.fixture(scope="module", params=IMAGES)
def dockerfile(request: pytest.FixtureRequest) -> Dockerfile:
    return Dockerfile.load(request.param)


def test_hadolint_passes_on_every_dockerfile() -> None:
    files = sorted(DOCKERFILES.glob("*.Dockerfile"))
    assert [f.name.split(".")[0] for f in files] == sorted(IMAGES)
    result = subprocess.run(
        [tool("hadolint"), "--no-color", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_multi_stage_slim_pinned_base(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2, "build and runtime stages"
    assert dockerfile.stages[-1] == "runtime"
    base = next(a for a in dockerfile.all("ARG") if a.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+", base), base
    # the runtime stage starts from the bare base, so no build tool or cache leaks into it
    assert dockerfile.all("FROM", "runtime") == ["${PYTHON_IMAGE} AS runtime"]


def test_runs_as_a_numeric_non_root_user(dockerfile: Dockerfile) -> None:
    user = dockerfile.final("USER")
    assert user is not None
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), user
    assert gid.isdigit(), user
    assert int(uid) > 0, user
    assert int(gid) > 0, user


def test_header_states_the_size_target(dockerfile: Dockerfile) -> None:
    header = dockerfile.path.read_text(encoding="utf-8").split("\nARG", 1)[0]
    assert re.search(r"Image size target: < \d+(\.\d+)? [MG]B", header), header


def test_services_have_a_healthcheck_and_exec_form_commands(dockerfile: Dockerfile) -> None:
    command = dockerfile.exec_form("ENTRYPOINT") + dockerfile.exec_form("CMD")
    assert command, "ENTRYPOINT/CMD in exec form"
    if dockerfile.path.name.split(".")[0] in SERVICES:
        check = dockerfile.healthcheck()
        assert check[:2] == ["python", "-c"], check  # no curl in a slim image
        assert dockerfile.all("EXPOSE", "runtime")


def test_every_run_command_is_exercised_outside_docker(dockerfile: Dockerfile) -> None:
    for command in _run_commands(dockerfile):
        covered = [p for p in RUN_COMMANDS if re.fullmatch(p, command)]
        assert covered, f"{dockerfile.path.name}: `{command}` is run by no test (RUN_COMMANDS)"


def test_api_runtime_stage_has_no_torch() -> None:
    api = Dockerfile.load("api")
    lock = (DOCKERFILES / "requirements" / "api.txt").read_text()
    for heavy in ("torch", "torchvision", "lightning", "hydra-core", "mlflow"):
        assert not re.search(rf"^{heavy}==", lock, re.M), heavy
    # the runtime stage takes the venv of the build stage and only the model from the export stage
    copies = [c for c in api.all("COPY", "runtime") if c.startswith("--from=")]
    assert copies == [
        "--from=build /opt/venv /opt/venv",
        "--from=export /app/models/release ./models/release",
    ]


def test_torch_pins_match_pyproject() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    wanted = {Requirement(r).name: Requirement(r) for r in extras["export"]}
    pins: dict[str, str] = {}
    for image in ("api", "train"):
        for command in _run_commands(Dockerfile.load(image)):
            pins.update(re.findall(r"\b(torch|torchvision|safetensors)==(\S+)", command))
    assert set(pins) == set(wanted)
    for name, version in pins.items():
        assert wanted[name].specifier.contains(version), (name, version, wanted[name])


@needs_posix
def test_locks_are_the_closure_of_pyproject() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/lock_images.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@needs_posix
@pytest.mark.parametrize("image", IMAGES)
def test_locks_install_here(image: str) -> None:
    """`pip install -r lock` as the image runs it, resolved offline against this environment."""
    lock = DOCKERFILES / "requirements" / f"{image}.txt"
    pins = [line.split("==") for line in lock.read_text().splitlines() if "==" in line]
    differ = [name for name, version in pins if _installed(name) not in (version, None)]
    if differ:  # e.g. a CI runner that resolved newer versions than `make locks` saw
        pytest.skip(f"this environment is not the one the locks were made from: {differ[:5]}")
    result = subprocess.run(
        [*PIP, "install", "--dry-run", "--no-index", "-q", "-r", str(lock)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _regex(pattern: str) -> str:
    """A .dockerignore pattern as a regex: ``**`` spans folders, ``*`` and ``?`` do not."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: a pattern matches a path or a folder above it; the last match wins."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        negate = raw.startswith("!")
        regex = _regex(raw.lstrip("!").rstrip("/"))
        if any(re.fullmatch(regex, p) for p in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_data_and_runs_out() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for path in (
        "data/raw/abra/abra_1.webp",
        "data/processed/train_images.npy",
        "runs/20260101/checkpoints/last.ckpt",
        "mlruns/0/meta.yaml",
        "mlflow.db",
        "optuna.db",
        "reports/data/report.md",
        "models/candidate/weights.safetensors",
        ".venv/bin/python",
        ".git/HEAD",
        "src/pokedex/__pycache__/cli.cpython-311.pyc",
    ):
        assert _ignored(path, patterns), f"{path} would be sent to the build"
    for image in IMAGES:
        for copy in Dockerfile.load(image).all("COPY"):
            if copy.startswith("--from="):
                continue
            for source in copy.split()[:-1]:
                found = [REPO / source] if (REPO / source).is_file() else []
                found += [p for p in sorted((REPO / source).rglob("*.json")) if p.is_file()][:3]
                found += [p for p in sorted((REPO / source).rglob("*.py")) if p.is_file()][:3]
                files = [str(p.relative_to(REPO)) for p in found]
                assert files, f"{image}: COPY source {source} does not exist"
                for path in files:
                    assert not _ignored(path, patterns), f"{image} needs {path}"


def test_wheel_ships_every_package_file(tmp_path: Path) -> None:
    """`pip install --no-deps .` (the images) gets the Hydra configs, not only the code."""
    source = tmp_path / "src-tree"  # a copy: building in the checkout would leave build/ behind
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        source.mkdir(exist_ok=True)
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    result = subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("pokedex-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(
        ["git", "ls-files", "src/pokedex"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    data = [f for f in tracked if not f.endswith(".py")]
    assert any(f.endswith(".yaml") for f in data)
    for path in data:
        rel = str(Path(path).relative_to("src"))
        assert rel in names, f"{rel} is missing from the wheel"
