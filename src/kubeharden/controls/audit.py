"""Audit logging (guidance §1.8, §2.10, §3.3, NSA-LOG-1..6, Appendices L, M, N).

The audit policy is the file kube-apiserver --audit-policy-file names (from the node, or found
by kind among the scanned files). Its rules are evaluated as the API server does: the first
rule that matches a request decides the level; no matching rule means the request is not logged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubeharden.catalog import Context, Example, control
from kubeharden.inventory import as_dict, as_list, get_path
from kubeharden.model import NotAssessed, Resource, Section, Severity, Violation
from kubeharden.nodeconf import auditpolicy as ap
from kubeharden.nodeconf.evidence import NEEDS, ComponentInstance, evidence_of, missing_file_violation
from kubeharden.nodeconf.manifests import AUDIT_VOLUMES, example

API = "kube-apiserver"
POLICY_PATH = "/etc/kubernetes/audit/audit-policy.yaml"
LOG_PATH = "/var/log/kubernetes/audit/audit.log"
POLICY_NEEDS = "node configuration: kube-apiserver with --audit-policy-file and its audit Policy"

GOOD_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  resources:
  - {group: "", resources: [secrets, configmaps]}
  - {group: authentication.k8s.io, resources: [tokenreviews]}
- level: RequestResponse
  resources:
  - {group: rbac.authorization.k8s.io, resources: [roles, clusterroles, rolebindings, clusterrolebindings]}
- level: Request
  resources:
  - {group: "", resources: [pods/exec, pods/attach, pods/portforward]}
- level: Metadata
"""
V10_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: RequestResponse
"""


def _audited(policy: str, **flags: str | None) -> str:
    """An API server example with audit flags and the hostPath mounts of Appendix M (corrected)."""
    base: dict[str, str | None] = {"audit_policy_file": POLICY_PATH, "audit_log_path": LOG_PATH,
                                   "audit_log_maxage": "30", "audit_log_maxbackup": "10", "audit_log_maxsize": "100"}
    base.update(flags)
    docs = (policy,) if policy else ()
    return example(API, False, "v1.30.2", *docs, volumes=AUDIT_VOLUMES, **base)


def _policies(ctx: Context) -> Iterator[tuple[Resource, ComponentInstance]]:
    ev = evidence_of(ctx)
    problems: list[str] = []
    found = False
    for api in ev.require(API):
        ref = ev.referenced_config(api, "audit-policy-file", "Policy")
        resources = [r for r in ref.resources if r.group == "audit.k8s.io"]
        if not ref.flag_value:
            problems.append(f"{api.label}: --audit-policy-file is not set (see KH-LOG-001)")
        elif not resources:
            problems.append(f"{api.label}: {ref.problem or 'no audit.k8s.io Policy in the file'}")
        for res in resources:
            found = True
            yield res, api
    if not found:
        raise NotAssessed("no audit Policy to judge: " + "; ".join(problems))


def _rule_violation(res: Resource, index: int, message: str, level: str, **evidence: Any) -> Violation:
    if index < 0:
        return Violation(res, ("rules",), message, level, has_value=True, evidence=evidence)
    return Violation(res, ("rules", index, "level"), message, level, has_value=True, evidence=evidence)


@control(
    id="KH-LOG-001",
    title="API server audit logging disabled",
    section=Section.LOGGING,
    guidance=("NSA-LOG-1",),
    severity=Severity.HIGH,
    needs=NEEDS[API],
    what="kube-apiserver has no --audit-policy-file, or neither --audit-log-path nor "
    "--audit-webhook-config-file (without both, nothing is logged), or the policy file is missing.",
    why="Without an audit log there is no record of who did what to the cluster: intrusions and "
    "mistakes cannot be detected or investigated.",
    fix="Set --audit-policy-file=/etc/kubernetes/audit/audit-policy.yaml (kubeharden generate audit-policy) "
    "and --audit-log-path=/var/log/kubernetes/audit/audit.log, with hostPath mounts for both.",
    examples=(Example(True, example(API)), Example(False, _audited(GOOD_POLICY))),
)
def audit_enabled(ctx: Context) -> Iterator[Violation]:
    ev = evidence_of(ctx)
    for api in ev.require(API):
        if not api.value("audit-policy-file"):
            yield api.flag_violation("audit-policy-file", "audit logging is off: --audit-policy-file is not set")
            continue
        ref = ev.referenced_config(api, "audit-policy-file", "Policy")
        if ref.missing:
            yield missing_file_violation(api, "audit-policy-file", ref)
        if not api.value("audit-log-path") and not api.value("audit-webhook-config-file"):
            yield api.flag_violation("audit-log-path", "no audit backend: neither --audit-log-path nor "
                                     "--audit-webhook-config-file is set, so nothing is written")


@control(
    id="KH-LOG-002",
    title="Audit log retention and rotation not set",
    section=Section.LOGGING,
    guidance=("NSA-LOG-4",),
    severity=Severity.LOW,
    needs="node configuration: kube-apiserver with --audit-log-path",
    what="kube-apiserver writes an audit log file but --audit-log-maxage, --audit-log-maxbackup or "
    "--audit-log-maxsize is unset or 0.",
    why="Without rotation the log fills the disk (and the API server stops logging or the node fails); "
    "without a retention age, how long evidence is kept is undefined.",
    fix="Set --audit-log-maxage (days, per policy; Appendix M uses 1825), --audit-log-maxbackup and "
    "--audit-log-maxsize (MB).",
    examples=(Example(True, _audited(GOOD_POLICY, audit_log_maxage=None)), Example(False, _audited(GOOD_POLICY))),
)
def audit_retention(ctx: Context) -> Iterator[Violation]:
    apis = [a for a in evidence_of(ctx).require(API) if a.value("audit-log-path") not in (None, "", "-")]
    if not apis:
        raise NotAssessed("no kube-apiserver writes an audit log file (--audit-log-path unset or '-')")
    for api in apis:
        for name, meaning in (("audit-log-maxage", "no age-based retention"),
                              ("audit-log-maxbackup", "old log files are never pruned"),
                              ("audit-log-maxsize", "the log is never rotated by size")):
            value = api.value(name)
            if value is None or value.strip() in ("", "0"):
                yield api.flag_violation(name, f"--{name} is {'unset' if value is None else value}: {meaning}", value)


SENSITIVE_CONTENT = (
    ap.RequestKind("", "secrets"),
    ap.RequestKind("", "configmaps"),
    ap.RequestKind("authentication.k8s.io", "tokenreviews"),
)


@control(
    id="KH-LOG-003",
    title="Audit policy records Secret contents",
    section=Section.LOGGING,
    guidance=("NSA-LOG-2",),
    severity=Severity.HIGH,
    needs=POLICY_NEEDS,
    what="A rule that can match requests to secrets, configmaps or tokenreviews logs them at Request or "
    "RequestResponse (for example a catch-all RequestResponse rule, as in v1.0 Appendix L).",
    why="Request bodies and responses of these resources contain the secret values and tokens themselves; "
    "the audit log would become a copy of every credential.",
    fix="Put a rule `level: Metadata` for secrets, configmaps (group \"\") and tokenreviews "
    "(authentication.k8s.io) before any broader rule.",
    examples=(Example(True, _audited(V10_POLICY)), Example(False, _audited(GOOD_POLICY))),
)
def audit_policy_leaks_secrets(ctx: Context) -> Iterator[Violation]:
    for res, _api in _policies(ctx):
        rules = ap.rules_of(res.obj)
        for req in SENSITIVE_CONTENT:
            reach = ap.reachable_levels(rules, req)
            for level, index in reach.levels:
                if ap.LEVEL_RANK.get(level, 0) > ap.LEVEL_RANK["Metadata"]:
                    yield _rule_violation(res, index, f"rule {index} logs {req.label} at {level}: their contents "
                                          "end up in the audit log", level, resource=req.label)


KEY_FAMILIES = (
    ap.RequestKind("", "pods"),
    ap.RequestKind("", "secrets"),
    ap.RequestKind("", "configmaps"),
    ap.RequestKind("", "serviceaccounts"),
    ap.RequestKind("", "namespaces"),
    ap.RequestKind("", "nodes"),
    ap.RequestKind("", "persistentvolumes"),
    ap.RequestKind("apps", "deployments"),
    ap.RequestKind("apps", "daemonsets"),
    ap.RequestKind("apps", "statefulsets"),
    ap.RequestKind("batch", "cronjobs"),
    ap.RequestKind("rbac.authorization.k8s.io", "clusterrolebindings"),
    ap.RequestKind("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
)


@control(
    id="KH-LOG-004",
    title="Audit policy is empty, invalid or leaves key resources unlogged",
    section=Section.LOGGING,
    guidance=("NSA-LOG-2", "NSA-LOG-14"),
    severity=Severity.MEDIUM,
    needs=POLICY_NEEDS,
    what="The policy has no rules, an invalid level or stage, a catch-all rule at None, or no rule that "
    "logs ordinary requests to pods, workloads, secrets, service accounts, namespaces, nodes, RBAC "
    "bindings or admission webhooks (their requests fall through to None).",
    why="Requests that match no rule are not logged at all; the guidance's monitoring list needs pod "
    "creation, workload changes, RBAC and admission changes in the log.",
    fix="End the policy with a catch-all rule `- level: Metadata` and do not drop these resources with `level: None`.",
    examples=(Example(True, _audited("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n")),
              Example(False, _audited(GOOD_POLICY))),
)
def audit_policy_coverage(ctx: Context) -> Iterator[Violation]:
    for res, _api in _policies(ctx):
        rules = ap.rules_of(res.obj)
        if not rules:
            yield Violation(res, ("rules",), "the audit policy has no rules: nothing is logged", has_value=False)
            continue
        for path, problem in ap.invalid_fields(res.obj):
            yield Violation(res, path, f"invalid audit policy: {problem} (the API server refuses the policy)",
                            get_path(res.obj, path), has_value=True)
        for index, rule in enumerate(rules):
            if ap.is_catch_all(rule) and rule.get("level") == "None":
                yield _rule_violation(res, index, f"rule {index} is a catch-all at level None: every request "
                                      "after it is unlogged", "None")
                break
        for req in KEY_FAMILIES:
            reach = ap.reachable_levels(rules, req)
            level, index = reach.levels[-1]
            if level == "None":
                where = f"rule {index} drops them" if index >= 0 else "no rule matches them"
                yield _rule_violation(res, index, f"requests to {req.label} are not logged ({where})", level,
                                      resource=req.label)


ACTIVITY_FAMILIES = (
    *(ap.RequestKind("rbac.authorization.k8s.io", r, verbs=ap.WRITE_VERBS)
      for r in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")),
    *(ap.RequestKind("", "pods", sub, verbs=("create", "get")) for sub in ("exec", "attach", "portforward")),
)


@control(
    id="KH-LOG-005",
    title="RBAC changes or exec/attach/port-forward logged below Request",
    section=Section.LOGGING,
    guidance=("NSA-LOG-14",),
    severity=Severity.MEDIUM,
    needs=POLICY_NEEDS,
    what="A rule that can match changes to roles, clusterroles, rolebindings or clusterrolebindings, or "
    "pods/exec, pods/attach, pods/portforward, logs them at None or Metadata.",
    why="The guidance's detections (privilege escalation through RBAC, interactive access to containers) "
    "need the request body: which role was bound, which command was run.",
    fix="Add rules at RequestResponse for rbac.authorization.k8s.io resources and at Request for "
    "pods/exec, pods/attach and pods/portforward, before broader rules.",
    examples=(Example(True, _audited("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")),
              Example(False, _audited(GOOD_POLICY))),
)
def audit_policy_activity(ctx: Context) -> Iterator[Violation]:
    for res, _api in _policies(ctx):
        # A rule for anonymous requests only (KH-LOG-006's business) does not lower what is logged of
        # RBAC changes and exec, which anonymous callers are not allowed to make; the index is kept.
        rules = ap.rules_of(res.obj)
        for req in ACTIVITY_FAMILIES:
            reach = ap.reachable_levels(rules, req, skip=ap.only_anonymous)
            level, index = reach.worst()
            if ap.LEVEL_RANK.get(level, 0) < ap.LEVEL_RANK["Request"]:
                where = f"rule {index}" if index >= 0 else "no rule matches"
                yield _rule_violation(res, index, f"{req.label} ({', '.join(req.verbs)}) logged at {level} "
                                      f"({where})", level, resource=req.label)


@control(
    id="KH-LOG-006",
    title="Audit policy drops anonymous requests",
    section=Section.LOGGING,
    guidance=("NSA-LOG-3",),
    severity=Severity.MEDIUM,
    needs=POLICY_NEEDS,
    what="A rule at level None names system:anonymous (users) or system:unauthenticated (userGroups).",
    why="The guidance asks to keep logging anonymous actions even when anonymous access is disabled: they "
    "are how probing and misconfigured access show up.",
    fix="Remove the rule, or raise its level to Metadata.",
    examples=(Example(True, _audited("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n"
                                     "  userGroups: [system:unauthenticated]\n- level: Metadata\n")),
              Example(False, _audited(GOOD_POLICY))),
)
def audit_policy_anonymous(ctx: Context) -> Iterator[Violation]:
    for res, _api in _policies(ctx):
        for index, rule in enumerate(ap.rules_of(res.obj)):
            names = ap.targets_anonymous(rule)
            if names and rule.get("level") == "None":
                yield _rule_violation(res, index, f"rule {index} does not log requests of {', '.join(names)}",
                                      "None", identities=names)


@control(
    id="KH-LOG-007",
    title="Audit webhook backend over plain HTTP or with weak credentials",
    section=Section.LOGGING,
    guidance=("NSA-LOG-6", "NSA-ENC-1"),
    severity=Severity.HIGH,
    needs="node configuration: kube-apiserver with --audit-webhook-config-file and that kubeconfig",
    what="The audit webhook kubeconfig (--audit-webhook-config-file) points at an http:// server, skips TLS "
    "verification, or authenticates with a username and password (as in v1.0 Appendix N).",
    why="Audit events carry request metadata and bodies; in clear text they can be read and altered on "
    "the way to the SIEM, and a password is a weak, shareable credential.",
    fix="Use an https:// server with certificate-authority set and a client certificate "
    "(client-certificate/client-key) in the webhook kubeconfig.",
    examples=(Example(True, _audited(GOOD_POLICY, audit_webhook_config_file="/etc/kubernetes/audit/webhook.yaml") +
                      "---\napiVersion: v1\nkind: Config\nclusters:\n- name: siem\n  cluster: "
                      "{server: 'http://127.0.0.1:8080'}\nusers:\n- name: siem\n  user: {username: u, password: p}\n"),
              Example(False, _audited(GOOD_POLICY, audit_webhook_config_file="/etc/kubernetes/audit/webhook.yaml") +
                      "---\napiVersion: v1\nkind: Config\nclusters:\n- name: siem\n  cluster: {server: "
                      "'https://siem.example:8443', certificate-authority: /etc/kubernetes/audit/ca.crt}\n"
                      "users:\n- name: siem\n  user: {client-certificate: /etc/kubernetes/audit/c.crt, "
                      "client-key: /etc/kubernetes/audit/c.key}\n")),
)
def audit_webhook_security(ctx: Context) -> Iterator[Violation]:
    ev = evidence_of(ctx)
    apis = [a for a in ev.require(API) if a.value("audit-webhook-config-file")]
    if not apis:
        raise NotAssessed("no kube-apiserver uses an audit webhook backend (--audit-webhook-config-file)")
    judged = False
    problems: list[str] = []
    for api in apis:
        ref = ev.referenced_config(api, "audit-webhook-config-file", "Config")
        if not ref.resources:
            problems.append(f"{api.label}: {ref.problem or 'the audit webhook kubeconfig is not in the input'}")
        for res in ref.resources:
            judged = True
            for i, cluster in enumerate(as_list(res.obj.get("clusters"))):
                entry = as_dict(as_dict(cluster).get("cluster"))
                server = str(entry.get("server") or "")
                if server.lower().startswith("http://"):
                    yield Violation(res, ("clusters", i, "cluster", "server"), f"audit webhook over plain HTTP: "
                                    f"{server}", server, has_value=True)
                if entry.get("insecure-skip-tls-verify") is True:
                    yield Violation(res, ("clusters", i, "cluster", "insecure-skip-tls-verify"),
                                    "audit webhook TLS certificate is not verified", True, has_value=True)
            for i, user in enumerate(as_list(res.obj.get("users"))):
                creds = as_dict(as_dict(user).get("user"))
                if "password" in creds:
                    # never the password itself
                    violation = Violation(res, ("users", i, "user", "password"), "audit webhook authenticates "
                                          "with a username and password")
                    violation.severity = Severity.MEDIUM
                    yield violation
    if not judged:
        raise NotAssessed("no audit webhook kubeconfig to judge: " + "; ".join(problems))


@control(
    id="KH-LOG-008",
    title="Audit policy or log not on a hostPath volume",
    section=Section.LOGGING,
    guidance=("NSA-LOG-5",),
    severity=Severity.MEDIUM,
    needs="node configuration: kube-apiserver static pod with audit flags",
    what="In the API server static pod, --audit-policy-file is not on a hostPath volume, or "
    "--audit-log-path is not on a writable hostPath volume.",
    why="A log written inside the container is lost when the pod restarts; a policy not mounted from the "
    "host keeps the API server from starting.",
    fix="Mount the policy file as hostPath (type: File, readOnly: true) and the log directory as hostPath "
    "(type: DirectoryOrCreate, readOnly: false) at the paths the flags name (Appendix M, corrected).",
    examples=(Example(True, example(API, False, "v1.30.2", GOOD_POLICY, audit_policy_file=POLICY_PATH,
                                    audit_log_path=LOG_PATH)),
              Example(False, _audited(GOOD_POLICY))),
)
def audit_host_paths(ctx: Context) -> Iterator[Violation]:
    apis = [a for a in evidence_of(ctx).require(API) if a.resource is not None and a.value("audit-policy-file")]
    if not apis:
        raise NotAssessed("no kube-apiserver static pod with --audit-policy-file in the input")
    for api in apis:
        policy = str(api.value("audit-policy-file"))
        if api.resolve(policy) is None:
            yield api.flag_violation("audit-policy-file", f"{policy} is not on a hostPath volume of the pod", policy)
        log = api.value("audit-log-path")
        if log and log != "-":
            if api.resolve(log) is None:
                yield api.flag_violation("audit-log-path", f"{log} is not on a hostPath volume: the audit log is "
                                         "lost when the container restarts", log)
            elif (mount := api.mount_for(log)) is not None and mount.read_only:
                yield api.flag_violation("audit-log-path", f"{log} is on a read-only mount", log)
