"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KUBEHARDEN_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (reference fixtures, corpus, schemas): present in CI, absent in a user's clone."""
    if not SHARED.is_dir():
        pytest.skip(f"shared reference data not found at {SHARED} (set KUBEHARDEN_SHARED)")
    return SHARED
