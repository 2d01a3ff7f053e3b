"""What the inventory knows about each container's image: the image config the registry gave, the
Dockerfile it is built from, the digest that runs, the scans that cover it. Pure functions over an
Inventory, computed once per scan (Inventory.analysis); no I/O.

Joining a workload to a Dockerfile of the input, strongest first:
1. a skaffold ``Config`` of the input names the image and the Dockerfile (build.artifacts[]:
   image, context, docker.dockerfile);
2. the Dockerfile is named after the image: ``<name>/Dockerfile``, ``<name>.Dockerfile`` or
   ``Dockerfile.<name>`` where <name> is the last part of the image's repository;
3. the Dockerfile sits in the same directory as the manifest, and the workloads of that directory's
   manifests use one image only (other than images with a registry-resolved config).
A name claimed by several Dockerfiles joins none of them.
"""

from __future__ import annotations

import os
import posixpath
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kubeharden.images import DOCKERFILE_KIND, IMAGE_CONFIG_KIND, IMAGE_SCAN_KIND
from kubeharden.images.reference import DIGEST_RE, ImageRef, parse_image
from kubeharden.inventory import ContainerView, Inventory, PodSpecView, as_dict, as_list
from kubeharden.model import Resource

_STATUS_FIELDS = {"containers": "containerStatuses", "initContainers": "initContainerStatuses",
                  "ephemeralContainers": "ephemeralContainerStatuses"}


@dataclass(frozen=True)
class BuildJoin:
    dockerfile: Resource
    how: str  # "skaffold.yaml artifact", "named after the image", "same directory"


@dataclass
class ContainerImage:
    """One container and what is known about its image."""

    container: ContainerView
    image: str
    ref: ImageRef
    digest: str | None  # the content that runs: the reference's digest or the Pod status imageID
    digest_source: str | None  # "reference", "pod status"

    @property
    def pod(self) -> PodSpecView:
        return self.container.pod

    def where(self) -> str:
        return f"{self.pod.resource.display()} container '{self.container.name}'"


@dataclass
class ImageEvidence:
    containers: list[ContainerImage] = field(default_factory=list)
    configs_by_name: dict[str, Resource] = field(default_factory=dict)  # normalized reference -> ImageConfig
    configs_by_digest: dict[str, Resource] = field(default_factory=dict)
    dockerfiles: list[Resource] = field(default_factory=list)
    builds: dict[int, BuildJoin] = field(default_factory=dict)  # id(container obj) -> the Dockerfile
    scans: list[Resource] = field(default_factory=list)
    lookup_errors: dict[str, str] = field(default_factory=dict)  # normalized reference -> why not read

    def config_for(self, item: ContainerImage) -> Resource | None:
        """The registry's config for the image: by the digest that runs, else by the reference."""
        if item.digest and item.digest in self.configs_by_digest:
            return self.configs_by_digest[item.digest]
        found = self.configs_by_name.get(item.ref.normalized())
        if found is None and item.ref.digest is None:
            found = self.configs_by_name.get(item.ref.tagged)
        if found is not None and item.digest and item.digest not in config_digests(found):
            return None  # the tag moved: the registry's config is not that of what runs
        return found

    def build_for(self, item: ContainerImage) -> BuildJoin | None:
        return self.builds.get(id(item.container.obj))


def image_evidence(inventory: Inventory) -> ImageEvidence:
    return inventory.analysis(_build)


def config_digests(config: Resource) -> set[str]:
    spec = as_dict(config.obj.get("spec"))
    return {str(d) for d in (spec.get("digest"), spec.get("indexDigest")) if d}


def status_digest(pod: PodSpecView, container: ContainerView) -> str | None:
    """The digest a Pod's status says runs (imageID docker-pullable://x@sha256:..)."""
    if pod.resource.kind != "Pod":
        return None
    statuses = as_list(as_dict(pod.resource.obj.get("status")).get(_STATUS_FIELDS[container.field]))
    for status in statuses:
        if isinstance(status, dict) and status.get("name") == container.obj.get("name"):
            image_id = str(status.get("imageID") or "")
            _, _, digest = image_id.rpartition("@")
            digest = digest.lower()
            return digest if DIGEST_RE.match(digest) else None
    return None


def container_images(inventory: Inventory) -> Iterator[ContainerImage]:
    for pod in inventory.pod_specs():
        for c in pod.containers():
            image = c.obj.get("image")
            if not isinstance(image, str) or not image.strip():
                continue
            ref = parse_image(image)
            if ref.digest and DIGEST_RE.match(ref.digest):
                yield ContainerImage(c, image, ref, ref.digest, "reference")
            else:
                from_status = status_digest(pod, c)
                yield ContainerImage(c, image, ref, from_status, "pod status" if from_status else None)


