"""Offline evaluation of ValidatingAdmissionPolicies: what a cluster would answer, without a cluster.

CEL runs in ``common-expression-language`` (the Rust ``cel`` crate): measured on the CEL that
kubeharden generates, it agrees with cel-go's semantics where they matter here (heterogeneous
equality is false, not an error; map ``all`` iterates keys) and is about 40 times faster than
cel-python. The Kubernetes library functions the policies use are added here (``join``; ``matches``
is native). As the API server does, objects are judged without their null fields (a typed decode
drops them), policies match by resource rules and bindings by namespace, matchConditions first,
then variables in order, then validations; an evaluation error counts as a failure
(failurePolicy: Fail).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubeharden.admission.vap import KIND_RESOURCES


class CelUnavailable(RuntimeError):
    """The optional CEL library is not installed."""


def _cel() -> Any:
    try:
        import cel
    except ImportError:
        raise CelUnavailable("evaluating CEL needs the common-expression-language package "
                             "(pip install 'common-expression-language>=0.10,<0.11')") from None
    return cel


def _join(items: list[Any], separator: str = "") -> str:
    return separator.join(str(i) for i in items)


FUNCTIONS = {"join": _join}


def prune_nulls(value: Any) -> Any:
    """The object as the API server hands it to CEL: null fields absent."""
    if isinstance(value, dict):
        return {k: prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_nulls(v) for v in value]
    return value


class PolicyError(ValueError):
    """A policy document that does not compile or is not a ValidatingAdmissionPolicy we can judge."""


@dataclass
class _Program:
    source: str
    program: Any
    names: tuple[str, ...]  # the top-level variables it reads

    def run(self, env: dict[str, Any], functions: dict[str, Any]) -> Any:
        cel = _cel()
        return self.program.execute(cel.Context({n: env[n] for n in self.names if n in env}, functions))


def _compile(expression: Any, where: str) -> _Program:
    cel = _cel()
    if not isinstance(expression, str) or not expression.strip():
        raise PolicyError(f"{where}: expression must be a non-empty string")
    try:
        program = cel.compile(expression)
    except (ValueError, RuntimeError) as exc:
        raise PolicyError(f"{where}: does not compile: {str(exc).splitlines()[0][:200]}") from None
    names = tuple(n for n in ("object", "oldObject", "request", "variables", "params", "namespaceObject")
                  if n in set(program.variables()))
    return _Program(expression, program, names)


@dataclass
class Policy:
    name: str
    control: str
    rules: list[tuple[set[str], set[str]]]  # (apiGroups, resources)
    match_conditions: list[tuple[str, _Program]]
    variables: list[tuple[str, _Program]]
    validations: list[tuple[_Program, _Program | None, str]]  # expression, messageExpression, message
    bindings: list[dict[str, Any]] = field(default_factory=list)

    def matches(self, obj: dict[str, Any]) -> bool:
        group_resource = KIND_RESOURCES.get(str(obj.get("kind") or ""))
        if group_resource is None:
            return False
        # matchPolicy Equivalent (the default): an extensions/v1beta1 DaemonSet is judged as the apps/v1 one
        group, resource = group_resource
        return any(resource in resources and (group in groups or "*" in groups) for groups, resources in self.rules)


@dataclass
class Verdict:
    policy: str
    control: str
    allowed: bool
    messages: list[str]
    actions: list[str]
    error: str | None = None


def _selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    if not isinstance(selector, dict):
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


class PolicySet:
    """Compiled ValidatingAdmissionPolicies and their bindings."""

    def __init__(self, documents: Iterable[dict[str, Any]]) -> None:
        self.policies: dict[str, Policy] = {}
        bindings = []
        for doc in documents:
            kind = doc.get("kind") if isinstance(doc, dict) else None
            if kind == "ValidatingAdmissionPolicy":
                policy = self._policy(doc)
                self.policies[policy.name] = policy
            elif kind == "ValidatingAdmissionPolicyBinding":
                bindings.append(doc)
        for binding in bindings:
            spec = binding.get("spec") or {}
            target = self.policies.get(str(spec.get("policyName") or ""))
            if target is not None:
                target.bindings.append(spec)
        self.functions = dict(FUNCTIONS)

    @staticmethod
    def _policy(doc: dict[str, Any]) -> Policy:
        meta = doc.get("metadata") or {}
        name = str(meta.get("name") or "")
        spec = doc.get("spec") or {}
        where = f"ValidatingAdmissionPolicy {name}"
        if spec.get("paramKind"):
            raise PolicyError(f"{where}: policies with paramKind are not evaluated offline")
        rules = []
        for rule in (spec.get("matchConstraints") or {}).get("resourceRules") or []:
            rules.append((set(rule.get("apiGroups") or []), set(rule.get("resources") or [])))
        conditions = [(str(c.get("name")), _compile(c.get("expression"), f"{where} matchCondition {c.get('name')}"))
                      for c in spec.get("matchConditions") or []]
        variables = [(str(v.get("name")), _compile(v.get("expression"), f"{where} variable {v.get('name')}"))
                     for v in spec.get("variables") or []]
        validations = []
        for i, v in enumerate(spec.get("validations") or []):
            message_expr = v.get("messageExpression")
            validations.append((_compile(v.get("expression"), f"{where} validation {i}"),
                                _compile(message_expr, f"{where} validation {i} messageExpression")
                                if message_expr else None, str(v.get("message") or "")))
        control = str((meta.get("annotations") or {}).get("kubeharden.io/control") or name)
        return Policy(name, control, rules, conditions, variables, validations)

    def evaluate(self, obj: dict[str, Any], operation: str = "CREATE", namespace: str | None = None,
                 username: str = "", all_namespaces: bool = False) -> list[Verdict]:
        """The verdict of every policy that matches the object and has a binding that selects it
        (``all_namespaces``: a binding selects every namespace, as if none were excluded)."""
        obj = prune_nulls(obj)
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        ns = namespace or str(meta.get("namespace") or "")
        ns_labels = {"kubernetes.io/metadata.name": ns} if ns else {}
        request = {"operation": operation, "namespace": ns, "userInfo": {"username": username},
                   "kind": {"kind": obj.get("kind")}}
        out = []
        cache: dict[tuple[str, ...], Any] = {}  # variables shared by the policies: evaluated once per object
        for policy in self.policies.values():
            bindings = [b for b in policy.bindings if all_namespaces
                        or _selector_matches((b.get("matchResources") or {}).get("namespaceSelector"), ns_labels)]
            if not bindings or not policy.matches(obj):
                continue
            env: dict[str, Any] = {"object": obj, "oldObject": None, "request": request}
            try:
                if not all(prog.run(env, self.functions) is True for _, prog in policy.match_conditions):
                    continue
                variables: dict[str, Any] = {}
                env["variables"] = variables
                key: tuple[str, ...] = ()
                for name, prog in policy.variables:
                    key = (*key, prog.source)  # a variable depends on those before it
                    if key not in cache:
                        cache[key] = prog.run(env, self.functions)
                    variables[name] = cache[key]
                messages = []
                for expr, message_expr, message in policy.validations:
                    if expr.run(env, self.functions) is not True:
                        text = message_expr.run(env, self.functions) if message_expr else message
                        messages.append(str(text or message or f"failed: {expr.source[:80]}"))
            except (ValueError, RuntimeError, TypeError, KeyError) as exc:
                out.append(Verdict(policy.name, policy.control, False, [], _actions(bindings),
                                   error=str(exc).splitlines()[0][:200]))
                continue
            out.append(Verdict(policy.name, policy.control, not messages, messages, _actions(bindings)))
        return out


def _actions(bindings: list[dict[str, Any]]) -> list[str]:
    return sorted({str(a) for b in bindings for a in b.get("validationActions") or []})
