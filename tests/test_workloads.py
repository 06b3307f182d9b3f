"""SQL Server and SAP HANA databases in Azure VMs and Azure file shares, end to end (issue #11):
the watcher's event → the workload's rules → the action against the simulator's Backup, Compute
and Storage APIs, with the same re-verification as for a VM.

Jobs come from the simulator, which renders them in Azure's shapes (the published failed
``AzureWorkloadJob`` and the recorded ``AzureStorageJob``s, see its ``azure_payloads``); error
codes and messages are those of Microsoft's troubleshooting pages (``workloads.md`` §3).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from handlers.core.incident import IncidentStatus
from handlers.core.model import Workload
from handlers.intake.alerts import handle_alert
from handlers.intake.watcher import watch
from handlers.pipeline.runtime import Runtime
from sandbox.receivers import EVENTGRID_KEY, Receivers
from sandbox.simulator import AzureSimulator
from tests.conftest import FAST_CLIENTS, load_event
from tests.world import (
    SUB,
    deliver,
    deliver_published,
    drain,
    incident_of,
    log_of,
    published,
    workload_scene,
)

CONFLICT = {
    "error_code": 510008,
    "error_title": "OperationCancelledBecauseConflictingOperationRunningUserError",
    "error_string": (
        "Operation cancelled as a conflicting operation was already running on the same database."
    ),
}
SQL_DB_GONE = {
    "error_title": "UserErrorSQLPODoesNotExist",
    "error_string": "SQL database doesn't exist.",
}
# Azure Files jobs carry no errorTitle and Microsoft publishes no number for these codes:
# only the message (the troubleshooting page's) can classify them.
SHARE_SOFT_DELETED = {
    "error_string": "Backup failed as the Azure File Share is in soft-deleted state"
}
SHARE_DELETED = {
    "error_string": "Backup failed as the associated Azure File Share is permanently deleted"
}
SHARE_THROTTLED = {
    "error_string": (
        "File share backup or restore operation failed due to storage service throttling. This "
        "may be because the storage service is busy processing other requests for the given "
        "storage account."
    )
}


def _triggers(sim: AzureSimulator) -> list[dict]:
    return [c.body["properties"] for c in sim.calls_to(route="backup_trigger")]


# -- retries ---------------------------------------------------------------------------------


def test_sql_conflict_is_retried_with_a_full_workload_backup(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = workload_scene(sim, Workload.SQL, **CONFLICT)
    sim.auto_complete_backups = "Completed"
    outcome = deliver(live, s.event())
    assert (outcome.rule, outcome.action) == ("workload-conflicting-operation", "retry")
    incident = incident_of(live, s.job_id)
    assert (incident.Workload, incident.BackupType) == (Workload.SQL, "Full")
    drain(live)
    (trigger,) = _triggers(sim)
    assert trigger["objectType"] == "AzureWorkloadBackupRequest"
    assert trigger["backupType"] == "Full"
    assert "recoveryPointExpiryTimeInUTC" in trigger
    incident = incident_of(live, s.job_id)
    assert incident.Status == IncidentStatus.RESOLVED
    assert ("retry", "succeeded") in log_of(incident)
    resolved = next(a for a in incident.actions if (a.action, a.state) == ("item", "resolved"))
    assert "sqldatabase;mssqlserver;sales" in resolved.ref.lower()


def test_a_sql_log_backup_is_retried_as_a_log_backup(live: Runtime, sim: AzureSimulator) -> None:
    s = workload_scene(sim, Workload.SQL, operation="Backup (Log)", **CONFLICT)
    sim.auto_complete_backups = "Completed"
    deliver(live, s.event())
    drain(live)
    (trigger,) = _triggers(sim)
    assert trigger["backupType"] == "Log"
    assert "recoveryPointExpiryTimeInUTC" not in trigger  # only full backups take a retention
    assert incident_of(live, s.job_id).Status == IncidentStatus.RESOLVED


def test_a_hana_log_backup_is_never_retried_on_demand(live: Runtime, sim: AzureSimulator) -> None:
    s = workload_scene(sim, Workload.HANA, operation="Backup (Log)", **CONFLICT)
    deliver(live, s.event())
    drain(live)
    assert _triggers(sim) == []
    incident = incident_of(live, s.job_id)
    assert incident.Status == IncidentStatus.ESCALATED
    assert ("retry", "skipped") in log_of(incident)
    assert ("ticket", "opened") in log_of(incident)


def test_sql_retries_stay_within_azures_three_on_demand_backups_a_day(
    live: Runtime, sim: AzureSimulator, tmp_path: Path
) -> None:
    generous = tmp_path / "rules.yaml"  # a user rule allowing more than Azure does
    rule = {
        "id": "keep-trying",
        "title": "Keep trying",
        "category": "transient",
        "action": "retry",
        "retry": {"delay_minutes": 1, "max_attempts": 9},
        "match": {"workloads": ["sql"], "codes": [510008]},
        "remediation": {"en": "Keep trying.", "ja": "再試行します。"},
        "doc": "https://learn.microsoft.com/azure/backup/backup-sql-server-azure-troubleshoot",
    }
    generous.write_text(yaml.safe_dump({"schema_version": 1, "rules": [rule]}), encoding="utf-8")
    settings = dataclasses.replace(live.settings, retry_daily_cap=9, user_rules_path=str(generous))
    runtime = Runtime.from_settings(settings, FAST_CLIENTS)
    s = workload_scene(sim, Workload.SQL, **CONFLICT)
    sim.auto_complete_backups = "Failed"
    assert deliver(runtime, s.event()).rule == "keep-trying"
    drain(runtime)
    assert len(_triggers(sim)) == 3  # not 9
    assert ("retry", "exhausted") in log_of(incident_of(runtime, s.job_id))


def test_throttled_file_share_backup_is_retried_with_a_share_request(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = workload_scene(sim, Workload.FILES, **SHARE_THROTTLED)
    sim.auto_complete_backups = "Completed"
    outcome = deliver(live, s.event())
    assert (outcome.rule, outcome.action) == ("files-backup-throttled", "retry")
    drain(live)
    (trigger,) = _triggers(sim)
    assert trigger["objectType"] == "AzureFileShareBackupRequest"
    assert "recoveryPointExpiryTimeInUTC" in trigger
    assert incident_of(live, s.job_id).Status == IncidentStatus.RESOLVED


# -- what is gone ----------------------------------------------------------------------------


def test_a_dropped_database_is_a_ticket_and_protection_stays(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = workload_scene(sim, Workload.SQL, **SQL_DB_GONE)
    outcome = deliver(live, s.event())
    assert (outcome.rule, outcome.action) == ("workload-database-not-found", "ticket")
    assert sim.calls_to(route="item_put") == []
    assert s.protection_state() == "Protected"
    (ticket,) = [r for r in receivers.received("servicenow") if r.method == "POST"]
    assert "sales" in ticket.body["short_description"].lower()


def test_a_database_whose_vm_was_deleted_stops_protection_keeping_the_data(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = workload_scene(sim, Workload.SQL, **CONFLICT)
    deliver(live, s.event())
    sim.delete_vm(s.host_id)
    drain(live)
    assert _triggers(sim) == []
    (put,) = sim.calls_to(route="item_put")
    assert put.body["properties"]["protectionState"] == "ProtectionStopped"
    assert put.body["properties"]["protectedItemType"] == "AzureVmWorkloadSQLDatabase"
    assert s.protection_state() == "ProtectionStopped"
    assert not [c for c in sim.calls if c.method == "DELETE"]
    incident = incident_of(live, s.job_id)
    assert ("stop_protection", "succeeded") in log_of(incident)
    started = incident.actions[log_of(incident).index(("stop_protection", "started"))]
    assert "host VM" in started.detail and "confirmed deleted (ARM 404)" in started.detail


def test_a_permanently_deleted_share_stops_protection_after_storage_confirms_it(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = workload_scene(sim, Workload.FILES, **SHARE_DELETED)
    sim.delete_file_share(s.host_id, "finance", soft=False)
    outcome = deliver(live, s.event())
    assert (outcome.rule, outcome.action) == ("files-share-deleted", "stop_protection")
    assert outcome.status == IncidentStatus.RESOLVED
    routes = [c.route for c in sim.calls if c.method == "GET"]
    assert routes.index("file_share_list") < routes.index("item_get")  # verified before
    (put,) = sim.calls_to(route="item_put")
    assert put.body["properties"]["protectedItemType"] == "AzureFileShareProtectedItem"
    assert s.protection_state() == "ProtectionStopped"


def test_a_share_that_exists_is_never_stopped_whatever_the_job_says(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = workload_scene(sim, Workload.FILES, **SHARE_DELETED)
    outcome = deliver(live, s.event())
    assert (outcome.action, outcome.status) == ("stop_protection", IncidentStatus.ESCALATED)
    assert sim.calls_to(route="item_put") == []
    assert s.protection_state() == "Protected"
    skipped = incident_of(live, s.job_id).actions[-2:]
    assert any("the share finance exists" in a.detail for a in skipped)


def test_a_share_recreated_beside_its_soft_deleted_copy_exists(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = workload_scene(sim, Workload.FILES, **SHARE_DELETED)
    sim.delete_file_share(s.host_id, "finance", soft=True)
    sim.add_file_share(s.host_id, "finance")  # listed twice now: deleted and live
    outcome = deliver(live, s.event())
    assert outcome.status == IncidentStatus.ESCALATED
    assert sim.calls_to(route="item_put") == []
    details = [a.detail for a in incident_of(live, s.job_id).actions]
    assert any("the share finance exists" in d for d in details), details


def test_a_soft_deleted_share_is_an_urgent_ticket_never_a_stop(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = workload_scene(sim, Workload.FILES, **SHARE_DELETED)  # the job says "deleted"...
    sim.delete_file_share(s.host_id, "finance", soft=True)  # ...Storage says undeletable
    outcome = deliver(live, s.event())
    assert outcome.action == "stop_protection"
    assert outcome.status == IncidentStatus.ESCALATED
    assert sim.calls_to(route="item_put") == []
    assert s.protection_state() == "Protected"
    incident = incident_of(live, s.job_id)
    assert ("stop_protection", "skipped") in log_of(incident)
    (ticket,) = [r for r in receivers.received("servicenow") if r.method == "POST"]
    assert "urgent" in ticket.body["description"].lower()
    assert "soft-deleted" in ticket.body["description"]


def test_the_soft_deleted_share_rule_is_a_ticket(live: Runtime, sim: AzureSimulator) -> None:
    s = workload_scene(sim, Workload.FILES, **SHARE_SOFT_DELETED)
    sim.delete_file_share(s.host_id, "finance", soft=True)
    outcome = deliver(live, s.event())
    assert (outcome.rule, outcome.action) == ("files-share-soft-deleted", "ticket")
    assert sim.calls_to(route="item_put") == []


@pytest.mark.parametrize("workload", [Workload.SQL, Workload.HANA, Workload.FILES])
def test_a_workload_code_never_lands_on_a_vm_rule(
    live: Runtime, sim: AzureSimulator, workload: str
) -> None:
    s = workload_scene(sim, workload, error_string="Could not communicate with the VM agent")
    outcome = deliver(live, s.event())
    assert outcome.rule == "unclassified"
    assert incident_of(live, s.job_id).Workload == workload


# -- the alert path --------------------------------------------------------------------------


def test_a_sql_backup_failure_alert_reads_the_job_and_finds_the_item_it_names(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = workload_scene(
        sim,
        Workload.SQL,
        error_title="UserErrorParentFullBackupMissing",
        error_string="First full backup is missing for this datasource.",
        operation="Backup (Log)",
    )
    alert = copy.deepcopy(load_event("alert-backup-failure-sql-fired"))
    alert["data"]["alertContext"]["extendedInfo"]["jobId"] = s.job_id
    answer = handle_alert(live, alert)
    assert (answer.status, answer.body["rule"]) == (200, "sql-first-full-backup-missing")
    assert sim.calls_to(route="job_get")  # the job is read, the alert text is not trusted
    incident = incident_of(live, s.job_id)
    assert (incident.Source, incident.Workload, incident.BackupType) == ("alert", "sql", "Log")
    assert incident.Status == IncidentStatus.RESOLVED  # the service heals a missing full backup


# -- both sources, exactly once ----------------------------------------------------------------

HANA_LOG_CHAIN = {
    "error_title": "UserErrorHANALSNValidationFailure",
    "error_string": "Backup log chain is broken",
}
END_TO_END = {
    # workload: (the failure, its rule, what the rule does, the end state)
    Workload.SQL: (CONFLICT, "workload-conflicting-operation", ("retry", "succeeded")),
    Workload.HANA: (HANA_LOG_CHAIN, "workload-log-chain-broken", ("await_healing", "succeeded")),
    Workload.FILES: (SHARE_DELETED, "files-share-deleted", ("stop_protection", "succeeded")),
}


@pytest.mark.parametrize("workload", list(END_TO_END))
def test_watcher_and_alert_make_one_incident_that_ends_right(
    live: Runtime,
    sim: AzureSimulator,
    receivers: Receivers,
    as_app_settings: Any,
    workload: str,
) -> None:
    failure, rule, (action, state) = END_TO_END[workload]
    s = workload_scene(sim, workload, **failure)
    if workload == Workload.FILES:
        sim.delete_file_share(s.host_id, "finance", soft=False)
    sim.auto_complete_backups = "Completed"
    settings = dataclasses.replace(
        live.settings,
        subscription_ids=frozenset({SUB}),
        eventgrid_endpoint=receivers.url("eventgrid") + "/api/events",
        eventgrid_key=EVENTGRID_KEY,
    )
    runtime = as_app_settings(settings)
    watch(runtime)
    assert [e["data"]["name"] for e in published(receivers)] == [s.job_id]
    deliver_published(receivers)
    alert = copy.deepcopy(load_event("alert-backup-failure-sql-fired"))  # the one real shape
    alert["data"]["alertContext"]["extendedInfo"]["jobId"] = s.job_id
    alert["data"]["alertContext"]["protectedItemId"] = s.item["id"]
    assert handle_alert(runtime, alert).body["status"] == "duplicate"
    drain(runtime)
    (incident,) = runtime.storage.incidents.query()
    assert (incident.JobId, incident.Rule, incident.Workload) == (s.job_id, rule, workload)
    assert set(incident.Source.split(",")) == {"cloudevent", "alert"}
    assert incident.Occurrences == 2
    assert (action, state) in log_of(incident)
    assert incident.Status == IncidentStatus.RESOLVED
    assert not [c for c in sim.calls if c.method == "DELETE"]
