"""Supply chain and secrets (issue #10; RELIABILITY.md T8, T25).

- no secret in the tracked files beyond the audited `.secrets.baseline` (detect-secrets);
- no code path in src/ that unpickles: torch.load only with weights_only=True, no pickle-family
  module at all, no pickled numpy arrays, ONNX never following external data;
- model files are safetensors / ONNX / JSON only;
- the dependency floors above the CVE fixes listed in RELIABILITY.md section 2.
The runtime checks are elsewhere: the pickled-checkpoint canary in tests/jobs/test_train.py,
ONNX external data in tests/jobs/test_export.py, archive extraction in tests/data/test_archive.py.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.figures import Figure

ROOT = Path(__file__).parents[2]
HOOK = str(Path(sys.executable).with_name("detect-secrets-hook"))
SCANNED_OUT = (":!:data/", ":!:runs/", ":!:models/", ":!:.secrets.baseline")

# modules whose loaders run code from the file they read
PICKLE_FAMILY = {
    "pickle",
    "cPickle",
    "_pickle",
    "dill",
    "cloudpickle",
    "joblib",
    "shelve",
    "marshal",
}
UNSAFE_CALLS = {"yaml.load", "yaml.unsafe_load", "yaml.full_load", "pd.read_pickle"}
UNSAFE_CALLS |= {f"mlflow.{flavour}.load_model" for flavour in ("pyfunc", "pytorch", "sklearn")}
# (file, call): why it is safe
ALLOWED = {
    ("src/pokedex/jobs/export.py", "onnx.load"): (
        "reads the intermediate file export itself just wrote"
    ),
}
# .npy: plain numeric arrays only (checked below), read with allow_pickle=False
MODEL_SUFFIXES = {".json", ".safetensors", ".onnx", ".yaml", ".md", ".png", ".npy", ".csv"}
# package: the first version with the fixes RELIABILITY.md section 2 relies on
FLOORS = {
    "pillow": "12.3",  # FITS gzip bomb (12.2), PDF bomb, EPS loop, McIdas read (12.3)
    "python-multipart": "0.0.18",  # Content-Type ReDoS (0.0.7), boundary DoS (0.0.18)
    "starlette": "0.40",  # unbounded non-file form parts (CVE-2024-47874)
    "fastapi": "0.109.1",
    "onnx": "1.21",  # external-data path traversal via links
    "torch": "2.10",  # weights_only RCE (2.6), weights-only unpickler memory bug (2.10)
    "mlflow": "3.5",  # --allowed-hosts, CORS and X-Frame-Options on the server
    "streamlit": "1.11.1",  # custom-component path traversal
}


def _tracked(*pathspec: str) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--", *pathspec], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [name for name in out.decode().split("\0") if name]


def _detect(files: list[str], baseline: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOOK, "--baseline", str(baseline), *files], cwd=cwd, capture_output=True, text=True
    )


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    """A copy of the baseline: the hook rewrites its baseline when line numbers move."""
    return Path(shutil.copy(ROOT / ".secrets.baseline", tmp_path / "baseline.json"))


def test_the_secret_scanner_catches_a_planted_key(baseline: Path, tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # the hook wants a repo
    planted = tmp_path / "settings.py"
    key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ9ZqTdE3x"  # pragma: allowlist secret
    planted.write_text(f'aws_secret_access_key = "{key}"\n')
    result = _detect([planted.name], baseline, tmp_path)
    assert result.returncode != 0
    assert "Secret Key" in result.stdout + result.stderr


@pytest.mark.slow
def test_no_new_secrets_in_the_tracked_files(baseline: Path, figure: Figure) -> None:
    files = _tracked(".", *SCANNED_OUT)
    result = _detect(files, baseline, ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    audited = sum(len(v) for v in json.loads(baseline.read_text())["results"].values())
    figure("secrets", f"{len(files)} tracked files scanned: 0 new secrets ({audited} audited)")


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else "?"


def _is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def unsafe_loads(source: str) -> list[tuple[int, str]]:
    """(line, call) of every deserialisation in ``source`` that could run code."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            found += [(node.lineno, f"import {n}") for n in names if n in PICKLE_FAMILY]
        if not isinstance(node, ast.Call):
            continue
        name, kw = _dotted(node.func), {k.arg: k.value for k in node.keywords}
        unsafe = (
            name in UNSAFE_CALLS
            or (name.endswith("torch.load") and not _is_const(kw.get("weights_only"), True))
            or ("allow_pickle" in kw and not _is_const(kw["allow_pickle"], False))
            or (name == "onnx.load" and not _is_const(kw.get("load_external_data"), False))
        )
        if unsafe:
            found.append((node.lineno, name))
    return found


