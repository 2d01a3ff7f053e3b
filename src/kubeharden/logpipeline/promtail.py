"""Promtail configuration (YAML): ``clients`` (or the older single ``client``) are the outputs,
``scrape_configs`` the inputs (journal, syslog, files through ``__path__`` labels, Kubernetes
discovery)."""

from __future__ import annotations

from typing import Any

from kubeharden.logpipeline import AgentConfig, Block, Param, Problem
from kubeharden.logpipeline.structured import LineFinder


def looks_promtail(data: Any) -> bool:
    return isinstance(data, dict) and "scrape_configs" in data and ("clients" in data or "client" in data)


def parse(data: dict[str, Any], where: str, lines: LineFinder) -> AgentConfig:
    config = AgentConfig("promtail", where)
    clients: list[tuple[tuple[Any, ...], Any]] = []
    if isinstance(data.get("clients"), list):
        clients = [(("clients", i), c) for i, c in enumerate(data["clients"])]
    elif isinstance(data.get("client"), dict):
        clients = [(("client",), data["client"])]
    for path, client in clients:
        if not isinstance(client, dict):
            config.problems.append(Problem("a client is not a mapping", lines(path), where))
            continue
        block = Block("output", "loki", line=lines(path), file=where)
        for key, value in client.items():
            block.params[str(key)] = Param(value, lines((*path, key)))
        config.blocks.append(block)
    scrape = data.get("scrape_configs")
    for index, job in enumerate(scrape if isinstance(scrape, list) else []):
        if not isinstance(job, dict):
            continue
        path = ("scrape_configs", index)
        kind = next((k for k in ("journal", "syslog", "kubernetes_sd_configs", "static_configs",
                                 "file_sd_configs", "loki_push_api") if k in job), "other")
        block = Block("input", {"kubernetes_sd_configs": "kubernetes", "static_configs": "file",
                                "file_sd_configs": "file"}.get(kind, kind), line=lines(path),
                      name=str(job.get("job_name", "")), file=where)
        for key, value in job.items():
            block.params[str(key)] = Param(value, lines((*path, key)))
        paths = [str((sc.get("labels") or {}).get("__path__")) for sc in job.get("static_configs") or []
                 if isinstance(sc, dict) and isinstance(sc.get("labels"), dict) and sc["labels"].get("__path__")]
        if paths:
            block.params["__path__"] = Param(paths, block.line)
        config.blocks.append(block)
    return config
