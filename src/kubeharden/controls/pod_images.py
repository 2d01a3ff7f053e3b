"""Image provenance controls (guidance §1.5 "Building secure container images", NSA-POD-17..19)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kubeharden.catalog import Context, Example, control, manual_control
from kubeharden.controls.pod_common import WORKLOADS, pod_example
from kubeharden.inventory import ContainerView
from kubeharden.model import Section, Severity, Violation

DOCKER_HUB = "docker.io"


@dataclass(frozen=True, slots=True)
class ImageRef:
    registry: str  # registry host, docker.io when the reference names none
    repository: str  # path inside the registry (library/ added for official Docker Hub images)
    tag: str | None
    digest: str | None


def parse_image(image: str) -> ImageRef:
    """Split an image reference the way container runtimes resolve it."""
    rest, _, digest = image.partition("@")
    name, tag = rest, None
    slash, colon = rest.rfind("/"), rest.rfind(":")
    if colon > slash:
        name, tag = rest[:colon], rest[colon + 1:]
    first, sep, remainder = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, remainder
    else:
        registry, repository = DOCKER_HUB, name
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"  # official images live under library/
    return ImageRef(registry.lower(), repository, tag or None, digest or None)


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
    for c, image in _container_images(ctx):
        if not parse_image(image).digest and not unrendered_placeholder(image):
            yield c.violation(("image",), f"container '{c.name}' image {image} is not pinned by digest", image)


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


manual_control(
    id="KH-POD-017",
    title="Images scanned throughout the build workflow",
    section=Section.POD,
    guidance=("NSA-POD-17",),
    severity=Severity.HIGH,
    what="Images are scanned for known vulnerabilities, outdated libraries and misconfiguration in CI and "
    "before deployment, with reviewed false positives recorded.",
    why="Known-vulnerable packages are the commonest way into a container.",
    fix="Add an image scanner step (e.g. Trivy or Grype) to CI that fails on the agreed severity, and keep a "
    "reviewed ignore file for accepted false positives.",
    reason="needs CI configuration and image contents (layers, SBOM); kubeharden reads manifests and "
    "cluster objects, not images or pipelines",
)
