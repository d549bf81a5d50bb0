"""The layer contracts of pyproject.toml's [tool.importlinter], run by import-linter.

Each contract is one test, so a broken layer names itself; the failure message is
import-linter's report with the chains of imports that break it.
"""

from __future__ import annotations

import subprocess
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
CONTRACTS = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]


def lint_imports(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` of this environment on the contracts in ``config``."""
    command = Path(sysconfig.get_path("scripts")) / "lint-imports"
    return subprocess.run(
        [str(command), "--no-cache", "--no-logo", *args, str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("contract", [c["id"] for c in CONTRACTS])
def test_contract_is_kept(contract: str) -> None:
    result = lint_imports(PYPROJECT, "--contract", contract)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_contract_is_reported_with_its_chain(tmp_path: Path) -> None:
    # the check can fail: a contract the code breaks (`pokedex serve` imports serving) is reported
    config = tmp_path / "pyproject.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "pokedex"\n\n'
        '[[tool.importlinter.contracts]]\nname = "cli never imports serving"\n'
        'type = "forbidden"\nsource_modules = ["pokedex.cli"]\n'
        'forbidden_modules = ["pokedex.serving"]\n'
    )
    result = lint_imports(config)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "pokedex.cli.serve -> pokedex.serving.server" in result.stdout
