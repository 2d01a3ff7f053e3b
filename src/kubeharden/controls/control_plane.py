"""Control plane and etcd (guidance §1.6-1.7, §2.3, NSA-CP-*, NSA-AUTH-1..3, NSA-RBAC-1,
NSA-NODE-7, NSA-ENC-1..2), judged from static pod manifests, process command lines and node
files (kubeharden.nodeconf)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import PurePosixPath
from typing import Any

from kubeharden.catalog import Context, Example, control
from kubeharden.inventory import as_dict, as_list
from kubeharden.model import NotAssessed, Resource, Section, Severity, Violation
from kubeharden.nodeconf.checks import (
    GO_SERVER_TLS12_DEFAULT_FROM,
    file_mode_violations,
    flag_bool,
    invalid_urls,
    is_loopback,
    is_wildcard,
    split_urls,
    tls_version_problem,
    weak_cipher,
)
from kubeharden.nodeconf.evidence import (
    NEEDS,
    ComponentInstance,
    NodeEvidence,
    component_version,
    evidence_of,
    missing_file_violation,
)
from kubeharden.nodeconf.flags import parse_feature_gates
from kubeharden.nodeconf.manifests import ADMISSION_VOLUMES, example
from kubeharden.nodeconf.snapshot import FileRecord

API = "kube-apiserver"
ETCD = "etcd"
KCM = "kube-controller-manager"
SCHED = "kube-scheduler"


def _api(ctx: Context) -> list[ComponentInstance]:
    return evidence_of(ctx).require(API)


def _present(ctx: Context, *components: str) -> list[ComponentInstance]:
    """Instances of any of the components; not assessed when none is in the input."""
    ev = evidence_of(ctx)
    found = [i for c in components for i in ev.components.get(c, [])]
    if not found:
        raise NotAssessed(ev.missing_reason(*components))
    return found


def _authn_example(anonymous: str) -> str:
    return example(API, False, "v1.32.0", "apiVersion: apiserver.config.k8s.io/v1beta1\n"
                   f"kind: AuthenticationConfiguration\n{anonymous}\n",
                   authentication_config="/etc/kubernetes/authn/authentication-config.yaml")


def _authz_example(*types: str) -> str:
    authorizers = "".join(f"- type: {t}\n  name: {t.lower()}\n" for t in types)
    return example(API, False, "v1.32.0", "apiVersion: apiserver.config.k8s.io/v1\n"
                   f"kind: AuthorizationConfiguration\nauthorizers:\n{authorizers}",
                   authorization_mode=None, authorization_config="/etc/kubernetes/authz/authorization-config.yaml")


@control(
    id="KH-CP-001",
    title="API server allows anonymous requests",
    section=Section.AUTH,
    guidance=("NSA-AUTH-3",),
    severity=Severity.HIGH,
    needs=NEEDS[API],
    what="kube-apiserver runs without --anonymous-auth=false (anonymous requests are on by default).",
    why="Anonymous requests reach every endpoint RBAC grants to system:anonymous or "
    "system:unauthenticated; one mistaken binding then exposes the API to anyone on the network.",
    fix="Set --anonymous-auth=false on kube-apiserver (or, from 1.32, an AuthenticationConfiguration "
    "whose anonymous.conditions allow only /livez, /readyz and /healthz).",
    examples=(Example(True, example(API)), Example(False, example(API, anonymous_auth="false")),
              Example(True, _authn_example("anonymous: {enabled: true}")),
              Example(False, _authn_example("anonymous:\n  enabled: true\n  conditions: [{path: /livez}, "
                                            "{path: /readyz}, {path: /healthz}]"),
                      "anonymous requests only for health checks")),
)
def apiserver_anonymous_auth(ctx: Context) -> Iterator[Violation]:
    ev = evidence_of(ctx)
    for api in _api(ctx):
        if api.flag("anonymous-auth") is None and api.value("authentication-config"):
            ref = ev.referenced_config(api, "authentication-config", "AuthenticationConfiguration")
            decided = False
            for res in ref.resources:
                anonymous = as_dict(res.obj.get("anonymous"))
                if "enabled" not in anonymous:
                    continue
                decided = True
                conditions = [str(as_dict(c).get("path")) for c in as_list(anonymous.get("conditions"))]
                health_only = bool(conditions) and all(p in ("/livez", "/readyz", "/healthz") for p in conditions)
                if anonymous.get("enabled") is True and not health_only:
                    yield Violation(res, ("anonymous", "enabled"), "AuthenticationConfiguration enables "
                                    "anonymous requests beyond the health endpoints", True, has_value=True)
            if decided:
                continue
        enabled, was_set = flag_bool(api, "anonymous-auth", True)
        if enabled is not False:
            detail = "--anonymous-auth=true" if was_set else "--anonymous-auth is unset (default true)"
            yield api.flag_violation("anonymous-auth", f"API server accepts anonymous requests: {detail}",
                                     api.value("anonymous-auth"), effective=True)


@control(
    id="KH-CP-002",
    title="API server authorization without RBAC, or AlwaysAllow",
    section=Section.AUTH,
    guidance=("NSA-RBAC-1",),
    severity=Severity.CRITICAL,
    needs=NEEDS[API],
    what="kube-apiserver --authorization-mode lacks RBAC or Node, or contains AlwaysAllow (the default "
    "when the flag is unset).",
    why="AlwaysAllow lets every authenticated request do anything; without RBAC no least-privilege "
    "role applies; without Node kubelets can read every Secret.",
    fix="Set --authorization-mode=Node,RBAC on kube-apiserver.",
    examples=(Example(True, example(API, authorization_mode="AlwaysAllow")),
              Example(True, example(API, authorization_mode=None)),
              Example(False, example(API)),
              Example(True, _authz_example("Node", "AlwaysAllow"), "structured authorization config"),
              Example(False, _authz_example("Node", "RBAC"))),
)
def apiserver_authorization_mode(ctx: Context) -> Iterator[Violation]:
    ev = evidence_of(ctx)
    for api in _api(ctx):
        if api.value("authorization-config") and api.flag("authorization-mode") is None:
            ref = ev.referenced_config(api, "authorization-config", "AuthorizationConfiguration")
            if not ref.resources:
                raise NotAssessed(f"--authorization-config is set but its file is unavailable: {ref.problem}")
            for res in ref.resources:
                modes = [str(as_dict(a).get("type")) for a in as_list(res.obj.get("authorizers"))]
                yield from _judge_modes(modes, partial(_authorizers_violation, res, modes))
            continue
        flag = api.flag("authorization-mode")
        modes = flag.as_list() if flag is not None else ["AlwaysAllow"]
        yield from _judge_modes(modes, partial(_authorization_flag_violation, api))


def _authorizers_violation(res: Resource, modes: list[str], message: str) -> Violation:
    return Violation(res, ("authorizers",), message, modes, has_value=True)


def _authorization_flag_violation(api: ComponentInstance, message: str) -> Violation:
    if api.flag("authorization-mode") is None:
        message += " (--authorization-mode unset: default AlwaysAllow)"
    return api.flag_violation("authorization-mode", message, api.value("authorization-mode"))


def _judge_modes(modes: list[str], make: Callable[[str], Violation]) -> Iterator[Violation]:
    if "AlwaysAllow" in modes:
        yield make("authorization mode AlwaysAllow authorizes every request")
    elif "RBAC" not in modes:
        yield make(f"RBAC is not among the authorization modes {modes}")
    if "Node" not in modes and "AlwaysAllow" not in modes:
        violation = make(f"Node authorizer is not among the authorization modes {modes}: kubelets are not "
                         "limited to their own node's objects")
        violation.severity = Severity.MEDIUM
        yield violation


@control(
    id="KH-CP-003",
    title="API server static token or basic-auth file",
    section=Section.AUTH,
    guidance=("NSA-AUTH-2",),
    severity=Severity.HIGH,
    needs=NEEDS[API],
    what="kube-apiserver is given --token-auth-file or --basic-auth-file.",
    why="Static token and password files hold long-lived shared credentials in clear text that cannot be "
    "rotated or revoked without restarting the API server.",
    fix="Remove --token-auth-file and --basic-auth-file; authenticate users with client certificates or OIDC.",
    examples=(Example(True, example(API, token_auth_file="/etc/kubernetes/tokens.csv")), Example(False, example(API))),
)
def apiserver_static_credentials(ctx: Context) -> Iterator[Violation]:
    for api in _api(ctx):
        for name in ("token-auth-file", "basic-auth-file"):
            if api.value(name):
                yield api.flag_violation(name, f"static credential file configured: --{name}={api.value(name)}",
                                         api.value(name))


@control(
    id="KH-CP-004",
    title="API server insecure port",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-3",),
    severity=Severity.CRITICAL,
    needs=NEEDS[API],
    what="kube-apiserver serves the unauthenticated, unencrypted insecure port (before 1.20 it did unless "
    "--insecure-port=0).",
    why="The insecure port skips authentication and authorization entirely: whoever reaches it is cluster-admin.",
    fix="Set --insecure-port=0 and remove --insecure-bind-address (or upgrade: the port was removed in 1.20).",
    examples=(Example(True, example(API, version="v1.18.6")),
              Example(False, example(API, version="v1.18.6", insecure_port="0"))),
)
def apiserver_insecure_port(ctx: Context) -> Iterator[Violation]:
    for api in _api(ctx):
        version, how = component_version(ctx, api)
        if version >= (1, 20):
            continue  # insecure serving was removed in 1.20 (the flag only accepts 0, then is gone)
        port = api.value("insecure-port")
        if port is None or port.strip() != "0":
            detail = f"--insecure-port={port}" if port is not None else "--insecure-port unset (default 8080)"
            label = f"{version[0]}.{version[1]}"
            yield api.flag_violation("insecure-port", f"insecure port enabled on Kubernetes {label} ({how}): "
                                     f"{detail}", port, version=label)


@control(
    id="KH-CP-005",
    title="API server serving certificate not configured",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-4", "NSA-ENC-1"),
    severity=Severity.MEDIUM,
    needs=NEEDS[API],
    what="kube-apiserver lacks --tls-cert-file or --tls-private-key-file.",
    why="Without them the API server serves a self-signed certificate it generated itself, which clients "
    "cannot verify, so they are trained to skip verification.",
    fix="Set --tls-cert-file and --tls-private-key-file to a certificate issued by the cluster CA.",
    examples=(Example(True, example(API, tls_cert_file=None)), Example(False, example(API))),
)
def apiserver_serving_cert(ctx: Context) -> Iterator[Violation]:
    for api in _api(ctx):
        for name in ("tls-cert-file", "tls-private-key-file"):
            if not api.value(name):
                yield api.flag_violation(name, f"--{name} is not set: the API server uses a self-signed certificate")


@control(
    id="KH-CP-006",
    title="TLS below 1.2 or weak cipher suites on control-plane components",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-4", "NSA-ENC-1"),
    severity=Severity.MEDIUM,
    needs="node configuration: kube-apiserver, kube-controller-manager, kube-scheduler or etcd static pod or --root",
    what="--tls-min-version allows TLS 1.0/1.1, --tls-cipher-suites (etcd: --cipher-suites) lists weak "
    "suites, or the minimum is unset on a version whose Go runtime still accepts TLS 1.0.",
    why="The guidance asks for TLS 1.2 or 1.3 on every control-plane connection; older versions and CBC, "
    "RC4, 3DES or RSA-key-exchange suites have practical attacks.",
    fix="Set --tls-min-version=VersionTLS12 (etcd: --tls-min-version=TLS1.2) and list only ECDHE AEAD suites "
    "in --tls-cipher-suites, or leave it unset.",
    examples=(Example(True, example(API, tls_min_version="VersionTLS10")),
              Example(True, example(API, tls_cipher_suites="TLS_RSA_WITH_AES_128_CBC_SHA")),
              Example(False, example(API, tls_min_version="VersionTLS12"))),
)
def control_plane_tls(ctx: Context) -> Iterator[Violation]:
    for inst in _present(ctx, API, KCM, SCHED, ETCD):
        problem = tls_version_problem(inst.value("tls-min-version"))
        if problem:
            yield inst.flag_violation("tls-min-version", f"{inst.component}: {problem}", inst.value("tls-min-version"))
        elif inst.value("tls-min-version") is None and inst.component != ETCD:
            version, how = component_version(ctx, inst)
            if version < GO_SERVER_TLS12_DEFAULT_FROM:
                violation = inst.flag_violation(
                    "tls-min-version", f"{inst.component}: --tls-min-version unset; Kubernetes {version[0]}."
                    f"{version[1]} ({how}) is built with a Go runtime that still accepts TLS 1.0")
                violation.severity = Severity.LOW
                yield violation
        suites_flag = "cipher-suites" if inst.component == ETCD else "tls-cipher-suites"
        flag = inst.flag(suites_flag)
        if flag is not None:
            weak = {s: weak_cipher(s) for s in flag.as_list() if weak_cipher(s)}
            if weak:
                yield inst.flag_violation(suites_flag, f"{inst.component}: weak cipher suites: " + "; ".join(
                    f"{s} ({why})" for s, why in weak.items()), sorted(weak))


@control(
    id="KH-CP-007",
    title="API server does not verify kubelets or lacks a kubelet client certificate",
    section=Section.NODE,
    guidance=("NSA-NODE-7", "NSA-ENC-1"),
    severity=Severity.HIGH,
    needs=NEEDS[API],
    what="kube-apiserver lacks --kubelet-certificate-authority, --kubelet-client-certificate or "
    "--kubelet-client-key.",
    why="Without the CA the API server does not verify the kubelet it talks to (exec, logs, port-forward "
    "can be intercepted); without a client certificate kubelets cannot authenticate the API server.",
    fix="Set --kubelet-certificate-authority to the CA of kubelet serving certificates (enable "
    "serverTLSBootstrap and approve the CSRs) and --kubelet-client-certificate/--kubelet-client-key.",
    examples=(Example(True, example(API)),
              Example(False, example(API, kubelet_certificate_authority="/etc/kubernetes/pki/ca.crt"))),
)
def apiserver_kubelet_tls(ctx: Context) -> Iterator[Violation]:
    for api in _api(ctx):
        for name, why in (
            ("kubelet-certificate-authority", "kubelet serving certificates are not verified"),
            ("kubelet-client-certificate", "the API server presents no client certificate to kubelets"),
            ("kubelet-client-key", "the API server presents no client certificate to kubelets"),
        ):
            if not api.value(name):
                yield api.flag_violation(name, f"--{name} is not set: {why}")


@control(
    id="KH-CP-008",
    title="Admission plugins: NodeRestriction off, PodSecurity disabled or AlwaysAdmit on",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-POD-20", "NSA-RBAC-1"),
    severity=Severity.HIGH,
    needs=NEEDS[API],
    what="kube-apiserver does not enable NodeRestriction, disables PodSecurity, or enables AlwaysAdmit.",
    why="NodeRestriction stops a kubelet from modifying other nodes and their pods; PodSecurity enforces "
    "the Pod Security Standards; AlwaysAdmit turns admission control off.",
    fix="Set --enable-admission-plugins=NodeRestriction (plus others you need), keep PodSecurity out of "
    "--disable-admission-plugins, and remove AlwaysAdmit.",
    examples=(Example(True, example(API, enable_admission_plugins=None)),
              Example(True, example(API, disable_admission_plugins="PodSecurity")),
              Example(False, example(API))),
)
def apiserver_admission_plugins(ctx: Context) -> Iterator[Violation]:
    for api in _api(ctx):
        enabled = api.flag("enable-admission-plugins")
        disabled = api.flag("disable-admission-plugins")
        on = set(enabled.as_list()) if enabled else set()
        off = set(disabled.as_list()) if disabled else set()
        legacy = api.flag("admission-control")  # removed in 1.24, replaced the whole list
        if legacy is not None:
            on |= set(legacy.as_list())
        if "NodeRestriction" not in on or "NodeRestriction" in off:
            name = "disable-admission-plugins" if "NodeRestriction" in off else "enable-admission-plugins"
            yield api.flag_violation(name, "NodeRestriction admission plugin is not enabled", api.value(name))
        version, _how = component_version(ctx, api)
        if version >= (1, 23) and "PodSecurity" in off:
            yield api.flag_violation("disable-admission-plugins", "PodSecurity admission plugin is disabled",
                                     api.value("disable-admission-plugins"))
        if "AlwaysAdmit" in on:
            yield api.flag_violation("enable-admission-plugins", "AlwaysAdmit admission plugin is enabled",
                                     api.value("enable-admission-plugins"))


@control(
    id="KH-CP-009",
    title="Profiling endpoint enabled on control-plane components",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-2",),
    severity=Severity.LOW,
    needs="node configuration: kube-apiserver, kube-controller-manager or kube-scheduler static pod or --root",
    what="kube-apiserver, kube-controller-manager or kube-scheduler runs without --profiling=false "
    "(profiling is on by default).",
    why="/debug/pprof exposes internals and can be used to load the component; it is not needed in production.",
    fix="Set --profiling=false on kube-apiserver, kube-controller-manager and kube-scheduler.",
    examples=(Example(True, example(SCHED)), Example(False, example(SCHED, profiling="false"))),
)
def control_plane_profiling(ctx: Context) -> Iterator[Violation]:
    for inst in _present(ctx, API, KCM, SCHED):
        enabled, was_set = flag_bool(inst, "profiling", True)
        if enabled is not False:
            detail = "--profiling=true" if was_set else "--profiling unset (default true)"
            yield inst.flag_violation("profiling", f"{inst.component}: profiling enabled ({detail})",
                                      inst.value("profiling"))


@control(
    id="KH-CP-010",
    title="Service account token signing not configured",
    section=Section.AUTH,
    guidance=("NSA-AUTH-5",),
    severity=Severity.MEDIUM,
    needs=NEEDS[API],
    what="kube-apiserver lacks --service-account-issuer or --service-account-signing-key-file, sets "
    "--service-account-lookup=false, or kube-controller-manager lacks --service-account-private-key-file.",
    why="Without a dedicated signing key and issuer bound tokens cannot be issued or verified; without "
    "lookup, tokens of deleted service accounts stay valid.",
    fix="Set --service-account-issuer, --service-account-signing-key-file and --service-account-key-file on "
    "kube-apiserver, keep --service-account-lookup=true, and --service-account-private-key-file on "
    "kube-controller-manager.",
    examples=(Example(True, example(API, service_account_signing_key_file=None)),
              Example(True, example(API, service_account_lookup="false")),
              Example(False, example(API))),
)
def service_account_keys(ctx: Context) -> Iterator[Violation]:
    for api in _api(ctx):
        for name in ("service-account-issuer", "service-account-signing-key-file"):
            if not api.value(name):
                yield api.flag_violation(name, f"kube-apiserver --{name} is not set")
        lookup, _ = flag_bool(api, "service-account-lookup", True)
        if lookup is False:
            yield api.flag_violation("service-account-lookup", "--service-account-lookup=false: tokens of deleted "
                                     "service accounts remain valid", api.value("service-account-lookup"))
    for kcm in evidence_of(ctx).components.get(KCM, []):
        if not kcm.value("service-account-private-key-file"):
            yield kcm.flag_violation("service-account-private-key-file",
                                     "kube-controller-manager --service-account-private-key-file is not set")


@control(
    id="KH-CP-011",
    title="API server connects to etcd without mutual TLS",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-6",),
    severity=Severity.HIGH,
    needs=NEEDS[API],
    what="kube-apiserver --etcd-servers uses http://, or --etcd-cafile, --etcd-certfile or --etcd-keyfile is unset.",
    why="Everything in the cluster, Secrets included, travels between the API server and etcd; it must be "
    "encrypted and both sides authenticated.",
    fix="Use https:// etcd URLs and set --etcd-cafile, --etcd-certfile and --etcd-keyfile.",
    examples=(Example(True, example(API, etcd_servers="http://127.0.0.1:2379")), Example(False, example(API))),
)
def apiserver_etcd_tls(ctx: Context) -> Iterator[Violation]:
    for api in _api(ctx):
        invalid = invalid_urls(api.value("etcd-servers"))
        if invalid:
            yield api.flag_violation("etcd-servers", "--etcd-servers holds what is not a valid URL ("
                                     f"{', '.join(repr(u) for u in invalid)}): kube-apiserver cannot start with it, "
                                     "and TLS to etcd cannot be verified", api.value("etcd-servers"))
        plain = [f"{scheme}://{host}" for scheme, host in split_urls(api.value("etcd-servers")) if scheme != "https"]
        if plain:
            yield api.flag_violation("etcd-servers", f"etcd reached over plain HTTP: {', '.join(plain)}",
                                     api.value("etcd-servers"))
        for name in ("etcd-cafile", "etcd-certfile", "etcd-keyfile"):
            if not api.value(name):
                yield api.flag_violation(name, f"--{name} is not set")


@control(
    id="KH-CP-012",
    title="etcd client connections without TLS client authentication",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-6",),
    severity=Severity.CRITICAL,
    needs=NEEDS[ETCD],
    what="etcd lacks --cert-file/--key-file/--trusted-ca-file, does not set --client-cert-auth=true, uses "
    "--auto-tls=true, or listens for clients over http://.",
    why="Write access to etcd is root on the cluster; without client-certificate authentication anyone who "
    "reaches port 2379 can read every Secret and rewrite any object.",
    fix="Set --cert-file, --key-file, --client-cert-auth=true and --trusted-ca-file (an etcd-only CA), "
    "remove --auto-tls, and use https:// in --listen-client-urls.",
    examples=(Example(True, example(ETCD, client_cert_auth=None)), Example(False, example(ETCD))),
)
def etcd_client_tls(ctx: Context) -> Iterator[Violation]:
    for etcd in evidence_of(ctx).require(ETCD):
        yield from _etcd_tls(etcd, "")


def _etcd_tls(etcd: ComponentInstance, prefix: str) -> Iterator[Violation]:
    what = "peer" if prefix else "client"
    for name in (f"{prefix}cert-file", f"{prefix}key-file", f"{prefix}trusted-ca-file"):
        if not etcd.value(name):
            yield etcd.flag_violation(name, f"etcd --{name} is not set ({what} TLS)")
    auth, _ = flag_bool(etcd, f"{prefix}client-cert-auth", False)
    if auth is not True:
        yield etcd.flag_violation(f"{prefix}client-cert-auth", f"etcd does not require {what} certificates "
                                  f"(--{prefix}client-cert-auth is not true)", etcd.value(f"{prefix}client-cert-auth"))
    auto, _ = flag_bool(etcd, f"{prefix}auto-tls", False)
    if auto is True:
        yield etcd.flag_violation(f"{prefix}auto-tls", f"etcd --{prefix}auto-tls=true uses self-signed {what} "
                                  "certificates nobody verifies", etcd.value(f"{prefix}auto-tls"))
    listen = "listen-peer-urls" if prefix else "listen-client-urls"
    default = "http://localhost:2380" if prefix else "http://localhost:2379"
    value = etcd.value(listen)
    invalid = invalid_urls(value)
    if invalid:
        yield etcd.flag_violation(listen, f"etcd --{listen} holds what is not a valid URL ("
                                  f"{', '.join(repr(u) for u in invalid)}): etcd cannot start with it", value)
    plain = [f"{s}://{h}" for s, h in split_urls(value or default) if s != "https"]
    if plain:
        yield etcd.flag_violation(listen, f"etcd listens for {what}s over plain HTTP: {', '.join(plain)}"
                                  + ("" if value else f" (--{listen} unset, default {default})"), value)


@control(
    id="KH-CP-013",
    title="etcd peer connections without mutual TLS",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-8",),
    severity=Severity.HIGH,
    needs=NEEDS[ETCD],
    what="etcd lacks --peer-cert-file/--peer-key-file/--peer-trusted-ca-file, does not set "
    "--peer-client-cert-auth=true, uses --peer-auto-tls=true, or listens for peers over http://.",
    why="Peers replicate the whole key space; an unauthenticated peer port lets anyone join or read the "
    "replication stream.",
    fix="Set --peer-cert-file, --peer-key-file, --peer-client-cert-auth=true and --peer-trusted-ca-file, "
    "remove --peer-auto-tls, and use https:// in --listen-peer-urls.",
    examples=(Example(True, example(ETCD, peer_client_cert_auth="false")), Example(False, example(ETCD))),
)
def etcd_peer_tls(ctx: Context) -> Iterator[Violation]:
    for etcd in evidence_of(ctx).require(ETCD):
        yield from _etcd_tls(etcd, "peer-")


@control(
    id="KH-CP-014",
    title="etcd trusts the cluster CA instead of a dedicated etcd CA",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-7",),
    severity=Severity.MEDIUM,
    needs="node configuration: kube-apiserver and etcd static pods or --root",
    what="etcd --trusted-ca-file is the same file as kube-apiserver --client-ca-file.",
    why="etcd then accepts any client certificate the cluster CA issued (every kubelet, every user "
    "certificate), not only the API server's.",
    fix="Give etcd its own CA (kubeadm: /etc/kubernetes/pki/etcd/ca.crt) and issue etcd client "
    "certificates only to API servers.",
    examples=(Example(True, example(ETCD, trusted_ca_file="/etc/kubernetes/pki/ca.crt") + "---\n" + example(API)),
              Example(False, example(ETCD) + "---\n" + example(API))),
)
def etcd_dedicated_ca(ctx: Context) -> Iterator[Violation]:
    ev = evidence_of(ctx)
    apis = ev.require(API)
    client_cas = {api.resolve(v) or v for api in apis if (v := api.value("client-ca-file"))}
    if not client_cas:
        raise NotAssessed("kube-apiserver --client-ca-file is not set; nothing to compare etcd's CA with")
    for etcd in ev.require(ETCD):
        for name in ("trusted-ca-file", "peer-trusted-ca-file"):
            value = etcd.value(name)
            if value and (etcd.resolve(value) or value) in client_cas:
                yield etcd.flag_violation(name, f"etcd --{name} is the cluster CA ({value}) that also signs "
                                          "kube-apiserver clients", value)


@control(
    id="KH-CP-015",
    title="etcd listens on all interfaces",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-5",),
    severity=Severity.MEDIUM,
    needs=NEEDS[ETCD],
    what="etcd --listen-client-urls or --listen-peer-urls binds a wildcard address (0.0.0.0, [::]).",
    why="etcd should be reachable only by the API servers (and its peers); binding every interface exposes "
    "it to pod and external networks unless a firewall is perfect.",
    fix="List only loopback and the control-plane address in --listen-client-urls and --listen-peer-urls, "
    "and firewall 2379-2380 to API server and etcd peer addresses.",
    examples=(Example(True, example(ETCD, listen_client_urls="https://0.0.0.0:2379")), Example(False, example(ETCD))),
)
def etcd_listen_addresses(ctx: Context) -> Iterator[Violation]:
    for etcd in evidence_of(ctx).require(ETCD):
        for name in ("listen-client-urls", "listen-peer-urls"):
            wild = [f"{s}://{h or '*'}" for s, h in split_urls(etcd.value(name)) if is_wildcard(h)]
            if wild:
                yield etcd.flag_violation(name, f"etcd --{name} binds all interfaces: {', '.join(wild)}",
                                          etcd.value(name))


@control(
    id="KH-CP-016",
    title="Controller manager or scheduler bound to a non-loopback address",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-2",),
    severity=Severity.MEDIUM,
    needs="node configuration: kube-controller-manager or kube-scheduler static pod or --root",
    what="kube-controller-manager or kube-scheduler --bind-address is unset (default 0.0.0.0) or not a "
    "loopback address.",
    why="Their secure ports (10257, 10259) then accept connections from every network; only local health "
    "checks need them.",
    fix="Set --bind-address=127.0.0.1 on kube-controller-manager and kube-scheduler.",
    examples=(Example(True, example(SCHED, bind_address="0.0.0.0")), Example(False, example(SCHED))),
)
def bind_address(ctx: Context) -> Iterator[Violation]:
    for inst in _present(ctx, KCM, SCHED):
        value = inst.value("bind-address")
        if value is None or not is_loopback(value):
            detail = f"--bind-address={value}" if value is not None else "--bind-address unset (default 0.0.0.0)"
            yield inst.flag_violation("bind-address", f"{inst.component} listens beyond loopback: {detail}", value)


@control(
    id="KH-CP-017",
    title="Controller manager runs controllers with one shared credential",
    section=Section.AUTH,
    guidance=("NSA-RBAC-6",),
    severity=Severity.MEDIUM,
    needs=NEEDS[KCM],
    what="kube-controller-manager does not set --use-service-account-credentials=true.",
    why="Without it every controller acts with the controller manager's own broad identity instead of a "
    "per-controller service account with only the RBAC rules it needs.",
    fix="Set --use-service-account-credentials=true on kube-controller-manager.",
    examples=(Example(True, example(KCM, use_service_account_credentials=None)), Example(False, example(KCM))),
)
def controller_manager_sa_credentials(ctx: Context) -> Iterator[Violation]:
    for kcm in evidence_of(ctx).require(KCM):
        value, _ = flag_bool(kcm, "use-service-account-credentials", False)
        if value is not True:
            yield kcm.flag_violation("use-service-account-credentials", "controllers share the controller "
                                     "manager's credential (--use-service-account-credentials is not true)",
                                     kcm.value("use-service-account-credentials"))


@control(
    id="KH-CP-018",
    title="Kubelet serving certificate rotation disabled in the controller manager",
    section=Section.NODE,
    guidance=("NSA-ENC-2",),
    severity=Severity.LOW,
    needs=NEEDS[KCM],
    what="kube-controller-manager --feature-gates sets RotateKubeletServerCertificate=false.",
    why="Kubelet serving certificates then cannot be rotated through CSRs and stay long-lived and self-signed.",
    fix="Remove RotateKubeletServerCertificate=false from --feature-gates (it is on by default).",
    examples=(Example(True, example(KCM, feature_gates="RotateKubeletServerCertificate=false")),
              Example(False, example(KCM))),
)
def controller_manager_rotation(ctx: Context) -> Iterator[Violation]:
    for kcm in evidence_of(ctx).require(KCM):
        if parse_feature_gates(kcm.value("feature-gates")).get("RotateKubeletServerCertificate") is False:
            yield kcm.flag_violation("feature-gates", "RotateKubeletServerCertificate is disabled",
                                     kcm.value("feature-gates"))


@control(
    id="KH-CP-019",
    title="No strong user authentication method on the API server",
    section=Section.AUTH,
    guidance=("NSA-AUTH-1",),
    severity=Severity.MEDIUM,
    needs=NEEDS[API],
    what="kube-apiserver has none of --client-ca-file, --oidc-issuer-url, --authentication-config or "
    "--authentication-token-webhook-config-file.",
    why="Without a certificate, OIDC or webhook authenticator, human users can only use shared or static "
    "credentials.",
    fix="Configure OIDC (--oidc-issuer-url/--oidc-client-id or --authentication-config) or client "
    "certificates (--client-ca-file).",
    examples=(Example(True, example(API, client_ca_file=None)), Example(False, example(API))),
)
def apiserver_strong_authn(ctx: Context) -> Iterator[Violation]:
    names = ("client-ca-file", "oidc-issuer-url", "authentication-config", "authentication-token-webhook-config-file")
    for api in _api(ctx):
        if not any(api.value(n) for n in names):
            yield api.flag_violation("client-ca-file", "no strong authenticator: none of "
                                     + ", ".join(f"--{n}" for n in names) + " is set")


ADMISSION_FLAG = "admission-control-config-file"
ENFORCING_LEVELS = ("baseline", "restricted")


def _admission_example(defaults: str, exemptions: str = "{}") -> str:
    return example(API, False, "v1.30.2", f"""apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults: {defaults}
    exemptions: {exemptions}
