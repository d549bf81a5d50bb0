"""Prediction ids: UUIDv7, whose first 48 bits are the Unix time in milliseconds.

The time in the id lets any worker tell "not written yet" from "never issued" without shared
state: a verdict on an id minted seconds ago whose row is not in the log yet is asked to retry,
an older one is unknown (RFC 9562, section 5.7).
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime


def new_prediction_id(now_ms: int | None = None) -> uuid.UUID:
    """A fresh UUIDv7: 48 bits of milliseconds, version 7, 74 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms & (2**48 - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


def issued_at(prediction_id: uuid.UUID) -> datetime | None:
    """When a UUIDv7 was minted; None for any other kind of UUID."""
    if prediction_id.version != 7:
        return None
    return datetime.fromtimestamp((prediction_id.int >> 80) / 1000, UTC)
