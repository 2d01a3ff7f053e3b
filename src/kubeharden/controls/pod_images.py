"""Image provenance controls (guidance §1.5 "Building secure container images", NSA-POD-17..19)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubeharden import versions
from kubeharden.catalog import Context, Example, control
from kubeharden.controls.pod_common import WORKLOADS, effective, is_int, pod_example
from kubeharden.images import API_VERSION, DOCKERFILE_KIND, IMAGE_CONFIG_KIND, IMAGE_SCAN_KIND
from kubeharden.images.context import container_context
from kubeharden.images.dockerfile import USER_DYNAMIC, USER_NAMED, USER_NONROOT, USER_ROOT, USER_UNSET, classify_user
from kubeharden.images.evidence import ContainerImage, ImageEvidence, config_digests, final_stage, image_evidence
from kubeharden.images.reference import DOCKER_HUB, ImageRef, parse_image
from kubeharden.inventory import ContainerView, Inventory, as_dict, as_list
from kubeharden.model import Fix, FixLevel, FixOp, NotAssessed, Resource, Section, Severity, Violation

TEMPLATE_MARKERS = ("$", "<", ">", "{{")
# Tags that name a branch or channel, not a release: pushed to on every build, like latest.
BRANCH_TAGS = frozenset({"master", "main", "head", "master-head", "nightly", "edge", "dev", "develop", "devel",
                         "canary", "snapshot", "trunk", "unstable"})


def moving_tag(tag: str) -> bool:
    """latest (and latest-x / x-latest variants) or a branch/channel tag such as master or nightly."""
    lowered = tag.lower()
    parts = set(lowered.replace("_", "-").split("-"))
    return lowered in BRANCH_TAGS or "latest" in parts


def unrendered_placeholder(image: str) -> bool:
    """An image that is a template variable with no tag or digest of its own (${IMAGE_URI}, <image_url>):
    what runs is decided when the placeholder is filled in, so tag and digest cannot be judged.
    A placeholder with a literal tag (<DOCKER_REPO>/app:latest) is still judged on that tag."""
    ref = parse_image(image)
    return ref.tag is None and ref.digest is None and any(m in image for m in TEMPLATE_MARKERS)


def registry_allowed(ref: ImageRef, allowed: tuple[str, ...]) -> bool:
    """An allow-list entry is a registry host or host/path prefix (docker.io/library matches nginx)."""
    full = f"{ref.registry}/{ref.repository}"
    for entry in allowed:
        prefix = entry.strip().rstrip("/").lower()
        host, _, path = prefix.partition("/")
        host = DOCKER_HUB if host in ("index.docker.io", "registry-1.docker.io") else host
        prefix = f"{host}/{path}" if path else host
        if full == prefix or full.startswith(prefix + "/"):
            return True
    return False


def _container_images(ctx: Context) -> Iterator[tuple[ContainerView, str]]:
    """Every container with a non-empty image string (anything else cannot be judged)."""
    for pod in ctx.pod_specs():
        for c in pod.containers():
            image = c.obj.get("image")
            if isinstance(image, str) and image:
                yield c, image


@control(
    id="KH-POD-019",
    title="Image tag mutable (latest, branch tag or untagged)",
    section=Section.POD,
    guidance=("NSA-POD-19",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="A container image has no tag and no digest (so :latest is pulled), uses the :latest tag, or a branch or "
    "channel tag that moves with every build (:master, :main, :nightly, :edge, :main-latest...).",
    why="A moving tag means the code that runs is not the code that was reviewed and scanned, and a "
    "pushed image silently replaces it.",
    fix="Set containers[*].image to a versioned tag pinned by digest, e.g. registry.example/app:1.4.2@sha256:<digest>.",
    examples=(
        Example(True, pod_example(image="nginx")),
        Example(True, pod_example(image="registry.example/app:latest")),
        Example(False, pod_example(image="registry.example/app:1.0")),
    ),
)
def mutable_tag(ctx: Context) -> Iterator[Violation]:
    for c, image in _container_images(ctx):
        ref = parse_image(image)
        if ref.digest or unrendered_placeholder(image):
            continue  # a digest pins the content whatever the tag says
        if ref.tag is None:
            yield c.violation(("image",), f"container '{c.name}' image {image} has no tag (pulls :latest)", image)
        elif ref.tag == "latest":
            yield c.violation(("image",), f"container '{c.name}' image {image} uses the :latest tag", image)
        elif moving_tag(ref.tag):
            yield c.violation(("image",), f"container '{c.name}' image {image} uses :{ref.tag}, a branch or "
                              "channel tag that moves with every build", image)


@control(
    id="KH-POD-027",
    title="Image not pinned by digest",
    section=Section.POD,
    guidance=("NSA-POD-19",),
    severity=Severity.LOW,
    kinds=WORKLOADS,
    what="A container image reference has no @sha256: digest.",
    why="Tags can be moved; only a digest guarantees that the scanned and approved image is the one "
    "that runs.",
    fix="Append the image digest to containers[*].image: <registry>/<repo>:<tag>@sha256:<digest>.",
    examples=(
        Example(True, pod_example(image="registry.example/app:1.0")),
        Example(False, pod_example()),
    ),
)
def not_digest_pinned(ctx: Context) -> Iterator[Violation]:
    found = image_evidence(ctx.inventory) if ctx.inventory.has_kind(IMAGE_CONFIG_KIND) else None
    for item in (found.containers if found else _plain_container_images(ctx)):
        if item.ref.digest or unrendered_placeholder(item.image):
            continue
        message = f"container '{item.container.name}' image {item.image} is not pinned by digest"
        config = found.config_for(item) if found else None
        if config is None:
            yield item.container.violation(("image",), message, item.image)
            continue
        spec = as_dict(config.obj.get("spec"))
        # the index digest when the tag names one: the pin then works on every platform
        digest = str(spec.get("indexDigest") or spec.get("digest"))
        pinned = f"{item.image}@{digest}"
        violation = item.container.violation(
            ("image",), f"{message}; the registry says {item.ref.tagged} is {digest}", item.image,
            remediation=f"Set containers[*].image to {pinned} (the digest {spec.get('source') or 'the registry'} "
            "gave for the tag).",
            evidence={"registry_digest": digest, "pin": pinned, "source": spec.get("source")})
        # tightening: what runs stays what the tag names now, but later pushes to the tag no longer
        # roll out (docs/fix.md); the digest is the registry's, never invented
        violation.fix = Fix(FixLevel.TIGHTENING, (FixOp("set", (*item.container.path, "image"), pinned),),
                            f"pins the content {item.ref.tagged} has now; later pushes to the tag no longer roll out")
        yield violation


def _plain_container_images(ctx: Context) -> Iterator[ContainerImage]:
    for c, image in _container_images(ctx):
        yield ContainerImage(c, image, parse_image(image), None, None)


def _registries_configured(ctx: Context) -> str | None:
    if not ctx.settings.allowed_registries:
        return "no --allowed-registry given"
    if not ctx.inventory.has_kind(*WORKLOADS):
        return f"no {', '.join(WORKLOADS)} in the input"
    return None


@control(
    id="KH-POD-028",
    title="Image from a registry outside the allow-list",
    section=Section.POD,
    guidance=("NSA-POD-19",),
    severity=Severity.HIGH,
    requires=_registries_configured,
    what="A container image comes from a registry (or repository path) that is not in the allow-list given "
    "with --allowed-registry. Not assessed unless an allow-list is given.",
    why="Images from untrusted registries bypass the organisation's build, scan and signing pipeline.",
    fix="Mirror the image into an allowed registry and set containers[*].image to that registry "
    "(an image with no registry host is docker.io).",
    examples=(
        Example(True, pod_example(image="docker.io/library/nginx:1.27"), allowed_registries=("registry.example",)),
        Example(False, pod_example(image="registry.example/app:1.0"), allowed_registries=("registry.example",)),
    ),
)
def untrusted_registry(ctx: Context) -> Iterator[Violation]:
    allowed = tuple(ctx.settings.allowed_registries)
    for c, image in _container_images(ctx):
        ref = parse_image(image)
        if not registry_allowed(ref, allowed):
            yield c.violation(("image",), f"container '{c.name}' image {image} comes from {ref.registry}, "
                              f"which is not in the allowed registries ({', '.join(allowed)})", image)


# ---------------------------------------------------------------------------------------------
# Default user of the image (NSA-POD-1): from Dockerfiles of the input and image configs read
# from registries (--registry-lookup). kubeharden.images reads both; this judges them.


def _image_user_evidence(ctx: Context) -> str | None:
    if not ctx.inventory.has_kind(DOCKERFILE_KIND, IMAGE_CONFIG_KIND):
        failed = ctx.inventory.facts.get("image_lookup_errors")
        if failed:
            return "no image config could be read: " + "; ".join(sorted(set(failed.values()))[:5])
        return ("needs the image's default user: a Dockerfile in the input, or --registry-lookup to read "
                "image configs from the registries")
    return None


_ROOT_IMAGE_CONFIG = f"""
apiVersion: {API_VERSION}
kind: ImageConfig
metadata: {{name: "registry.example/app:1.0"}}
spec: {{reference: "registry.example/app:1.0", digest: "sha256:{'b' * 64}", user: "{{user}}",
        source: "https://registry.example/v2/app/manifests/1.0"}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: shop}}
