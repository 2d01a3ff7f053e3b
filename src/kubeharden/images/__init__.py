"""Images as first-class inputs: Dockerfiles, image configs from registries, vulnerability reports.

Readers here read, never judge (kubeharden.controls.pod_images judges). What they read becomes
resources of kubeharden's own API group ``images.kubeharden.io`` so that controls, exceptions and
reports treat it like any other input:

* ``Dockerfile``  -- a Dockerfile or Containerfile of the input (kubeharden.images.dockerfile)
* ``ImageConfig`` -- the config of an image as its registry serves it (kubeharden.images.registry)
* ``ImageScan``   -- one image's vulnerabilities from a scanner report (kubeharden.images.vulns)
"""

from __future__ import annotations

API_VERSION = "images.kubeharden.io/v1alpha1"
DOCKERFILE_KIND = "Dockerfile"
IMAGE_CONFIG_KIND = "ImageConfig"
IMAGE_SCAN_KIND = "ImageScan"
EVIDENCE_KINDS = (DOCKERFILE_KIND, IMAGE_CONFIG_KIND, IMAGE_SCAN_KIND)
