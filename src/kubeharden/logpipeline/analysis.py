"""What a log agent configuration means: where each output sends and whether with TLS and
certificate verification, how it buffers, which inputs collect node (kubelet, journald, syslog)
logs. Pure functions over the parsed configurations; each answer keeps the setting and line it
rests on."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kubeharden.logpipeline import AgentConfig, Block, fluentd

_TRUE = {"on", "true", "yes", "1"}
_FALSE = {"off", "false", "no", "0"}

# Outputs that do not leave the node (or only serve): nothing to encrypt.
LOCAL_OUTPUTS = {
    "fluent-bit": {"stdout", "null", "file", "counter", "flowcounter", "exit", "prometheus_exporter", "plot", "lib"},
    "fluentd": {"stdout", "null", "file", "copy", "relabel", "rewrite_tag_filter", "exec", "exec_filter",
                "roundrobin", "secondary_file", "prometheus"},
    "vector": {"console", "blackhole", "file", "prometheus_exporter"},
}
# Outputs whose client always speaks HTTPS to a cloud API (the SDK verifies the certificate).
CLOUD_OUTPUTS = {
    "fluent-bit": {"cloudwatch_logs", "kinesis_firehose", "kinesis_streams", "s3", "stackdriver", "bigquery",
                   "azure_kusto", "azure_logs_ingestion"},
    "fluentd": {"s3", "cloudwatch_logs", "kinesis_streams", "kinesis_firehose", "google_cloud", "bigquery_insert",
                "azure-loganalytics", "azure_storage_append_blob"},
    "vector": {"aws_cloudwatch_logs", "aws_kinesis_firehose", "aws_kinesis_streams", "aws_s3", "aws_sqs",
               "gcp_stackdriver_logs", "gcp_cloud_storage", "gcp_pubsub", "gcp_chronicle_unstructured",
               "azure_monitor_logs", "azure_blob", "datadog_logs", "new_relic", "honeycomb", "axiom"},
}
# Node log inputs: the kubelet and container runtime write to journald or syslog files.
_NODE_LOG_PATH_RE = re.compile(r"/var/log/(?:syslog|messages|kubelet|journal|kern|daemon|\*(?:\.log)?(?:$|[\s,]))")


@dataclass
class Transport:
    """Where an output sends and how. ``tls``/``verify`` are None when the configuration leaves it
    to a variable kubeharden cannot resolve."""

    config: AgentConfig
    block: Block
    destination: str
    scope: str  # local | cluster | external | unknown
    tls: bool | None
    verify: bool | None
    evidence: str  # the settings the answer rests on
    line: int | None


@dataclass
class Buffering:
    config: AgentConfig
    block: Block | None  # the output (Fluentd, Vector) or None (Fluent Bit: pipeline-wide)
    persistent: bool
    evidence: str
    line: int | None
    retries: str | None = None  # a retry setting that drops data early
    retries_line: int | None = None
    at: Block | None = None  # the block the line belongs to (its file), when not ``block``


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _variable(text: str) -> bool:
    return "${" in text or "#{" in text or "{{" in text


def host_scope(host: str) -> str:
    host = host.strip().strip("[]").lower()
    if not host or _variable(host):
        return "unknown"
    if host.startswith("/") or host.startswith("unix:"):
        return "local"
    if host in ("localhost", "localhost.localdomain") or host.startswith("127."):
        return "local"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host.endswith((".svc", ".svc.cluster.local", ".cluster.local")) or "." not in host:
            return "cluster"  # a Service name: traffic between pods, still on the network
        return "external"
    if address.is_loopback:
        return "local"
    return "cluster" if address.is_private else "external"


def _url(text: str) -> tuple[str | None, str]:
    """(scheme, host) of a URL-ish setting; scheme None without one."""
    text = str(text).strip()
    if "://" not in text:
        return None, text.split(":", 1)[0] if not text.startswith("[") else text
    parts = urlsplit(text)
    return parts.scheme.lower(), parts.hostname or ""


# ---------------------------------------------------------------------------------------------
# Transports


def transports(config: AgentConfig) -> list[Transport]:
    handler = {"fluent-bit": _fluentbit_transport, "fluentd": _fluentd_transports, "vector": _vector_transport,
               "promtail": _promtail_transport, "rsyslog": _rsyslog_transport,
               "systemd-journal-upload": _journal_upload_transport}.get(config.agent)
    if handler is None:
        return []
    out: list[Transport] = []
    blocks = fluentd.outputs(config) if config.agent == "fluentd" else config.of_kind("output")
    for block in blocks:
        found = handler(config, block)
        out.extend(found if isinstance(found, list) else [found] if found is not None else [])
    return out


def _fluentbit_transport(config: AgentConfig, block: Block) -> Transport | None:
    plugin = block.type
    if plugin in LOCAL_OUTPUTS["fluent-bit"] or block.get("unix_path"):
        return None
    if plugin in CLOUD_OUTPUTS["fluent-bit"]:
        endpoint = str(block.get("endpoint") or "")
        scheme, host = _url(endpoint) if endpoint else ("https", f"{plugin} API")
        if scheme != "http":
            return Transport(config, block, host, "external", True, _fluentbit_verify(block), f"{plugin}: HTTPS API",
                             block.line)
    host = str(block.get("host") or "127.0.0.1")
    if block.get("upstream"):
        host = f"upstream {block.get('upstream')}"
    scope = "unknown" if block.get("upstream") else host_scope(host)
    if scope == "local":
        return None
    tls_value = block.get("tls")
    tls = _flag(tls_value) if tls_value is not None else False
    evidence = f"tls {tls_value}" if tls_value is not None else "tls not set (Fluent Bit's default is off)"
    verify = _fluentbit_verify(block) if tls else None
    if tls and verify is False:
        evidence += f", tls.verify {block.get('tls.verify')}"
    line = block.line_of("tls") if tls_value is not None else block.line
    if tls and verify is False:
        line = block.line_of("tls.verify")
    return Transport(config, block, host, scope, tls, verify, evidence, line)


def _fluentbit_verify(block: Block) -> bool | None:
    value = block.get("tls.verify")
    return True if value is None else _flag(value)


def _fluentd_transports(config: AgentConfig, block: Block) -> list[Transport]:
    if block.type == "copy":
        return [t for store in block.children if store.kind == "store"
                for t in _fluentd_transports(config, store)]
    plugin = block.type
    if plugin in LOCAL_OUTPUTS["fluentd"]:
        return []
    if plugin in CLOUD_OUTPUTS["fluentd"]:
        endpoint = str(block.get("endpoint") or block.get("s3_endpoint") or "")
        if not endpoint.startswith("http://"):
            return [Transport(config, block, f"{plugin} API", "external", True, True, f"{plugin}: HTTPS API",
                              block.line)]
    if plugin == "forward":
        servers = [c for c in block.children if c.kind == "server"] or [block]
        transport = str(block.get("transport") or "tcp").lower()
        tls = transport == "tls"
        insecure = _flag(block.get("tls_insecure_mode")) is True
        no_hostname = _flag(block.get("tls_verify_hostname")) is False
        self_signed = _flag(block.get("tls_allow_self_signed_cert")) is True
        verify = not (insecure or no_hostname or self_signed) if tls else None
        weak = [k for k, bad in (("tls_insecure_mode true", insecure), ("tls_verify_hostname false", no_hostname),
                                 ("tls_allow_self_signed_cert true", self_signed)) if bad]
        evidence = (f"transport {transport}" if block.get("transport") else "transport not set (tcp)") + (
            ", " + ", ".join(weak) if weak and tls else "")
        line = block.line_of("transport")
        if tls and weak:
            line = next(block.line_of(k.split()[0]) for k in weak)
        out = []
        for server in servers:
            host = str(server.get("host") or "localhost")
            scope = host_scope(host)
            if scope != "local":
                out.append(Transport(config, block, host, scope, tls, verify, evidence, line))
        return out
    # HTTP-style outputs: a URL setting decides; else host + scheme/ssl settings
    for key in ("endpoint", "url", "hosts", "uri", "server_url"):
        value = block.get(key)
        if value:
            first = str(value).split(",")[0]
            scheme, host = _url(first)
            if scheme is None:
                scheme = str(block.get("scheme") or block.get("protocol") or "http").lower()
            return _fluentd_http(config, block, host, scheme, f"{key} {first}", block.line_of(key))
    host = str(block.get("host") or "localhost")
    scheme_value = block.get("scheme") or block.get("protocol")
    if scheme_value is None and plugin == "splunk_hec":
        scheme_value = "https"  # fluent-plugin-splunk-hec's default
    tls_value = block.get("tls") or block.get("ssl") or block.get("use_ssl") or block.get("ssl_ca_cert")
    scheme = str(scheme_value or ("https" if _flag(tls_value) or (tls_value and _flag(tls_value) is None) else "http"))
    key = "scheme" if block.get("scheme") else "protocol" if block.get("protocol") else "host"
    return _fluentd_http(config, block, host, scheme.lower(), f"{key} {scheme_value or host}", block.line_of(key))


def _fluentd_http(config: AgentConfig, block: Block, host: str, scheme: str, evidence: str,
                  line: int | None) -> list[Transport]:
    scope = host_scope(host)
    if scope == "local":
        return []
    tls = scheme in ("https", "tls", "ssl") if not _variable(scheme) else None
    verify: bool | None = None
    if tls:
        verify = True
        for key, bad in (("ssl_verify", "false"), ("tls_verify_mode", "none"), ("insecure_tls", "true"),
                         ("insecure_ssl", "true"), ("verify_ssl", "false"), ("ssl_verify_peer", "false")):
            value = block.get(key)
            if value is not None and str(value).lower() == bad:
                verify, evidence, line = False, f"{evidence}, {key} {value}", block.line_of(key)
    return [Transport(config, block, host, scope, tls, verify, evidence, line)]


def _tls_table(block: Block) -> dict[str, Any]:
    tls = block.get("tls")
    return tls if isinstance(tls, dict) else {}


def _vector_transport(config: AgentConfig, block: Block) -> Transport | None:
    plugin = block.type
    if plugin in LOCAL_OUTPUTS["vector"]:
        return None
    tls = _tls_table(block)
    verify = not (tls.get("verify_certificate") is False or tls.get("verify_hostname") is False)
    weak = ", ".join(f"tls.{k} = false" for k in ("verify_certificate", "verify_hostname") if tls.get(k) is False)
    tls_line = block.line_of("tls")
    for key in ("endpoint", "endpoints", "uri", "url"):
        value = block.get(key)
        if value:
            first = str(value[0] if isinstance(value, list) and value else value)
            scheme, host = _url(first)
            scope = host_scope(host)
            if scope == "local":
                return None
            secure = scheme == "https" if scheme is not None and not _variable(first) else None
            evidence = f"{key} {first}" + (f", {weak}" if weak and secure else "")
            line = tls_line if secure and not verify else block.line_of(key)
            return Transport(config, block, host, scope, secure, verify if secure else None, evidence, line)
    if plugin in CLOUD_OUTPUTS["vector"]:
        return Transport(config, block, f"{plugin} API", "external", True, verify, f"{plugin}: HTTPS API"
                         + (f", {weak}" if weak else ""), tls_line)
    address = str(block.get("address") or block.get("bootstrap_servers") or block.get("url") or "")
    if plugin == "socket" and str(block.get("mode") or "").lower() == "unix":
        return None
    host = _url(address)[1] if address else ""
    scope = host_scope(host) if host else "unknown"
    if scope == "local":
        return None
    enabled = tls.get("enabled")
    secure = enabled is True
    evidence = ("tls.enabled = true" if secure else "tls.enabled not set (off)" if enabled is None
                else "tls.enabled = false")
    if secure and weak:
        evidence += f", {weak}"
    return Transport(config, block, host or plugin, scope, secure, verify if secure else None, evidence,
                     tls_line if tls else block.line)


def _promtail_transport(config: AgentConfig, block: Block) -> Transport | None:
    url = str(block.get("url") or "")
    scheme, host = _url(url)
    scope = host_scope(host)
    if scope == "local":
        return None
    tls_config = block.get("tls_config")
    insecure = isinstance(tls_config, dict) and tls_config.get("insecure_skip_verify") is True
    secure = scheme == "https" if not _variable(url) else None
    evidence = f"url {url}" + (", tls_config.insecure_skip_verify: true" if insecure and secure else "")
    line = block.line_of("tls_config") if insecure and secure else block.line_of("url")
    return Transport(config, block, host, scope, secure, (not insecure) if secure else None, evidence, line)


def _rsyslog_transport(config: AgentConfig, block: Block) -> Transport | None:
    service = next(iter(config.of_kind("service")), Block("service", ""))
    host = str(block.get("target") or "")
    scope = host_scope(host)
    if scope == "local":
        return None
    if block.type == "omrelp":
        tls = _flag(block.get("tls")) is True
        mode = str(block.get("tls.authmode") or "").lower()
        verify = bool(mode) and mode != "anon" if tls else None
        evidence = f"omrelp tls=\"{block.get('tls') or 'off'}\""
        if tls:
            evidence += f", tls.authmode=\"{mode or 'unset'}\""
        return Transport(config, block, host, scope, tls, verify, evidence, block.line)
    if block.type == "omhttp":
        tls = _flag(block.get("usehttps")) is not False
        return Transport(config, block, host, scope, tls, True if tls else None,
                         f"omhttp usehttps=\"{block.get('usehttps') or 'on'}\"", block.line)
    protocol = str(block.get("protocol") or "udp").lower()
    driver = str(block.get("streamdriver") or service.get("defaultnetstreamdriver") or "ptcp").lower()
    mode = str(block.get("streamdrivermode") or service.get("actionsendstreamdrivermode") or "0")
    auth = str(block.get("streamdriverauthmode") or service.get("actionsendstreamdriverauthmode") or "anon").lower()
    tls = protocol == "tcp" and driver in ("gtls", "ossl") and mode == "1"
    verify = auth in ("x509/name", "x509/fingerprint") if tls else None
    evidence = (f"protocol {protocol}, stream driver {driver}, mode {mode}" + (f", auth mode {auth}" if tls else ""))
    return Transport(config, block, host, scope, tls, verify, evidence, block.line)


def _journal_upload_transport(config: AgentConfig, block: Block) -> Transport | None:
    url = str(block.get("url") or "")
    scheme, host = _url(url if "://" in url else f"https://{url}")
    scope = host_scope(host)
    if scope == "local":
        return None
    tls = scheme == "https"
    trusted = str(block.get("trustedcertificatefile") or "")
    verify = trusted != "all" if tls else None
    evidence = f"URL={url}" + (", TrustedCertificateFile=all" if tls and not verify else "")
    line = block.line_of("trustedcertificatefile") if tls and not verify else block.line_of("url")
    return Transport(config, block, host, scope, tls, verify, evidence, line)


# ---------------------------------------------------------------------------------------------
# Buffering


def buffering(config: AgentConfig) -> list[Buffering]:
    """How each pipeline keeps data while its destination is down. Fluent Bit buffers per input
    (storage.type filesystem, with a service storage.path); Fluentd per <match> (<buffer> @type
    file); Vector per sink (buffer.type = "disk"). Other agents: not modelled."""
    remote = [t.block for t in transports(config)]
    if not remote:
        return []
    if config.agent == "fluent-bit":
        return _fluentbit_buffering(config, remote)
    if config.agent == "fluentd":
        return [_fluentd_buffering(config, block) for block in _unique(remote)]
    if config.agent == "vector":
        return [_vector_buffering(config, block) for block in _unique(remote)]
    return []


def _unique(blocks: list[Block]) -> list[Block]:
    seen: list[Block] = []
    for block in blocks:
        if all(b is not block for b in seen):
            seen.append(block)
    return seen


def _fluentbit_buffering(config: AgentConfig, outputs: list[Block]) -> list[Buffering]:
    service = next(iter(config.of_kind("service")), None)
    path = service.get("storage.path") if service is not None else None
    inputs = config.of_kind("input")
    on_disk = [i for i in inputs if str(i.get("storage.type") or "memory").lower() == "filesystem"]
    out: list[Buffering] = []
    if not path or not on_disk:
        if not path and on_disk:
            evidence = "storage.type filesystem without a [SERVICE] storage.path"
            at: Block | None = on_disk[0]
            line = on_disk[0].line_of("storage.type")
        else:
            evidence = "no input has storage.type filesystem (memory buffering only)"
            at = inputs[0] if inputs else service
            line = at.line if at is not None else None
        out.append(Buffering(config, None, False, evidence, line, at=at))
    for block in _unique(outputs):
        limit = block.get("retry_limit")
        text = str(limit).strip().lower() if limit is not None else "1"
        if text in ("no_retries", "0") or text == "1":
            shown = f"Retry_Limit {limit}" if limit is not None else "Retry_Limit not set (Fluent Bit retries once)"
            out.append(Buffering(config, block, True, "", block.line, shown, block.line_of("retry_limit")))
    return out


def _fluentd_buffering(config: AgentConfig, block: Block) -> Buffering:
    buffer = next((c for c in block.children if c.kind == "buffer"), None)
    kind = buffer.type if buffer is not None and buffer.type else "memory"
    if buffer is None:
        evidence, line = f"<match {block.name}> has no <buffer> (the {block.type} output buffers in memory)", block.line
    else:
        evidence, line = f"<buffer> @type {kind}", buffer.line_of("@type")
    retries: str | None = None
    retries_line: int | None = None
    max_times = buffer.get("retry_max_times") if buffer is not None else None
    if buffer is not None and max_times is not None and _flag(buffer.get("retry_forever")) is not True:
        try:
            if int(str(max_times)) <= 1:
                retries, retries_line = f"retry_max_times {max_times}", buffer.line_of("retry_max_times")
        except ValueError:
            pass
    return Buffering(config, block, kind == "file", evidence, line, retries, retries_line)


def _vector_buffering(config: AgentConfig, block: Block) -> Buffering:
    buffer = block.get("buffer")
    stages = buffer if isinstance(buffer, list) else [buffer] if isinstance(buffer, dict) else []
    kinds = [str(stage.get("type", "memory")).lower() for stage in stages if isinstance(stage, dict)] or ["memory"]
    persistent = "disk" in kinds or "disk_v1" in kinds
    evidence = f"buffer.type = {kinds[0]!r}" if stages else "no buffer table (memory, 500 events)"
    line = block.line_of("buffer") if stages else block.line
    drops = [s for s in stages if isinstance(s, dict) and str(s.get("when_full", "block")) == "drop_newest"]
    retries = "buffer.when_full = \"drop_newest\"" if drops and not persistent else None
    return Buffering(config, block, persistent, evidence, line, retries, line if retries else None)


# ---------------------------------------------------------------------------------------------
# Node (kubelet, runtime, journald, syslog) inputs


def node_log_inputs(config: AgentConfig) -> list[tuple[Block, str]]:
    """Inputs that collect the node's own logs (journald, syslog files, kubelet logs), each with
    why it counts."""
    found: list[tuple[Block, str]] = []
    for block in config.of_kind("input"):
        plugin = block.type
        if config.agent in ("rsyslog", "systemd-journal-upload"):
            found.append((block, f"{config.agent} forwards the system log"))
        elif plugin in ("systemd", "systemd_journal", "journald", "journal", "kmsg", "syslog"):
            found.append((block, f"{plugin} input"))
        else:
            paths: Any = block.get("path") or block.get("include") or block.get("__path__") or ""
            text = " ".join(map(str, paths)) if isinstance(paths, list) else str(paths)
            if _NODE_LOG_PATH_RE.search(text):
                found.append((block, f"{plugin or 'file'} input of {text}"))
    return [(b, why) for b, why in found if not _is_container_only(b)]


def _is_container_only(block: Block) -> bool:
    paths: Any = block.get("path") or block.get("include") or block.get("__path__") or ""
    text = " ".join(map(str, paths)) if isinstance(paths, list) else str(paths)
    return bool(text) and all(p.startswith(("/var/log/containers", "/var/log/pods"))
                              for p in re.split(r"[\s,]+", text.strip()) if p)
