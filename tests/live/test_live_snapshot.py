"""Snapshots: `kubeharden snapshot` writes what a live scan reads; scanning it gives the same findings."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from fake_apiserver import Behaviour
from live_support import FIXTURE_COUNT, SECRET_VALUE, SECRET_VALUE_B64, fake_cluster, run, scan_json, statuses

from kubeharden.loader import LoadContext, load_paths
from kubeharden.sources.snapshot import SNAPSHOT_KIND


def _snapshot(tmp_path: Path, kubeconfig: Path, name: str = "cluster.json.gz", *extra: str) -> Path:
    out = tmp_path / name
    result = run("snapshot", "--cluster", "--kubeconfig", str(kubeconfig), "-o", str(out), *extra)
    assert result.exit_code == 0, result.stderr
    assert "wrote snapshot of" in result.stderr
    return out


def test_snapshot_scan_gives_the_live_scan_findings(tmp_path: Path) -> None:
    behaviour = Behaviour(forbidden={"networkpolicies"})
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        live_code, live, _ = scan_json("--cluster", "--kubeconfig", str(kubeconfig))  # every nsa control
        snapshot = _snapshot(tmp_path, kubeconfig, "cluster.json.gz", "--page-size", "2")
    # the server is gone: the snapshot is all there is
    snap_code, scanned, _ = scan_json(str(snapshot))
    assert live["findings"], "the fixture cluster must have findings for this comparison to mean anything"
    assert scanned["findings"] == live["findings"]
    assert scanned["controls"] == live["controls"]
    assert {c["status"] for c in live["controls"]} == {"pass", "fail", "not_assessed"}
    assert len(live["findings"]) > 20
    assert scanned["summary"]["resources"] == live["summary"]["resources"] == FIXTURE_COUNT - 1
    assert snap_code == live_code
    assert any("read from snapshot cluster.json.gz" in n for n in scanned["notes"])


def test_snapshot_content(tmp_path: Path) -> None:
    behaviour = Behaviour(forbidden={"roles"})
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        snapshot = _snapshot(tmp_path, kubeconfig)
    raw = gzip.decompress(snapshot.read_bytes())
    assert SECRET_VALUE_B64.encode() not in raw and SECRET_VALUE.encode() not in raw
    assert b"managedFields" not in raw and b"last-applied-configuration" not in raw
    document = json.loads(raw)
    assert document["kind"] == SNAPSHOT_KIND
    assert document["serverVersion"] == "v1.34.1"
    assert document["source"] == "cluster:fake"
    assert document["created"].endswith("Z")
    assert set(document["forbiddenKinds"]) == {"Role"}
    assert {n["name"] for n in document["nodes"]} == {"node-a", "node-b"}
    [secrets] = [entry for entry in document["lists"] if entry["kind"] == "Secret"]
    stored = {item["metadata"]["name"]: item for item in secrets["items"]}
    assert {name: sorted(item) for name, item in stored.items()} == {
        "db-password": ["apiVersion", "kind", "metadata"],
        "legacy-login": ["apiVersion", "kind", "metadata", "type"],
        "web-token": ["apiVersion", "kind", "metadata", "type"],
    }
    assert stored["web-token"]["type"] == "kubernetes.io/service-account-token"
    assert not [entry for entry in document["lists"] if "type=" in str(entry)]  # type lists are merged


def test_snapshot_keeps_forbidden_kinds_for_the_engine(tmp_path: Path) -> None:
    behaviour = Behaviour(forbidden={"nodes"})
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        snapshot = _snapshot(tmp_path, kubeconfig)
    loaded = load_paths([str(snapshot)], LoadContext())
    assert loaded.facts["forbidden_kinds"].keys() == {"Node"}
    assert loaded.facts["cluster"] is True
    _, report, _ = scan_json(str(snapshot), "-c", "KH-UPG-004")
    [control] = report["controls"]
    assert control["status"] == "not_assessed"
    assert "cannot read Node: 403 Forbidden" in control["reason"]


def test_plain_json_snapshot_name(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        snapshot = _snapshot(tmp_path, kubeconfig, "prod.snapshot.json")
    assert json.loads(snapshot.read_text())["kind"] == SNAPSHOT_KIND
    _, report, _ = scan_json(str(snapshot), "-c", "KH-POD-005")
    assert statuses(report) == {"KH-POD-005": "fail"}


def test_bad_snapshot_files_are_input_errors_and_the_rest_still_scans(tmp_path: Path) -> None:
    not_gzip = tmp_path / "broken.json.gz"
    not_gzip.write_bytes(b"this is not gzip")
    other_json = tmp_path / "other.json.gz"
    other_json.write_bytes(gzip.compress(b'{"kind": "List", "items": []}'))
    bad_json = tmp_path / "bad.json.gz"
    bad_json.write_bytes(gzip.compress(b'{"kind": '))
    manifest = tmp_path / "pod.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n"
                        "  containers: [{name: c, image: x:1}]\n")
    code, report, stderr = scan_json(str(not_gzip), str(other_json), str(bad_json), str(manifest),
                                     "-c", "KH-POD-007")
    assert code == 2
    assert statuses(report) == {"KH-POD-007": "fail"}
    assert "broken.json.gz" in stderr and "not a valid gzip file" in stderr
    assert "other.json.gz" in stderr and "not a kubeharden snapshot" in stderr
    assert "bad.json.gz" in stderr and "invalid JSON in snapshot" in stderr


def test_snapshot_of_an_unreachable_cluster_is_a_usage_error(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (server, _kubeconfig):
        wrong = server.kubeconfig(tmp_path / "wrong.yaml", token="nope")
        result = run("snapshot", "--kubeconfig", str(wrong), "-o", str(tmp_path / "x.json.gz"))
    assert result.exit_code == 2
    assert "401 Unauthorized" in result.stderr
    assert not (tmp_path / "x.json.gz").exists()


def test_edited_snapshot_with_odd_fields_scans_without_crashing(tmp_path: Path) -> None:
    odd = tmp_path / "odd.snapshot.json"
    odd.write_text(json.dumps({
        "apiVersion": "kubeharden.io/v1alpha1", "kind": SNAPSHOT_KIND, "notes": "one note", "namespaces": "default",
        "lists": [
            {"version": "v1", "resource": "pods", "kind": "Pod", "items": [
                {"apiVersion": "v1", "kind": "Pod", "metadata": [1], "spec": {"hostNetwork": True}},
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
                 "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "x:1"}]}},
            ]},
            {"version": "v1", "resource": "nodes", "kind": "Node", "items": [
                {"metadata": {"name": "n1"}, "status": [1]},
                {"metadata": {"name": "n2"}, "status": {"nodeInfo": "not a mapping"}},
            ]},
        ],
    }))
    code, report, stderr = scan_json(str(odd), "-c", "KH-POD-007")
    assert code == 0, stderr  # --fail-on none: no input error, no crash
    assert statuses(report) == {"KH-POD-007": "fail"}
    assert "Traceback" not in stderr
    result = load_paths([str(odd)], LoadContext())
    assert [r.name for r in result.resources if r.kind == "Pod"] == ["p"]
    assert "namespaces_scanned" not in result.facts  # a string is not a namespace list


def test_snapshot_never_overwrites_without_force_and_is_owner_only(tmp_path: Path) -> None:
    earlier = tmp_path / "cluster.json"
    earlier.write_text("the only record of a cluster that is gone")
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        refused = run("snapshot", "--kubeconfig", str(kubeconfig), "-o", str(earlier))
        assert refused.exit_code == 2 and "use --force" in refused.stderr
        assert earlier.read_text() == "the only record of a cluster that is gone"
        _snapshot(tmp_path, kubeconfig, "cluster.json", "--force")
    assert json.loads(earlier.read_text())["kind"] == SNAPSHOT_KIND
    assert earlier.stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob("*.partial"))


def _gzip_bomb(path: Path, megabytes: int) -> Path:
    """A .json.gz that starts like a snapshot and decompresses to `megabytes` MB of spaces."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    with path.open("wb") as out:
        out.write(packer.compress(b'{"kind": "KubehardenSnapshot", "pad": "'))
        block = b" " * (1 << 20)
        for _ in range(megabytes):
            out.write(packer.compress(block))
        out.write(packer.compress(b'"}') + packer.flush())
    return path


