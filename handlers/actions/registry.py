"""The action registry: the one list of what the responder can do about an incident.

Each action registers itself with :func:`register`, declaring its parameters (a JSON Schema
per parameter, with its default). The registry is the single source of truth: the rule
file's schema (``rules/schema.json``) takes its list of actions and their parameters from
:func:`rule_schema_parts` (a test holds them equal; ``python -m handlers.actions``
rewrites them), and a rule's parameters travel on its :class:`~rules.Decision` and the
incident, so no action looks a rule up.

Adding an action: one module in this package with one ``@register(...)`` function, imported
by ``handlers/actions/__init__.py``; then ``python -m handlers.actions``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handlers.core.incident import Incident

if TYPE_CHECKING:
    from handlers.actions.context import ActionContext

Run = Callable[["ActionContext"], None]
#: Shapes an incident as it is first written (its first log line, maybe its status).
OnRecord = Callable[[Incident, bool], None]


def plan(incident: Incident, dry_run: bool) -> None:
    """The first log line of an action that acts later: ``planned``."""
    incident.log(
        incident.PlannedAction, "planned", "dry run: nothing is changed" if dry_run else ""
    )


@dataclass(frozen=True)
class ActionSpec:
    """One registered action.

    :ivar parameters: JSON Schema of each parameter (with a ``default``), by name; a rule
        gives them under a key named after the action.
    :ivar acts: False for an action that is complete once recorded (nothing to run later).
    """

    name: str
    run: Run
    doc: str
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    acts: bool = True
    on_record: OnRecord = plan

    def with_defaults(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The parameters a rule gave, completed with the declared defaults."""
        values = {name: schema.get("default") for name, schema in self.parameters.items()}
        values.update(given or {})
        return values


ACTIONS: dict[str, ActionSpec] = {}


def register(
    name: str,
    *,
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    acts: bool = True,
    on_record: OnRecord = plan,
) -> Callable[[Run], Run]:
    """Register the decorated function as the action ``name`` (its docstring describes it)."""

    def add(run: Run) -> Run:
        known = ACTIONS.get(name)
        if known is not None and known.run.__qualname__ != run.__qualname__:
            raise ValueError(f"action {name!r} is already {known.run.__module__}")
        doc = (run.__doc__ or "").strip().splitlines()[0]
        ACTIONS[name] = ActionSpec(name, run, doc, dict(parameters or {}), acts, on_record)
        return run

    return add


def rule_schema_parts() -> dict[str, Any]:
    """What ``rules/schema.json`` says about actions, generated from the registry.

    ``action_enum`` (the rule's ``action`` values), ``parameters`` (``$defs`` of each action's
    parameter object) and ``conditions`` (a rule gives an action's parameters exactly when it
    names that action, and only then).
    """
    with_parameters = sorted(n for n, spec in ACTIONS.items() if spec.parameters)
    parameters = {
        name: {
            "type": "object",
            "additionalProperties": False,
            "required": sorted(ACTIONS[name].parameters),
            "properties": {
                key: {k: v for k, v in schema.items() if k != "default"}
                for key, schema in ACTIONS[name].parameters.items()
            },
        }
        for name in with_parameters
    }
    conditions = [
        {
            "if": {"properties": {"action": {"const": name}}},
            "then": {"required": [name]},
            "else": {"not": {"required": [name]}},
        }
        for name in with_parameters
    ]
    return {"action_enum": sorted(ACTIONS), "parameters": parameters, "conditions": conditions}


def apply_to_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (the rule file's) with its action parts replaced by the registry's."""
    parts = rule_schema_parts()
    rule = schema["$defs"]["rule"]
    rule["properties"]["action"] = {"enum": parts["action_enum"]}
    for name in parts["parameters"]:
        rule["properties"][name] = {"$ref": f"#/$defs/parameters/{name}"}
    schema["$defs"]["parameters"] = parts["parameters"]
    rule["allOf"] = parts["conditions"]
    return schema


def write_rule_schema(path: Path) -> None:
    """Rewrite the action parts of the rule file schema at ``path`` from the registry."""
    schema = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(apply_to_schema(schema), indent=2, ensure_ascii=False) + "\n")
