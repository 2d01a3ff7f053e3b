"""Inputs other than plain manifest files (rendered charts, snapshots, live clusters, node files).

Importing this package registers the path hooks of the modules listed in HOOK_MODULES.
"""

from __future__ import annotations

import importlib

# snapshot: *.json.gz / *.snapshot.json files; render: Helm chart and Kustomize overlay dirs;
# kubeharden.images.dockerfile: Dockerfiles and Containerfiles.
HOOK_MODULES: tuple[str, ...] = ("snapshot", "render", "kubeharden.images.dockerfile")

for _name in HOOK_MODULES:
    importlib.import_module(_name if "." in _name else f"{__name__}.{_name}")
