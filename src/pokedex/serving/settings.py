"""Serving settings: every knob of the API, read from ``POKEDEX_*`` environment variables.

A mistyped keyword fails at start-up (``extra="forbid"``); defaults work with nothing set.
Limits follow RELIABILITY.md section 5.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pokedex.errors import PokedexError
from pokedex.monitoring.window import parse_window

MB = 1024 * 1024


class Settings(BaseSettings):
    """Configuration of one API process (env prefix ``POKEDEX_``)."""

    model_config = SettingsConfigDict(env_prefix="POKEDEX_", extra="forbid")

    # the model: a bundle folder or a registry URI such as models:/pokedex@production
    model: str = "models/release"
    variant: Literal["auto", "fp32", "int8"] = "auto"  # auto: the bundle's benchmarked choice
    # auto: OpenVINO when the benchmark chose it and it is installed, else ONNX Runtime
    runtime: Literal["auto", "onnxruntime", "openvino"] = "auto"
    threads: int = Field(
        0, ge=0, description="model runtime threads per worker (0: the cores shared by workers)"
    )
    # server processes, each with its own event loop, batcher and copy of the model (one Python
    # interpreter saturates its GIL before two cores; docs/serving.md measures it)
    workers: int = Field(1, ge=1, le=64)

    # dynamic micro-batching
    max_batch_size: int = Field(32, ge=1, le=512)
    max_wait_ms: float = Field(5.0, ge=0, le=1000)
    max_queue: int = Field(256, ge=1)
    preprocess_threads: int = Field(
        2, ge=0, le=64, description="image decoding threads per worker (0: on the event loop)"
    )
    # glibc's malloc: a flat memory curve under a long load, for less headroom near saturation
    # (docs/reliability.md, "Memory under a long load")
    malloc_arenas: int = Field(
        2,
        ge=0,
        le=64,
        description="most heaps glibc's malloc keeps per worker (fewer: less fragmentation as "
        "threads come and go); 0: glibc's default, eight per core",
    )
    malloc_mmap_threshold_kb: int = Field(
        256,
        ge=0,
        le=32 * 1024,
        description="blocks from this size up are mapped and unmapped, never carved from the "
        "heap (uploads, decoded photos); 0: glibc's default, which rises after each large free",
    )
    malloc_trim_s: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="every this many seconds, each worker hands the free pages inside its heaps "
        "back to the system, so memory a burst took does not stay resident; 0: never",
    )
    inline_decode_bytes: int = Field(
        128 * 1024,
        ge=0,
        description="uploads up to this size are decoded on the event loop (under ~2 ms: a "
        "thread hop costs more), larger ones in the decoding threads; 0: always the threads",
    )
    request_timeout_s: float = Field(30.0, gt=0)

    # input limits
    max_upload_bytes: int = Field(10 * MB, ge=1)
    max_batch_upload_bytes: int = Field(50 * MB, ge=1)
    max_batch_files: int = Field(64, ge=1, le=1000)
    max_pixels: int = Field(25_000_000, ge=1)

    # prediction log; an empty URL turns it off
    prediction_log_url: str = "sqlite:///predictions.db"
    prediction_log_queue: int = Field(10_000, ge=1)
    prediction_log_wait_ms: float = Field(
        500.0, ge=0, description="answer once the log row is committed, waiting at most this"
    )
    log_images: bool = False
    # rows are safe once appended to this folder's journal, so answers need not wait for the
    # commit; auto: beside a SQLite database file; "" turns it off (answers wait for commits)
    prediction_journal: str = "auto"

    # the feedback loop (docs/feedback.md): verdicts per client and minute, with a burst
    feedback_per_minute: float = Field(
        30.0, gt=0, description="verdicts a client may send a minute"
    )
    feedback_burst: int = Field(10, ge=1, description="verdicts a client may send at once")
    feedback_clients: int = Field(10_000, ge=1, description="clients whose rate is remembered")
    feedback_window: str = Field("500", description="accuracy-by-feedback: last N verdicts or 7d")
    feedback_pending_s: float = Field(
        30.0, ge=0, description="an unknown id this young may still be on its way to the log"
    )
    # images kept with keep_image=true: cleaned, at most this many pixels a side and bytes
    keep_image_max_side: int = Field(512, ge=32, le=4096)
    keep_image_max_bytes: int = Field(1 * MB, ge=1024)

    # drift monitoring over the prediction log (see docs/monitoring.md)
    drift_window: str = Field("500", description="last N predictions, or a duration: 30m, 6h")
    drift_interval_s: float = Field(60.0, ge=0, description="gauge refresh period; 0: off")
    drift_cache_s: float = Field(10.0, ge=0, description="reuse a check this recent")

    # admin reload: the route exists only when a token is set
    admin_token: SecretStr | None = None
    model_roots: list[str] = Field(default_factory=lambda: ["models"])

    # one picture per species from the user's own data (`pokedex data gallery`); "" turns it off
    gallery: str = "data/processed/gallery"

    cors_origins: list[str] = Field(default_factory=list)
    log_level: str = "info"

    @field_validator("drift_window", "feedback_window")
    @classmethod
    def _check_window(cls, value: str) -> str:
        return parse_window(value).text  # ValueError names the accepted forms


def settings_from_env() -> Settings:
    """The settings of the environment; a bad ``POKEDEX_*`` value is a usage error (exit code 2)
    that names the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = f"POKEDEX_{str(first['loc'][0]).upper()}"
        raise PokedexError(f"{name}: {first['msg']}", exit_code=2) from exc
