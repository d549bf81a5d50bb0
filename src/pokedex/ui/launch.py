"""`pokedex ui`: start the Streamlit server the way a user would, with safe settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")
MAX_UPLOAD_MB = 10  # the API's own single-upload limit (RELIABILITY.md section 5)
POKEDEX_RED = "#DC0A2D"


def streamlit_command(host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line for the UI on ``host:port``."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.maxUploadSize", str(MAX_UPLOAD_MB),
        "--server.enableXsrfProtection", "true",
        "--browser.gatherUsageStats", "false",
        "--client.showErrorDetails", "none",  # a bug shows a message, never a traceback
        "--client.toolbarMode", "minimal",
        "--theme.base", "light",
        # a Pokédex look: the device's red for buttons, links, focus and the progress bars
        "--theme.primaryColor", POKEDEX_RED,
        "--theme.linkColor", POKEDEX_RED,
        "--theme.secondaryBackgroundColor", "#F3F4F6",
        "--theme.baseRadius", "0.75rem",
    ]  # fmt: skip


def run_ui(host: str, port: int, api_url: str | None) -> None:
    """Replace this process with the Streamlit server (signals reach it directly)."""
    env = dict(os.environ, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    if api_url:
        env["POKEDEX_API_URL"] = api_url
    command = streamlit_command(host, port)
    os.execve(command[0], command, env)
