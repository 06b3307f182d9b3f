"""The bundled samples and the sandbox command the README starts with."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from handlers.core.model import Rejection
from handlers.intake.events import parse
from rules import default_rule_set
from sandbox import demo, samples

SAMPLES = Path(samples.OUT)


def test_there_is_one_sample_per_rule_and_it_classifies_to_that_rule() -> None:
    rules = default_rule_set()
    named = {}
    for path in SAMPLES.glob("[0-7]*.json"):
        failure = parse(json.loads(path.read_text(encoding="utf-8")))
        rule = path.stem.split("-", 1)[1]
        decision = rules.classify(
            failure.codes, failure.message, failure.operation, failure.workload
        )
        assert decision.rule == rule, path.name
        assert failure.workload in next(r.workloads for r in rules.rules if r.id == rule)
        named[rule] = path
    assert set(named) == {r.id for r in rules.rules}


def test_samples_are_current(tmp_path: Path) -> None:
    samples.generate(tmp_path)
    for path in tmp_path.iterdir():
        assert (SAMPLES / path.name).read_text(encoding="utf-8") == path.read_text(
            encoding="utf-8"
        ), f"{path.name} is stale: run python -m sandbox.samples"
    assert sorted(p.name for p in SAMPLES.iterdir()) == sorted(p.name for p in tmp_path.iterdir())


def test_samples_include_a_duplicate_and_malformed_events() -> None:
    duplicate = json.loads((SAMPLES / "900-duplicate-of-000.json").read_text())
    first = json.loads(next(SAMPLES.glob("000-*.json")).read_text())
    assert duplicate["data"] == first["data"] and duplicate["id"] != first["id"]
    malformed = [
        parse(json.loads(p.read_text())) for p in SAMPLES.glob("9[0-9][1-9]-malformed-*.json")
    ]
    assert len(malformed) >= 2 and all(isinstance(m, Rejection) for m in malformed)


@pytest.mark.slow
def test_the_sandbox_command_runs_end_to_end() -> None:
    out = io.StringIO()
    assert demo.run(SAMPLES, out) == 0
    text = out.getvalue()
    assert "backup data deleted: 0" in text
    stops = [r for r in default_rule_set().rules if r.action == "stop_protection"]
    assert len(stops) >= 3  # the deleted VM, file share and storage account
    # one per stop rule's sample, the deleted VM that waited for an approval, and the orphan
    # the weekly sweep found (a VM deleted while nothing watched)
    assert f"protection stopped (data kept): {len(stops) + 2}" in text
    assert "POST the form: 200; the same link again: 409" in text
    assert "orphan vm-forgotten-01 in " in text and "protection stopped, data kept" in text
    assert "moved, left alone: vm-moved-01" in text
    digest = text.split("== the morning digest ==\n")[1]
    assert digest.startswith("Backup digest ") and "\nFixed automatically: " in digest
    assert "once to slack, teams, webhook, though the timer fired twice" in digest
    assert "retry succeeded" in text and "ticket opened" in text
    # The queue drains: only the database at Azure's daily limit waits, for the next UTC day.
    handled = int(text.split(" retry-queue messages handled")[0].rsplit("\n", 1)[-1])
    assert handled < 3 * len([r for r in default_rule_set().rules if r.action == "retry"])
    assert "status: escalated " in text and ", remediating 1," in text
    jobs = len(list(SAMPLES.glob("[0-8]*.json")))
    assert text.count("\nduplicate ") == jobs + 2  # every job again, and the duplicate twice
