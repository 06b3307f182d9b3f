"""The action registry is the single source of truth for what a rule may ask for."""

from __future__ import annotations

import copy
import json

import pytest

from handlers.actions import ACTIONS, registry
from handlers.actions.registry import apply_to_schema, register, rule_schema_parts
from rules.loader import SCHEMA_PATH, RuleFileError, load_rules


def test_rule_schema_action_parts_are_the_registrys() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    regenerated = apply_to_schema(copy.deepcopy(schema))
    assert schema == regenerated, "regenerate with: python -m handlers.actions"
    rule = schema["$defs"]["rule"]
    assert (
        rule["properties"]["action"]["enum"]
        == sorted(ACTIONS)
        == [
            "await_healing",
            "record",
            "retry",
            "stop_protection",
            "ticket",
        ]
    )
    assert schema["$defs"]["parameters"]["retry"]["required"] == ["delay_minutes", "max_attempts"]


def test_every_action_declares_itself() -> None:
    for name, spec in ACTIONS.items():
        assert spec.name == name and spec.doc, name
        for parameter, declared in spec.parameters.items():
            assert "default" in declared and "type" in declared, (name, parameter)
    assert not ACTIONS["record"].acts and ACTIONS["retry"].acts


def test_a_new_action_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "ACTIONS", dict(ACTIONS))  # the real one is left as it was

    @register("snooze", parameters={"hours": {"type": "integer", "minimum": 1, "default": 4}})
    def snooze(ctx: object) -> None:
        """Wait before acting."""

    parts = rule_schema_parts()
    assert "snooze" in parts["action_enum"] and "snooze" not in ACTIONS
    assert parts["parameters"]["snooze"]["properties"]["hours"] == {"type": "integer", "minimum": 1}
    assert registry.ACTIONS["snooze"].with_defaults({}) == {"hours": 4}
    with pytest.raises(ValueError, match="already"):
        register("ticket")(snooze)


def _rule_file(tmp_path, **rule) -> str:  # type: ignore[no-untyped-def]
    body = {
        "id": "my-rule",
        "title": "Mine",
        "category": "transient",
        "action": "ticket",
        "match": {"codes": ["X1"]},
        "remediation": {"en": "Do it.", "ja": "やってください。"},
        "doc": "https://learn.microsoft.com/azure/backup/",
        **rule,
    }
    path = tmp_path / "rules.yaml"
    path.write_text(json.dumps({"schema_version": 1, "rules": [body]}), encoding="utf-8")
    return str(path)


def test_parameters_travel_from_the_rule_to_the_decision(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _rule_file(tmp_path, action="retry", retry={"delay_minutes": 5, "max_attempts": 3})
    (rule,) = load_rules(path)
    assert rule.params == {"delay_minutes": 5, "max_attempts": 3}


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ({"action": "retry"}, "'retry' is a required property"),
        (
            {"action": "ticket", "retry": {"delay_minutes": 5, "max_attempts": 1}},
            "'retry' parameters are only allowed when action is 'retry'",
        ),
        ({"action": "snooze"}, "'snooze' is not one of"),
        ({"action": "retry", "retry": {"delay_minutes": 0, "max_attempts": 1}}, "minimum"),
    ],
)
def test_a_rule_the_registry_does_not_allow_is_refused(tmp_path, rule, reason) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleFileError, match=reason):
        load_rules(_rule_file(tmp_path, **rule))
