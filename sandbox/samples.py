"""Regenerate ``samples/events``: one failed-job event per rule, a duplicate, malformed ones.

Each rule's first positive case in ``tests/rule_cases.yaml`` becomes a realistic failed
``AzureIaaSVMJob`` event (CloudEvents and Event Grid schema alternately), spread over four
vaults. Run ``python -m sandbox.samples`` after adding a rule; the files are committed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from handlers.intake.events import EVENT_TYPE
from rules import default_rule_set

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "rule_cases.yaml"
OUT = ROOT / "samples" / "events"
SUBSCRIPTION = "6f0c3a52-8d1e-4b7a-9c55-2f1d8e4a7b10"
VAULTS = ("rsv-prod-japaneast", "rsv-prod-eastus", "rsv-dev-westeurope", "rsv-dr-japanwest")
START = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)


def _guid(seed: str) -> str:
    return str(uuid.UUID(hashlib.sha256(seed.encode()).hexdigest()[:32]))


def _operation(rule: str, case: dict[str, Any]) -> str:
    """The case's operation, else one the rule applies to (restore rules need ``Restore``)."""
    scoped = next((r.operations for r in default_rule_set().rules if r.id == rule), frozenset())
    return case.get("operation") or ("Restore" if "restore" in scoped else "Backup")


def _job(rule: str, case: dict[str, Any], index: int) -> dict[str, Any]:
    vault = VAULTS[index % len(VAULTS)]
    vm = f"vm-{rule[:40]}"
    group = f"rg-app-{index % 3}"
    job_id = _guid(f"job-{rule}")
    start = START + timedelta(minutes=7 * index)
    code = case.get("code")
    error = {
        "errorCode": code if code is not None else 400000 + index,
        "errorTitle": "",
        "errorString": case.get("message") or "",
        "recommendations": [],
    }
    return {
        "id": f"/Subscriptions/{SUBSCRIPTION}/resourceGroups/rg-backup/providers/"
        f"Microsoft.RecoveryServices/vaults/{vault}/backupJobs/{job_id}",
        "name": job_id,
        "type": "Microsoft.RecoveryServices/vaults/backupJobs",
        "properties": {
            "jobType": "AzureIaaSVMJob",
            "entityFriendlyName": vm,
            "backupManagementType": "AzureIaasVM",
            "operation": _operation(rule, case),
            "status": "Failed",
            "startTime": start.isoformat().replace("+00:00", "Z"),
            "endTime": (start + timedelta(minutes=21)).isoformat().replace("+00:00", "Z"),
            "duration": "PT21M",
            "actionsInfo": ["Retriable"],
            "virtualMachineVersion": "Compute",
            "containerName": f"iaasvmcontainerv2;{group};{vm}",
            "isUserTriggered": False,
            "errorDetails": [error],
        },
    }


def _envelope(job: dict[str, Any], index: int) -> dict[str, Any]:
    event_id = _guid(f"event-{job['name']}")
    vault_id = job["id"].split("/backupJobs/")[0]
    time = job["properties"]["endTime"]
    if index % 2 == 0:
        return {
            "specversion": "1.0",
            "id": event_id,
            "source": vault_id,
            "type": EVENT_TYPE,
            "subject": f"backupJobs/{job['name']}",
            "time": time,
            "datacontenttype": "application/json",
            "data": job,
        }
    return {
        "id": event_id,
        "topic": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-responder/providers/"
        "Microsoft.EventGrid/topics/egt-backup-responder",
        "subject": job["id"],
        "eventType": EVENT_TYPE,
        "eventTime": time,
        "dataVersion": "1.0",
        "data": job,
    }


def _first_positive_per_rule() -> dict[str, dict[str, Any]]:
    chosen: dict[str, dict[str, Any]] = {}
    for case in yaml.safe_load(CASES.read_text(encoding="utf-8")):
        rule = case.get("expect")
        if rule and rule not in chosen:
            chosen[rule] = case
    return chosen


def _write(path: Path, body: Any) -> None:
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def generate(out: Path = OUT) -> int:
    """Write the samples into ``out`` (replacing it); returns how many files were written."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    events = []
    for index, (rule, case) in enumerate(sorted(_first_positive_per_rule().items())):
        event = _envelope(_job(rule, case, index), index)
        events.append(event)
        _write(out / f"{index:02d}-{rule}.json", event)
    duplicate = dict(events[0], id=_guid("duplicate"))  # the same job, delivered again
    _write(out / "90-duplicate-of-00.json", duplicate)
    not_a_job = dict(
        events[1], id=_guid("malformed-1"), data={"id": "/subscriptions/x", "properties": {}}
    )
    _write(out / "91-malformed-not-a-job.json", not_a_job)
    wrong_type = dict(events[0], id=_guid("malformed-2"), type="Microsoft.Storage.BlobCreated")
    _write(out / "92-malformed-foreign-event-type.json", wrong_type)
    unknown = {"code": 999001, "message": "The frobnicator returned an unexpected widget count."}
    _write(out / "80-unclassified.json", _envelope(_job("unclassified", unknown, 80), 80))
    return len(events) + 4


if __name__ == "__main__":
    print(f"wrote {generate()} sample events to {OUT.relative_to(ROOT)}")