""", volumes=ADMISSION_VOLUMES, admission_control_config_file="/etc/kubernetes/admission/admission-config.yaml")


@control(
    id="KH-CP-020",
    title="No cluster-wide Pod Security Admission default",
    section=Section.POD,
    guidance=("NSA-POD-20",),
    severity=Severity.MEDIUM,
    needs=NEEDS[API],
    what="kube-apiserver gives the PodSecurity admission plugin no PodSecurityConfiguration (no "
    "--admission-control-config-file, or no PodSecurity entry in it), its defaults.enforce is privileged "
    "(the built-in default), the plugin is disabled, or it exempts usernames or runtime classes.",
    why="A namespace without a pod-security.kubernetes.io/enforce label gets the cluster default: when that is "
    "privileged, every new namespace admits privileged pods until someone labels it. An exempted user, or "
    "any pod naming an exempted runtime class, bypasses Pod Security in every namespace.",
    fix="Point --admission-control-config-file at an AdmissionConfiguration whose PodSecurity plugin sets "
    "defaults.enforce: baseline (or restricted) and audit/warn: restricted, exempting only system "
    "namespaces (mount its directory into the API server pod).",
    min_version=(1, 23),
    examples=(Example(True, example(API), "no admission configuration: default privileged"),
              Example(True, _admission_example("{enforce: privileged, warn: restricted}")),
              Example(True, _admission_example("{enforce: baseline}", "{usernames: [ci-deployer]}")),
              Example(False, _admission_example("{enforce: baseline, audit: restricted, warn: restricted}",
                                                "{namespaces: [kube-system]}"))),
)
def pod_security_default(ctx: Context) -> Iterator[Violation]:
    ev = evidence_of(ctx)
    for api in _api(ctx):
        disabled = api.flag("disable-admission-plugins")
        if disabled is not None and "PodSecurity" in disabled.as_list():
            yield api.flag_violation("disable-admission-plugins", "the PodSecurity admission plugin is disabled: "
                                     "no cluster-wide Pod Security default applies", disabled.text)
            continue
        value = api.value(ADMISSION_FLAG)
        if not value:
            yield api.flag_violation(ADMISSION_FLAG, f"--{ADMISSION_FLAG} is not set: the cluster-wide Pod "
                                     "Security default is privileged (nothing enforced)")
            continue
        ref = ev.referenced_config(api, ADMISSION_FLAG, "AdmissionConfiguration")
        if ref.missing:
            yield missing_file_violation(api, ADMISSION_FLAG, ref)
            continue
        if not ref.resources:
            raise NotAssessed(f"{api.label}: cannot read the admission configuration: {ref.problem}")
        for res in ref.resources:
            yield from _judge_admission(ev, api, value, res)


def _judge_admission(ev: NodeEvidence, api: ComponentInstance, config_path: str, res: Resource) -> Iterator[Violation]:
    for index, plugin in enumerate(as_list(res.obj.get("plugins"))):
        plugin = as_dict(plugin)
        if plugin.get("name") != "PodSecurity":
            continue
        if isinstance(plugin.get("configuration"), dict):
            yield from _judge_pod_security(res, ("plugins", index, "configuration"), plugin["configuration"])
        elif plugin.get("path"):
            # the API server resolves a relative plugin path against the admission file's directory
            path = str(plugin["path"])
            target = path if path.startswith("/") else str(PurePosixPath(config_path).parent / path)
            ref = ev.referenced_file(api, target, "PodSecurityConfiguration")
            if not ref.resources:
                raise NotAssessed(f"cannot read the PodSecurity configuration: {ref.problem}")
            for psa in ref.resources:
                yield from _judge_pod_security(psa, (), psa.obj)
        else:
            yield Violation(res, ("plugins", index), "the PodSecurity plugin entry has neither configuration nor "
                            "path: the cluster-wide default is privileged")
        return
    yield Violation(res, ("plugins",), "the AdmissionConfiguration does not configure the PodSecurity plugin: "
                    "the cluster-wide default is privileged")


def _judge_pod_security(res: Resource, base: tuple[str | int, ...], config: dict[str, Any]) -> Iterator[Violation]:
    defaults = as_dict(config.get("defaults"))
    enforce = str(defaults.get("enforce") or "privileged")
    if enforce not in ENFORCING_LEVELS:
        path = (*base, "defaults", "enforce") if "enforce" in defaults else (*base, "defaults") if defaults else base
        unset = "" if "enforce" in defaults else " (defaults.enforce unset)"
        yield Violation(res, path, f"cluster-wide Pod Security default enforces {enforce!r}{unset}: namespaces "
                        "without an enforce label admit privileged pods", enforce, has_value=True)
    exemptions = as_dict(config.get("exemptions"))
    for key, who in (("usernames", "these users"), ("runtimeClasses", "pods naming these runtime classes")):
        names = [str(n) for n in as_list(exemptions.get(key))]
        if names:
            violation = Violation(res, (*base, "exemptions", key), f"{who} bypass Pod Security in every namespace: "
                                  + ", ".join(names), names, has_value=True)
            violation.severity = Severity.LOW
            yield violation


# ---------------------------------------------------------------------------------------------
# File permissions and owners (node snapshot only)


def _records(ctx: Context, roles: tuple[str, ...], what: str) -> list[FileRecord]:
    snapshot = evidence_of(ctx).require_snapshot()
    found = [r for r in snapshot.files.values() if r.role in roles and r.exists]
    if not found:
        raise NotAssessed(f"no {what} found under the node root")
    return found


def _mode_owner(ctx: Context, record: FileRecord, limit: int, what: str,
                owners: tuple[str, ...] = ("root",)) -> Iterator[Violation]:
    return file_mode_violations(evidence_of(ctx), record, limit, what, owners)


@control(
    id="KH-CP-030",
    title="Kubeconfig files readable or writable by others",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-10",),
    severity=Severity.HIGH,
    needs=NEEDS["files"],
    what="admin.conf, super-admin.conf, controller-manager.conf, scheduler.conf, kubelet.conf, the "
    "kubelet's --kubeconfig or a user's ~/.kube/config is more permissive than 0600 or not owned by root "
    "(or, under /home, by its user).",
    why="A kubeconfig holds credentials: whoever reads admin.conf is cluster-admin.",
    fix="chmod 600 the file and chown root:root (a user's ~/.kube/config: chown to that user).",
)
def kubeconfig_permissions(ctx: Context) -> Iterator[Violation]:
    for record in _records(ctx, ("kubeconfig",), "kubeconfig files"):
        if record.kind != "file":
            continue
        parts = PurePosixPath(record.path).parts
        owners: tuple[str, ...] = ("root",)
        if len(parts) > 2 and parts[1] == "home":
            owners = ("root", parts[2])
        yield from _mode_owner(ctx, record, 0o600, "kubeconfig", owners)


@control(
    id="KH-CP-031",
    title="PKI keys or certificates with loose permissions",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-11",),
    severity=Severity.HIGH,
    needs=NEEDS["files"],
    what="A file holding a private key under /etc/kubernetes/pki, /var/lib/kubelet/pki (or named by a "
    "component flag) is more permissive than 0600, a certificate more permissive than 0644, or either is not "
    "owned by root. Keys are recognised by their PEM header (kubelet-client-current.pem holds one), else by name.",
    why="The CA and service-account keys let their holder mint any identity; a writable certificate lets "
    "an attacker swap a trust anchor.",
    fix="chmod 600 *.key, chmod 644 *.crt, chown -R root:root /etc/kubernetes/pki.",
)
def pki_permissions(ctx: Context) -> Iterator[Violation]:
    for record in _records(ctx, ("pki",), "PKI files"):
        if record.kind != "file":
            continue
        is_key = record.private_key
        if is_key is None:  # not readable: judge by name
            is_key = record.path.endswith(".key") or "-key" in PurePosixPath(record.path).name
        if is_key:
            yield from _mode_owner(ctx, record, 0o600, "private key")
        else:
            yield from _mode_owner(ctx, record, 0o644, "certificate")


@control(
    id="KH-CP-032",
    title="Static pod manifests with loose permissions",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-11",),
    severity=Severity.MEDIUM,
    needs=NEEDS["files"],
    what="A file in /etc/kubernetes/manifests (the kubelet's staticPodPath) is more permissive than 0600 "
    "or not owned by root.",
    why="Whoever can write a static pod manifest runs any container, privileged, on a control-plane node.",
    fix="chmod 600 /etc/kubernetes/manifests/*.yaml; chown root:root.",
)
def static_pod_permissions(ctx: Context) -> Iterator[Violation]:
    for record in _records(ctx, ("static-pod",), "static pod manifests"):
        yield from _mode_owner(ctx, record, 0o600, "static pod manifest")


@control(
    id="KH-CP-033",
    title="etcd data directory with loose permissions",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-9",),
    severity=Severity.MEDIUM,
    needs=NEEDS["files"],
    what="The directory named by etcd --data-dir is more permissive than 0700 or owned by someone other "
    "than root or etcd.",
    why="The data directory is the whole cluster state, Secrets included (in plain text unless encryption "
    "at rest is configured).",
    fix="chmod 700 the data directory (kubeadm: /var/lib/etcd); chown etcd:etcd (or root).",
)
def etcd_data_dir_permissions(ctx: Context) -> Iterator[Violation]:
    for record in _records(ctx, ("etcd-data-dir",), "etcd data directory"):
        yield from _mode_owner(ctx, record, 0o700, "etcd data directory", ("root", "etcd"))
