"""Accepted risks: inline annotations, the exceptions file, expiry, unused exceptions."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import PRIVILEGED_POD, run, write

ONLY = ("-c", "KH-POD-005", "-c", "KH-POD-007")
ANNOTATED = PRIVILEGED_POD.replace(
    "  namespace: apps\n",
    "  namespace: apps\n  annotations:\n    kubeharden.io/ignore: \"KH-POD-005: node agent needs it\"\n",
)


def scan(*args: str) -> tuple[int, dict]:
    result = run("scan", *args, *ONLY, "-f", "json")
    return result.exit_code, json.loads(result.stdout)


def test_inline_annotation_excepts_but_keeps_the_finding(tmp_path: Path) -> None:
    code, report = scan(str(write(tmp_path, "p.yaml", ANNOTATED)))
    assert code == 0
    [finding] = report["findings"]
    assert finding["excepted"] is True
    assert finding["exception"] == {"kind": "annotation", "reason": "node agent needs it"}
    assert report["summary"]["findings"] == 0 and report["summary"]["excepted"] == 1
    assert next(c for c in report["controls"] if c["id"] == "KH-POD-005")["status"] == "pass"


def test_inline_annotation_with_unknown_control_is_an_error(tmp_path: Path) -> None:
    text = ANNOTATED.replace("KH-POD-005:", "KH-POD-05:")
    code, report = scan(str(write(tmp_path, "p.yaml", text)))
    assert code == 2
    assert "unknown control" in report["errors"][0]["message"]
    assert report["findings"][0]["excepted"] is False


def exceptions_file(tmp_path: Path, expires: str, name: str = "pr*") -> Path:
    return write(tmp_path, "exceptions.yaml", f"""\
exceptions:
  - control: KH-POD-00*
    resource: {{kind: Pod, namespace: apps, name: "{name}"}}
    reason: accepted by security review 42
    owner: platform-team
    expires: {expires}
""")


def test_exceptions_file_with_wildcards(tmp_path: Path) -> None:
    pod = str(write(tmp_path, "p.yaml", PRIVILEGED_POD))
    exc = str(exceptions_file(tmp_path, "2999-01-01"))
    code, report = scan(pod, "--exceptions", exc)
    assert code == 0
    [finding] = report["findings"]
    assert finding["exception"]["owner"] == "platform-team"
    assert finding["exception"]["origin"].endswith("exceptions.yaml:2")


def test_expired_exception_stops_applying_and_is_reported(tmp_path: Path) -> None:
    pod = str(write(tmp_path, "p.yaml", PRIVILEGED_POD))
    exc = str(exceptions_file(tmp_path, "2020-01-01"))
    result = run("scan", pod, *ONLY, "-f", "json", "--exceptions", exc)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["findings"][0]["excepted"] is False
    assert report["exceptions"]["expired"][0]["expires"] == "2020-01-01"
    assert "expired" in result.stderr


def test_unused_exceptions_are_listed_on_request(tmp_path: Path) -> None:
    pod = str(write(tmp_path, "p.yaml", PRIVILEGED_POD))
    exc = str(exceptions_file(tmp_path, "2999-01-01", name="other-*"))
    result = run("scan", pod, *ONLY, "-f", "json", "--exceptions", exc, "--show-unused-exceptions")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["exceptions"]["unused"][0]["resource"]["name"] == "other-*"
    assert "unused exception" in result.stderr


def test_malformed_exceptions_file_is_usage_error(tmp_path: Path) -> None:
    pod = str(write(tmp_path, "p.yaml", PRIVILEGED_POD))
    bad = write(tmp_path, "exc.yaml", "exceptions:\n  - control: KH-POD-005\n")  # no reason
    result = run("scan", pod, "--exceptions", str(bad))
    assert result.exit_code == 2 and "reason" in result.output


def test_exceptions_file_is_read_with_the_manifest_guards(tmp_path: Path) -> None:
    pod = str(write(tmp_path, "p.yaml", PRIVILEGED_POD))
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        bomb.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    cases = {
        "bomb.yaml": ("\n".join(bomb) + "\n", "alias"),
        "dup.yaml": ("exceptions:\n  - control: KH-POD-005\n    reason: a\n    reason: b\n", "duplicate key 'reason'"),
        "two.yaml": ("exceptions: []\n---\nexceptions: []\n", "one YAML document"),
        "broken.yaml": ("exceptions:\n  - control: [KH-POD-005\n", "invalid YAML"),
    }
    for name, (text, expected) in cases.items():
        result = run("scan", pod, "--exceptions", str(write(tmp_path, name, text)))
        assert result.exit_code == 2 and expected in result.output, (name, result.output)
    good = write(tmp_path, "good.yaml", "exceptions:\n  - control: KH-POD-005\n    reason: node agent\n")
    code, report = scan(pod, "--exceptions", str(good))
    assert code == 0 and report["summary"]["excepted"] == 1


def test_exceptions_file_with_a_mistyped_control_or_date_is_an_error(tmp_path: Path) -> None:
    pod = str(write(tmp_path, "p.yaml", PRIVILEGED_POD))
    typo = write(tmp_path, "typo.yaml", "exceptions:\n  - control: KH-POD-0055\n    reason: node agent\n")
    result = run("scan", pod, "--exceptions", str(typo))
    assert result.exit_code == 2 and "unknown control 'KH-POD-0055'" in result.output
    assert f"{typo}:2" in result.output
    no_date = write(tmp_path, "date.yaml",
                    "exceptions:\n  - control: KH-POD-*\n    reason: x\n    expires: 2099-13-45\n")
    result = run("scan", pod, "--exceptions", str(no_date))
    assert result.exit_code == 2 and "expires must be a date" in result.output
    wildcard = write(tmp_path, "wild.yaml", "exceptions:\n  - control: KH-PSS-*\n    reason: other profile\n")
    assert run("scan", pod, *ONLY, "--exceptions", str(wildcard)).exit_code == 1  # known ids, findings stay