spec:
  containers:
  - name: web
    image: registry.example/app:1.0
"""


@dataclass(frozen=True)
class ImageUser:
    """What an image's default user is, and what says so."""

    status: str  # a kubeharden.images.dockerfile USER_* value; an image config with no user is root
    user: str
    origin: str  # "image config from the registry", "Dockerfile app/Dockerfile:12"
    evidence: dict[str, Any]

    @property
    def from_registry(self) -> bool:
        """The registry's config of the image that runs (not a Dockerfile joined by name)."""
        return "dockerfile" not in self.evidence and "image_config" in self.evidence


def _user_of_config(config: Resource) -> ImageUser:
    spec = as_dict(config.obj.get("spec"))
    user = str(spec.get("user") or "")
    status = classify_user(user)
    if status == USER_UNSET:
        status = USER_ROOT  # the runtime's default user is 0
    evidence = {"image_user": user, "image_config": {k: spec.get(k) for k in (
        "reference", "digest", "indexDigest", "platform", "source") if spec.get(k)}}
    return ImageUser(status, user, f"the image config ({spec.get('source') or 'registry'})", evidence)


def _user_of_dockerfile(dockerfile: Resource, how: str, found: ImageEvidence) -> ImageUser | None:
    final = final_stage(dockerfile)
    status = str(final.get("userStatus") or USER_UNSET)
    line = final.get("userLine") or final.get("line")
    user = str(final.get("user") or "")
    if status == USER_UNSET:
        base = _base_config(final, found)
        if base is None:
            return ImageUser(USER_UNSET, "", f"{dockerfile.source.file}:{line} (no USER; base image "
                             f"{final.get('baseImage') or 'scratch'})",
                             {"dockerfile": dockerfile.source.file, "line": line, "joined_by": how})
        inherited = _user_of_config(base)
        return ImageUser(inherited.status, inherited.user, f"{dockerfile.source.file}:{line} (no USER; base "
                         f"image {final.get('baseImage')} runs as {inherited.user or 'root'})",
                         {"dockerfile": dockerfile.source.file, "line": line, "joined_by": how, **inherited.evidence})
    return ImageUser(status, user, f"{dockerfile.source.file}:{line} (USER {user})",
                     {"dockerfile": dockerfile.source.file, "line": line, "joined_by": how, "image_user": user})


