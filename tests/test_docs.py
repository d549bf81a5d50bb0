"""The documentation site: a strict MkDocs build, a nav that lists every page, generated
references that cover every command and route, and a command beside every figure."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("mkdocs", reason="the docs extra is not installed")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HOOKS = DOCS / "hooks" / "generated.py"
IMAGE = re.compile(r"!\[[^\]]*\]\([^)]+\)|<!-- generated: ui-screenshots -->")
COMMAND = re.compile(r"`(?:\.venv/bin/)?(?:pokedex|make|dvc|pytest|locust|scripts/)[^`]*`")


def load_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", HOOKS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nav_pages(nav: list[Any]) -> list[str]:
    """Every page path of an MkDocs nav, in order (a list of str or {title: str | list})."""
    pages: list[str] = []
    for entry in nav:
        for item in entry.values() if isinstance(entry, dict) else [entry]:
            pages += nav_pages(item) if isinstance(item, list) else [item]
    return pages


def sections(text: str) -> list[list[str]]:
    """A page's lines grouped by heading; a `#` line inside a fenced code block is not one."""
    groups: list[list[str]] = [[]]
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if not fenced and re.match(r"#{1,6} ", line):
            groups.append([])
        groups[-1].append(line)
    return groups


def markdown_pages() -> set[str]:
    return {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "hooks" not in p.parts}


def test_nav_lists_every_page_once() -> None:
    from mkdocs.config import load_config

    pages = nav_pages(load_config(str(ROOT / "mkdocs.yml"))["nav"])
    duplicates = sorted({p for p in pages if pages.count(p) > 1})
    assert not duplicates, f"listed twice in the nav of mkdocs.yml: {duplicates}"
    missing = sorted(markdown_pages() - set(pages))
    assert not missing, f"add these pages to the nav of mkdocs.yml: {missing}"
    dangling = sorted(set(pages) - markdown_pages())
    assert not dangling, f"the nav of mkdocs.yml names pages that do not exist: {dangling}"


@pytest.mark.parametrize("page", sorted(markdown_pages()))
def test_every_figure_names_its_command(page: str) -> None:
    for lines in sections((DOCS / page).read_text(encoding="utf-8")):
        section = "\n".join(lines)
        if IMAGE.search(section):
            assert COMMAND.search(section), (
                f"{page}: section {lines[0]!r} shows a figure but names no command that makes it"
            )


def test_screenshot_gallery_links_from_nested_pages(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    for name in ("ui-model.png", "ui-recognize.png", "other.png"):
        (tmp_path / "img" / name).write_bytes(b"png")
    page = SimpleNamespace(file=SimpleNamespace(src_uri="guide/ui.md"))
    config = SimpleNamespace(docs_dir=str(tmp_path))

    gallery = load_hooks().on_page_markdown(
        "intro\n<!-- generated: ui-screenshots -->\n", page=page, config=config
    )

    assert re.findall(r"\]\(([^)]+)\)", gallery) == [
        "../img/ui-model.png",
        "../img/ui-recognize.png",
    ]
    assert "*recognize*" in gallery
    assert "other.png" not in gallery


def test_unknown_generated_section_fails_the_build() -> None:
    page = SimpleNamespace(file=SimpleNamespace(src_uri="x.md"))
    with pytest.raises(ValueError, match="unknown generated section 'nope'"):
        load_hooks().on_page_markdown("<!-- generated: nope -->\n", page=page, config=None)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built exactly as `make docs` builds it, into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    warnings = [line for line in done.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert not warnings, "\n".join(warnings)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_cli_reference_covers_every_command(site: Path) -> None:
    import click
    import typer

    from pokedex.cli import app

    def paths(command: click.Command, prefix: str) -> list[str]:
        sub = getattr(command, "commands", {})
        return [prefix] + [p for name, c in sub.items() for p in paths(c, f"{prefix} {name}")]

    html = (site / "cli.html").read_text(encoding="utf-8")
    commands = paths(typer.main.get_command(app), "pokedex")
    assert len(commands) > 10
    missing = [c for c in commands if f"<code>{c}</code>" not in html]
    assert not missing, f"commands without a section in the CLI reference: {missing}"


def test_http_reference_covers_every_operation(site: Path) -> None:
    schema = load_hooks().openapi_schema()
    html = (site / "http-api.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", html)  # headings wrap methods and path parameters in spans
    operations = [f"{m.upper()} {path}" for path, ops in schema["paths"].items() for m in ops]
    assert "POST /v1/predict" in operations
    missing = [op for op in operations if op not in text]
    assert not missing, f"operations without a section in the HTTP API reference: {missing}"


def test_home_page_shows_the_release_bundles_metrics(site: Path) -> None:
    meta = json.loads((ROOT / "models" / "release" / "bundle.json").read_text(encoding="utf-8"))
    html = (site / "index.html").read_text(encoding="utf-8")
    assert meta["version"] in html
    for key in ("test/acc_top1", "photos/acc_top1"):
        assert f"{100 * meta['metrics'][key]:.1f} %" in html, key


def test_python_reference_renders_each_module(site: Path) -> None:
    for page in sorted((DOCS / "reference").glob("*.md")):
        module = re.search(r"^::: (\S+)$", page.read_text(encoding="utf-8"), re.MULTILINE)
        if module is None:
            continue
        html = (site / "reference" / f"{page.stem}.html").read_text(encoding="utf-8")
        assert 'class="doc doc-object doc-function"' in html or "doc-class" in html, (
            f"{page.name}: mkdocstrings rendered no function or class of {module[1]}"
        )