@pytest.mark.parametrize(
    ("code", "flagged"),
    [
        ("import pickle", True),
        ("from joblib import load", True),
        ("torch.load(p)", True),
        ("torch.load(p, weights_only=False)", True),
        ("torch.load(p, weights_only=True)", False),
        ("np.load(p, allow_pickle=True)", True),
        ("np.load(p, mmap_mode='r')", False),
        ("onnx.load(p)", True),
        ("onnx.load(p, load_external_data=False)", False),
        ("yaml.load(s)", True),
        ("yaml.safe_load(s)", False),
        ("mlflow.pytorch.load_model(uri)", True),
    ],
)
def test_the_scan_tells_safe_from_unsafe_loads(code: str, flagged: bool) -> None:
    assert bool(unsafe_loads(code)) is flagged


def test_no_code_path_unpickles(figure: Figure) -> None:
    files = sorted((ROOT / "src").rglob("*.py"))
    found = [
        (str(path.relative_to(ROOT)), line, call)
        for path in files
        for line, call in unsafe_loads(path.read_text(encoding="utf-8"))
    ]
    unsafe = [f for f in found if (f[0], f[2]) not in ALLOWED]
    assert not unsafe
    torch_loads = sum(source.count("torch.load(") for source in (p.read_text() for p in files))
    figure(
        "T8",
        f"{len(files)} modules scanned: 0 unsafe load call sites ({torch_loads} torch.load, all "
        f"weights_only=True; {len(found)} allowlisted with a reason)",
    )


def test_model_files_hold_no_pickle() -> None:
    tracked = _tracked("models")
    assert tracked
    assert {Path(name).suffix for name in tracked} <= MODEL_SUFFIXES, tracked
    pickled = [n for n in _tracked(".") if Path(n).suffix in {".pt", ".pth", ".ckpt", ".pkl"}]
    assert not pickled
    for name in (n for n in tracked if n.endswith(".npy")):
        # numpy refuses to unpickle an object array when allow_pickle is off
        assert not np.load(ROOT / name, allow_pickle=False).dtype.hasobject, name


def _below(floor: str) -> Version:
    """The highest version just under ``floor`` that a loose specifier might still allow."""
    release = Version(floor).release
    return Version(".".join(map(str, (*release[:-1], release[-1] - 1, 999))))


def test_dependency_floors_are_above_the_known_fixes(figure: Figure) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in pyproject["dependencies"]]
    for extra in pyproject["optional-dependencies"].values():
        declared += [Requirement(r) for r in extra if not r.startswith("pokedex")]
    checked = []
    for req in declared:
        floor = FLOORS.get(req.name.lower())
        if floor is not None:
            assert not req.specifier.contains(_below(floor)), f"{req} allows < {floor}"
            checked.append(req.name)
    installed = {}
    for name, floor in FLOORS.items():
        try:
            installed[name] = version(name)
        except PackageNotFoundError:
            continue  # e.g. torch is not in the API's install
        assert Version(installed[name]) >= Version(floor), (name, installed[name], floor)
    figure(
        "T25",
        f"declared floors checked for {sorted(set(checked))}; installed "
        + ", ".join(f"{k} {v}" for k, v in sorted(installed.items()))
        + ": all at or above the fixes",
    )
