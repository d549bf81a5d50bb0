"""One line that names the machine a benchmark ran on: its tables are only comparable within it."""

from __future__ import annotations

import os
import platform
from pathlib import Path

_FEATURES = ("avx512_bf16", "avx512f", "amx_tile", "avx2")


def describe() -> str:
    """e.g. ``AMD EPYC, 2 cores, avx2`` (the widest vector and matrix features the CPU has)."""
    name, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    features = [f for f in _FEATURES if f in flags]
    if "avx512_bf16" in features:
        features.remove("avx512f")
    return f"{name}, {os.cpu_count()} cores, {' '.join(features) or 'no AVX2'}"