def _base_config(final: dict[str, object], found: ImageEvidence) -> Resource | None:
    base = final.get("baseImage")
    if not isinstance(base, str) or not base:
        return None
    return found.configs_by_name.get(parse_image(base).normalized())


def _dockerfile_violations(found: ImageEvidence, undetermined: list[str]) -> Iterator[Violation]:
    for dockerfile in found.dockerfiles:
        final = final_stage(dockerfile)
        if not final:
            continue
        status = str(final.get("userStatus"))
        user = str(final.get("user") or "")
        stage = f"final stage '{final.get('stage')}'"
        name = dockerfile.source.file
        from_arg = final.get("userFromArg")
        arg_note = f" (the default of ARG {from_arg}; --build-arg may change it)" if from_arg else ""
        user_line = final.get("userLine")
        if status == USER_DYNAMIC:
            undetermined.append(f"{name}:{user_line}: USER comes from a build argument without a default")
        elif status == USER_ROOT:
            yield Violation(dockerfile, ("spec", "final", "user"), f"{name}: the {stage} sets USER {user}{arg_note}: "
                            "the image runs as root", user, has_value=True,
                            source=dockerfile.source, line=_int(user_line))
        elif status == USER_NAMED:
            yield Violation(dockerfile, ("spec", "final", "user"), f"{name}: the {stage} sets USER {user}, a name: "
                            "the kubelet cannot verify runAsNonRoot for a non-numeric user (pods with "
                            "runAsNonRoot: true will not start)", user, has_value=True, severity=Severity.LOW,
                            source=dockerfile.source, line=_int(user_line))
        elif status == USER_UNSET:
            base_config = _base_config(final, found)
            if base_config is not None:
                inherited = _user_of_config(base_config)
                if inherited.status == USER_NONROOT:
                    continue
                yield Violation(dockerfile, ("spec", "final"), f"{name}: the {stage} sets no USER and its base "
                                f"image {final.get('baseImage')} runs as {inherited.user or 'root'} "
                                f"({inherited.origin})", None, source=dockerfile.source,
                                line=_int(final.get("baseLine")), evidence=inherited.evidence)
                continue
            base = final.get("baseImage") or "scratch"
            yield Violation(dockerfile, ("spec", "final"), f"{name}: the {stage} sets no USER, so the base image's "
                            f"user applies ({base}; root for scratch and most base images)", None,
                            source=dockerfile.source, line=_int(final.get("line")))


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def image_user(found: ImageEvidence, item: ContainerImage) -> ImageUser | None:
    """The default user of a container's image: the registry's config, else the joined Dockerfile."""
    config = found.config_for(item)
    if config is not None:
        return _user_of_config(config)
    build = found.build_for(item)
    if build is not None:
        return _user_of_dockerfile(build.dockerfile, build.how, found)
    return None


