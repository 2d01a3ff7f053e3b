"""Hostile or unlucky paths: only regular files are read (a FIFO, socket or device never hangs the
scan), stdin is capped, unreadable and symlinked directories are reported, scanning nothing is
an error, and every skipped document is named with its file and line."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CLEAN_POD, PRIVILEGED_POD, run, scan_json, write

from kubeharden.loader import LoadContext, load_paths
from kubeharden.yamlsafe import Limits

TIMEOUT = 20  # seconds: a read that blocks on a FIFO would hang forever


def scan_in_subprocess(*args: str, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, so that a hang is a timeout failure, not a stuck suite."""
    return subprocess.run([sys.executable, "-m", "kubeharden", "scan", *args, "-f", "json", "-c", "KH-POD-005"],
                          stdin=stdin if stdin is not None else subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)


def errors_by_source(stdout: str) -> dict[str, str]:
    return {os.path.basename(e["source"]): e["message"] for e in json.loads(stdout)["errors"]}


def test_special_files_in_a_directory_are_errors_and_the_rest_is_read(tmp_path: Path) -> None:
    write(tmp_path, "priv.yaml", PRIVILEGED_POD)
    os.mkfifo(tmp_path / "fifo.yaml")
    os.symlink("/dev/zero", tmp_path / "zero.yaml")
    os.symlink(tmp_path / "fifo.yaml", tmp_path / "link-to-fifo.yml")
    sock = socket.socket(socket.AF_UNIX)
    short = Path(f"/tmp/kh-sock-{os.getpid()}")  # AF_UNIX paths are short
    short.mkdir(exist_ok=True)
    try:
        sock.bind(str(short / "s.json"))
        os.symlink(short / "s.json", tmp_path / "socket.json")
        proc = scan_in_subprocess(str(tmp_path))
    finally:
        sock.close()
        (short / "s.json").unlink(missing_ok=True)
        short.rmdir()
    assert proc.returncode == 2, proc.stderr
    report = json.loads(proc.stdout)
    assert [f["resource"]["name"] for f in report["findings"]] == ["priv"]
    assert sorted(errors_by_source(proc.stdout)) == ["fifo.yaml", "link-to-fifo.yml", "socket.json", "zero.yaml"]
    for source in ("fifo.yaml", "link-to-fifo.yml", "zero.yaml", "socket.json"):
        assert source in proc.stderr  # `error: FILE: reason` on stderr too


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_special_file_given_as_a_path_or_exceptions_file_is_an_error(tmp_path: Path, special: str) -> None:
    if special == "fifo":
        path = tmp_path / "input.yaml"
        os.mkfifo(path)
    else:
        path = Path(special)
    pod = write(tmp_path, "pod.yaml", PRIVILEGED_POD)
    proc = scan_in_subprocess(str(path), str(pod))
    assert proc.returncode == 2
    assert str(path) in proc.stderr or os.path.relpath(path) in proc.stderr
    assert [f["resource"]["name"] for f in json.loads(proc.stdout)["findings"]] == ["priv"]
    proc = scan_in_subprocess(str(pod), "--exceptions", str(path))
    assert proc.returncode == 2 and str(path) in proc.stderr


def test_stdin_is_capped_by_max_file_size() -> None:
    with open("/dev/zero", "rb") as zero:
        proc = scan_in_subprocess("-", "--max-file-size", "1048576", stdin=zero.fileno())
    assert proc.returncode == 2
    assert "<stdin>" in proc.stderr and "1048576" in proc.stderr


def test_stdin_within_the_limit_is_read() -> None:
    code, report = scan_json("-", input=PRIVILEGED_POD)
    assert code == 1 and [f["resource"]["name"] for f in report["findings"]] == ["priv"]


# ------------------------------------------------------------------------------ directories


