"""After the inputs are read: add what is known about the images they name.

* ``--vulns FILE`` (repeatable): scanner reports become ImageScan resources (kubeharden.images.vulns);
* ``--registry-lookup``: every image of every pod spec, and the base image of a Dockerfile whose final
  stage sets no USER, is looked up in its registry (kubeharden.images.registry) and becomes an
  ImageConfig resource; a lookup that fails is a warning and leaves the image's user unknown.

Nothing here runs, and no connection is opened, unless --registry-lookup is given; --offline
answers from the on-disk cache only. Options come from ScanRequest.settings.extra (see
kubeharden.commands.images.image_options).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from kubeharden.images import DOCKERFILE_KIND
from kubeharden.images.dockerfile import USER_UNSET
from kubeharden.images.reference import parse_image
from kubeharden.images.registry import ImageInfo, RegistryClient, RegistryError, RegistryOptions
from kubeharden.images.vulns import ReportError, read_report, split_argument
from kubeharden.inventory import as_dict, pod_spec_of
from kubeharden.loader import LoadResult, display_path
from kubeharden.model import InputError, Resource, Source

if TYPE_CHECKING:
    from kubeharden.scanner import ScanRequest

LOOKUP_WORKERS = 4
_PLACEHOLDER_MARKS = ("$", "{{", "<", ">")


def registry_options(extra: dict[str, Any]) -> RegistryOptions:
    options = RegistryOptions(offline=bool(extra.get("offline")))
    if extra.get("platform"):
        options.platform = str(extra["platform"])
    if extra.get("registry_config"):
        options.docker_config = str(extra["registry_config"])
    if extra.get("registry_ca"):
        options.ca_file = str(extra["registry_ca"])
    if extra.get("registry_cache") is not None:
        options.cache_dir = str(extra["registry_cache"])
    if extra.get("registry_deadline"):
        options.deadline = float(extra["registry_deadline"])
    return options


def images_to_look_up(resources: list[Resource]) -> list[str]:
    """Every image reference of the pod specs, and the base images of Dockerfiles without USER."""
    found: dict[str, str] = {}
    for res in resources:
        view = pod_spec_of(res)
        if view is not None:
            for c in view.containers():
                image = c.obj.get("image")
                if isinstance(image, str) and image.strip() and not any(m in image for m in _PLACEHOLDER_MARKS):
                    found.setdefault(parse_image(image).normalized(), image)
        elif res.kind == DOCKERFILE_KIND:
            final = as_dict(as_dict(res.obj.get("spec")).get("final"))
            base = final.get("baseImage")
            if final.get("userStatus") == USER_UNSET and isinstance(base, str) and \
                    not any(m in base for m in _PLACEHOLDER_MARKS):
                found.setdefault(parse_image(base).normalized(), base)
    return sorted(found)


def look_up(client: RegistryClient, images: list[str]) -> Iterator[tuple[str, ImageInfo | RegistryError]]:
    def one(image: str) -> tuple[str, ImageInfo | RegistryError]:
        try:
            return image, client.lookup(image)
        except RegistryError as exc:
            return image, exc

    with ThreadPoolExecutor(max_workers=LOOKUP_WORKERS) as pool:
        yield from pool.map(one, images)


def enrich(request: ScanRequest, loaded: LoadResult) -> dict[str, Any]:
    extra = request.settings.extra
    facts: dict[str, Any] = {}
    for path in extra.get("vulns") or ():
        try:
            scans = read_report(path, request.load.limits.max_file_bytes)
        except ReportError as exc:
            loaded.errors.append(InputError(display_path(split_argument(path)[1]), exc.message, exc.line))
            continue
        source = Source(display_path(split_argument(path)[1]), None, origin="vulnerability report")
        loaded.resources.extend(Resource.from_obj(obj, source) for obj in scans)
        loaded.stats.files += 1
    if not extra.get("registry_lookup"):
        return facts
    try:
        client = RegistryClient(registry_options(extra))
    except ValueError as exc:
        loaded.errors.append(InputError("--platform", str(exc)))
        return facts
    errors: dict[str, str] = {}
    for image, outcome in look_up(client, images_to_look_up(loaded.resources)):
        if isinstance(outcome, RegistryError):
            errors[image] = outcome.message
            loaded.warnings.append(InputError(f"registry {parse_image(image).registry}", outcome.message))
            continue
        source = Source(f"registry:{outcome.registry}", None, origin=outcome.source)
        loaded.resources.append(Resource.from_obj(outcome.to_object(), source))
    loaded.warnings.extend(InputError("registry credentials", note) for note in client.notes)
    facts["image_lookup_errors"] = errors
    facts["image_lookups"] = {"offline": client.options.offline, "platform": client.options.platform,
                              "requests": client.requests}
    return facts
