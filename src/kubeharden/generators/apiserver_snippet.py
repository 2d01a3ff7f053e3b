"""The kube-apiserver static pod changes that go with a generated file: flags, volumeMounts and
hostPath volumes (Appendix M, with the policy path made consistent between flag and mount)."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml


@dataclass
class HostMount:
    name: str
    path: str  # same path on the host and in the container
    type: str  # hostPath type: File, DirectoryOrCreate, Directory, FileOrCreate
    read_only: bool


@dataclass
class ApiServerSnippet:
    flags: list[str] = field(default_factory=list)
    mounts: list[HostMount] = field(default_factory=list)

    def render(self, manifest: str = "/etc/kubernetes/manifests/kube-apiserver.yaml") -> str:
        command = yaml.safe_dump(self.flags, default_flow_style=False, sort_keys=False)
        mounts = yaml.safe_dump([{"name": m.name, "mountPath": m.path, "readOnly": m.read_only}
                                 for m in self.mounts], sort_keys=False)
        volumes = yaml.safe_dump([{"name": m.name, "hostPath": {"path": m.path, "type": m.type}}
                                  for m in self.mounts], sort_keys=False)
        return (
            f"# Changes to {manifest} (the kubelet restarts the API server when it is saved)\n"
            "# add to spec.containers[0].command:\n" + command
            + "# add to spec.containers[0].volumeMounts:\n" + mounts
            + "# add to spec.volumes:\n" + volumes
        )
