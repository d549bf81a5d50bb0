"""MkDocs hook: sections generated from the code at build time, so they cannot drift from it.

A page asks for one with a marker line, replaced when the site is built:

    <!-- generated: cli -->             the Typer app's commands (typer's own docs generator)
    <!-- generated: http-api -->        the FastAPI app's OpenAPI schema (essentials-openapi)
    <!-- generated: ui-screenshots -->  every docs/img/ui-*.png, as the UI's e2e test saves them
    <!-- generated: release-model -->   the committed release bundle's recorded metrics
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.pages import Page

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
ADMIN_TOKEN_PLACEHOLDER = "docs"  # any value: with a token set the app mounts its admin route
RELEASE_BUNDLE = "models/release/bundle.json"
# metric key in bundle.json, what it measures, the product's target (blank: none)
RELEASE_ROWS = (
    ("test/acc_top1", "top-1 on the held-out test sprites", "≥ 97 %"),
    ("test/acc_top5", "top-5 on the held-out test sprites", ""),
    ("photos/acc_top1", "top-1 on real photos (`real-photos-val.zip`, validation only)", "≥ 55 %"),
    ("photos/acc_top5", "top-5 on real photos", ""),
)


def cli_markdown(page: Page, config: MkDocsConfig) -> str:
    """Every `pokedex` command with its usage, arguments and options, as `--help` shows them."""
    import typer
    from typer.cli import get_docs_for_click

    from pokedex.cli import app

    command = typer.main.get_command(app)
    ctx = typer.Context(command, info_name="pokedex")
    # indent=1: the page's own title is the only level-1 heading
    return get_docs_for_click(obj=command, ctx=ctx, indent=1, name="pokedex", title="`pokedex`")


def openapi_schema() -> dict:
    """The API's OpenAPI schema; building the app loads no model (that happens at start-up)."""
    from pokedex.serving.app import create_app
    from pokedex.serving.settings import Settings

    settings = Settings(admin_token=ADMIN_TOKEN_PLACEHOLDER, prediction_log_url="")
    return create_app(settings).openapi()


def http_api_markdown(page: Page, config: MkDocsConfig) -> str:
    """Every route of the schema: parameters, request body, responses and their schemas."""
    from openapidocs.mk.v3 import OpenAPIV3DocumentationHandler

    rendered = OpenAPIV3DocumentationHandler(openapi_schema(), style="MKDOCS").write()
    # drop the generator's banner comment and its level-1 title: the page has its own
    body = rendered.split("\n# ", 1)[1].split("\n", 1)[1]
    return body.strip() + "\n"


def ui_screenshots_markdown(page: Page, config: MkDocsConfig) -> str:
    """The UI screenshots present in docs/img, one captioned figure each."""
    shots = sorted((Path(config.docs_dir) / "img").glob("ui-*.png"))
    if not shots:
        return "*No screenshots yet: `make screenshots` (the UI's end-to-end test) writes them.*\n"
    here = posixpath.dirname(page.file.src_uri) or "."
    figures = []
    for shot in shots:
        caption = shot.stem.removeprefix("ui-").replace("-", " ")
        src = posixpath.relpath(f"img/{shot.name}", here)
        figures.append(f"![The UI: {caption}]({src})\n*{caption}*\n")
    return "\n".join(figures)


def release_model_markdown(page: Page, config: MkDocsConfig) -> str:
    """What the committed release bundle recorded: its recipe, provenance and test metrics."""
    path = Path(config.config_file_path).parent / RELEASE_BUNDLE
    meta = json.loads(path.read_text(encoding="utf-8"))
    metrics, run = meta.get("metrics", {}), meta.get("run", {})
    lines = [
        f"The release bundle `{meta['version']}` ({meta['net']['arch']} at "
        f"{meta['preprocess']['size']} px), trained by "
        f"`pokedex train experiment={run.get('experiment', '?')}` on data version "
        f"`{run.get('data_version', '?')}` at commit `{str(run.get('git_commit', '?'))[:7]}`. "
        f"Read from `{RELEASE_BUNDLE}` when this site was built.",
        "",
        "| figure | value | target |",
        "|---|---:|---:|",
    ]
    for key, label, target in RELEASE_ROWS:
        value = metrics.get(key)
        shown = "not measured" if value is None else f"{100 * value:.1f} %"
        lines.append(f"| {label} | {shown} | {target} |")
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[Page, MkDocsConfig], str]] = {
    "cli": cli_markdown,
    "http-api": http_api_markdown,
    "ui-screenshots": ui_screenshots_markdown,
    "release-model": release_model_markdown,
}


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, **kwargs: object) -> str:
    """Replace each marker line with its generated markdown; an unknown marker fails the build."""

    def render(match: re.Match[str]) -> str:
        name = match[1]
        if name not in RENDERERS:
            raise ValueError(f"{page.file.src_uri}: unknown generated section {name!r}")
        return RENDERERS[name](page, config)

    return MARKER.sub(render, markdown)
