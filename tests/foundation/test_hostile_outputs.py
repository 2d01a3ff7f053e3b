"""Report outputs: checked before the scan, written atomically, never over an input; internal errors exit 3."""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import CLEAN_POD, PRIVILEGED_POD, write

from kubeharden import catalog
from kubeharden import cli as cli_module
from kubeharden.cli import cli

SECRET = "hunter2-do-not-print"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def scan_args(*extra: str) -> list[str]:
    return ["scan", *extra, "-c", "KH-POD-005"]


def test_output_onto_a_directory_is_a_usage_error_before_the_scan(tmp_path: Path) -> None:
    pod = write(tmp_path, "in/pod.yaml", PRIVILEGED_POD)
    (tmp_path / "out").mkdir()
    code, out, err = invoke(*scan_args(str(pod), "-f", "json", "-o", str(tmp_path / "out")))
    assert code == 2
    assert "is a directory" in err
    assert "KH-POD-005" not in out  # refused before any work


def test_output_into_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    pod = write(tmp_path, "pod.yaml", PRIVILEGED_POD)
    code, _, err = invoke(*scan_args(str(pod), "-o", str(tmp_path / "nope" / "report.json")))
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "nope").exists()


def test_existing_report_needs_force(tmp_path: Path) -> None:
    pod = write(tmp_path, "in/pod.yaml", PRIVILEGED_POD)
    report = tmp_path / "report.json"
    report.write_text("keep me")
    code, _, err = invoke(*scan_args(str(pod), "-o", str(report)))
    assert code == 2 and "--force" in err
    assert report.read_text() == "keep me"
    code, _, _ = invoke(*scan_args(str(pod), "-o", str(report), "--force"))
    assert code == 1
    assert json.loads(report.read_text())["summary"]["findings"] >= 1


def test_two_formats_cannot_share_one_file(tmp_path: Path) -> None:
    pod = write(tmp_path, "pod.yaml", PRIVILEGED_POD)
    out = str(tmp_path / "r.out")
    code, _, err = invoke(*scan_args(str(pod), "-f", "json", "-o", out, "-f", "sarif", "-o", out))
    assert code == 2 and "same file" in err
    assert not Path(out).exists()


@pytest.mark.parametrize("how", ["symlink", "hardlink", "same-path", "exceptions-file", "inside-scanned-dir"])
def test_an_input_is_never_overwritten(tmp_path: Path, how: str) -> None:
    scanned = tmp_path / "k8s"
    pod = write(scanned, "pod.yaml", PRIVILEGED_POD)
    exceptions = write(tmp_path, "exceptions.yaml", "exceptions: []\n")
    before = {p: p.read_bytes() for p in (pod, exceptions)}
    args = [str(scanned), "--exceptions", str(exceptions), "--force", "-f", "json"]
    if how == "symlink":
        target = tmp_path / "report.json"
        target.symlink_to(pod)
    elif how == "hardlink":
        target = tmp_path / "report.json"
        os.link(pod, target)
    elif how == "same-path":
        target = pod
        args[0] = str(pod)
    elif how == "exceptions-file":
        target = exceptions
    else:
        target = write(scanned, "old-report.json", "{}")
        before[target] = target.read_bytes()
    code, _, err = invoke(*scan_args(*args, "-o", str(target)))
    assert code == 2 and "input" in err
    for path, content in before.items():
        assert path.read_bytes() == content


def test_a_new_report_inside_the_scanned_directory_is_fine(tmp_path: Path) -> None:
    # `kubeharden scan . -o results.sarif`, the usual CI step
    write(tmp_path, "pod.yaml", PRIVILEGED_POD)
    code, _, _ = invoke(*scan_args(str(tmp_path), "-o", str(tmp_path / "results.sarif")))
    assert code == 1
    assert json.loads((tmp_path / "results.sarif").read_text())["version"] == "2.1.0"


def test_dev_full_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    pod = write(tmp_path, "pod.yaml", PRIVILEGED_POD)
    good = tmp_path / "report.sarif"
    code, _, err = invoke(*scan_args(str(pod), "-f", "json", "-o", "/dev/full", "--force", "-o", str(good)))
    assert code == 2
    assert "error: /dev/full: cannot write the json report" in err
    assert json.loads(good.read_text())["version"] == "2.1.0"  # the other report is still written


def _limited_file_size(limit: int) -> None:
    # A disk that fills up: writes past the limit fail with EFBIG instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_full_disk_leaves_neither_a_truncated_report_nor_a_temporary_file(tmp_path: Path) -> None:
    pods = "---\n".join(PRIVILEGED_POD.replace("name: priv", f"name: priv-{i}") for i in range(300))
    write(tmp_path, "in/pods.yaml", pods)
    report = tmp_path / "out" / "report.json"
    report.parent.mkdir()
    report.write_text("previous report")
    done = subprocess.run(
        [sys.executable, "-m", "kubeharden", *scan_args(str(tmp_path / "in"), "-o", str(report), "--force")],
        capture_output=True, text=True, preexec_fn=lambda: _limited_file_size(64 * 1024), timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "cannot write the json report" in done.stderr
    assert "Traceback" not in done.stderr
    assert report.read_text() == "previous report"
    assert sorted(p.name for p in report.parent.iterdir()) == ["report.json"]


def test_integers_beyond_64_bits_reach_json_and_sarif(tmp_path: Path) -> None:
    huge = 10**27 + 7
    pod = write(tmp_path, "pod.yaml", CLEAN_POD.replace(
        "    image: registry.example/app:1.0\n",
        f"    image: registry.example/app:1.0\n    ports:\n    - containerPort: 80\n      hostPort: {huge}\n"))
    json_out, sarif_out = tmp_path / "r.json", tmp_path / "r.sarif"
    code, _, err = invoke("scan", str(pod), "-o", str(json_out), "-o", str(sarif_out))
    assert code in (0, 1), err
    report = json.loads(json_out.read_text())
    assert huge in [f.get("value") for f in report["findings"]]
    assert json.loads(sarif_out.read_text())["runs"][0]["results"]


def test_a_crashing_control_is_exit_3_and_never_quotes_the_input(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pod = write(tmp_path, "pod.yaml", PRIVILEGED_POD)
    ctrl = catalog.get_control("KH-POD-005")
    assert ctrl is not None

    def broken(ctx: catalog.Context) -> None:
        raise KeyError(SECRET)

    monkeypatch.setitem(catalog._REGISTRY, "KH-POD-005", dataclasses.replace(ctrl, check=broken))
    report = tmp_path / "r.json"
    code, out, err = invoke(*scan_args(str(pod), "-o", str(report)))
    assert code == 3
    assert "internal error: KeyError" in err and "report" in err
    assert SECRET not in out + err + report.read_text()


def test_an_unexpected_exception_anywhere_is_exit_3(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def explode(request: object) -> None:
        raise ValueError(SECRET)

    monkeypatch.setattr(cli_module, "run_scan", explode)
    monkeypatch.setattr(sys, "argv", ["kubeharden", "scan", "-"])
    with pytest.raises(SystemExit) as stop:
        cli_module.main()
    assert stop.value.code == 3
    err = capsys.readouterr().err
    assert "internal error: ValueError" in err and SECRET not in err
