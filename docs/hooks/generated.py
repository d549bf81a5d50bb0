"""MkDocs hook: sections generated from the code at build time, so they cannot drift from it.

A page asks for one with a marker line, replaced when the site is built:

    <!-- generated: cli -->             the Typer app's commands (typer's own docs generator)
    <!-- generated: http-api -->        the FastAPI app's OpenAPI schema (essentials-openapi)
    <!-- generated: ui-screenshots -->  every docs/img/ui-*.png, as the UI's e2e test saves them
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.pages import Page

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
ADMIN_TOKEN_PLACEHOLDER = "docs"  # any value: with a token set the app mounts its admin route


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


RENDERERS: dict[str, Callable[[Page, MkDocsConfig], str]] = {
    "cli": cli_markdown,
    "http-api": http_api_markdown,
    "ui-screenshots": ui_screenshots_markdown,
}


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, **kwargs: object) -> str:
    """Replace each marker line with its generated markdown; an unknown marker fails the build."""

    def render(match: re.Match[str]) -> str:
        name = match[1]
        if name not in RENDERERS:
            raise ValueError(f"{page.file.src_uri}: unknown generated section {name!r}")
        return RENDERERS[name](page, config)

    return MARKER.sub(render, markdown)
