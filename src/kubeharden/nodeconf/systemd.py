"""The kubelet's command line: from the running process, else as systemd would build it from
kubelet.service, its drop-ins and the environment files they name."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from kubeharden.model import Source
from kubeharden.nodeconf.flags import Token
from kubeharden.nodeconf.snapshot import KUBELET_UNIT_DIRS, NodeSnapshot


@dataclass
class KubeletCommand:
    tokens: list[Token]  # argv[1:], each with where it was written
    origin: str  # "process" or "systemd"
    describe: str  # e.g. "/proc/812/cmdline" or "kubelet.service + 10-kubeadm.conf"
    units: list[str] = field(default_factory=list)  # node paths read


_VAR_RE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def kubelet_command(snapshot: NodeSnapshot) -> KubeletCommand | None:
    procs = snapshot.processes.get("kubelet") or []
    if procs:
        proc = procs[0]
        where = f"/proc/{proc.pid}/cmdline"
        source = Source(f"{snapshot.location}:{where}" if snapshot.origin == "bundle" else where)
        return KubeletCommand([Token(a, source=source) for a in proc.argv[1:]], "process", where)
    return _from_units(snapshot)


def _unit_files(snapshot: NodeSnapshot) -> list[str]:
    """kubelet.service (the first directory in systemd's search order wins) then drop-ins in
    lexical order of file name; a drop-in in /etc hides one of the same name in /usr/lib."""
    main = None
    for unit_dir in KUBELET_UNIT_DIRS:
        record = snapshot.file(f"{unit_dir}/kubelet.service")
        if record is not None and record.exists and record.text is not None:
            main = record.path
            break
    dropins: dict[str, str] = {}
    for unit_dir in reversed(KUBELET_UNIT_DIRS):  # later assignments (higher priority) win
        prefix = f"{unit_dir}/kubelet.service.d/"
        for path, record in snapshot.files.items():
            if path.startswith(prefix) and record.exists and record.text is not None:
                dropins[PurePosixPath(path).name] = path
    return ([main] if main else []) + [dropins[name] for name in sorted(dropins)]


def _from_units(snapshot: NodeSnapshot) -> KubeletCommand | None:
    files = _unit_files(snapshot)
    if not files:
        return None
    env: dict[str, tuple[str, Source]] = {}
    exec_start: tuple[str, Source] | None = None
    env_files: list[tuple[str, bool]] = []
    for path in files:
        record = snapshot.file(path)
        assert record is not None and record.text is not None
        section = ""
        for number, raw_line in enumerate(_join_continuations(record.text), start=1):
            line = raw_line[1].strip()
            lineno = raw_line[0]
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
                continue
            if section != "[Service]" or "=" not in line:
                continue
            key, _, value = line.partition("=")
            key = key.strip()
            value = value.strip()
            source = snapshot.source(path, lineno)
            if key == "Environment":
                for assignment in _split_words(value):
                    name, sep, val = assignment.partition("=")
                    if sep:
                        env[name] = (val, source)
            elif key == "EnvironmentFile":
                optional = value.startswith("-")
                env_files.append((value.lstrip("-"), optional))
            elif key == "ExecStart":
                exec_start = (value, source) if value else None
            del number
    # EnvironmentFile= values override Environment= ones (systemd reads them later).
    for env_path, _optional in env_files:
        record = snapshot.file(env_path)
        if record is None or not record.exists or record.text is None:
            continue
        for lineno, raw in _join_continuations(record.text):
            line = raw.strip()
            if not line or line.startswith(("#", ";")) or "=" not in line:
                continue
            name, _, val = line.partition("=")
            words = _split_words(val.strip())
            env[name.strip()] = (" ".join(words) if len(words) != 1 else words[0], snapshot.source(env_path, lineno))
    if exec_start is None:
        return None
    command, exec_source = exec_start
    command = command.lstrip("@-:+!")
    tokens: list[Token] = []
    for word in _split_words(command):
        whole = re.fullmatch(r"\$(\w+)", word)
        if whole:  # $VAR unquoted: split into words
            value, source = env.get(whole.group(1), ("", exec_source))
            tokens.extend(Token(w, source=source) for w in value.split())
            continue
        braced = re.fullmatch(r"\$\{(\w+)\}", word)
        if braced:  # ${VAR}: one word
            value, source = env.get(braced.group(1), ("", exec_source))
            if value:
                tokens.append(Token(value, source=source))
            continue
        expanded = _VAR_RE.sub(lambda m: env.get(m.group(1) or m.group(2), ("", exec_source))[0], word)
        tokens.append(Token(expanded, source=exec_source))
    if tokens:
        tokens = tokens[1:]  # the binary
    names = " + ".join(PurePosixPath(f).name for f in files)
    return KubeletCommand(tokens, "systemd", names, files)


def _join_continuations(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buffer = ""
    start = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = lineno
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        out.append((start, buffer + line))
        buffer = ""
    if buffer:
        out.append((start, buffer))
    return out


def _split_words(value: str) -> list[str]:
    try:
        return shlex.split(value, posix=True)
    except ValueError:
        return value.split()

