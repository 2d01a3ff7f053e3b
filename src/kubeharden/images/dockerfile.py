"""Dockerfiles and Containerfiles as inputs: what the final stage's default user is, and where it is set.

Reads the BuildKit Dockerfile syntax: parser directives (``# escape=``, ``# syntax=``), line
continuations (with comment and empty lines inside them), heredocs (``RUN <<EOF`` ... ``EOF``, skipped
as bodies), ``FROM [--platform=..] image [AS name]`` stages, ``ARG`` (global before the first FROM and
per stage) and ``ENV`` substitution (``$x``, ``${x}``, ``${x:-word}``, ``${x:+word}``), ``USER`` and
``EXPOSE``. A stage built ``FROM`` an earlier stage inherits its user and environment.

Each file becomes one ``images.kubeharden.io/v1alpha1 Dockerfile`` resource (see
kubeharden.images); controls judge it. The reader never judges: it records what the user of the
final stage is (``root``, ``nonroot``, ``named``, ``unset`` or ``dynamic``) and the lines that say so.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from kubeharden import safeio
from kubeharden.images import API_VERSION, DOCKERFILE_KIND
from kubeharden.loader import InputProblem, LoadContext, LoadResult, display_path, explode, register_path_hook
from kubeharden.model import InputError, Source

_DIRECTIVE_RE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_HEREDOC_RE = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
_VAR_RE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-+])(?P<word>[^}]*))?\}"
                     r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
# Windows images: ContainerAdministrator is the administrator account.
ROOT_USERS = frozenset({"root", "0", "containeradministrator"})

# What the default user of an image built from the file is.
USER_ROOT = "root"  # root, 0, 0:0, ContainerAdministrator
USER_NONROOT = "nonroot"  # a non-zero numeric UID
USER_NAMED = "named"  # a user name other than root: the kubelet cannot verify runAsNonRoot for it
USER_UNSET = "unset"  # no USER: the base image's user (root for scratch and most base images)
USER_DYNAMIC = "dynamic"  # set from a build argument with no default: decided at build time


def is_dockerfile_name(name: str) -> bool:
    """Dockerfile, Containerfile, Dockerfile.prod, app.Dockerfile (any case of the suffix)."""
    lowered = name.lower()
    if lowered.endswith((".dockerignore", ".containerignore")):
        return False
    return (lowered in ("dockerfile", "containerfile") or lowered.startswith(("dockerfile.", "containerfile."))
            or lowered.endswith((".dockerfile", ".containerfile")))


@dataclass
class Stage:
    index: int
    base: str  # as written after substitution
    line: int
    name: str | None = None
    platform: str | None = None
    parent: int | None = None  # index of the earlier stage it is built FROM, if any
    user: str | None = None  # raw USER value after substitution; None when no USER in this stage
    user_line: int | None = None
    user_dynamic: bool = False
    user_from_arg: str | None = None  # the build argument whose default gave the user
    env: dict[str, str | None] = field(default_factory=dict)
    args: dict[str, str | None] = field(default_factory=dict)
    exposed: list[str] = field(default_factory=list)


@dataclass
class ParsedDockerfile:
    stages: list[Stage]
    escape: str = "\\"
    warnings: list[tuple[int, str]] = field(default_factory=list)


def classify_user(value: str | None, dynamic: bool = False) -> str:
    if dynamic:
        return USER_DYNAMIC
    if value is None or not value.strip():
        return USER_UNSET
    user = value.strip().split(":", 1)[0].strip()
    if user.lower() in ROOT_USERS or (user.isdigit() and int(user) == 0):
        return USER_ROOT
    if user.isdigit():
        return USER_NONROOT
    return USER_NAMED if user else USER_UNSET


class _Vars:
    """Substitution with what is statically known; an unknown variable makes the result dynamic."""

    def __init__(self, known: dict[str, str | None], env: dict[str, str | None] | None = None) -> None:
        self.known = known
        self.env = env or {}
        self.dynamic = False
        self.from_arg: str | None = None

    def expand(self, text: str, escape: str, args: dict[str, str | None]) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == escape and i + 1 < len(text) and text[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if ch == "$":
                match = _VAR_RE.match(text, i)
                if match:
                    out.append(self._value(match, escape, args))
                    i = match.end()
                    continue
            out.append(ch)
            i += 1
        return "".join(out)

    def _value(self, match: re.Match[str], escape: str, args: dict[str, str | None]) -> str:
        name = match.group("braced") or match.group("plain")
        declared = name in self.known
        value = self.known.get(name)
        if declared and value is None:
            unknown = True  # ARG without a default: given with --build-arg or empty
        else:
            unknown = False
            if name in args and name not in self.env and args[name] is not None:
                self.from_arg = name
        op, word = match.group("op"), match.group("word") or ""
        if op in (":-", "-"):
            if unknown:
                self.dynamic = True
                return ""
            use_word = value is None or (op == ":-" and value == "")
            return self.expand(word, escape, args) if use_word else str(value)
        if op in (":+", "+"):
            if unknown:
                self.dynamic = True
                return ""
            set_ = value is not None and (op == "+" or value != "")
            return self.expand(word, escape, args) if set_ else ""
        if unknown:
            self.dynamic = True
            return ""
        return value or ""  # an undeclared variable is empty, as in docker build


def _logical_lines(text: str) -> tuple[list[tuple[int, str]], str, list[tuple[int, str]]]:
    """(first line number, instruction text) pairs, the escape character and warnings."""
    lines = text.splitlines()
    escape = "\\"
    warnings: list[tuple[int, str]] = []
    start = 0
    seen: set[str] = set()
    for start, raw in enumerate(lines):  # start is used after the loop
        match = _DIRECTIVE_RE.match(raw.strip())
        if not match or match.group(1).lower() in seen:
            break
        key = match.group(1).lower()
        seen.add(key)
        if key == "escape":
            if match.group(2) not in ("\\", "`"):
                warnings.append((start + 1, f"escape directive {match.group(2)!r} is not \\ or `; ignored"))
            else:
                escape = match.group(2)
        elif key not in ("syntax", "check"):
            break  # an unknown directive is a comment, and ends the directives
    else:
        start = len(lines)
    out: list[tuple[int, str]] = []
    i = start
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        first = i
        parts: list[str] = []
        while True:
            current = lines[i].rstrip()
            if current.endswith(escape):
                parts.append(current[:-1])
                i += 1
                # comment and empty lines inside a continuation are dropped
                while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                    i += 1
                if i >= len(lines):
                    break
                continue
            parts.append(current)
            i += 1
            break
        instruction = " ".join(p.strip() for p in parts).strip()
        keyword = instruction.split(None, 1)[0].upper() if instruction else ""
        if keyword in _HEREDOC_INSTRUCTIONS:
            for match in _HEREDOC_RE.finditer(instruction):
                strip_tabs, terminator = match.group(1) == "-", match.group(3)
                while i < len(lines):
                    body = lines[i].lstrip("\t") if strip_tabs else lines[i]
                    i += 1
                    if body.rstrip("\r") == terminator:
                        break
                else:
                    warnings.append((first + 1, f"heredoc <<{terminator} is not terminated"))
        out.append((first + 1, instruction))
    return out, escape, warnings


def _env_pairs(args: str) -> list[tuple[str, str]]:
    """ENV a=1 b="two words" or the legacy ENV key value."""
    try:
        words = shlex.split(args, posix=True)
    except ValueError:
        words = args.split()
    if words and "=" in words[0]:
        return [(k, v) for k, _, v in (w.partition("=") for w in words) if k]
    if words:
        name, _, value = args.strip().partition(" ")
        return [(name, value.strip().strip("\"'"))]
    return []


def parse_dockerfile(text: str) -> ParsedDockerfile:
    instructions, escape, warnings = _logical_lines(text)
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    by_name: dict[str, int] = {}
    for line, instruction in instructions:
        keyword, _, rest = instruction.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        stage = stages[-1] if stages else None
        if keyword == "ARG":
            for word in rest.split():
                if word.startswith("--"):
                    continue
                name, eq, default = word.partition("=")
                default_value = default.strip("\"'") if eq else None
                if stage is None:
                    global_args[name] = default_value
                else:
                    # an ARG redeclared in a stage without a default takes the global default
                    if not eq and name in global_args:
                        default_value = global_args[name]
                    stage.args[name] = default_value
            continue
        if keyword == "FROM":
            words = rest.split()
            platform = None
            while words and words[0].startswith("--"):
                flag = words.pop(0)
                if flag.startswith("--platform="):
                    platform = flag.split("=", 1)[1]
            if not words:
                warnings.append((line, "FROM without an image"))
                continue
            subst = _Vars(dict(global_args))
            base = subst.expand(words[0], escape, global_args)
            stage_name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            new = Stage(len(stages), base, line, stage_name, platform)
            parent = by_name.get(base.lower())
            if parent is not None:
                new.parent = parent
                new.env = dict(stages[parent].env)
                new.exposed = list(stages[parent].exposed)
                new.user, new.user_line = stages[parent].user, stages[parent].user_line
                new.user_dynamic, new.user_from_arg = stages[parent].user_dynamic, stages[parent].user_from_arg
            stages.append(new)
            if stage_name:
                by_name[stage_name.lower()] = new.index
            continue
        if stage is None:
            if keyword:
                warnings.append((line, f"{keyword} before the first FROM"))
            continue
        known: dict[str, str | None] = {**stage.args, **stage.env}
        if keyword == "ENV":
            for key, value in _env_pairs(rest):
                subst = _Vars(known, stage.env)
                expanded = subst.expand(value, escape, stage.args)
                stage.env[key] = None if subst.dynamic else expanded
        elif keyword == "USER":
            subst = _Vars(known, stage.env)
            stage.user = subst.expand(rest, escape, stage.args).strip()
            stage.user_line = line
            stage.user_dynamic = subst.dynamic
            stage.user_from_arg = subst.from_arg
        elif keyword == "EXPOSE":
            stage.exposed.extend(_Vars(known).expand(rest, escape, stage.args).split())
    return ParsedDockerfile(stages, escape, warnings)


def external_base(parsed: ParsedDockerfile, stage: Stage) -> Stage:
    """The stage of the chain that starts from an image outside the file."""
    while stage.parent is not None:
        stage = parsed.stages[stage.parent]
    return stage


def dockerfile_object(parsed: ParsedDockerfile, name: str) -> dict[str, Any]:
    """The Dockerfile resource: stages and the final stage's user."""
    stages = [{"index": s.index, "name": s.name, "base": s.base, "line": s.line, "platform": s.platform,
               "user": s.user, "userLine": s.user_line} for s in parsed.stages]
    spec: dict[str, Any] = {"stages": stages}
    if parsed.stages:
        final = parsed.stages[-1]
        root_stage = external_base(parsed, final)
        spec["final"] = {
            "stage": final.name or str(final.index),
            "line": final.line,
            "user": final.user,
            "userLine": final.user_line,
            "userStatus": classify_user(final.user, final.user_dynamic),
            "userFromArg": final.user_from_arg,
            "baseImage": None if root_stage.base.lower() == "scratch" else root_stage.base,
            "baseLine": root_stage.line,
            "exposedPorts": final.exposed,
        }
    return {"apiVersion": API_VERSION, "kind": DOCKERFILE_KIND, "metadata": {"name": name}, "spec": spec}


def read_dockerfile(path: FsPath, ctx: LoadContext) -> tuple[dict[str, Any], list[tuple[int, str]]]:
    try:
        data = safeio.read_regular(path, ctx.limits.max_file_bytes)
    except OSError as exc:
        raise InputProblem(f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if b"\x00" in data[:8192]:
        raise InputProblem("binary file (contains NUL bytes), not a Dockerfile")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputProblem(f"not valid UTF-8 text: {exc.reason}", data.count(b"\n", 0, exc.start) + 1) from None
    parsed = parse_dockerfile(text)
    if not parsed.stages:
        raise InputProblem("no FROM instruction: not a Dockerfile")
    return dockerfile_object(parsed, display_path(path)), parsed.warnings


def dockerfile_hook(path: FsPath, ctx: LoadContext) -> LoadResult | None:
    if not is_dockerfile_name(path.name) or not path.is_file():
        return None
    obj, warnings = read_dockerfile(path, ctx)
    name = display_path(path)
    result = LoadResult()
    result.stats.files = 1
    explode(obj, Source(name, 1), result)
    result.warnings.extend(InputError(name, message, line) for line, message in warnings)
    return result


register_path_hook(dockerfile_hook, is_dockerfile_name)