def image_users(inventory: Inventory) -> dict[int, ImageUser]:
    """id(container obj) -> its image's default user, for every container whose image's user is known
    (empty without Dockerfiles or image configs in the input)."""
    if not inventory.has_kind(DOCKERFILE_KIND, IMAGE_CONFIG_KIND):
        return {}
    found = image_evidence(inventory)
    out = {}
    for item in found.containers:
        known = image_user(found, item)
        if known is not None:
            out[id(item.container.obj)] = known
    return out


@control(
    id="KH-POD-001",
    title="Image default user is root",
    section=Section.POD,
    guidance=("NSA-POD-1",),
    severity=Severity.MEDIUM,
    requires=_image_user_evidence,
    needs="Dockerfiles in the input, or image configs read with --registry-lookup",
    what="A Dockerfile's final stage sets USER root / 0 / 0:0, or no USER (the base image's user applies), or "
    "an image's config (read from its registry with --registry-lookup) has User root or empty; and a container "
    "that runs the image does not override the user with a non-zero runAsUser. A container with runAsNonRoot: "
    "true and such an image will not start, and is reported as such.",
    why="An image whose default user is root runs as root wherever a pod does not override it; runAsNonRoot: "
    "true then stops the pod from starting instead of making it safe.",
    fix="Add a dedicated user and group to the image and `USER <uid>:<gid>` (numeric, e.g. 10001:10001) in "
    "the final stage before CMD/ENTRYPOINT; in the pod set securityContext.runAsUser to a non-zero UID.",
    examples=(
        Example(True, _ROOT_IMAGE_CONFIG.replace("{user}", "root"), "image config user root"),
        Example(True, _ROOT_IMAGE_CONFIG.replace("{user}", ""), "image config without a user"),
        Example(False, _ROOT_IMAGE_CONFIG.replace("{user}", "10001:10001"), "numeric non-root user"),
    ),
)
def image_runs_as_root(ctx: Context) -> Iterator[Violation]:
    found = image_evidence(ctx.inventory)
    undetermined: list[str] = []
    out = list(_dockerfile_violations(found, undetermined))
    for item in found.containers:
        if unrendered_placeholder(item.image):
            continue
        known = image_user(found, item)
        if known is None:
            reason = found.lookup_errors.get(item.ref.normalized())
            undetermined.append(f"{item.image} ({reason})" if reason else item.image)
            continue
        if known.status in (USER_NONROOT, USER_DYNAMIC):
            continue
        run_as_user, _ = effective(item.container, "runAsUser")
        non_root, non_root_path = effective(item.container, "runAsNonRoot")
        if is_int(run_as_user):
            continue  # a non-zero runAsUser overrides the image; runAsUser: 0 is KH-POD-002's finding
        what = {USER_ROOT: "runs as root", USER_UNSET: "sets no user (the base image's applies)",
                USER_NAMED: f"runs as the user name {known.user!r}"}[known.status]
        evidence = {**known.evidence, "container": item.container.name}
        if non_root is True:
            refusal = ("image will run as root" if known.status == USER_ROOT else
                       f"image has non-numeric user ({known.user})" if known.status == USER_NAMED else
                       "image may run as root")
            out.append(item.container.violation(
                ("securityContext", "runAsUser"), f"{item.where()}: image {item.image} {what} per {known.origin}, "
                f"and runAsNonRoot: true without runAsUser: the kubelet will refuse to start it "
                f"(\"container has runAsNonRoot and {refusal}\")", None, severity=Severity.MEDIUM,
                evidence={**evidence, "will_not_start": True},
                remediation="Set securityContext.runAsUser to a non-zero UID (e.g. 10001), or rebuild the image "
                "with a numeric non-root USER."))
            continue
        if known.status == USER_NAMED:
            out.append(item.container.violation(
                non_root_path, f"{item.where()}: image {item.image} {what} per {known.origin}; runAsNonRoot "
                "cannot be enforced for a non-numeric user", None, severity=Severity.LOW, evidence=evidence))
            continue
        out.append(item.container.violation(
            non_root_path, f"{item.where()}: image {item.image} {what} per {known.origin}, and the pod sets "
            "neither runAsNonRoot: true nor a runAsUser: the container runs as root", None,
            severity=Severity.HIGH if known.status == USER_ROOT else None, evidence=evidence))
    if not out and undetermined:
        raise NotAssessed("default user unknown for: " + "; ".join(sorted(set(undetermined))[:10]))
    yield from out


