"""The running services: `pokedex serve` (the HTTP API) and `pokedex ui` (the web UI)."""

from __future__ import annotations

from typing import Annotated

import typer

from pokedex.cli.groups import app, clean_errors
from pokedex.cli.options import HostOption, ModelOrEnvOption, PortOption
from pokedex.errors import PokedexError


@app.command("serve")
@clean_errors
def serve_cmd(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    model: ModelOrEnvOption = None,
    variant: Annotated[str | None, typer.Option(help="fp32 or int8 ONNX variant.")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning...")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Server processes. Default: $POKEDEX_WORKERS, else 1."),
    ] = None,
) -> None:
    """The HTTP API (FastAPI + ONNX Runtime with dynamic batching) under uvicorn."""
    from pokedex.serving.server import serve

    extra = {} if workers is None else {"workers": workers}
    serve(host, port, model, variant=variant, log_level=log_level, **extra)


@app.command("ui")
@clean_errors
def ui_cmd(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8501,
    api_url: Annotated[
        str | None,
        typer.Option(help="The Pokédex API. Default: $POKEDEX_API_URL, else the local API."),
    ] = None,
) -> None:
    """The web UI (Streamlit); it talks to the API over HTTP."""
    from pokedex.ui.launch import run_ui

    if api_url is not None and not api_url.startswith(("http://", "https://")):
        raise PokedexError(f"--api-url must be an http(s):// URL, got {api_url!r}", exit_code=2)
    run_ui(host, port, api_url)
