"""Log pipelines: the parsers (Fluent Bit classic and YAML, Fluentd, Vector TOML/YAML, Promtail,
rsyslog) and KH-LOG-030..033, on configurations rewritten from the agents' documentation."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
from guidance_helpers import messages, result_of, scan_texts

from kubeharden.logpipeline import fluentbit, fluentd
from kubeharden.logpipeline.analysis import buffering, host_scope, node_log_inputs, transports
from kubeharden.logpipeline.sources import parse_text
from kubeharden.model import Status

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "node"))
from node_layout import build_node


def configmap(name: str, files: dict[str, str], namespace: str = "logging") -> str:
    body = "".join(f"  {key}: |\n{textwrap.indent(textwrap.dedent(text), '    ')}" for key, text in files.items())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {namespace}}}\ndata:\n{body}"


LOG_CONTROLS = ("KH-LOG-030", "KH-LOG-031", "KH-LOG-032", "KH-LOG-033")


def scan(tmp_path: Path, files: dict[str, str], **kwargs):
    return scan_texts(tmp_path, files, only=LOG_CONTROLS, **kwargs)


# ---------------------------------------------------------------------------------------------
# Parsers


def test_fluent_bit_classic_sections_includes_variables_and_case() -> None:
    files = {
        "fluent-bit.conf": "@SET es_host=logs.example.com\n[SERVICE]\n    Flush 5\n# a comment\n"
                           "@INCLUDE output-*.conf\n",
        "output-es.conf": "[OUTPUT]\n    NAME   es\n    HOST   ${es_host}\n    TLS    on\n    TLS.Verify off\n",
    }
    config = fluentbit.parse_classic(files["fluent-bit.conf"], "main", fluentbit.include_from(files))
    [output] = config.of_kind("output")
    assert output.type == "es" and output.file == "output-es.conf"
    assert output.get("host") == "logs.example.com"  # @SET variable, keys case-insensitive
    assert output.line_of("tls.verify") == 5
    [t] = transports(config)
    assert (t.tls, t.verify, t.scope, t.line) == (True, False, "external", 5)
    assert not config.problems


def test_fluent_bit_classic_problems_have_lines() -> None:
    config = fluentbit.parse_classic("Flush 5\n[OUTPUT]\n    Name\n@INCLUDE missing.conf\n", "f")
    assert [(p.line, p.message) for p in config.problems] == [
        (1, "a setting outside any [SECTION]"), (3, "'Name' has no value"), (4, "@INCLUDE missing.conf: not found")]


def test_fluent_bit_yaml_format() -> None:
    text = textwrap.dedent("""\
        service:
          flush: 1
          storage.path: /var/lib/fluent-bit/
        pipeline:
          inputs:
            - name: systemd
              tag: host.*
              systemd_filter: _SYSTEMD_UNIT=kubelet.service
              storage.type: filesystem
          outputs:
            - name: http
              match: '*'
              host: collector.example.com
              port: 443
              tls: on
              tls.verify: off
        """)
    config = parse_text(text, "fluent-bit.yaml", "fluent-bit.yaml")
    assert config is not None and config.agent == "fluent-bit"
    [t] = transports(config)
    assert (t.tls, t.verify, t.line) == (True, False, 16)
    assert not [b for b in buffering(config) if not b.persistent]
    assert node_log_inputs(config)


def test_fluentd_labels_copy_stores_and_http_outputs() -> None:
    text = textwrap.dedent("""\
        <source>
          @type tail
          path /var/log/containers/*.log
          tag kube.*
        </source>
        <match kube.**>
          @type relabel
          @label @OUT
        </match>
        <label @OUT>
          <match **>
            @type copy
            <store>
              @type elasticsearch
              host es.example.com
              scheme https
              ssl_verify false
            </store>
            <store>
              @type http
              endpoint http://collector.logging.svc:9880/logs  # in-cluster
            </store>
          </match>
        </label>
        """)
    config = parse_text(text, "fluent.conf", "fluent.conf")
    assert config is not None and config.agent == "fluentd" and not config.problems
    found = {(t.block.type, t.tls, t.verify, t.scope, t.line) for t in transports(config)}
    assert found == {("elasticsearch", True, False, "external", 17), ("http", False, None, "cluster", 21)}
    assert not node_log_inputs(config)


def test_fluentd_unclosed_and_stray_directives() -> None:
    config = fluentd.parse("<match **>\n  @type stdout\n</source>\n</match>\n<source>\n", "f")
    assert [(p.line, p.message) for p in config.problems] == [
        (4, "</match> without an opening <match>"), (5, "<source> is not closed")]


def test_fluentd_embedded_ruby_is_not_a_comment() -> None:
    config = fluentd.parse('<match **>\n  @type forward\n  transport "#{ENV[\'T\'] || \'tls\'}"\n'
                           '  <server>\n    host agg.example.com\n  </server>\n</match>\n', "f")
    [t] = transports(config)
    assert t.block.get("transport") == "#{ENV['T'] || 'tls'}"


@pytest.mark.parametrize(("name", "text", "line"), [
    ("vector.toml", '[sinks.es]\ntype = "elasticsearch"\ninputs = ["in"]\nendpoints = ["http://es.example.com:9200"]\n',
     4),
    ("vector.yaml", "sinks:\n  es:\n    type: elasticsearch\n    inputs: [in]\n    endpoints: [http://es.example.com:9200]\n",
     5),
])
def test_vector_toml_and_yaml_read_alike(name: str, text: str, line: int) -> None:
    config = parse_text(text, name, name)
    assert config is not None and config.agent == "vector"
    [t] = transports(config)
    assert (t.tls, t.destination, t.line) == (False, "es.example.com", line)
    [b] = buffering(config)
    assert not b.persistent


def test_vector_https_without_verification_and_disk_buffer() -> None:
    text = textwrap.dedent("""\
        sinks:
          loki:
            type: loki
            inputs: [journal]
            endpoint: https://loki.example.com
            tls:
              verify_certificate: false
            buffer:
              type: disk
              max_size: 268435488
        sources:
          journal:
            type: journald
        """)
    config = parse_text(text, "vector.yaml", "vector.yaml")
    [t] = transports(config)
    assert (t.tls, t.verify, t.line) == (True, False, 6)
    assert [b.persistent for b in buffering(config)] == [True]
    assert node_log_inputs(config)


def test_promtail_clients_and_journal() -> None:
    text = textwrap.dedent("""\
        server: {http_listen_port: 9080}
        positions: {filename: /run/promtail/positions.yaml}
        clients:
          - url: https://loki.example.com/loki/api/v1/push
            tls_config:
              insecure_skip_verify: true
          - url: http://loki-gateway.monitoring.svc/loki/api/v1/push
        scrape_configs:
          - job_name: journal
            journal: {max_age: 12h, path: /var/log/journal}
        """)
    config = parse_text(text, "promtail.yaml", "promtail.yaml")
    assert config is not None and config.agent == "promtail"
    found = [(t.tls, t.verify, t.scope, t.line) for t in transports(config)]
    assert found == [(True, False, "external", 5), (False, None, "cluster", 7)]
    assert node_log_inputs(config)


def test_rsyslog_forwarding_forms() -> None:
    plain = parse_text("*.* @@logs.example.com:514\n", "/etc/rsyslog.conf", "rsyslog.conf")
    assert plain is not None
    assert [(t.tls, t.line) for t in transports(plain)] == [(False, 1)]
    tls = parse_text('global(DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="/etc/ca.pem")\n'
                     'action(type="omfwd" target="logs.example.com" port="6514" protocol="tcp"\n'
                     '       StreamDriverMode="1" StreamDriverAuthMode="x509/name")\n', "/etc/rsyslog.conf", "r")
    assert tls is not None
    assert [(t.tls, t.verify) for t in transports(tls)] == [(True, True)]
    anon = parse_text('action(type="omfwd" target="10.0.0.5" protocol="tcp" StreamDriver="gtls" '
                      'StreamDriverMode="1")\n', "/etc/rsyslog.d/50-forward.conf", "r")
    assert anon is not None
    assert [(t.tls, t.verify, t.scope) for t in transports(anon)] == [(True, False, "cluster")]


def test_host_scope() -> None:
    assert host_scope("127.0.0.1") == host_scope("localhost") == host_scope("::1") == "local"
    assert host_scope("fluentd.logging.svc.cluster.local") == host_scope("fluentd") == "cluster"
    assert host_scope("10.1.2.3") == "cluster"
    assert host_scope("logs.example.com") == host_scope("8.8.8.8") == "external"
    assert host_scope("${ES_HOST}") == "unknown"


def test_other_configmaps_are_not_configurations() -> None:
    assert parse_text("key: value\n", "app.yaml", "app.yaml") is None
    assert parse_text("[section]\nkey = 1\n", "app.conf", "app.conf") is None
    assert parse_text("[server]\nport = 1\n", "app.toml", "app.toml") is None


# ---------------------------------------------------------------------------------------------
# Controls through a scan


FB_DOCS_PLAIN = {
    "fluent-bit.conf": """\
        [SERVICE]
            Flush         1
            Parsers_File  parsers.conf
        [INPUT]
            Name              tail
            Path              /var/log/containers/*.log
            multiline.parser  docker, cri
            Tag               kube.*
            Mem_Buf_Limit     5MB
        [OUTPUT]
            Name            es
            Match           *
            Host            ${FLUENT_ELASTICSEARCH_HOST}
            Port            ${FLUENT_ELASTICSEARCH_PORT}
            Logstash_Format On
            Retry_Limit     False
        """,
    "parsers.conf": "[PARSER]\n    Name   docker\n    Format json\n",
}


def test_fluent_bit_configmap_tls_off_on_and_lines(tmp_path: Path) -> None:
    result = scan(tmp_path, {"cm.yaml": configmap("fluent-bit", FB_DOCS_PLAIN)})
    [finding] = result_of(result, "KH-LOG-031").findings
    assert "not encrypted" in finding.message and "${FLUENT_ELASTICSEARCH_HOST}" in finding.message
    assert finding.file.endswith("cm.yaml") and finding.line == 15  # the [OUTPUT] line inside the key
    assert (tmp_path / "cm.yaml").read_text().splitlines()[finding.line - 1].strip() == "[OUTPUT]"
    assert messages(result, "KH-LOG-032") == [
        "fluent-bit keeps undelivered logs only in memory (no input has storage.type filesystem (memory "
        "buffering only))"]
    assert result_of(result, "KH-LOG-033").status is Status.FAIL
    tls = dict(FB_DOCS_PLAIN)
    tls["fluent-bit.conf"] = tls["fluent-bit.conf"].replace("    Retry_Limit     False\n",
                                                            "    Retry_Limit     False\n            tls On\n")
    result = scan(tmp_path / "on", {"cm.yaml": configmap("fluent-bit", tls)})
    assert result_of(result, "KH-LOG-031").status is Status.PASS


def test_configs_in_the_input_and_nothing_else_is_not_assessed(tmp_path: Path) -> None:
    result = scan(tmp_path, {"cm.yaml": configmap("app", {"app.properties": "a=b\n"})})
    for cid in ("KH-LOG-031", "KH-LOG-032", "KH-LOG-033"):
        outcome = result_of(result, cid)
        assert outcome.status is Status.NOT_ASSESSED and "no log agent configuration" in (outcome.reason or "")


def test_unreadable_configuration_is_named_not_passed(tmp_path: Path) -> None:
    result = scan(tmp_path, {"cm.yaml": configmap("vector", {"vector.toml": "[sinks.x\ntype = 1\n"})})
    outcome = result_of(result, "KH-LOG-031")
    assert outcome.status is Status.NOT_ASSESSED
    assert "ConfigMap logging/vector data[vector.toml]:1: not valid TOML" in (outcome.reason or "")


def test_journald_from_another_agent_counts_for_node_logs(tmp_path: Path) -> None:
    vector = configmap("vector", {"vector.yaml": "sources:\n  j: {type: journald}\nsinks:\n"
                                                 "  out: {type: console, inputs: [j]}\n"})
    result = scan(tmp_path, {"fb.yaml": configmap("fluent-bit", FB_DOCS_PLAIN), "vector.yaml": vector})
    assert result_of(result, "KH-LOG-033").status is Status.PASS


NODE = """\
apiVersion: v1
kind: Node
metadata: {{name: {name}, labels: {labels}}}
spec:
  taints: {taints}
"""
AGENT = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: {name}, namespace: logging}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - {{name: agent, image: {image}}}
      tolerations: {tolerations}
      nodeSelector: {selector}
status: {status}
"""


def node(name: str, taints: str = "[]", labels: str = "{kubernetes.io/os: linux}") -> str:
    return NODE.format(name=name, labels=labels, taints=taints)


def agent(name: str = "fluent-bit", image: str = "cr.fluentbit.io/fluent/fluent-bit:3.1", tolerations: str = "[]",
          selector: str = "{}", status: str = "{}") -> str:
    return AGENT.format(name=name, image=image, tolerations=tolerations, selector=selector, status=status)


def test_agent_must_tolerate_every_taint(tmp_path: Path) -> None:
    nodes = (node("worker-1") + "---\n" + node("cp-1", "[{key: node-role.kubernetes.io/control-plane, "
                                                       "effect: NoSchedule}]")
             + "---\n" + node("soft", "[{key: x, effect: PreferNoSchedule}]")
             + "---\n" + node("cordoned", "[{key: node.kubernetes.io/unschedulable, effect: NoSchedule}]"))
    result = scan(tmp_path, {"n.yaml": nodes, "ds.yaml": agent()})
    assert messages(result, "KH-LOG-030") == [
        "no log agent runs on node 'cp-1' (fluent-bit does not tolerate "
        "node-role.kubernetes.io/control-plane:NoSchedule)"]
    [finding] = result_of(result, "KH-LOG-030").findings
    assert finding.path == "spec.taints[0]"
    ok = agent(tolerations="[{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]")
    assert result_of(scan(tmp_path / "ok", {"n.yaml": nodes, "ds.yaml": ok}), "KH-LOG-030").status is Status.PASS
    wrong_value = agent(tolerations="[{key: node-role.kubernetes.io/control-plane, value: other, "
                                    "effect: NoSchedule}]")
    assert result_of(scan(tmp_path / "v", {"n.yaml": nodes, "ds.yaml": wrong_value}),
                     "KH-LOG-030").status is Status.FAIL


def test_two_agents_cover_nodes_together_and_selectors_leave_nodes_out(tmp_path: Path) -> None:
    nodes = node("linux-1") + "---\n" + node("win-1", labels="{kubernetes.io/os: windows}")
    linux_only = agent(selector="{kubernetes.io/os: linux}")
    result = scan(tmp_path, {"n.yaml": nodes, "ds.yaml": linux_only})
    assert messages(result, "KH-LOG-030") == [
        "no log agent runs on node 'win-1' (fluent-bit: nodeSelector/affinity leaves it out)"]
    windows = agent("fluent-bit-win", "fluent/fluent-bit:3.1-windows", selector="{kubernetes.io/os: windows}")
    result = scan(tmp_path / "two", {"n.yaml": nodes, "ds.yaml": linux_only, "win.yaml": windows})
    assert result_of(result, "KH-LOG-030").status is Status.PASS


def test_agent_readiness_and_absence(tmp_path: Path) -> None:
    degraded = agent(image="timberio/vector:0.40.0-distroless-libc",
                     status="{desiredNumberScheduled: 5, numberReady: 3}")
    result = scan(tmp_path, {"ds.yaml": degraded})
    assert messages(result, "KH-LOG-030") == ["log agent DaemonSet 'fluent-bit' has 3 ready pods of 5"]
    app = agent("app", "nginx:1.27")  # a DaemonSet that is no log agent
    result = scan(tmp_path / "none", {"ds.yaml": app})
    assert result_of(result, "KH-LOG-030").status is Status.NOT_ASSESSED
    result = scan(tmp_path / "cluster", {"ds.yaml": app, "n.yaml": node("w1")}, as_cluster=True)
    assert messages(result, "KH-LOG-030") == ["node 'w1' runs no log agent (no agent DaemonSet in the cluster)"]


@pytest.mark.parametrize("image", ["grafana/alloy:v1.4.2", "docker.io/grafana/promtail:3.0.0",
                                   "fluent/fluentd-kubernetes-daemonset:v1.17-debian-elasticsearch8-1",
                                   "docker.elastic.co/beats/filebeat:8.15.0", "gcr.io/datadoghq/agent:7",
                                   "otel/opentelemetry-collector-contrib:0.110.0",
                                   "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.2"])
def test_known_agents_by_image(tmp_path: Path, image: str) -> None:
    result = scan(tmp_path, {"ds.yaml": agent(image=image), "n.yaml": node("w1")})
    assert result_of(result, "KH-LOG-030").status is Status.PASS


def test_node_root_agent_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    build_node(root, hardened=True)
    conf = root / "etc/fluent-bit"
    conf.mkdir(parents=True)
    (conf / "fluent-bit.conf").write_text("[SERVICE]\n    Flush 1\n@INCLUDE outputs.conf\n"
                                          "[INPUT]\n    Name systemd\n")
    (conf / "outputs.conf").write_text("[OUTPUT]\n    Name forward\n    Host agg.example.com\n")
    (root / "etc/rsyslog.d").mkdir(parents=True)
    (root / "etc/rsyslog.d/60-remote.conf").write_text("# forward everything\n*.* @logs.example.com:514\n")
    # a link out of the root is never followed to the machine's own files
    (root / "etc/vector").mkdir()
    os.symlink("/../../../../etc/hostname", root / "etc/vector/vector.toml")
    result = scan_texts(tmp_path, {}, only=LOG_CONTROLS, node={"root": str(root)})
    found = {(f.file, f.line, f.message) for f in result_of(result, "KH-LOG-031").findings}
    assert found == {
        (str(root / "etc/fluent-bit/outputs.conf"), 1,
         "fluent-bit output forward to agg.example.com is not encrypted (tls not set (Fluent Bit's default is off))"),
        (str(root / "etc/rsyslog.d/60-remote.conf"), 2,
         "rsyslog output omfwd to logs.example.com is not encrypted (protocol udp, stream driver ptcp, mode 0)"),
    }
    assert result_of(result, "KH-LOG-033").status is Status.PASS
