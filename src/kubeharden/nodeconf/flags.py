"""Command-line flags of Kubernetes components (pflag / Go flag syntax), with their origin."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kubeharden.model import Path, Resource, Source

# Boolean flags never take the next argument as their value (pflag needs --flag=false).
BOOLEAN_FLAGS = frozenset({
    "anonymous-auth", "profiling", "client-cert-auth", "peer-client-cert-auth", "auto-tls",
    "peer-auto-tls", "use-service-account-credentials", "protect-kernel-defaults",
    "make-iptables-util-chains", "rotate-certificates", "rotate-server-certificates",
    "seccomp-default", "authentication-token-webhook", "service-account-lookup", "enable-v2",
    "allow-privileged", "enable-bootstrap-token-auth", "enable-pprof", "debug", "fail-swap-on",
    "enable-debugging-handlers", "enable-aggregator-routing", "leader-elect", "strict-reconfig-check",
    "enable-v2v3", "logtostderr", "enable-grpc-gateway", "experimental-initial-corrupt-check",
})


@dataclass(frozen=True, slots=True)
class Token:
    """One argv word and where it was written."""

    text: str
    resource: Resource | None = None  # static pod: the Pod
    path: Path = ()  # static pod: ("spec", "containers", i, "command"|"args", j)
    source: Source | None = None  # other origins (systemd unit line, /proc/PID/cmdline)


@dataclass(frozen=True, slots=True)
class Flag:
    name: str
    value: str | None  # None: a bare boolean flag (means true)
    token: Token

    @property
    def text(self) -> str:
        return self.value if self.value is not None else "true"

    def as_bool(self) -> bool | None:
        value = self.text.strip().lower()
        if value in ("true", "1", "t", "yes"):
            return True
        if value in ("false", "0", "f", "no"):
            return False
        return None

    def as_list(self) -> list[str]:
        return [part.strip() for part in self.text.split(",") if part.strip()]


@dataclass
class FlagSet:
    """Parsed flags; the last occurrence of a flag wins (as pflag does for scalar flags)."""

    flags: dict[str, Flag] = field(default_factory=dict)
    positional: list[Token] = field(default_factory=list)

    @classmethod
    def parse(cls, tokens: Iterable[Token]) -> FlagSet:
        out = cls()
        pending: str | None = None
        pending_token: Token | None = None
        for token in tokens:
            word = token.text
            if pending is not None and pending_token is not None:
                if not word.startswith("-") or _looks_negative_number(word):
                    out.flags[pending] = Flag(pending, word, pending_token)
                    pending = pending_token = None
                    continue
                out.flags[pending] = Flag(pending, None, pending_token)
                pending = pending_token = None
            if word.startswith("-") and len(word) > 1 and word != "--":
                body = word.lstrip("-")
                if "=" in body:
                    name, _, value = body.partition("=")
                    out.flags[name] = Flag(name, value, token)
                elif body in BOOLEAN_FLAGS:
                    out.flags[body] = Flag(body, None, token)
                else:
                    pending, pending_token = body, token
            else:
                out.positional.append(token)
        if pending is not None and pending_token is not None:
            out.flags[pending] = Flag(pending, None, pending_token)
        return out

    def get(self, name: str) -> Flag | None:
        return self.flags.get(name)

    def value(self, name: str) -> str | None:
        flag = self.flags.get(name)
        return flag.text if flag is not None else None

    def __contains__(self, name: str) -> bool:
        return name in self.flags


def _looks_negative_number(word: str) -> bool:
    return word[1:].replace(".", "", 1).isdigit()


def parse_feature_gates(text: str | None) -> dict[str, bool]:
    """'A=true,B=false' -> {'A': True, 'B': False} (unparseable entries are skipped)."""
    gates: dict[str, bool] = {}
    for part in (text or "").split(","):
        name, sep, value = part.partition("=")
        if sep and value.strip().lower() in ("true", "false"):
            gates[name.strip()] = value.strip().lower() == "true"
    return gates
