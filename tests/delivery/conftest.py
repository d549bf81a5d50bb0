"""Delivery files read as data, and the commands of a Dockerfile run as local processes.

No Docker engine runs here, so a Dockerfile's runtime stage is replayed on this machine: its
ENV (with ``/opt/venv`` mapped to this environment), its WORKDIR (a temporary folder laid out
like the image's), its ENTRYPOINT + CMD and its HEALTHCHECK. Only the bind address and the port
change, because a test must listen on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from pokedex.benchmarks.localserver import stop

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = REPO / "dockerfiles"
IMAGES = ("api", "ui", "train", "mlflow")
SERVICES = ("api", "ui", "mlflow")  # long-running: these carry a HEALTHCHECK
IMAGE_VENV = "/opt/venv"
BIN = Path(sys.executable).parent

needs_posix = pytest.mark.skipif(os.name == "nt", reason="the images run POSIX shells")


def tool(name: str) -> str:
    """A command-line tool installed in this environment (hadolint, actionlint, ...)."""
    path = shutil.which(name, path=str(BIN))
    assert path, f"{name} is not installed: run `make setup` (it is in the dev extra)"
    return path


def api_env_names() -> set[str]:
    """Every variable the API process reads: its settings, plus the registry client's."""
    from pokedex.serving.settings import Settings

    return {f"POKEDEX_{name.upper()}" for name in Settings.model_fields} | {
        "POKEDEX_CACHE",  # pokedex.store.registry.cache_root
        "MLFLOW_TRACKING_URI",  # pokedex.store.registry.tracking_uri
    }


def load_yaml(path: Path) -> dict:
    """A YAML file as data."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction of one build stage."""

    stage: str
    name: str
    value: str


@dataclass(frozen=True)
class Dockerfile:
    """A Dockerfile split into stages, with its final stage's runtime contract."""

    path: Path
    instructions: tuple[Instruction, ...]
    env: dict[str, str]

    @classmethod
    def load(cls, image: str) -> Dockerfile:
        """``dockerfiles/<image>.Dockerfile``."""
        path = DOCKERFILES / f"{image}.Dockerfile"
        parser = DockerfileParser(str(path))
        stage, out = "", []
        for item in parser.structure:
            if item["instruction"] == "FROM":
                words = item["value"].split()
                stage = words[-1] if len(words) >= 3 and words[-2].lower() == "as" else ""
            out.append(Instruction(stage, item["instruction"], item["value"]))
        return cls(path, tuple(out), dict(parser.envs))

    @property
    def stages(self) -> list[str]:
        """Stage names in order."""
        return [i.stage for i in self.instructions if i.name == "FROM"]

    def all(self, name: str, stage: str | None = None) -> list[str]:
        """Values of every ``name`` instruction (of one stage, if given)."""
        return [
            i.value
            for i in self.instructions
            if i.name == name and (stage is None or i.stage == stage)
        ]

    def final(self, name: str) -> str | None:
        """The value of the last ``name`` instruction of the final stage."""
        values = self.all(name, self.stages[-1])
        return values[-1] if values else None

    def exec_form(self, name: str) -> list[str]:
        """ENTRYPOINT or CMD of the final stage as an argv list (exec form is required)."""
        value = self.final(name)
        return [] if value is None else json.loads(value)

    def healthcheck(self) -> list[str]:
        """The HEALTHCHECK command as argv (``CMD [...]`` exec form)."""
        value = self.final("HEALTHCHECK") or ""
        _, _, command = value.partition(" CMD ")
        if not command and value.startswith("CMD "):
            command = value[4:]
        return json.loads(command)

    def local_env(self, home: Path, **overrides: str) -> dict[str, str]:
        """The image's ENV on this machine: this venv first on PATH, no developer settings."""
        prefixes = ("POKEDEX_", "MLFLOW_", "STREAMLIT_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        for key, value in self.env.items():
            if key == "PATH":
                assert value.startswith(f"{IMAGE_VENV}/bin:"), value
                value = f"{BIN}{os.pathsep}{os.environ['PATH']}"
            elif key == "HOME":
                value = str(home)
            env[key] = value.replace(IMAGE_VENV, sys.prefix)
        return {**env, **overrides}


def rebind(argv: list[str], port: int) -> list[str]:
    """The same command on 127.0.0.1:``port``: only --host/--port values and URL ports change."""
    out, changed = list(argv), 0
    for i, word in enumerate(argv[:-1]):
        if word == "--host":
            out[i + 1], changed = "127.0.0.1", changed + 1
        elif word == "--port":
            out[i + 1], changed = str(port), changed + 1
    for i, word in enumerate(out):
        for image_port in ("8000", "8501", "5000"):
            if f"127.0.0.1:{image_port}/" in word:
                out[i], changed = word.replace(f":{image_port}/", f":{port}/"), changed + 1
    assert changed, f"nothing to rebind in {argv}"
    return out


def wait_healthy(
    check: list[str], env: dict[str, str], cwd: Path, process: subprocess.Popen, timeout: float
) -> float:
    """Run the HEALTHCHECK command until it exits 0; seconds it took. Fails if the server dies."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{server_log(cwd)}")
        try:
            result = subprocess.run(check, env=env, cwd=cwd, capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:  # a busy machine; the image's own check would retry too
            continue
        if result.returncode == 0:
            return time.monotonic() - start
        time.sleep(0.5)
    pytest.fail(f"HEALTHCHECK {check} still failing after {timeout:.0f} s:\n{server_log(cwd)}")


def server_log(cwd: Path) -> str:
    """The tail of a server's output (see :func:`running`)."""
    path = cwd / "server.log"
    return path.read_text(errors="replace")[-3000:] if path.is_file() else ""


@contextmanager
def running(argv: list[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen]:
    """A server process logging to ``cwd/server.log``, stopped with SIGTERM (then killed)."""
    with (cwd / "server.log").open("w") as log:
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop(process)