def test_gzip_bomb_is_refused_while_decompressing_without_taking_memory(tmp_path: Path) -> None:
    import tracemalloc

    bomb = _gzip_bomb(tmp_path / "bomb.json.gz", 1024)  # about 1 MB on disk, 1 GiB decompressed
    assert bomb.stat().st_size < 3 * 1024 * 1024
    tracemalloc.start()
    try:
        result = load_paths([str(bomb)], LoadContext())
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [error] = result.errors
    assert error.source.endswith("bomb.json.gz") and "refused" in error.message
    assert result.resources == []
    assert peak < 64 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB: the bomb was held in memory"


def test_snapshot_with_an_ordinary_compression_ratio_is_read(tmp_path: Path) -> None:
    # a real snapshot compresses 10-40 fold; this one ~15 fold over more than the ratio floor
    import gzip
    import random

    rng = random.Random(7)
    items = [{"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": f"cm-{i}", "namespace": "default", "uid": f"{rng.getrandbits(128):032x}"},
              "data": {"k": f"{rng.getrandbits(64):016x}"}} for i in range(150_000)]
    document = {"apiVersion": "kubeharden.io/v1alpha1", "kind": SNAPSHOT_KIND,
                "lists": [{"version": "v1", "resource": "configmaps", "kind": "ConfigMap", "namespaced": True,
                           "items": items}]}
    raw = json.dumps(document).encode()
    assert len(raw) > 16 * 1024 * 1024
    path = tmp_path / "big.json.gz"
    path.write_bytes(gzip.compress(raw, 6))
    result = load_paths([str(path)], LoadContext())
    assert result.errors == [] and len(result.resources) == 150_000


