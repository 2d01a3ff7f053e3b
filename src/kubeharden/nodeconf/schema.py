"""Types of the fields the node checks read, per kind of node file.

The components decode their configuration strictly: a KubeletConfiguration whose readOnlyPort
is a list, or an AdmissionConfiguration whose plugins is a number, stops the component. Such a
value is an input error naming the file and the line (the checks themselves read every field
defensively and never judge a value of the wrong type as if it were right).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubeharden.model import Path

# A spec is a type, a dict of field -> spec (the value is a mapping), or a one-item list [spec]
# (the value is a sequence of such items). Fields not named are not checked.
Spec = Any

_STRINGS = [str]
_KEYS = {"keys": [{"name": str, "secret": str}]}
_SCHEMAS: dict[str, Spec] = {
    "KubeletConfiguration": {
        "authentication": {"anonymous": {"enabled": bool}, "webhook": {"enabled": bool},
                           "x509": {"clientCAFile": str}},
        "authorization": {"mode": str},
        "readOnlyPort": int, "protectKernelDefaults": bool, "makeIPTablesUtilChains": bool,
        "rotateCertificates": bool, "serverTLSBootstrap": bool, "tlsMinVersion": str, "tlsCipherSuites": _STRINGS,
        "tlsCertFile": str, "tlsPrivateKeyFile": str, "seccompDefault": bool, "podPidsLimit": int,
        "systemReserved": dict, "kubeReserved": dict, "streamingConnectionIdleTimeout": str,
        "eventRecordQPS": int, "featureGates": dict, "staticPodPath": str,
    },
    "EncryptionConfiguration": {
        "resources": [{"resources": _STRINGS, "providers": [{
            "aescbc": _KEYS, "aesgcm": _KEYS, "secretbox": _KEYS, "identity": dict,
            "kms": {"name": str, "endpoint": str, "apiVersion": str},
        }]}],
    },
    "Policy": {
        "omitStages": _STRINGS, "omitManagedFields": bool,
        "rules": [{"level": str, "users": _STRINGS, "userGroups": _STRINGS, "verbs": _STRINGS,
                   "namespaces": _STRINGS, "nonResourceURLs": _STRINGS, "omitStages": _STRINGS,
                   "resources": [{"group": str, "resources": _STRINGS, "resourceNames": _STRINGS}]}],
    },
    "AdmissionConfiguration": {"plugins": [{"name": str, "path": str, "configuration": dict}]},
    "PodSecurityConfiguration": {
        "defaults": {"enforce": str, "enforce-version": str, "audit": str, "audit-version": str, "warn": str,
                     "warn-version": str},
        "exemptions": {"usernames": _STRINGS, "runtimeClasses": _STRINGS, "namespaces": _STRINGS},
    },
    "AuthenticationConfiguration": {"anonymous": {"enabled": bool, "conditions": [{"path": str}]}, "jwt": [dict]},
    "AuthorizationConfiguration": {"authorizers": [{"type": str, "name": str}]},
    "Config": {
        "clusters": [{"name": str, "cluster": {"server": str, "insecure-skip-tls-verify": bool}}],
        "users": [{"name": str, "user": dict}],
        "contexts": [{"name": str, "context": dict}],
    },
    "Pod": {
        "metadata": {"name": str, "labels": dict},
        "spec": {
            "containers": [{"image": str, "command": _STRINGS, "args": _STRINGS,
                            "volumeMounts": [{"name": str, "mountPath": str, "subPath": str, "readOnly": bool}]}],
            "volumes": [{"name": str, "hostPath": {"path": str}}],
        },
    },
}

_TYPE_NAMES = {bool: "a boolean", int: "an integer", str: "a string", float: "a number", dict: "a mapping",
               list: "a list"}


def _type_name(value: Any) -> str:
    for kind in (bool, int, float, str, dict, list):
        if isinstance(value, kind):
            return _TYPE_NAMES[kind]
    return type(value).__name__


def _fits(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check(value: Any, spec: Spec, path: Path) -> Iterator[tuple[Path, str]]:
    if value is None:  # null decodes to the zero value
        return
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            yield path, f"expected a mapping, found {_type_name(value)}"
            return
        for key, sub in spec.items():
            if key in value:
                yield from _check(value[key], sub, (*path, key))
    elif isinstance(spec, list):
        if not isinstance(value, list):
            yield path, f"expected a list, found {_type_name(value)}"
            return
        for index, item in enumerate(value):
            yield from _check(item, spec[0], (*path, index))
    elif not _fits(value, spec):
        yield path, f"expected {_TYPE_NAMES[spec]}, found {_type_name(value)}"


def type_problems(kind: str, obj: dict[str, Any]) -> list[tuple[Path, str]]:
    """(path, problem) for each field of a node file whose value has a type the component refuses."""
    spec = _SCHEMAS.get(kind)
    return list(_check(obj, spec, ())) if spec is not None else []
