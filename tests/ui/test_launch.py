"""`pokedex ui` starts Streamlit headless on the given address with safe settings."""

from __future__ import annotations

from typer.testing import CliRunner

from pokedex.cli import app
from pokedex.ui.launch import APP, streamlit_command


def _options(command: list[str]) -> dict[str, str]:
    flags = command[command.index(str(APP)) + 1 :]
    return dict(zip(flags[::2], flags[1::2], strict=True))


def test_command_runs_the_app_headless_on_the_address() -> None:
    command = streamlit_command("0.0.0.0", 9999)
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert APP.is_file()
    options = _options(command)
    assert options["--server.address"] == "0.0.0.0"
    assert options["--server.port"] == "9999"
    assert options["--server.headless"] == "true"
    assert options["--server.maxUploadSize"] == "10"  # MB, the API's own limit
    assert options["--server.enableXsrfProtection"] == "true"
    assert options["--client.showErrorDetails"] == "none"
    assert options["--browser.gatherUsageStats"] == "false"
    assert options["--theme.primaryColor"] == "#DC0A2D"  # a Pokédex look, not Streamlit's default


def test_cli_refuses_an_api_url_that_is_not_http() -> None:
    result = CliRunner().invoke(app, ["ui", "--api-url", "file:///etc/passwd"])
    assert result.exit_code == 2
    assert "--api-url must be an http(s):// URL" in result.output
    assert "Traceback" not in result.output