def test_snapshot_never_follows_a_leftover_partial_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's file")
    victim.chmod(0o600)
    out = tmp_path / "cluster.json.gz"
    (tmp_path / "cluster.json.gz.partial").symlink_to(victim)
    (tmp_path / ".cluster.json.gz.partial").symlink_to(victim)
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        _snapshot(tmp_path, kubeconfig, "cluster.json.gz")
    assert victim.read_text() == "someone else's file" and victim.stat().st_mode & 0o777 == 0o600
    assert json.loads(gzip.decompress(out.read_bytes()))["kind"] == SNAPSHOT_KIND


def test_failed_snapshot_write_leaves_no_temporary_file_and_the_old_snapshot(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    earlier = tmp_path / "cluster.json.gz"
    earlier.write_bytes(b"the earlier snapshot")

    def disk_full(self: object, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with fake_cluster(tmp_path) as (_server, kubeconfig):
        monkeypatch.setattr(gzip.GzipFile, "write", disk_full)
        result = run("snapshot", "--kubeconfig", str(kubeconfig), "-o", str(earlier), "--force")
    assert result.exit_code == 2 and "No space left on device" in result.stderr
    assert earlier.read_bytes() == b"the earlier snapshot"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.json.gz", "kubeconfig.yaml"]


def test_snapshot_refuses_to_write_over_its_kubeconfig(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        before = kubeconfig.read_bytes()
        result = run("snapshot", "--kubeconfig", str(kubeconfig), "-o", str(kubeconfig), "--force")
        link = tmp_path / "link.json"
        link.symlink_to(kubeconfig)
        through_link = run("snapshot", "--kubeconfig", str(kubeconfig), "-o", str(link), "--force")
    assert result.exit_code == 2 and "input" in result.stderr
    assert through_link.exit_code == 2 and "input" in through_link.stderr
    assert kubeconfig.read_bytes() == before