# ---------------------------------------------------------------------------------------------
# Vulnerability reports joined to workloads (NSA-POD-17, NSA-UPG-3/4/7/8), image age and tag drift.
# kubeharden.images.vulns reads the reports; kubeharden.images.context says what raises a priority.

_SEVERITY_OF = {"critical": Severity.CRITICAL, "high": Severity.HIGH, "medium": Severity.MEDIUM}
# Images of cluster add-ons and plugins (NSA-UPG-3) besides the components kubeharden.versions knows.
ADDON_IMAGE_WORDS = ("calico", "cilium", "flannel", "weave", "canal", "antrea", "coredns", "kube-dns", "csi-",
                     "-csi", "ingress", "istio", "linkerd", "envoy", "metrics-server", "cert-manager", "kyverno",
                     "gatekeeper", "external-dns", "cluster-autoscaler", "kube-state-metrics", "aws-node",
                     "azure-cni", "konnectivity", "etcd", "pause")
SYSTEM_NAMESPACES = frozenset({"kube-system"})


def _scans_given(ctx: Context) -> str | None:
    if not ctx.inventory.has_kind(IMAGE_SCAN_KIND):
        return ("needs vulnerability reports: give --vulns FILE (Trivy, Grype, CycloneDX or SARIF JSON), or run "
                "`kubeharden images --scan trivy`")
    return None


def is_addon_image(item: ContainerImage) -> bool:
    """Add-on, plugin or control-plane image (NSA-UPG-3/4): a known component, a kube-system workload, or
    an image named like a CNI, CSI, ingress, mesh or admission add-on."""
    if versions.component_of_image(item.image) is not None or item.pod.namespace in SYSTEM_NAMESPACES:
        return True
    name = item.ref.repository.lower()
    return any(word in name for word in ADDON_IMAGE_WORDS)


def scans_of(found: ImageEvidence, item: ContainerImage) -> tuple[list[Resource], list[Resource]]:
    """(scans of what runs, scans of the same tag with another digest)."""
    config = found.config_for(item)
    digests = {d for d in (item.digest, *(config_digests(config) if config is not None else ())) if d}
    matched: list[Resource] = []
    stale: list[Resource] = []
    for scan in found.scans:
        spec = as_dict(scan.obj.get("spec"))
        scanned = {str(d) for d in as_list(spec.get("digests"))}
        if digests and scanned & digests:
            matched.append(scan)
        elif item.ref.tagged in as_list(spec.get("references")) or item.ref.normalized() in as_list(
                spec.get("references")):
            (stale if digests and scanned else matched).append(scan)
    return matched, stale


def _image_root(found: ImageEvidence, item: ContainerImage) -> bool | None:
    known = image_user(found, item)
    if known is None or known.status == USER_DYNAMIC:
        return None
    return known.status != USER_NONROOT


