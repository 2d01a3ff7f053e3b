"""Kubernetes versions known to kubeharden."""

from __future__ import annotations

import re

NEWEST_SUPPORTED: tuple[int, int] = (1, 37)

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$")


def parse_minor(text: str) -> tuple[int, int]:
    """'1.30', 'v1.30.2' or 'v1.30.2-gke.1' -> (1, 30)."""
    match = _VERSION_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a Kubernetes version: {text!r} (expected e.g. 1.30 or v1.30.2)")
    return int(match.group(1)), int(match.group(2))
