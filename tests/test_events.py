"""The edge parser: both event schemas, the bare job, and every way a payload can be bad."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from handlers.core.model import BackupFailure, Rejection, Source
from handlers.core.outcome import OutcomeKind
from handlers.core.text import MAX_RAW_CHARS
from handlers.intake.events import EVENT_TYPE, MAX_TEXT_CHARS, parse
from handlers.pipeline.respond import respond
from handlers.pipeline.runtime import Runtime
from rules import default_rule_set
from tests.conftest import load_event


def _failure(raw: object) -> BackupFailure:
    result = parse(raw)
    assert isinstance(result, BackupFailure), getattr(result, "reason", result)
    return result


def test_event_grid_event_is_normalized() -> None:
    failure = _failure(load_event("eventgrid-storage-timeout"))
    assert failure.source == Source.EVENT_GRID
    assert failure.job_id == "c1a2b3c4-d5e6-4f70-8a9b-0c1d2e3f4a5b"
    assert failure.subscription_id == "6f0c3a52-8d1e-4b7a-9c55-2f1d8e4a7b10"
    assert (failure.vault_resource_group, failure.vault_name) == ("rg-backup", "rsv-prod-japaneast")
    assert (failure.vm_resource_group, failure.vm_name) == ("rg-web", "vm-web-01")
    assert failure.vm_id.endswith(
        "/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/vm-web-01"
    )
    assert failure.protected_item_name == "VM;iaasvmcontainerv2;rg-web;vm-web-01"
    assert failure.container_name == "IaasVMContainer;iaasvmcontainerv2;rg-web;vm-web-01"
    assert failure.codes == ("400234",)
    assert failure.message == "Copying backed up data from vault timed out"
    assert failure.recommendations == ("Retry the operation in a few minutes.",)
    assert failure.start_time == datetime(2026, 11, 24, 21, 0, 7, 14604, tzinfo=UTC)
    assert failure.actions_info == ("Retriable",)
    assert failure.event_id == "7d4e2c1a-0b3f-4a5e-9c8d-1e2f3a4b5c6d"


def test_cloud_event_is_normalized() -> None:
    failure = _failure(load_event("cloudevent-vm-not-found"))
    assert failure.source == Source.CLOUD_EVENT
    assert failure.codes == ("400094",)
    assert failure.vm_name == "vm-batch-07"


def test_both_schemas_give_the_same_failure() -> None:
    cloud = load_event("cloudevent-vm-not-found")
    grid = {
        "id": cloud["id"],
        "eventType": EVENT_TYPE,
        "subject": cloud["subject"],
        "eventTime": cloud["time"],
        "dataVersion": "1.0",
        "data": cloud["data"],
    }
    a, b = _failure(cloud), _failure(grid)
    assert (a.job_id, a.vm_id, a.codes, a.message) == (b.job_id, b.vm_id, b.codes, b.message)


def test_numeric_actions_info_and_string_code() -> None:
    failure = _failure(load_event("eventgrid-numeric-actions"))
    assert failure.actions_info == ("Cancellable",)
    assert failure.codes == ("UserErrorGuestAgentStatusUnavailable",)


def test_bare_job_is_accepted_for_replay() -> None:
    failure = _failure(load_event("job-restore-cloud-internal"))
    assert failure.source == Source.REPLAY
    assert failure.operation == "Restore"
    assert failure.codes == ()


def test_event_type_is_case_insensitive() -> None:
    event = load_event("eventgrid-storage-timeout")
    event["eventType"] = EVENT_TYPE.upper()
    assert _failure(event).job_id


def test_vm_name_falls_back_to_friendly_name() -> None:
    event = load_event("eventgrid-storage-timeout")
    del event["data"]["properties"]["containerName"]
    failure = _failure(event)
    assert failure.vm_name == "vm-web-01"
    assert failure.vm_id == ""  # no resource group: the VM id is not derivable


def _broken(mutate) -> Rejection:
    event = copy.deepcopy(load_event("eventgrid-storage-timeout"))
    mutate(event)
    result = parse(event)
    assert isinstance(result, Rejection)
    return result


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.pop("data"), "missing field(s): data"),
        (lambda e: e.update(eventType="Microsoft.Storage.BlobCreated"), "is not BackupResponder"),
        (
            lambda e: e["data"].update(id="/subscriptions/s/x"),
            "not a Recovery Services backup job id",
        ),
        (lambda e: e["data"]["properties"].update(status="Completed"), "not 'Failed'"),
        (
            lambda e: e["data"]["properties"].update(jobType="MabJob"),
            "not a job this app answers for",
        ),
        (
            lambda e: e["data"]["properties"].update(
                jobType="AzureWorkloadJob", workloadType="Exchange"
            ),
            "is not SQL or SAP HANA",
        ),
        (lambda e: e["data"]["properties"].update(startTime="yesterday"), "not an ISO 8601 time"),
        (lambda e: e["data"]["properties"].update(errorDetails={}), "errorDetails must be a list"),
        (
            lambda e: e["data"]["properties"]["errorDetails"][0].update(errorCode=[1]),
            "errorCode must be",
        ),
        (
            lambda e: e["data"]["properties"]["errorDetails"][0].update(errorString=42),
            "must be a string",
        ),
        (lambda e: e["data"]["properties"].update(actionsInfo=[7]), "not a known action"),
        (lambda e: e["data"].update(properties="x"), "data.properties is a str"),
    ],
)
def test_bad_payloads_are_rejected_with_a_reason(mutate, reason: str) -> None:
    rejection = _broken(mutate)
    assert reason in rejection.reason
    assert rejection.event_id == "7d4e2c1a-0b3f-4a5e-9c8d-1e2f3a4b5c6d"
    assert rejection.payload.startswith("{")


@pytest.mark.parametrize("raw", [None, 42, "text", [], [{"id": 1}], True])
def test_non_objects_are_rejected(raw: object) -> None:
    result = parse(raw)
    assert isinstance(result, Rejection)
    assert "must be a JSON object" in result.reason


def test_cloud_event_without_required_attributes() -> None:
    result = parse({"specversion": "1.0", "id": "x"})
    assert isinstance(result, Rejection)
    assert result.reason == "CloudEvent: missing required attribute(s): source, type"


def test_oversized_payload_is_kept_bounded() -> None:
    event = load_event("eventgrid-storage-timeout")
    event["data"]["properties"]["status"] = "Completed"
    event["padding"] = "x" * 1_000_000
    result = parse(event)
    assert isinstance(result, Rejection)
    assert len(result.payload) < MAX_RAW_CHARS + 100
    assert result.payload.endswith("characters in all]")


def test_oversized_message_is_truncated_not_rejected() -> None:
    event = load_event("eventgrid-storage-timeout")
    event["data"]["properties"]["errorDetails"][0]["errorString"] = "timed out " * 100_000
    failure = _failure(event)
    assert len(failure.message) == MAX_TEXT_CHARS
    assert failure.message.startswith("timed out timed out")


def test_lone_surrogates_are_made_safe() -> None:
    event = load_event("eventgrid-storage-timeout")
    event["data"]["properties"]["errorDetails"][0]["errorString"] = "bad \ud800 text"
    failure = _failure(event)
    failure.message.encode("utf-8")  # would raise on a lone surrogate
    assert "\\ud800" in failure.message


def test_fixtures_follow_the_published_contract() -> None:
    import json
    from pathlib import Path

    import jsonschema

    schema = json.loads(
        (Path(__file__).parent.parent / "docs/backup-job-failed.schema.json").read_text()
    )
    validator = jsonschema.Draft202012Validator(schema)
    envelopes = list(Path(__file__).parent.joinpath("events").glob("*.json"))
    good = [p for p in envelopes if p.name.startswith(("eventgrid-", "cloudevent-"))]
    bad = [p for p in envelopes if p.name.startswith("malformed")]
    assert good and bad
    for path in good:
        assert not list(validator.iter_errors(load_event(path.name))), path.name
        assert isinstance(parse(load_event(path.name)), BackupFailure)
    for path in bad:
        assert list(validator.iter_errors(load_event(path.name))), path.name


@pytest.mark.parametrize(
    "moment",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-14:00", "1500-06-01T00:00:00Z"],
)
def test_a_time_table_storage_cannot_hold_is_rejected_with_the_reason(
    runtime: Runtime, moment: str
) -> None:
    event = load_event("eventgrid-storage-timeout")
    event["data"]["properties"]["startTime"] = moment
    rejection = parse(event)
    assert isinstance(rejection, Rejection)
    assert rejection.reason.startswith("properties.startTime is ")
    assert respond(runtime, rejection).kind == OutcomeKind.REJECTED
    assert runtime.storage.claims.states() == {}, "no claim for an input that cannot be kept"
    (row,) = runtime.storage.rejections.all()
    assert row["Reason"] == rejection.reason


def test_dotnet_no_value_time_is_absent() -> None:
    event = load_event("eventgrid-storage-timeout")
    event["data"]["properties"]["endTime"] = "0001-01-01T00:00:00"
    failure = _failure(event)
    assert failure.end_time is None and failure.start_time is not None


# -- workloads (issue #11): fixtures derived from Azure's payloads, see tests/events/SOURCES.md


def test_microsofts_failed_sql_job_is_normalized() -> None:
    failure = _failure(load_event("cloudevent-sql-conflict"))
    assert (failure.workload, failure.entity) == (
        "sql",
        "MSSQLSERVER/msDB [sqlserver-0.contoso.com]",
    )
    assert (failure.operation, failure.backup_type) == ("Backup (Full)", "Full")
    assert failure.codes == (
        "510008",
        "OperationCancelledBecauseConflictingOperationRunningUserError",
    )
    assert (failure.vault_resource_group, failure.vault_name) == (
        "SQLServerSelfHost",
        "SQLServer2012",
    )
    assert (failure.vm_name, failure.vm_resource_group) == ("", "")  # known once the item is
    assert failure.actions_info == ("Cancellable",)  # numeric actionsInfo, as published
    assert failure.end_time == datetime(2018, 5, 28, 11, 46, 35, 295564, tzinfo=UTC)


def test_a_hana_log_backup_job_keeps_its_backup_type() -> None:
    failure = _failure(load_event("cloudevent-hana-log-chain"))
    assert (failure.workload, failure.entity) == ("hana", "SYSTEMDB [saphana-clitest-vm2]")
    assert (failure.operation, failure.backup_type) == ("Backup (Log)", "Log")
    assert "UserErrorHANALSNValidationFailure" in failure.codes


def test_a_file_share_job_names_its_share_and_storage_account() -> None:
    failure = _failure(load_event("cloudevent-files-soft-deleted"))
    assert (failure.workload, failure.entity) == ("files", "testshare")
    assert (failure.storage_account, failure.backup_type) == ("testvault2", "")
    assert failure.message == "Backup failed as the Azure File Share is in soft-deleted state"


@pytest.mark.parametrize(
    ("fixture", "rule"),
    [
        ("cloudevent-sql-conflict", "workload-conflicting-operation"),
        ("cloudevent-hana-log-chain", "workload-log-chain-broken"),
        ("cloudevent-files-soft-deleted", "files-share-soft-deleted"),
    ],
)
def test_workload_fixtures_meet_their_workloads_rules(fixture: str, rule: str) -> None:
    failure = _failure(load_event(fixture))
    decision = default_rule_set().classify(
        failure.codes, failure.message, failure.operation, failure.workload
    )
    assert decision.rule == rule
