"""EncryptionConfiguration semantics (apiserver.config.k8s.io/v1)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubeharden.inventory import as_dict, as_list
from kubeharden.nodeconf.snapshot import KEY_LENGTH_MARKER

PROVIDERS = ("aesgcm", "aescbc", "secretbox", "identity", "kms")
KEY_PROVIDERS = ("aesgcm", "aescbc", "secretbox")
# Key sizes the API server accepts: AES-GCM 16, 24 or 32 bytes; AES-CBC and secretbox 32.
VALID_KEY_SIZES = {"aesgcm": (16, 24, 32), "aescbc": (32,), "secretbox": (32,)}
RECOMMENDED_KEY_SIZE = 32


@dataclass(frozen=True)
class ProviderView:
    entry_index: int
    provider_index: int
    name: str  # provider type, e.g. "aescbc"
    config: dict[str, Any]

    @property
    def path(self) -> tuple[str | int, ...]:
        return ("resources", self.entry_index, "providers", self.provider_index, self.name)


def provider_type(provider: Any) -> str | None:
    """The single provider key set in a providers[] item (None when none or several)."""
    names = [k for k in as_dict(provider) if k in PROVIDERS]
    return names[0] if len(names) == 1 else None


def entries(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [as_dict(e) for e in as_list(config.get("resources"))]


def covers(resource_names: list[str], resource: str, group: str = "") -> bool:
    """Whether a resources[] entry covers a resource: 'secrets', '*.' (all core), '*.*' (all)."""
    qualified = f"{resource}.{group}" if group else resource
    for name in resource_names:
        if name in ("*.*", qualified) or (not group and name == "*."):
            return True
        if group and name == f"*.{group}":
            return True
    return False


def entry_for(config: dict[str, Any], resource: str, group: str = "") -> tuple[int, dict[str, Any]] | None:
    """The first resources[] entry that covers the resource (the API server uses the first)."""
    for index, entry in enumerate(entries(config)):
        names = [str(x) for x in as_list(entry.get("resources"))]
        if covers(names, resource, group):
            return index, entry
    return None


def providers(config: dict[str, Any], entry_index: int) -> list[ProviderView]:
    entry = entries(config)[entry_index]
    out = []
    for i, provider in enumerate(as_list(entry.get("providers"))):
        name = provider_type(provider)
        if name is not None:
            out.append(ProviderView(entry_index, i, name, as_dict(as_dict(provider).get(name))))
    return out


@dataclass(frozen=True)
class KeyProblem:
    path: tuple[str | int, ...]
    key_name: str
    size: int | None  # decoded bytes; None when not valid base64
    valid: bool  # the API server would accept it


def key_size(secret: Any) -> int | None:
    """Decoded length of a key, also from a bundle's redaction marker; None when invalid."""
    if not isinstance(secret, str):
        return None
    if secret.startswith(KEY_LENGTH_MARKER):
        tail = secret[len(KEY_LENGTH_MARKER):]
        return int(tail) if tail.isdigit() else None
    try:
        return len(base64.b64decode(secret.strip(), validate=True))
    except (binascii.Error, ValueError):
        return None


def key_problems(config: dict[str, Any]) -> Iterator[KeyProblem]:
    for entry_index in range(len(entries(config))):
        for view in providers(config, entry_index):
            if view.name not in KEY_PROVIDERS:
                continue
            for k, key in enumerate(as_list(view.config.get("keys"))):
                key = as_dict(key)
                size = key_size(key.get("secret"))
                path = (*view.path, "keys", k, "secret")
                name = str(key.get("name") or f"keys[{k}]")
                if size is None or size not in VALID_KEY_SIZES[view.name]:
                    yield KeyProblem(path, name, size, False)
                elif size < RECOMMENDED_KEY_SIZE:
                    yield KeyProblem(path, name, size, True)
