"""UI settings from ``POKEDEX_*`` environment variables; the defaults reach a local API."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_URL = "http://127.0.0.1:8000"


class UiSettings(BaseSettings):
    """Where the API is and how long to wait for it (env prefix ``POKEDEX_``)."""

    model_config = SettingsConfigDict(env_prefix="POKEDEX_", extra="ignore")

    api_url: str = DEFAULT_API_URL
    # the API answers 504 after its own 30 s request timeout: wait a little longer than that
    api_timeout_s: float = Field(35.0, gt=0)
    # the API as the user's browser reaches it (for the docs link and the pictures the browser
    # loads itself), when it differs from api_url
    api_public_url: str | None = None

    @property
    def public_url(self) -> str:
        """The API's base URL as the user's browser reaches it."""
        return (self.api_public_url or self.api_url).rstrip("/")

    @property
    def docs_url(self) -> str:
        """The API's OpenAPI page, as a link for the browser."""
        return f"{self.public_url}/docs"
