"""Regenerate ``samples/events``: one failed-job event per rule, a duplicate, malformed ones.

Each rule's first positive case in ``tests/rule_cases.yaml`` becomes a realistic failed job
event (CloudEvents and Event Grid schema alternately), spread over four vaults: an
``AzureIaaSVMJob`` for a VM rule; for a workload rule, an ``AzureWorkloadJob`` (SQL, SAP HANA)
in the keys of Microsoft's failed SQL job example, or an ``AzureStorageJob`` (Azure Files) in
the keys of its Azure Files job example. A workload sample takes the rule's first case with a
message, and a SQL or HANA one the code name as ``errorTitle``; ``errorCode`` is the case's
number, else 0 (Microsoft publishes no number for most workload codes). Run
``python -m sandbox.samples`` after adding a rule; the files are committed.
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


def _times(index: int) -> dict[str, str]:
    start = START + timedelta(minutes=7 * index)
    return {
        "startTime": start.isoformat().replace("+00:00", "Z"),
        "endTime": (start + timedelta(minutes=21)).isoformat().replace("+00:00", "Z"),
    }


def _resource(vault: str, job_id: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"/Subscriptions/{SUBSCRIPTION}/resourceGroups/rg-backup/providers/"
        f"Microsoft.RecoveryServices/vaults/{vault}/backupJobs/{job_id}",
        "name": job_id,
        "type": "Microsoft.RecoveryServices/vaults/backupJobs",
        "properties": properties,
    }


def _vm_job(rule: str, case: dict[str, Any], index: int) -> dict[str, Any]:
    vm = f"vm-{rule[:40]}"
    group = f"rg-app-{index % 3}"
    code = case.get("code")
    error = {
        "errorCode": code if code is not None else 900000 + index,  # no documented code
        "errorTitle": "",
        "errorString": case.get("message") or "",
        "recommendations": [],
    }
    return {
        "jobType": "AzureIaaSVMJob",
        "entityFriendlyName": vm,
        "backupManagementType": "AzureIaasVM",
        "operation": _operation(rule, case),
        "status": "Failed",
        **_times(index),
        "duration": "PT21M",
        "actionsInfo": ["Retriable"],
        "virtualMachineVersion": "Compute",
        "containerName": f"iaasvmcontainerv2;{group};{vm}",
        "isUserTriggered": False,
        "errorDetails": [error],
    }


def _workload_operation(rule: str, case: dict[str, Any]) -> str:
    operation = _operation(rule, case)
    return "Backup (Full)" if operation == "Backup" else operation


def _database_job(rule: str, case: dict[str, Any], index: int) -> dict[str, Any]:
    sql = case["workload"] == "sql"
    database = f"db-{rule[:40]}"
    host = f"vm-{'sql' if sql else 'hana'}-{index:03d}"
    code = case.get("code")
    return {
        "jobType": "AzureWorkloadJob",
        "workloadType": "SQLDataBase" if sql else "SAPHanaDatabase",
        "duration": "00:21:00",
        "actionsInfo": [1],
        "errorDetails": [
            {
                "errorCode": code if isinstance(code, int) else 0,
                "errorString": case["message"],
                "errorTitle": code if isinstance(code, str) else "",
                "recommendations": [],
            }
        ],
        "extendedInfo": {
            "tasksList": [{"taskId": "Transfer data to vault", "status": "Failed"}],
            "propertyBag": {"Data Transferred (in MB)": "0"},
        },
        "entityFriendlyName": f"{'MSSQLSERVER/' if sql else ''}{database} [{host}]",
        "backupManagementType": "AzureWorkload",
        "operation": _workload_operation(rule, case),
        "status": "Failed",
        **_times(index),
        "activityId": _guid(f"activity-{rule}"),
    }


def _share_job(rule: str, case: dict[str, Any], index: int) -> dict[str, Any]:
    share, account = f"share-{rule[:40]}", f"st{_guid(rule).replace('-', '')[:16]}"
    code = case.get("code")
    return {
        "jobType": "AzureStorageJob",
        "duration": "00:21:00",
        "errorDetails": [
            {
                "errorCode": code if isinstance(code, int) else 0,
                "errorString": case["message"],
                "recommendations": [],
            }
        ],
        "storageAccountName": account,
        "storageAccountVersion": "Storage",
        "extendedInfo": {
            "tasksList": [],
            "propertyBag": {"File Share Name": share, "Storage Account Name": account},
        },
        "entityFriendlyName": share,
        "backupManagementType": "AzureStorage",
        "operation": _operation(rule, case),
        "status": "Failed",
        **_times(index),
        "activityId": _guid(f"activity-{rule}"),
    }


_JOBS = {"vm": _vm_job, "sql": _database_job, "hana": _database_job, "files": _share_job}


def _job(rule: str, case: dict[str, Any], index: int) -> dict[str, Any]:
    properties = _JOBS[case.get("workload", "vm")](rule, case, index)
    return _resource(VAULTS[index % len(VAULTS)], _guid(f"job-{rule}"), properties)


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


def _sample_case_per_rule() -> dict[str, dict[str, Any]]:
    """Each rule's first positive case; for a workload rule, its first case with a message,
    carrying the code of its first case with a code."""
    chosen: dict[str, dict[str, Any]] = {}
    codes: dict[str, Any] = {}
    for case in yaml.safe_load(CASES.read_text(encoding="utf-8")):
        rule = case.get("expect")
        if not rule:
            continue
        if case.get("workload", "vm") == "vm":
            chosen.setdefault(rule, case)
            continue
        if case.get("code") is not None:
            codes.setdefault(rule, case["code"])
        if case.get("message") and rule not in chosen:
            chosen[rule] = case
    for rule, case in chosen.items():
        if case.get("workload", "vm") != "vm" and case.get("code") is None and rule in codes:
            chosen[rule] = dict(case, code=codes[rule])
    return chosen


def _write(path: Path, body: Any) -> None:
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def generate(out: Path = OUT) -> int:
    """Write the samples into ``out`` (replacing it); returns how many files were written.

    Names: ``000-`` to ``799-`` one per rule, ``800-unclassified``, ``900-`` a duplicate of
    ``000-``, ``901-`` on malformed events.
    """
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    events = []
    for index, (rule, case) in enumerate(sorted(_sample_case_per_rule().items())):
        event = _envelope(_job(rule, case, index), index)
        events.append(event)
        _write(out / f"{index:03d}-{rule}.json", event)
    duplicate = dict(events[0], id=_guid("duplicate"))  # the same job, delivered again
    _write(out / "900-duplicate-of-000.json", duplicate)
    not_a_job = dict(
        events[1], id=_guid("malformed-1"), data={"id": "/subscriptions/x", "properties": {}}
    )
    _write(out / "901-malformed-not-a-job.json", not_a_job)
    wrong_type = dict(events[0], id=_guid("malformed-2"), type="Microsoft.Storage.BlobCreated")
    _write(out / "902-malformed-foreign-event-type.json", wrong_type)
    unknown = {"code": 999001, "message": "The frobnicator returned an unexpected widget count."}
    _write(out / "800-unclassified.json", _envelope(_job("unclassified", unknown, 80), 80))
    return len(events) + 4


if __name__ == "__main__":
    print(f"wrote {generate()} sample events to {OUT.relative_to(ROOT)}")