def _build(inventory: Inventory) -> ImageEvidence:
    found = ImageEvidence(containers=list(container_images(inventory)))
    for config in inventory.of_kind(IMAGE_CONFIG_KIND):
        spec = as_dict(config.obj.get("spec"))
        reference = spec.get("reference")
        if isinstance(reference, str) and reference:
            found.configs_by_name.setdefault(parse_image(reference).normalized(), config)
        for digest in config_digests(config):
            found.configs_by_digest.setdefault(digest, config)
    found.dockerfiles = list(inventory.of_kind(DOCKERFILE_KIND))
    found.scans = list(inventory.of_kind(IMAGE_SCAN_KIND))
    found.lookup_errors = dict(inventory.facts.get("image_lookup_errors") or {})
    if found.dockerfiles:
        found.builds = _join_builds(inventory, found)
    return found


def _norm(path: str) -> str:
    return posixpath.normpath(path.replace(os.sep, "/"))


def _image_short_name(ref: ImageRef) -> str:
    return ref.repository.rsplit("/", 1)[-1].lower()


def _dockerfile_names(path: str) -> set[str]:
    """The image names a Dockerfile's path states: its directory's name for a plain Dockerfile,
    the rest of the file name for app.Dockerfile / Dockerfile.app."""
    directory, name = posixpath.split(_norm(path))
    lowered = name.lower()
    for suffix in (".dockerfile", ".containerfile"):
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return {lowered[: -len(suffix)]}
    for prefix in ("dockerfile.", "containerfile."):
        if lowered.startswith(prefix) and len(lowered) > len(prefix):
            return {lowered[len(prefix):]}
    base = posixpath.basename(directory).lower()
    return {base} if base not in ("", ".", "..") else set()


def _skaffold_artifacts(inventory: Inventory) -> Iterator[tuple[str, str, Resource]]:
    """(image, Dockerfile path, skaffold Config) for every artifact of the input's skaffold files."""
    for config in inventory.of_kind("Config"):
        if not config.api_version.startswith("skaffold/"):
            continue
        base = posixpath.dirname(_norm(config.source.file))
        for artifact in as_list(as_dict(config.obj.get("build")).get("artifacts")):
            if not isinstance(artifact, dict) or not isinstance(artifact.get("image"), str):
                continue
            context = str(artifact.get("context") or ".")
            dockerfile = str(as_dict(artifact.get("docker")).get("dockerfile") or "Dockerfile")
            yield artifact["image"], _norm(posixpath.join(base, context, dockerfile)), config


def _artifact_matches(artifact_image: str, ref: ImageRef) -> bool:
    artifact = parse_image(artifact_image)
    explicit_registry = artifact_image.split("/", 1)[0]
    if "." in explicit_registry or ":" in explicit_registry or explicit_registry == "localhost":
        return artifact.name == ref.name
    # skaffold prefixes bare artifact names with a default repository at build time
    bare = artifact_image.split(":", 1)[0].split("@", 1)[0]
    return ref.repository == bare or ref.repository.endswith("/" + bare)


def _join_builds(inventory: Inventory, found: ImageEvidence) -> dict[int, BuildJoin]:
    by_path = {_norm(d.source.file): d for d in found.dockerfiles}
    joins: dict[int, BuildJoin] = {}
    artifacts = [(image, by_path[path]) for image, path, _ in _skaffold_artifacts(inventory) if path in by_path]
    named: dict[str, list[Resource]] = defaultdict(list)
    for dockerfile in found.dockerfiles:
        for name in _dockerfile_names(dockerfile.source.file):
            named[name].append(dockerfile)
    in_dir: dict[str, list[Resource]] = defaultdict(list)
    for dockerfile in found.dockerfiles:
        in_dir[posixpath.dirname(_norm(dockerfile.source.file))].append(dockerfile)
    images_in_dir: dict[str, set[str]] = defaultdict(set)
    for item in found.containers:
        images_in_dir[posixpath.dirname(_norm(item.pod.resource.source.file))].add(item.ref.name)
    for item in found.containers:
        key = id(item.container.obj)
        for artifact_image, dockerfile in artifacts:
            if _artifact_matches(artifact_image, item.ref):
                joins[key] = BuildJoin(dockerfile, f"skaffold artifact {artifact_image}")
                break
        if key in joins:
            continue
        candidates = named.get(_image_short_name(item.ref), [])
        if len(candidates) == 1:
            joins[key] = BuildJoin(candidates[0], "Dockerfile named after the image")
            continue
        directory = posixpath.dirname(_norm(item.pod.resource.source.file))
        if len(in_dir.get(directory, [])) == 1 and len(images_in_dir[directory]) == 1:
            joins[key] = BuildJoin(in_dir[directory][0], "Dockerfile next to the manifest")
    return joins


def final_stage(dockerfile: Resource) -> dict[str, Any]:
    return as_dict(as_dict(dockerfile.obj.get("spec")).get("final"))
