"""Service-account token controls (guidance §1.5 "Protecting Pod service account tokens", NSA-POD-23)."""

from __future__ import annotations

from collections.abc import Iterator

from kubeharden.builtin_exceptions import is_static_pod
from kubeharden.catalog import Context, Example, control
from kubeharden.controls.pod_common import WORKLOADS, pod_example
from kubeharden.inventory import Inventory, PodSpecView, as_list, service_account_name, token_automount
from kubeharden.model import NotAssessed, Section, Severity, Violation
from kubeharden.rbac import effective_namespace, model_for

_SA_APP = """
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: app, namespace: apps}
automountServiceAccountToken: false
"""


def _bound_service_accounts(inventory: Inventory) -> set[tuple[str | None, str]]:
    """(namespace, name) of every ServiceAccount that a RoleBinding or ClusterRoleBinding of the input names,
    namespaces resolved as the RBAC engine does (a RoleBinding without one is in `default`)."""
    bound: set[tuple[str | None, str]] = {
        (subject.namespace, subject.name) for binding in model_for(inventory).bindings if not binding.builtin
        for _, subject in binding.subjects if subject.kind == "ServiceAccount"}
    # A ClusterRoleBinding subject without a namespace (a kustomize base, whose namespace transformer fills it
    # in) grants nothing as written; it still says the account's pods, as unplaced as it is, call the API.
    for crb in inventory.of_kind("ClusterRoleBinding"):
        for subject in as_list(crb.obj.get("subjects")):
            if isinstance(subject, dict) and subject.get("kind") == "ServiceAccount" and subject.get("name") \
                    and not subject.get("namespace"):
                bound.add((None, str(subject["name"])))
    return bound


def _calls_the_api(pod: PodSpecView, bound: set[tuple[str | None, str]]) -> bool:
    """The pod's own (non-default) ServiceAccount holds RBAC bindings, so the application uses its token.
    A pod manifest without a namespace (a kustomize base, a chart applied with -n) is matched on the
    account's name: its namespace is decided when it is applied, not by the manifest."""
    name = service_account_name(pod)
    if name == "default":
        return False
    if pod.namespace is None:
        return any(account == name for _, account in bound)
    return (effective_namespace(pod.resource.kind, pod.namespace), name) in bound


@control(
    id="KH-POD-023",
    title="Service account token mounted",
    section=Section.POD,
    guidance=("NSA-POD-23",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="The pod gets an API token mounted: neither the pod nor its ServiceAccount sets "
    "automountServiceAccountToken: false (the pod's setting wins over the ServiceAccount's), and it runs as "
    "the default ServiceAccount or as one that no binding of the input names (so it has no use for the token).",
    why="A mounted token lets anyone who compromises the container call the Kubernetes API with the "
    "service account's rights.",
    fix="Set spec.automountServiceAccountToken: false on the pod template (or on the ServiceAccount) unless "
    "the application calls the API; then use a projected token with an audience and expiry.",
    needs="the pod's ServiceAccount object, unless the pod decides itself or uses 'default'",
    examples=(
        Example(True, pod_example().replace("  automountServiceAccountToken: false\n", "")
                + _SA_APP.replace("automountServiceAccountToken: false", "automountServiceAccountToken: true")),
        Example(True, pod_example().replace("automountServiceAccountToken: false",
                                            "automountServiceAccountToken: true") + _SA_APP,
                "the pod's true wins over the ServiceAccount's false"),
        Example(False, pod_example().replace("  automountServiceAccountToken: false\n", "") + _SA_APP),
    ),
)
def token_mounted(ctx: Context) -> Iterator[Violation]:
    unknown = 0
    judged = False
    bound = _bound_service_accounts(ctx.inventory)
    for pod in ctx.pod_specs():
        if is_static_pod(pod.resource, ctx.inventory):
            continue  # the kubelet mounts no ServiceAccount token into a static pod
        mount = token_automount(pod, ctx.inventory)
        if not mount.mounted:
            continue
        # NSA-POD-23 asks to stop unneeded tokens: a dedicated ServiceAccount with bindings is there to call
        # the API (what those bindings allow is KH-RBAC-009's concern).
        if _calls_the_api(pod, bound):
            judged = True
            continue
        # A named ServiceAccount outside the input may turn automounting off; the namespace's
        # default ServiceAccount is created without that field, so it mounts unless the pod says no.
        if (mount.decided_by == "default" and not mount.service_account_known
                and mount.service_account != "default" and not ctx.whole_cluster):
            unknown += 1
            continue
        judged = True
        if mount.decided_by == "pod":
            message = "pod sets automountServiceAccountToken: true"
            value: bool | None = True
        elif mount.decided_by == "serviceaccount":
            message = f"ServiceAccount '{mount.service_account}' sets automountServiceAccountToken: true " \
                      "and the pod does not override it"
            value = None
        else:
            message = f"token of ServiceAccount '{mount.service_account}' is mounted: neither the pod nor " \
                      "the ServiceAccount sets automountServiceAccountToken: false"
            value = None
        yield pod.spec_violation(("automountServiceAccountToken",), message, value, has_value=value is not None,
                                 evidence={"service_account": mount.service_account, "decided_by": mount.decided_by})
    if unknown and not judged:
        raise NotAssessed(f"{unknown} pod template(s) use a ServiceAccount that is not in the input and do not "
                          "set automountServiceAccountToken themselves")


@control(
    id="KH-POD-026",
    title="Pod uses the namespace's default ServiceAccount",
    section=Section.POD,
    guidance=("NSA-POD-23", "NSA-POD-24"),
    severity=Severity.LOW,
    kinds=WORKLOADS,
    what="spec.serviceAccountName is unset or 'default', so the pod shares the namespace's default "
    "ServiceAccount with every other such pod (rated medium when its token is mounted).",
    why="Rights granted to the default ServiceAccount leak to every pod of the namespace, and one pod's "
    "token is every pod's token.",
    fix="Create a dedicated ServiceAccount per workload and set spec.serviceAccountName to it (with "
    "automountServiceAccountToken: false unless it calls the API).",
    examples=(
        Example(True, pod_example().replace("  serviceAccountName: app\n", "")),
        Example(False, pod_example() + _SA_APP),
    ),
)
def default_service_account(ctx: Context) -> Iterator[Violation]:
    for pod in ctx.pod_specs():
        if service_account_name(pod) != "default" or is_static_pod(pod.resource, ctx.inventory):
            continue  # a static pod runs under no ServiceAccount at all
        mounted = token_automount(pod, ctx.inventory).mounted
        explicit = pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount")
        field = "serviceAccountName" if pod.spec.get("serviceAccountName") or not explicit else "serviceAccount"
        yield pod.spec_violation((field,), "pod runs as the namespace's default ServiceAccount"
                                 + (" with its token mounted" if mounted else ""), explicit,
                                 has_value=bool(explicit), severity=Severity.MEDIUM if mounted else None)
