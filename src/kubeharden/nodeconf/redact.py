"""Redaction of node files by meaning: what a bundle keeps of a file is what the checks need,
never a secret.

YAML files are parsed (aliases resolved), redacted as data and written out again, so a value is
redacted wherever the document uses it, an anchor defined outside the field that names it
included; the original text (comments, anchors) is never copied. Unit and environment files,
which are not YAML, are redacted line by line (their line numbers are evidence).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

import yaml

from kubeharden.yamlsafe import Limits, YamlInputError, iter_yaml_documents

REDACTED_CREDENTIAL = "<redacted by kubeharden>"
KEY_LENGTH_MARKER = "kubeharden-redacted-key:decoded-bytes="
WITHHELD_INVALID = "# kubeharden: content withheld (not valid YAML)\n"

# Words that make a flag (its last word) or an environment variable (any word) a credential:
# --token, --bootstrap-token, --certificate-key, --oidc-client-secret, AWS_SECRET_ACCESS_KEY ...
_SECRET_WORDS = frozenset({"token", "password", "passwd", "secret", "credential", "credentials", "key", "apikey"})
# Mapping keys whose value is a credential in the files a bundle keeps (kubeconfig users,
# provider configurations, webhook clients); "secret" of an EncryptionConfiguration is handled apart.
_SECRET_KEYS = frozenset({
    "password", "token", "client-key-data", "client-certificate-data", "token-file", "bearertoken",
    "client-secret", "clientsecret", "secret", "apikey", "api-key", "access-token", "refresh-token", "id-token",
    "privatekey", "private-key",
})
# Keys whose whole value is credentials: a kubeconfig's exec/auth-provider plugin configuration,
# the HTTP headers the kubelet sends to fetch static pods (Authorization ...).
_SECRET_SUBTREE_KEYS = frozenset({"auth-provider", "exec", "staticpodurlheader"})
# A kubeadm bootstrap token ([a-z0-9]{6}.[a-z0-9]{16}) is a credential wherever it appears.
_BOOTSTRAP_TOKEN_RE = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")
_URL_USERINFO_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s\"']+)@")
# --flag=value or --flag value inside a unit or env file line (value up to a space or quote)
_FLAG_IN_TEXT_RE = re.compile(r"(?P<flag>--[A-Za-z0-9][A-Za-z0-9_-]*)(?P<sep>=|\s+)(?P<value>[^\s\"']+)")
_ENV_ASSIGNMENT_RE = re.compile(r"(?P<name>\b[A-Za-z_][A-Za-z0-9_]*)=(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"'<]*)")
# Short strings are too common to be scrubbed everywhere just because a redacted field held one.
_MIN_SCRUBBED_LENGTH = 6


def yaml_documents(text: str) -> list[Any] | None:
    """The documents of a node file, read through the guarded reader (a bundle or node root
    may be hostile); None when the text is not valid YAML."""
    errors: list[YamlInputError] = []
    docs = [doc.data for doc in iter_yaml_documents(text.encode("utf-8", "replace"), Limits(), errors)]
    return None if errors else docs


def describe_key(secret: Any) -> str:
    """The marker that replaces an encryption key: its decoded length (or that it is invalid)."""
    if not isinstance(secret, str):
        return f"{KEY_LENGTH_MARKER}invalid"
    if secret.startswith(KEY_LENGTH_MARKER):
        return secret
    try:
        length = len(base64.b64decode(secret.strip(), validate=True))
    except (binascii.Error, ValueError):
        return f"{KEY_LENGTH_MARKER}invalid"
    return f"{KEY_LENGTH_MARKER}{length}"


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[-_]", name.lower().strip("-")) if w]


def is_secret_flag(name: str) -> bool:
    """--token, --bootstrap-token, --certificate-key ... (not --authentication-token-webhook, whose
    last word is not a credential, nor a --...-file naming one)."""
    words = _words(name)
    return bool(words) and words[-1] in _SECRET_WORDS


def _is_secret_env_name(name: str) -> bool:
    return any(w in _SECRET_WORDS for w in _words(name))


def _keeps(value: str) -> bool:
    """A path is evidence (KH-CP-031 judges the file it names), never the credential itself; so is
    a boolean (--use-service-account-credentials=true)."""
    return (value.startswith("/") or value.startswith(KEY_LENGTH_MARKER) or value == REDACTED_CREDENTIAL
            or value.lower() in ("true", "false"))


def redact_string(text: str) -> str:
    """Credentials inside any string: URL user info (http://user:pass@proxy), bootstrap tokens."""
    text = _URL_USERINFO_RE.sub(lambda m: f"{m.group('scheme')}{REDACTED_CREDENTIAL}@", text)
    return _BOOTSTRAP_TOKEN_RE.sub(REDACTED_CREDENTIAL, text)


def redact_word(word: str) -> str:
    """One command-line word: --secret-flag=VALUE keeps only the flag."""
    if word.startswith("-") and "=" in word:
        name, _, value = word.partition("=")
        if is_secret_flag(name) and not _keeps(value):
            return f"{name}={REDACTED_CREDENTIAL}"
    return redact_string(word)


def redact_argv(words: list[str]) -> list[str]:
    """A command line: secret flags' values (--token=X and --token X), then credentials in any word."""
    out: list[str] = []
    secret_next = False
    for word in words:
        if secret_next and not word.startswith("-") and not _keeps(word):
            out.append(REDACTED_CREDENTIAL)
        else:
            out.append(redact_word(word))
        secret_next = word.startswith("-") and "=" not in word and is_secret_flag(word)
    return out


class _Redactor:
    """Redacts parsed documents in place; remembers every value it removed so that the same value
    elsewhere (an anchor, a copy) is removed too."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.removed: dict[str, str] = {}  # original value -> what replaces it

    def _remove(self, value: Any, replacement: str) -> str:
        if isinstance(value, str):
            if value and not _keeps(value):
                self.removed.setdefault(value, replacement)
            return replacement
        for text in _strings(value):  # a whole subtree: its longer strings are the credentials
            if len(text) >= _MIN_SCRUBBED_LENGTH and not _keeps(text):
                self.removed.setdefault(text, replacement)
        return replacement

    def redact(self, value: Any, key: Any = None) -> Any:
        if isinstance(value, dict):
            for k in list(value):
                value[k] = self._field(k, value[k])
            return value
        if isinstance(value, list):
            self._list(value, key)
            return value
        if isinstance(value, str):
            return redact_string(value)
        return value

    def _field(self, key: Any, value: Any) -> Any:
        name = str(key).lower()
        if self.role == "encryption-config" and name == "secret":
            return self._remove(value, describe_key(value))
        if name in _SECRET_SUBTREE_KEYS:
            return self._remove(value, REDACTED_CREDENTIAL)
        scalar = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        if name in _SECRET_KEYS and scalar and not (isinstance(value, str) and _keeps(value)):
            return self._remove(value, REDACTED_CREDENTIAL)
        return self.redact(value, key)

    def _list(self, items: list[Any], key: Any) -> None:
        if key in ("command", "args"):
            positions = [i for i, item in enumerate(items) if isinstance(item, str)]
            words = [items[i] for i in positions]
            for i, original, new in zip(positions, words, redact_argv(words), strict=True):
                if new == REDACTED_CREDENTIAL:
                    self._remove(original, new)
                items[i] = new
        if key == "env" and self.role == "static-pod":
            # a static pod's environment: no check reads it, and it is where credentials go
            for item in items:
                if isinstance(item, dict) and item.get("value") not in (None, ""):
                    item["value"] = self._remove(item["value"], REDACTED_CREDENTIAL)
        for i, item in enumerate(items):
            if not isinstance(item, str) or key not in ("command", "args"):
                items[i] = self.redact(item)

    def scrub(self, value: Any) -> Any:
        """Replace every remaining copy of a removed value (strings and mapping keys)."""
        if not self.removed:
            return value
        return _map_strings(value, lambda s: self.removed.get(s, s), set())


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _map_strings(value: Any, fn: Callable[[str], str], seen: set[int]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, (dict, list)):
        if id(value) in seen:
            return value
        seen.add(id(value))
    if isinstance(value, dict):
        items = [(_map_strings(k, fn, seen), _map_strings(v, fn, seen)) for k, v in value.items()]
        value.clear()
        value.update(items)
    elif isinstance(value, list):
        value[:] = [_map_strings(v, fn, seen) for v in value]
    return value


class _PlainDumper(yaml.SafeDumper):
    """Writes every use of a value in full: anchors of the original are not reproduced."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def redact_yaml(role: str, text: str) -> str | None:
    """The YAML file redacted and written anew; None when it is not valid YAML."""
    docs = yaml_documents(text)
    if docs is None:
        return None
    redactor = _Redactor(role)
    docs = [redactor.redact(doc) for doc in docs]
    docs = [redactor.scrub(doc) for doc in docs]
    try:
        return yaml.dump_all(docs, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, RecursionError):
        return None


def redact_unit_text(text: str) -> str:
    """A systemd unit or environment file, line by line: values of secret flags and of
    secret-named variables, credentials in URLs, bootstrap tokens."""

    def flag(m: re.Match[str]) -> str:
        if is_secret_flag(m.group("flag")) and not _keeps(m.group("value")):
            return f"{m.group('flag')}{m.group('sep')}{REDACTED_CREDENTIAL}"
        return m.group(0)

    def assignment(m: re.Match[str]) -> str:
        value = m.group("value")
        quote = value[0] if value[:1] in ("'", '"') else ""
        inner = value[1:-1] if quote else value
        if _is_secret_env_name(m.group("name")) and inner and not _keeps(inner):
            inner = REDACTED_CREDENTIAL
        elif quote:  # Environment="NAME=value ..."
            inner = _ENV_ASSIGNMENT_RE.sub(assignment, inner)
        return f"{m.group('name')}={quote}{inner}{quote}"

    lines = []
    for line in text.split("\n"):
        line = _FLAG_IN_TEXT_RE.sub(flag, line)
        line = _ENV_ASSIGNMENT_RE.sub(assignment, line)
        lines.append(redact_string(line))
    return "\n".join(lines)


TEXT_ROLES = frozenset({"kubelet-unit", "kubelet-env"})


def redact_file(role: str, text: str) -> str:
    """What a bundle keeps of a copied file."""
    if role in TEXT_ROLES:
        return redact_unit_text(text)
    redacted = redact_yaml(role, text)
    return WITHHELD_INVALID if redacted is None else redacted