def _vulnerability_violations(ctx: Context, addons: bool) -> Iterator[Violation]:
    found = image_evidence(ctx.inventory)
    ranked: list[tuple[int, int, Violation]] = []
    order = 0
    for item in found.containers:
        if is_addon_image(item) is not addons:
            continue
        matched, _ = scans_of(found, item)
        if not matched:
            continue
        context = container_context(ctx.inventory, item.container, _image_root(found, item))
        seen: set[tuple[str, str]] = set()
        for scan in matched:
            spec = as_dict(scan.obj.get("spec"))
            for vuln in as_list(spec.get("vulnerabilities")):
                key = (str(vuln.get("id")), str(vuln.get("package")))
                if key in seen:
                    continue
                seen.add(key)
                base = _SEVERITY_OF.get(str(vuln.get("severity")), Severity.LOW)
                severity = Severity(min(Severity.CRITICAL, base + context.bump))
                priority = int(base) * 10 + context.score()
                fixed = str(vuln.get("fixed") or "")
                why = f"; {'; '.join(context.reasons.values())}" if context.reasons else ""
                message = (f"{item.where()}: image {item.image} has {key[0]} ({vuln.get('severity')}) in "
                           f"{key[1]} {vuln.get('installed') or ''}".rstrip()
                           + (f", fixed in {fixed}" if fixed else ", no fix released") + why)
                remediation = (f"Rebuild the image with {key[1]} {fixed} or later (or a base image that has it) and "
                               "redeploy with the new digest." if fixed else
                               "No fixed version yet: reduce what the container can reach and do (drop privileges, "
                               "remove the exposure, do not mount the ServiceAccount token) and watch for a fix.")
                evidence = {"vulnerability": key[0], "package": key[1], "installed": vuln.get("installed"),
                            "fixed": fixed or None, "scanner_severity": vuln.get("severity"),
                            "scanner": spec.get("scanner"), "report": scan.source.file, "image": item.image,
                            "priority": priority, "context": sorted(context.reasons),
                            "context_reasons": list(context.reasons.values())}
                order += 1
                ranked.append((-priority, order, item.container.violation(
                    ("image",), message, item.image, severity=severity, remediation=remediation,
                    evidence=evidence)))
    for _, _, violation in sorted(ranked, key=lambda r: (r[0], r[1])):
        yield violation


_VULN_EXAMPLE = f"""
apiVersion: {API_VERSION}
kind: ImageScan
metadata: {{name: "registry.example/app:1.0 (trivy)"}}
spec:
  scanner: trivy
  references: ["registry.example/app:1.0"]
  digests: []
  vulnerabilities: @VULNS@
---
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: shop}}
spec:
  containers:
  - name: web
    image: @IMAGE@
"""


def _vuln_example(vulns: str, image: str = "registry.example/app:1.0", namespace: str = "shop") -> str:
    return _VULN_EXAMPLE.replace("@VULNS@", vulns).replace("@IMAGE@", image).replace("namespace: shop",
                                                                                    f"namespace: {namespace}")


_ONE_VULN = ('[{id: CVE-2024-0001, package: openssl, installed: 3.0.1, fixed: 3.0.13, severity: high}]')


@control(
    id="KH-POD-017",
    title="Known vulnerabilities in workload images",
    section=Section.POD,
    guidance=("NSA-POD-17",),
    severity=Severity.HIGH,
    requires=_scans_given,
    needs="vulnerability reports (--vulns) of the images in use",
    what="An application image that a workload runs has known vulnerabilities in a scanner report given with "
    "--vulns (Trivy, Grype, CycloneDX, SARIF). Each finding names the CVE, package, installed and fixed version; "
    "its severity is the scanner's, raised one level when the container is reachable from outside (LoadBalancer "
    "or NodePort Service, Ingress backend, hostPort) and one more when it is privileged or mounts a risky "
    "ServiceAccount token. Findings come riskiest first (evidence.priority).",
    why="A known-vulnerable package is the commonest way into a container; the container's privileges and "
    "exposure decide what an exploit gains, which the scanners alone cannot tell.",
    fix="Rebuild the image with the fixed package versions (or a patched base image), push it, and set the "
    "workload's image to the new digest; add a scanner step to CI that fails on the agreed severity.",
    examples=(
        Example(True, _vuln_example(_ONE_VULN, "registry.example/app:1.0")),
        Example(False, _vuln_example("[]", "registry.example/app:1.0")),
    ),
)
def image_vulnerabilities(ctx: Context) -> Iterator[Violation]:
    yield from _vulnerability_violations(ctx, addons=False)


