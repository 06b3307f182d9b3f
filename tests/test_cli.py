"""The command line: the classify contract (other tools depend on it) and replay."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers.cli.main import main
from handlers.pipeline.runtime import Runtime
from tests.conftest import EVENTS

CONTRACT = {"rule", "category", "action", "title", "remediation"}
ACTIONS = {"retry", "stop_protection", "ticket", "record"}


def _classify(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    script = shutil.which("backup-responder", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "handlers.cli.main"]
    return subprocess.run(
        [*command, "classify", *args], input=stdin, capture_output=True, text=True, check=False
    )


def _valid(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer.keys() >= CONTRACT
    assert answer["action"] in ACTIONS
    assert isinstance(answer["remediation"], str) and answer["remediation"].strip()
    return answer


def test_classify_prints_one_json_object() -> None:
    result = _classify("--code", "400094", "--message", "The virtual machine doesn't exist")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    answer = _valid(json.loads(line))
    assert (answer["rule"], answer["action"]) == ("vm-not-found", "stop_protection")


def test_classify_jsonl_answers_every_line_in_order() -> None:
    lines = [
        {"code": 400094},
        {"code": "320001", "message": None},
        {"message": "Copying backed up data from vault timed out"},
        {"code": None, "message": "バックアップ操作は内部エラーのため失敗しました"},
        {},
        {"code": "NoSuchCode", "message": "nothing we know"},
    ]
    stdin = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\nnot json\n"
    result = _classify("--jsonl", stdin=stdin)
    assert result.returncode == 0, result.stderr
    answers = [_valid(json.loads(line)) for line in result.stdout.splitlines()]
    assert [a["rule"] for a in answers] == [
        "vm-not-found",
        "vm-not-found",
        "copy-to-vault-timed-out",
        "backup-internal-error",
        "unclassified",
        "unclassified",
        "unclassified",
    ]
    assert answers[-1]["error"].startswith("not JSON")
    assert answers[5]["raw_error"] == {"codes": ["NoSuchCode"], "message": "nothing we know"}


def test_classify_in_japanese() -> None:
    answer = _valid(json.loads(_classify("--code", "400094", "--language", "ja").stdout))
    assert any("\u3040" <= ch <= "\u30ff" for ch in answer["remediation"])


def test_classify_with_user_rules(tmp_path: Path) -> None:
    rules = tmp_path / "mine.yaml"
    rules.write_text(
        "schema_version: 1\nrules:\n  - id: our-timeout\n    title: Ours\n    category: transient\n"
        "    action: ticket\n    match: {text: [{all: [timed out]}]}\n"
        "    remediation: {en: Call the storage team., ja: ストレージ担当に連絡してください。}\n"
        "    doc: https://example.com/runbook\n",
        encoding="utf-8",
    )
    answer = _valid(
        json.loads(_classify("--rules", str(rules), "--message", "copy timed out").stdout)
    )
    assert (answer["rule"], answer["user_rule"]) == ("our-timeout", True)


def test_classify_needs_an_input_and_reports_a_broken_rule_file(tmp_path: Path) -> None:
    assert _classify().returncode == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text("schema_version: 1\nrules: [{id: x}]\n", encoding="utf-8")
    result = _classify("--rules", str(broken), "--code", "1")
    assert result.returncode == 2 and "broken.yaml" in result.stderr


@pytest.fixture
def replay_env(runtime: Runtime, as_app_settings: Any) -> Runtime:
    return as_app_settings(runtime.settings)


def test_replay_takes_files_arrays_and_folders(replay_env: Runtime, tmp_path: Path) -> None:
    batch = tmp_path / "batch.json"
    events = [
        json.loads((EVENTS / n).read_text())
        for n in ("eventgrid-storage-timeout.json", "cloudevent-vm-not-found.json")
    ]
    batch.write_text(json.dumps(events), encoding="utf-8")
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    out = io.StringIO()
    assert main(["replay", str(tmp_path)], out=out) == 0
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["new", "new", "rejected"]
    assert len(list(replay_env.storage.incidents.query())) == 2
    assert len(list(replay_env.storage.rejections.all())) == 1


def test_replay_goes_on_past_an_event_it_cannot_finish(replay_env: Runtime, tmp_path: Path) -> None:
    timeout = json.loads((EVENTS / "eventgrid-storage-timeout.json").read_text())
    job_id = timeout["data"]["name"]
    replay_env.storage.claims.claim(
        job_id, ("vm", "row"), datetime.now(UTC), timedelta(seconds=600)
    )  # busy
    out = io.StringIO()
    code = main(
        [
            "replay",
            str(EVENTS / "eventgrid-storage-timeout.json"),
            str(EVENTS / "cloudevent-vm-not-found.json"),
        ],
        out=out,
    )
    assert code == 1
    first, second = out.getvalue().splitlines()
    assert first.startswith("in-flight") and second.startswith("new")