def test_unreadable_subdirectory_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "a-priv.yaml", PRIVILEGED_POD)
    write(tmp_path, "locked/hidden-priv.yaml", PRIVILEGED_POD.replace("name: priv", "name: locked"))
    real_scandir = os.scandir

    def scandir(path):  # what chmod 000 does for anyone but root
        if os.fspath(path).endswith("locked"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = load_paths([str(tmp_path)])
    assert [r.name for r in result.resources] == ["priv"]
    [error] = result.errors
    assert error.source.endswith("locked") and "Permission denied" in error.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 directory anyway (simulated in the test above)")
def test_chmod_000_subdirectory_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a-priv.yaml", PRIVILEGED_POD)
    locked = tmp_path / "locked"
    write(tmp_path, "locked/x.yaml", CLEAN_POD)
    locked.chmod(0)
    try:
        code, report = scan_json(str(tmp_path))
    finally:
        locked.chmod(0o755)
    assert code == 2
    assert any(e["source"].endswith("locked") for e in report["errors"])


def test_symlinked_directories_inside_are_read_once_outside_are_reported(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    write(repo, "apps/priv.yaml", PRIVILEGED_POD)
    write(repo, ".shared/hidden.yaml", CLEAN_POD.replace("name: clean", "name: shared"))
    write(outside, "elsewhere.yaml", CLEAN_POD.replace("name: clean", "name: elsewhere"))
    os.symlink(repo / "apps", repo / "apps-again")  # inside, already read: not read twice
    os.symlink(repo / ".shared", repo / "shared")  # inside, not read otherwise: followed
    os.symlink(repo, repo / "apps" / "loop")  # a cycle
    os.symlink(outside, repo / "escape")  # outside the scanned directory: not read, reported
    os.symlink("/", repo / "root")
    result = load_paths([str(repo)])
    assert sorted(r.name for r in result.resources) == ["priv", "shared"]
    assert not result.errors
    not_read = sorted(os.path.basename(w.source) for w in result.warnings if "symlinked directory" in w.message)
    assert not_read == ["escape", "root"]


def test_the_same_directory_given_twice_is_read_twice(tmp_path: Path) -> None:
    write(tmp_path, "pod.yaml", CLEAN_POD)  # as benchmarks/bench_scan.py replicates its corpus
    assert len(load_paths([str(tmp_path), str(tmp_path)]).resources) == 2


# ------------------------------------------------------------------------------ scanning nothing


def test_a_directory_without_manifests_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "README.md", "# nothing here")
    code, report = scan_json(str(tmp_path))
    assert code == 2
    [error] = report["errors"]
    assert error["source"] == os.path.relpath(tmp_path) or error["source"] == str(tmp_path)


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = load_paths([str(tmp_path / "empty")])
    [error] = result.errors
    assert error.source.endswith("empty")


def test_inputs_whose_every_document_is_skipped_are_an_error(tmp_path: Path) -> None:
    write(tmp_path, "values.yaml", "replicaCount: 3\n---\nimage: {tag: 1.0}\n")
    write(tmp_path, "empty-docs.yaml", "---\n# only a comment\n---\n")
    code, report = scan_json(str(tmp_path))
    assert code == 2
    assert any("no Kubernetes objects" in e["message"] for e in report["errors"])


def test_stdin_without_objects_is_an_error() -> None:
    code, report = scan_json("-", input="just: values\n")
    assert code == 2 and report["errors"][0]["source"] == "<stdin>"


@pytest.mark.parametrize(("keys", "hint"), [
    ("apiversion: v1\nkind: Pod\n", "apiversion"),
    ("apiVersion: v1\nKind: Pod\n", "Kind"),
    ("apiVerison: v1\nkind: Pod\n", "apiVerison"),
    ("apiVersion: v1\nkinds: Pod\n", "kinds"),
])
def test_misspelled_identity_keys_are_named_with_file_and_line(tmp_path: Path, keys: str, hint: str) -> None:
    doc = keys + "metadata: {name: typo}\nspec:\n  containers:\n  - name: c\n    image: x\n" \
                 "    securityContext: {privileged: true}\n"
    path = write(tmp_path, "typo.yaml", CLEAN_POD + "---\n" + doc)
    result = load_paths([str(path)])
    assert [r.name for r in result.resources] == ["clean"]
    [warning] = result.warnings
    assert warning.source.endswith("typo.yaml") and warning.line == 11
    assert f"'{hint}'" in warning.message
    for fmt in ("json", "sarif", "junit", "markdown", "table"):  # every report names the skipped document
        out = run("scan", str(path), "-f", fmt, "-c", "KH-POD-005")
        assert "typo.yaml" in out.stdout + out.stderr and "11" in out.stdout + out.stderr, fmt


def test_skipped_list_items_are_named(tmp_path: Path) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}},
        {"metadata": {"name": "no-identity"}},
    ]}
    result = load_paths([str(write(tmp_path, "list.yaml", json.dumps(doc)))])
    [warning] = result.warnings
    assert warning.message.startswith("items[1]: ")


def test_empty_documents_are_counted_not_warned(tmp_path: Path) -> None:
    result = load_paths([str(write(tmp_path, "helm.yaml", "---\n# Source: x\n---\n" + CLEAN_POD))])
    assert not result.warnings and result.stats.skipped_empty >= 1


def test_inline_ignore_of_a_control_left_out_is_not_unknown(tmp_path: Path) -> None:
    pod = PRIVILEGED_POD.replace("  namespace: apps\n",
                                 "  namespace: apps\n  annotations:\n    kubeharden.io/ignore: 'KH-POD-009: agent'\n")
    path = write(tmp_path, "pod.yaml", pod)
    for selection in (("-c", "KH-POD-005"), ("--skip", "KH-POD-009"), ("--profile", "pss-baseline")):
        result = run("scan", str(path), "-f", "json", *selection)
        assert result.exit_code in (0, 1), (selection, result.stderr)
        assert json.loads(result.stdout)["errors"] == []
    unknown = write(tmp_path, "unknown.yaml", pod.replace("KH-POD-009", "KH-POD-999"))
    result = run("scan", str(unknown), "-f", "json", "-c", "KH-POD-005")
    assert result.exit_code == 2 and "KH-POD-999" in result.stderr


def test_limits_still_apply_to_files(tmp_path: Path) -> None:
    path = write(tmp_path, "big.yaml", CLEAN_POD + "#" * 5000 + "\n")
    [error] = load_paths([str(path)], LoadContext(Limits(max_file_bytes=1000))).errors
    assert error.source.endswith("big.yaml") and "1000" in error.message
