"""The code base stays ruff-clean and mypy-clean (the tools come with the test extras)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_ruff_clean() -> None:
    pytest.importorskip("ruff", reason="ruff not installed (pip install -e '.[test]')")
    # as a module of this interpreter: the venv's bin/ need not be on PATH
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks"], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_clean() -> None:
    pytest.importorskip("mypy", reason="mypy not installed (pip install -e '.[test]')")
    out = subprocess.run([sys.executable, "-m", "mypy", "src/kubeharden"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
