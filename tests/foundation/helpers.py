"""Small helpers for the foundation tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from kubeharden.cli import cli

PRIVILEGED_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: priv
  namespace: apps
spec:
  containers:
  - name: app
    image: registry.example/app:1.0
    securityContext:
      privileged: true
"""

CLEAN_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: clean
  namespace: apps
spec:
  containers:
  - name: app
    image: registry.example/app:1.0
"""


def run(*args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def scan_json(*args: str, input: str | bytes | None = None) -> tuple[int, dict[str, Any]]:
    result = run("scan", *args, "-f", "json", "-c", "KH-POD-005", "-c", "KH-POD-006", "-c", "KH-POD-007",
                 input=input)
    return result.exit_code, json.loads(result.stdout)


def write(tmp: Path, name: str, text: str | bytes) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path
