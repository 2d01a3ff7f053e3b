"""Inputs other than plain manifest files (rendered charts, snapshots, live clusters, node files).

Importing this package registers the path hooks of the modules listed in HOOK_MODULES.
"""

from __future__ import annotations

import importlib

# snapshot: *.json.gz / *.snapshot.json files; render: Helm chart and Kustomize overlay dirs.
HOOK_MODULES: tuple[str, ...] = ("snapshot", "render")

for _name in HOOK_MODULES:
    importlib.import_module(f"{__name__}.{_name}")