@control(
    id="KH-UPG-010",
    title="Known vulnerabilities in add-on and control-plane images",
    section=Section.UPGRADES,
    guidance=("NSA-UPG-3", "NSA-UPG-4"),
    severity=Severity.HIGH,
    requires=_scans_given,
    needs="vulnerability reports (--vulns) of the images in use",
    what="An image of a cluster add-on or component (CNI, CSI, ingress controller, service mesh, admission "
    "controller, kube-system workloads, kube-apiserver and other Kubernetes components) has known "
    "vulnerabilities in a scanner report given with --vulns.",
    why="Add-ons run with broad privileges and credentials; a vulnerable CNI or ingress controller is a path "
    "to every node or every Secret.",
    fix="Upgrade the add-on or component to a release whose image has the fixes (its Helm chart or manifest), "
    "or rebuild a mirrored image with the fixed packages.",
    examples=(
        Example(True, _vuln_example(_ONE_VULN, namespace="kube-system")),
        Example(False, _vuln_example(_ONE_VULN, "registry.example/app:1.0")),
    ),
)
def addon_image_vulnerabilities(ctx: Context) -> Iterator[Violation]:
    yield from _vulnerability_violations(ctx, addons=True)


def _report_max_age(ctx: Context) -> int:
    return int(ctx.settings.extra.get("vuln_report_max_age_days") or 30)


@control(
    id="KH-UPG-009",
    title="Image in use without a current vulnerability scan",
    section=Section.UPGRADES,
    guidance=("NSA-UPG-7", "NSA-POD-17"),
    severity=Severity.MEDIUM,
    requires=_scans_given,
    needs="vulnerability reports (--vulns)",
    what="When vulnerability reports are given: a workload runs an image that no report covers, a report covers "
    "the same tag but another digest (the scan is of a different build), or the report is older than "
    "vuln_report_max_age_days (30).",
    why="Periodic scans of what actually runs are what NSA-UPG-7 asks; a scan of another build or of last year "
    "says nothing about today's vulnerabilities.",
    fix="Scan every image in use by digest on a schedule (e.g. `kubeharden images k8s/ --scan trivy`, or the "
    "scanner's cluster mode) and keep the reports current.",
    examples=(
        Example(True, _vuln_example("[]", "registry.example/other:2.0")),
        Example(False, _vuln_example("[]", "registry.example/app:1.0")),
    ),
)
def unscanned_images(ctx: Context) -> Iterator[Violation]:
    found = image_evidence(ctx.inventory)
    today = dt.datetime.now(dt.UTC)
    max_age = _report_max_age(ctx)
    for item in found.containers:
        if unrendered_placeholder(item.image):
            continue
        matched, stale = scans_of(found, item)
        if not matched and stale:
            yield item.container.violation(("image",), f"{item.where()}: the reports on {item.ref.tagged} scanned "
                                           f"another digest than the one that runs ({item.digest})", item.image,
                                           evidence={"reports": sorted({s.source.file for s in stale})})
        elif not matched:
            yield item.container.violation(("image",), f"{item.where()}: no vulnerability report covers image "
                                           f"{item.image}", item.image, severity=Severity.LOW)
        for scan in matched:
            created = _parse_time(as_dict(scan.obj.get("spec")).get("created"))
            if created is not None and (today - created).days > max_age:
                yield item.container.violation(("image",), f"{item.where()}: the {scan.source.file} scan of "
                                               f"{item.image} is {(today - created).days} days old (more than "
                                               f"{max_age})", item.image, evidence={"report": scan.source.file})


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    text = re.sub(r"\.(\d{6})\d+", r".\1", text)  # RFC 3339 nanoseconds (Go) to microseconds
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _configs_read(ctx: Context) -> str | None:
    if not ctx.inventory.has_kind(IMAGE_CONFIG_KIND):
        return "needs image configs: give --registry-lookup (the created date is in the image config)"
    return None


_AGE_EXAMPLE = _ROOT_IMAGE_CONFIG.replace('user: "{user}"', 'user: "10001", created: "{created}"')


