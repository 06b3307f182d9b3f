"""Load rule files: YAML, checked against ``schema.json``, compiled into a :class:`RuleSet`.

A broken file fails fast with :class:`RuleFileError`, whose message names the file, the rule
and the reason, e.g. ``rules.yaml: rule 'vm-gone' (rules[3]): 'ticket' is not one of ...``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from rules.engine import (
    DEFAULT_WORKLOADS,
    Clause,
    Rule,
    RuleSet,
    normalize_code,
    normalize_operation,
    normalize_text,
)

RULES_DIR = Path(__file__).resolve().parent
BUILTIN_RULES = RULES_DIR / "rules.yaml"
SCHEMA_PATH = RULES_DIR / "schema.json"


class RuleFileError(ValueError):
    """A rule file cannot be used. The message names the file, the rule and the reason."""


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _where(document: Any, path: list[Any]) -> str:
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        rule = document["rules"][path[1]]
        rule_id = rule.get("id", "?") if isinstance(rule, dict) else "?"
        inner = "/".join(str(p) for p in path[2:])
        return f"rule {rule_id!r} (rules[{path[1]}]{'/' + inner if inner else ''})"
    return "/".join(str(p) for p in path) or "top level"


def _reason(error: jsonschema.ValidationError) -> str:
    # The schema's if/then/else on each action's parameters yields an unreadable "should not
    # be valid under".
    value = error.validator_value
    if error.validator == "not" and isinstance(value, dict) and list(value) == ["required"]:
        name = value["required"][0]
        return f"{name!r} parameters are only allowed when action is {name!r}"
    return error.message


def _terms(raw: list[str] | None, file: str, rule_id: str) -> tuple[str, ...]:
    terms = tuple(normalize_text(t) for t in raw or ())
    if any(not t for t in terms):
        raise RuleFileError(f"{file}: rule {rule_id!r}: a term has no letters or digits")
    return terms


def _compile(raw: dict[str, Any], file: str, user: bool) -> Rule:
    match = raw["match"]
    clauses = tuple(
        Clause(
            all=_terms(c.get("all"), file, raw["id"]),
            any=_terms(c.get("any"), file, raw["id"]),
            none=_terms(c.get("none"), file, raw["id"]),
        )
        for c in match.get("text", ())
    )
    require_both = match.get("require") == "code_and_text"
    if require_both and not (clauses and match.get("codes")):
        raise RuleFileError(f"{file}: rule {raw['id']!r}: code_and_text needs codes and text")
    return Rule(
        id=raw["id"],
        title=raw["title"].strip(),
        category=raw["category"],
        action=raw["action"],
        remediation_en=raw["remediation"]["en"].strip(),
        remediation_ja=raw["remediation"]["ja"].strip(),
        doc=raw["doc"],
        codes=frozenset(normalize_code(c) for c in match.get("codes", ())),
        clauses=clauses,
        operations=frozenset(normalize_operation(o) for o in match.get("operations", ())),
        workloads=frozenset(match.get("workloads", DEFAULT_WORKLOADS)),
        require_both=require_both,
        defers_to_text=match.get("code_defers_to_text", False),
        params=dict(raw.get(raw["action"]) or {}),
        rows=tuple(raw.get("rows", ())),
        user=user,
    )


def load_rules(path: str | Path, *, user: bool = False) -> list[Rule]:
    """Read, validate and compile one rule file.

    :raises RuleFileError: unreadable file, YAML syntax error, schema violation, duplicate id.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RuleFileError(f"{path}: cannot read rules: {exc}") from exc
    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        raise RuleFileError(
            f"{path}: {_where(document, list(error.absolute_path))}: {_reason(error)}"
        )
    rules = [_compile(raw, str(path), user) for raw in document["rules"]]
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise RuleFileError(f"{path}: rule {rule.id!r}: duplicate id")
        seen.add(rule.id)
    return rules


def load_rule_set(user_rules_path: str | Path | None = None) -> RuleSet:
    """The built-in rules, with the user's rules (if any) first and replacing same-id rules."""
    builtin = load_rules(BUILTIN_RULES)
    if not user_rules_path:
        return RuleSet(builtin)
    user = load_rules(user_rules_path, user=True)
    replaced = {r.id for r in user}
    return RuleSet([*user, *(r for r in builtin if r.id not in replaced)])
