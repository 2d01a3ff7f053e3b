"""Image references, resolved the way container runtimes resolve them."""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class ImageRef:
    registry: str  # registry host, docker.io when the reference names none
    repository: str  # path inside the registry (library/ added for official Docker Hub images)
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """registry/repository: docker.io/library/nginx."""
        return f"{self.registry}/{self.repository}"

    @property
    def tagged(self) -> str:
        """registry/repository:tag, :latest when the reference names neither tag nor digest."""
        return f"{self.name}:{self.tag or 'latest'}"

    def normalized(self) -> str:
        """The canonical reference: nginx -> docker.io/library/nginx:latest; a digest is kept and
        a reference with only a digest has no tag."""
        if self.digest:
            return f"{self.name}:{self.tag}@{self.digest}" if self.tag else f"{self.name}@{self.digest}"
        return self.tagged

    @property
    def api_host(self) -> str:
        """Where the registry's API answers (Docker Hub's API is not at docker.io)."""
        return "registry-1.docker.io" if self.registry == DOCKER_HUB else self.registry


def parse_image(image: str) -> ImageRef:
    """Split an image reference the way container runtimes resolve it."""
    rest, _, digest = image.strip().partition("@")
    name, tag = rest, None
    slash, colon = rest.rfind("/"), rest.rfind(":")
    if colon > slash:
        name, tag = rest[:colon], rest[colon + 1:]
    first, sep, remainder = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, remainder
    else:
        registry, repository = DOCKER_HUB, name
    if registry.lower() in _HUB_ALIASES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"  # official images live under library/
    return ImageRef(registry.lower(), repository, tag or None, digest.lower() or None)


def normalize(image: str) -> str:
    return parse_image(image).normalized()


def same_image_name(a: str, b: str) -> bool:
    """Whether two references name the same repository (tag and digest aside)."""
    return parse_image(a).name == parse_image(b).name