@control(
    id="KH-UPG-011",
    title="Application image not rebuilt for a long time",
    section=Section.UPGRADES,
    guidance=("NSA-UPG-8",),
    severity=Severity.MEDIUM,
    requires=_configs_read,
    needs="image configs (--registry-lookup)",
    what="The image a workload runs was created (image config `created`, read from the registry) more than "
    "image_max_age_days (180) ago: its packages have not been patched since.",
    why="Managed control planes are patched for you; your own images are not: an image built a year ago carries "
    "every vulnerability fixed since.",
    fix="Rebuild the image from an updated base on a schedule (and on base-image updates) and redeploy it by "
    "digest.",
    examples=(
        Example(True, _AGE_EXAMPLE.replace("{created}", "2015-01-01T00:00:00Z")),
        Example(False, _AGE_EXAMPLE.replace("{created}", dt.date.today().isoformat() + "T00:00:00Z")),
    ),
)
def stale_images(ctx: Context) -> Iterator[Violation]:
    found = image_evidence(ctx.inventory)
    max_age = int(ctx.settings.extra.get("image_max_age_days") or 180)
    now = dt.datetime.now(dt.UTC)
    for item in found.containers:
        config = found.config_for(item)
        if config is None:
            continue
        created = _parse_time(as_dict(config.obj.get("spec")).get("created"))
        if created is None or created.year < 1980:
            continue  # reproducible builds set the epoch: no build date to judge
        age = (now - created).days
        if age > max_age:
            yield item.container.violation(("image",), f"{item.where()}: image {item.image} was built "
                                           f"{created.date().isoformat()}, {age} days ago (more than {max_age})",
                                           item.image, evidence={"created": created.isoformat(), "age_days": age})


_DRIFT_EXAMPLE = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: a, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: a}}}}
  template:
    metadata: {{labels: {{app: a}}}}
    spec: {{containers: [{{name: a, image: "registry.example/app:1.0@sha256:{a}"}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: b, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: b}}}}
  template:
    metadata: {{labels: {{app: b}}}}
    spec: {{containers: [{{name: b, image: "registry.example/app:1.0@sha256:{b}"}}]}}
"""


@control(
    id="KH-POD-034",
    title="Same image tag, different digests across workloads",
    section=Section.POD,
    guidance=("NSA-POD-19",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="Workloads use the same image tag but run different digests (pinned in the reference, reported by Pod "
    "status, or resolved by the registry with --registry-lookup): the tag was moved between deployments.",
    why="What was reviewed and scanned under a tag is not what every workload runs; an attacker who can push "
    "the tag changes some workloads and not others.",
    fix="Pin every workload to the same reviewed digest (image: <repo>:<tag>@sha256:<digest>) and stop "
    "re-pushing release tags.",
    examples=(
        Example(True, _DRIFT_EXAMPLE.format(a="a" * 64, b="b" * 64)),
        Example(False, _DRIFT_EXAMPLE.format(a="a" * 64, b="a" * 64)),
    ),
)
def tag_drift(ctx: Context) -> Iterator[Violation]:
    found = image_evidence(ctx.inventory)
    by_tag: dict[str, dict[str, list[ContainerImage]]] = {}
    for item in found.containers:
        if item.ref.tag is None or unrendered_placeholder(item.image):
            continue
        digest = item.digest
        if digest is None:
            config = found.config_for(item)
            spec = as_dict(config.obj.get("spec")) if config is not None else {}
            digest = spec.get("indexDigest") or spec.get("digest")
        if digest:
            by_tag.setdefault(item.ref.tagged, {}).setdefault(str(digest), []).append(item)
    if not any(sum(len(items) for items in digests.values()) > 1 for digests in by_tag.values()):
        raise NotAssessed("no tag is used by two containers whose digests are known (pinned, in Pod status, or "
                          "read with --registry-lookup)")
    for tag, digests in sorted(by_tag.items()):
        if len(digests) < 2:
            continue
        summary = "; ".join(f"{d[:19]}… in {', '.join(i.where() for i in items[:3])}"
                            for d, items in sorted(digests.items()))
        for digest, items in sorted(digests.items()):
            for item in items:
                yield item.container.violation(
                    ("image",), f"{item.where()} runs {tag} as {digest}, other workloads run other digests of "
                    f"the same tag ({summary})", item.image,
                    evidence={"tag": tag, "digest": digest, "digests": sorted(digests)})
