"""RBAC analysis: effective permissions of subjects, who-can questions, risky grants."""

from kubeharden.rbac.engine import (
    Binding,
    Grant,
    Problem,
    RbacModel,
    Request,
    Role,
    Rule,
    Subject,
    UserInfo,
    effective_namespace,
    model_for,
    parse_resource,
    rule_allows,
)

__all__ = [
    "Binding", "Grant", "Problem", "RbacModel", "Request", "Role", "Rule", "Subject", "UserInfo",
    "effective_namespace", "model_for", "parse_resource", "rule_allows",
]
