"""Replay of Azure's workload payloads (SQL Server and SAP HANA in Azure VMs, Azure Files,
Microsoft.Storage) through our SDK calls and our parser (issue #11 item 4, as issue #9 item 3
did for Azure VMs in ``tests/test_replay.py``).

Each file under ``sandbox/simulator/azure_payloads/`` named ``docs-*``, ``*AzureWorkload*``,
``stg-2025-01-01-*``, ``afs_*``, ``wl_*`` or ``storage_account_get_200`` (see ``SOURCES.md``)
is served by ``Replay`` (``tests/replay.py``, from the file, never from the network) to the call
of ours that meets it in production:

- the failed SQL job (``docs-sql-mgmt-rest-AzureWorkloadJob-failed``): ``VaultApi.job_details``
  + ``job_state`` (the alert path and the watcher read the details), ``VaultApi.failed_jobs``
  (the watcher's listing), then ``parse_job`` on ``as_dict()`` and ``parse`` of the watcher's
  CloudEvent: the failure parses whole (workload, the database's instance/name/host, the backup
  type, the numeric error code with its title, message and recommendation, 7-digit times);
  its item is found as ``resolve_workload_item`` finds it (``workload_items`` + ``matches``,
  with the docs' item of the same vault), and ``WorkloadItemApi.item_jobs`` places the job.
- the other jobs (``docs-afs-mgmt-rest-AzureStorageJob-configurebackup``, the recorded
  ``afs_job_*``, ``wl_sql_job_*``, ``wl_hana_job_backup_completed``): ``job_details`` +
  ``job_state`` and ``failed_jobs``; none failed, so ``parse_job`` must reject each for its
  status only, and the same job with only its status set to ``Failed`` must parse whole (a
  configure-backup or disable-backup job is still a job the watcher may see failed).
  ``wl_hana_job_backup_inprogress`` (Azure's first answer for a running HANA job: no
  ``workloadType``, operation ``Backup``, entity ``systemdb``) is rejected for its status; marked
  failed, it is refused because its ``workloadType`` is missing (nothing in it tells SQL from
  HANA; the parser does not guess).
- ``WorkloadItemApi.item_jobs`` over the recorded jobs of each item: backups of the item are
  its jobs (``msdb [host]``, ``SYSTEMDB [host]``, ``systemdb``); configure and disable jobs are
  not, though their names match.
- protected items (``docs-sql-rest-AzureVmWorkloadSQLDatabase-irpending``, the recorded
  ``wl_sql_item_protected``, ``wl_hana_item_protected``, ``afs_item_list_irpending``):
  ``workload_items`` (the filter sent is the workload's) and ``WorkloadItemApi.current`` /
  ``protection_state`` (the item GET).
- the workload container (``rsb-2026-10-01-AzureWorkload-ProtectionContainers_Get``):
  ``WorkloadItemApi.host_vm`` and ``gone`` for a database (the host VM's GET: 200, or the
  recorded gateway 404 and no VM of the name elsewhere).
- the storage account (``storage_account_get_200``) and the deleted-shares list
  (``stg-2025-01-01-DeletedFileSharesList``): ``gone`` for a file share: listed and live, listed
  soft-deleted (urgent, never gone), not listed (gone), or the account's 404 (gone).
- the on-demand backup requests (``docs-sql-rest-AzureWorkloadBackupRequest``,
  ``docs-afs-rest-AzureFileShareBackupRequest``): ``WorkloadItemApi.trigger_backup``'s POST body
  compared with Microsoft's field by field.
- stop protection with data kept (``wl_sql_stop_protection_put_request``,
  ``afs_stop_protection_put_request``): ``WorkloadItemApi.stop_protection``'s PUT body against
  the CLI's recorded one (SQL adds only the host VM's ``sourceResourceId``, as Microsoft's SQL
  REST article sends it); SAP HANA's against the same body with its own item type (the CLI
  builds it so); never a DELETE.

No response to a workload trigger or stop was recorded: the VM's recorded responses to the same
calls (``scenario_backup_trigger_response_202``, ``scenario_stop_protection_put_response_202``
and its operation bodies), the recorded gateway 404 and the recorded VM answer them here, and
are named in ``REPLAYED`` for that.

``NOT_REPLAYED`` at the end lists the workload files no call of ours meets, with the reason;
``tests/test_replay.py::test_every_payload_is_replayed_or_listed`` checks both modules' lists.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.azure.backup import WATCHED, Gone, JobState, VaultApi, job_state, service_text
from handlers.azure.clients import AzureClients
from handlers.azure.workloads import (
    ITEM_QUERIES,
    MIN_FULL_RETENTION_DAYS,
    WorkloadItem,
    WorkloadItemApi,
    matches,
    workload_items,
)
from handlers.core.ids import VmRef, item_ref, job_ref
from handlers.core.model import BackupFailure, ErrorDetail, Source, Workload
from handlers.intake.events import PayloadError, cloud_event, parse, parse_job
from tests.replay import (
    CONTAINER_PATH,
    ISO_UTC,
    VMS_PATH,
    Payloads,
    Replay,
    azure_time,
    clients_fixture,  # noqa: F401 (the clients fixture)
    ok,
    optional_time,
    replay_fixture,  # noqa: F401 (the replay fixture)
    spec_path,
)

# ---------------------------------------------------------------------------------------------
# The payload files this module serves

#: The one failed workload job Microsoft published (SQL, ``Backup (Full)``, error 510008).
FAILED_SQL_JOB = "published/docs-sql-mgmt-rest-AzureWorkloadJob-failed.json"
#: Job details of jobs that did not fail; every one may be seen failed by the watcher.
JOBS = (
    "published/docs-afs-mgmt-rest-AzureStorageJob-configurebackup.json",
    "recorded/afs_job_configurebackup_completed.json",
    "recorded/afs_job_disablebackup_completed.json",
    "recorded/wl_hana_job_backup_completed.json",
    "recorded/wl_sql_job_backup_completed.json",
    "recorded/wl_sql_job_backup_inprogress.json",
    "recorded/wl_sql_job_disablebackup_completed.json",
)
#: A running HANA job as Azure first answers it: no ``workloadType``.
HANA_JOB_SPARSE = "recorded/wl_hana_job_backup_inprogress.json"
HANA_JOB_DONE = "recorded/wl_hana_job_backup_completed.json"
SQL_JOB_DONE = "recorded/wl_sql_job_backup_completed.json"
SQL_JOB_RUNNING = "recorded/wl_sql_job_backup_inprogress.json"
SQL_JOB_DISABLE = "recorded/wl_sql_job_disablebackup_completed.json"
AFS_JOB_CONFIGURE = "recorded/afs_job_configurebackup_completed.json"
AFS_JOB_DISABLE = "recorded/afs_job_disablebackup_completed.json"

SQL_DOCS_ITEM = "published/docs-sql-rest-AzureVmWorkloadSQLDatabase-irpending.json"
SQL_ITEM = "recorded/wl_sql_item_protected.json"
HANA_ITEM = "recorded/wl_hana_item_protected.json"
AFS_ITEMS = "recorded/afs_item_list_irpending.json"
#: Each item file and its workload.
ITEMS = (
    (SQL_DOCS_ITEM, Workload.SQL),
    (SQL_ITEM, Workload.SQL),
    (HANA_ITEM, Workload.HANA),
    (AFS_ITEMS, Workload.FILES),
)
CONTAINER_GET = "published/rsb-2026-10-01-AzureWorkload-ProtectionContainers_Get.json"
ACCOUNT_GET = "recorded/storage_account_get_200.json"
DELETED_SHARES = "published/stg-2025-01-01-DeletedFileSharesList.json"
SQL_REQUEST = "published/docs-sql-rest-AzureWorkloadBackupRequest.json"
AFS_REQUEST = "published/docs-afs-rest-AzureFileShareBackupRequest.json"
SQL_STOP_REQUEST = "recorded/wl_sql_stop_protection_put_request.json"
AFS_STOP_REQUEST = "recorded/afs_stop_protection_put_request.json"

# Azure VM recordings (replayed in tests/test_replay.py too) that answer the same calls here.
NOT_FOUND = "recorded/error_vault_get_404.json"
VM_GET = "published/compute-2024-11-01-VirtualMachine_Get.json"
VM_GET_RECORDED = "recorded/vm_get_200.json"
TRIGGER_202 = "recorded/scenario_backup_trigger_response_202.json"
STOP_202 = "recorded/scenario_stop_protection_put_response_202.json"
OPERATION_IN_PROGRESS = "recorded/scenario_backup_operation_status_inprogress.json"
STOP_OPERATION_SUCCEEDED = "recorded/scenario_stop_protection_operation_status_succeeded.json"

#: Every payload file a test here serves or compares with.
REPLAYED = frozenset(
    {
        FAILED_SQL_JOB,
        *JOBS,
        HANA_JOB_SPARSE,
        *(name for name, _ in ITEMS),
        CONTAINER_GET,
        ACCOUNT_GET,
        DELETED_SHARES,
        SQL_REQUEST,
        AFS_REQUEST,
        SQL_STOP_REQUEST,
        AFS_STOP_REQUEST,
        NOT_FOUND,
        VM_GET,
        VM_GET_RECORDED,
        TRIGGER_202,
        STOP_202,
        OPERATION_IN_PROGRESS,
        STOP_OPERATION_SUCCEEDED,
    }
)

payload, body_file, recorded, published, body_of = Payloads(REPLAYED).readers()

# The workload each job says it is (its ``jobType``, and for a database its ``workloadType``).
_JOB_WORKLOADS = {
    "AzureStorageJob": Workload.FILES,
    "SQLDataBase": Workload.SQL,
    "SAPHanaDatabase": Workload.HANA,
}
WINDOW = (datetime(2016, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))


def item_entry(name: str) -> dict[str, Any]:
    """The item resource of an item file (an item GET body, or the one entry of a list)."""
    document = body_of(name)
    if "value" in document:
        [entry] = document["value"]
        return entry
    return document


def expected_item(entry: dict[str, Any], workload: str) -> WorkloadItem:
    props = entry["properties"]
    return WorkloadItem(
        id=entry["id"],
        workload=workload,
        friendly_name=props["friendlyName"],
        server_name=props.get("serverName", ""),
        parent_name=props.get("parentName", ""),
        source_resource_id=props["sourceResourceId"],
        protection_state=props["protectionState"],
    )


def item_of(name: str, workload: str) -> WorkloadItem:
    return expected_item(item_entry(name), workload)


def job_page(*names: str) -> dict[str, Any]:
    """Job details bodies served as one page of ``BackupJobs_List`` (no workload job list was
    recorded; a list item is the same job resource)."""
    return {"value": [payload(n) for n in names]}


def serve_jobs(replay: Replay, *names: str) -> None:
    """The jobs of ``names`` (of one vault) answer that vault's job list."""
    vault = job_ref(payload(names[0])["id"])[0]
    replay.on("GET", vault.id + "/backupJobs", ok(" + ".join(names), job_page(*names)))


def as_failed(job_json: dict[str, Any]) -> dict[str, Any]:
    marked = copy.deepcopy(job_json)
    marked["properties"]["status"] = "Failed"
    return marked


# ---------------------------------------------------------------------------------------------
# Jobs


def assert_job_state(state: JobState, job: dict[str, Any]) -> None:
    """``state`` says what the job resource ``job`` (Azure's JSON) says; workload jobs name no
    container, so they place no VM."""
    props = job["properties"]
    assert state.job_id == job["name"]
    assert state.status == props["status"]
    assert state.operation == props["operation"]
    assert state.entity == props["entityFriendlyName"]
    assert (state.container, state.vm) == ("", ("", ""))
    # Each entry's number and, for SQL and HANA, its name (``errorTitle``), as the edge parser
    # takes them: a throttle is recognised by its name (``CloudDosAbsoluteLimitReached``).
    assert state.codes == tuple(
        str(code)
        for e in props.get("errorDetails", [])
        for code in (e["errorCode"], e.get("errorTitle"))
        if code not in (None, "")
    )
    assert state.start_time == optional_time(props, "startTime")
    assert state.end_time == optional_time(props, "endTime")


def assert_failure(failure: BackupFailure, job: dict[str, Any]) -> None:
    """``failure`` is the whole job: its vault, workload, names, operation and backup type,
    times, actions and errors."""
    props = job["properties"]
    vault, job_name = job_ref(job["id"])
    assert (failure.job_id, failure.subscription_id) == (job_name, vault.subscription_id)
    assert (failure.vault_resource_group, failure.vault_name) == (vault.resource_group, vault.name)
    kind = props["workloadType"] if props["jobType"] == "AzureWorkloadJob" else props["jobType"]
    assert failure.workload == _JOB_WORKLOADS[kind]
    assert failure.entity == props["entityFriendlyName"]
    assert failure.storage_account == props.get("storageAccountName", "")
    assert (failure.vm_resource_group, failure.vm_name) == ("", "")  # a VM's names only
    assert failure.operation == props["operation"]
    typed = re.fullmatch(r"Backup \((\w+)\)", props["operation"])
    assert failure.backup_type == (typed[1] if typed else "")
    assert failure.status == "Failed"
    assert failure.start_time == optional_time(props, "startTime")
    assert failure.end_time == optional_time(props, "endTime")
    names = ("Invalid", "Cancellable", "Retriable")
    assert failure.actions_info == tuple(names[a] for a in props.get("actionsInfo", []))
    assert failure.errors == tuple(
        ErrorDetail(
            code=str(e["errorCode"]),
            message=e["errorString"],
            recommendations=tuple(e["recommendations"]),
            title=e["errorTitle"],
        )
        for e in props.get("errorDetails", [])
    )


def read_details(clients: AzureClients, replay: Replay, name: str) -> tuple[Any, dict[str, Any]]:
    """``job_details`` answered by the file at its job id: the SDK job and Azure's JSON."""
    job = payload(name)
    vault, job_name = job_ref(job["id"])
    replay.on("GET", job["id"], ok(name, job))

    sdk_job = VaultApi(clients, vault).job_details(job_name)

    assert [s.path.lower() for s in replay.sent] == [job["id"].lower()]
    return sdk_job, job


def test_failed_sql_job_details(clients: AzureClients, replay: Replay) -> None:
    """Microsoft's failed SQL job, read as the alert path and the watcher read it: ``job_state``
    has its status, operation, numeric code and the code's name; ``parse_job`` on ``as_dict()``
    and ``parse`` of the watcher's CloudEvent take it whole: workload ``sql``, the entity
    ``MSSQLSERVER/msDB [sqlserver-0.contoso.com]``, backup type ``Full``, error 510008 as text
    with its title (both are the failure's codes), message and recommendation, ``Cancellable``,
    7-digit times to the microsecond."""
    sdk_job, job = read_details(clients, replay, FAILED_SQL_JOB)

    state = job_state(sdk_job)
    assert_job_state(state, job)
    assert (state.status, state.codes) == (
        "Failed",
        ("510008", "OperationCancelledBecauseConflictingOperationRunningUserError"),
    )
    failure = parse_job(sdk_job.as_dict(), Source.ALERT, "alert-1")
    assert_failure(failure, job)
    title = "OperationCancelledBecauseConflictingOperationRunningUserError"
    assert (failure.workload, failure.backup_type) == ("sql", "Full")
    assert failure.codes == ("510008", title)  # what the rules match: the code and its name
    assert failure.start_time == datetime(2018, 5, 28, 11, 43, 21, 651618, tzinfo=UTC)
    event = parse(cloud_event(sdk_job.as_dict(), "event-1"))
    assert isinstance(event, BackupFailure)
    assert_failure(event, job)
    assert (event.source, event.event_id) == (Source.CLOUD_EVENT, "event-1")


@pytest.mark.parametrize("name", (FAILED_SQL_JOB, *JOBS, HANA_JOB_SPARSE))
def test_failed_jobs_keep_workload_jobs(name: str, clients: AzureClients, replay: Replay) -> None:
    """The watcher's listing keeps every workload job (its management type is watched) and
    reads it into a ``job_state``; the job is served as a page of one."""
    job = payload(name)
    serve_jobs(replay, name)

    [sdk_job] = VaultApi(clients, job_ref(job["id"])[0]).failed_jobs(*WINDOW)

    assert service_text(sdk_job.properties.backup_management_type) in WATCHED
    assert_job_state(job_state(sdk_job), job)
    clauses = replay.sent[0].query["$filter"].split(" and ")
    assert clauses[0] == "status eq 'Failed'"


@pytest.mark.parametrize("name", JOBS)
def test_job_details(name: str, clients: AzureClients, replay: Replay) -> None:
    """A workload job that did not fail: ``job_state`` reads it; ``parse_job`` rejects it for
    its status only; once only its status says ``Failed`` it parses whole (a file share's
    storage account, a database's typed operation, TimeSpan and ISO durations)."""
    sdk_job, job = read_details(clients, replay, name)

    state = job_state(sdk_job)
    assert_job_state(state, job)
    job_json = sdk_job.as_dict()
    reason = f"properties.status is {state.status!r}, not 'Failed'"
    with pytest.raises(PayloadError) as rejected:
        parse_job(job_json, Source.REPLAY)
    assert str(rejected.value) == reason
    assert getattr(parse(job_json), "reason", None) == reason
    assert_failure(parse_job(as_failed(job_json), Source.REPLAY), job)


def test_hana_job_without_workload_type(clients: AzureClients, replay: Replay) -> None:
    """Azure's first answer for a running HANA backup has no ``workloadType`` (operation
    ``Backup``, entity ``systemdb``): rejected for its status, as any running job. Marked
    failed, it is refused with the reason that the workload type is missing: nothing in the
    job tells a SQL database from a HANA one, and the parser never guesses. (The parser used
    to check the workload before the status, so this running job was refused for its workload
    type.) The completed answer for the same job names it."""
    sdk_job, job = read_details(clients, replay, HANA_JOB_SPARSE)

    assert "workloadType" not in job["properties"]
    assert_job_state(job_state(sdk_job), job)
    job_json = sdk_job.as_dict()
    with pytest.raises(PayloadError, match=r"^properties\.status is 'InProgress', not 'Failed'$"):
        parse_job(job_json, Source.REPLAY)
    with pytest.raises(PayloadError, match=r"^properties\.workloadType is missing$"):
        parse_job(as_failed(job_json), Source.REPLAY)
    done = payload(HANA_JOB_DONE)
    assert (done["name"], done["properties"]["workloadType"]) == (job["name"], "SAPHanaDatabase")


# ---------------------------------------------------------------------------------------------
# Protected items


@pytest.mark.parametrize(("name", "workload"), ITEMS)
def test_workload_items(name: str, workload: str, clients: AzureClients, replay: Replay) -> None:
    """``workload_items`` sends the workload's item filter and reads each item by its JSON
    names (friendly name, server, instance, source, state). An item GET body is served as a
    page of one."""
    entry = item_entry(name)
    vault = item_ref(entry["id"])[0]
    replay.on("GET", vault.id + "/backupProtectedItems", ok(name, {"value": [entry]}))

    [item] = workload_items(clients, vault, workload)

    assert item == expected_item(entry, workload)
    assert replay.sent[0].query["$filter"] == ITEM_QUERIES[workload]
    if workload == Workload.FILES:
        assert item.storage_account == "clitest000003"
        assert (item.server_name, item.parent_name) == ("", "")


@pytest.mark.parametrize(("name", "workload"), ITEMS)
def test_current_item(name: str, workload: str, clients: AzureClients, replay: Replay) -> None:
    """``current`` and ``protection_state`` GET the item at its id (the AFS list entry served
    as the item GET) and read it."""
    entry = item_entry(name)
    replay.on("GET", entry["id"], ok(name, entry))
    item = expected_item(entry, workload)
    api = WorkloadItemApi(clients, item, item.friendly_name)

    assert api.current() == item
    assert api.protection_state() == entry["properties"]["protectionState"]
    assert {s.path.lower() for s in replay.sent} == {entry["id"].lower()}


def test_current_item_gone_gateway_404(clients: AzureClients, replay: Replay) -> None:
    """The recorded ARM gateway 404 served for the item GET: the vault has no such item."""
    item = item_of(SQL_ITEM, Workload.SQL)
    replay.on("GET", item.id, recorded(NOT_FOUND))

    assert WorkloadItemApi(clients, item, "msdb").protection_state() is None


def test_failed_sql_job_finds_its_item(clients: AzureClients, replay: Replay) -> None:
    """The failed job's names find Microsoft's SQL item of the same vault as
    ``resolve_workload_item`` looks for it (instance ``MSSQLSERVER``, ``msDB`` in another case,
    host ``sqlserver-0`` under another domain), and ``item_jobs`` of that item, with the
    workload's management type filter, gives the failed job."""
    job = payload(FAILED_SQL_JOB)
    failure = parse_job(job, Source.REPLAY)
    entry = item_entry(SQL_DOCS_ITEM)
    vault = item_ref(entry["id"])[0]
    assert vault == job_ref(job["id"])[0]
    replay.on("GET", vault.id + "/backupProtectedItems", ok(SQL_DOCS_ITEM, {"value": [entry]}))
    serve_jobs(replay, FAILED_SQL_JOB)

    [item] = [
        i
        for i in workload_items(clients, vault, failure.workload)
        if matches(i, failure.entity, failure.storage_account)
    ]
    jobs = WorkloadItemApi(clients, item, failure.entity, failure.backup_type).item_jobs(*WINDOW)

    assert item == expected_item(entry, Workload.SQL)
    assert [j.job_id for j in jobs] == [failure.job_id]
    clauses = replay.calls("GET", "/backupJobs")[0].query["$filter"].split(" and ")
    assert clauses[0] == "backupManagementType eq 'AzureWorkload'"
    assert [c.split(" ")[0] for c in clauses[1:]] == ["startTime", "endTime"]


@pytest.mark.parametrize(
    ("item_name", "jobs", "backups"),
    [
        (SQL_ITEM, (SQL_JOB_DONE, SQL_JOB_DISABLE), (SQL_JOB_DONE,)),
        (SQL_ITEM, (SQL_JOB_RUNNING,), (SQL_JOB_RUNNING,)),
        (HANA_ITEM, (HANA_JOB_DONE,), (HANA_JOB_DONE,)),
        (HANA_ITEM, (HANA_JOB_SPARSE,), (HANA_JOB_SPARSE,)),
        (AFS_ITEMS, (AFS_JOB_CONFIGURE, AFS_JOB_DISABLE), ()),
    ],
)
def test_item_jobs(
    item_name: str,
    jobs: tuple[str, ...],
    backups: tuple[str, ...],
    clients: AzureClients,
    replay: Replay,
) -> None:
    """Every recorded job of an item is matched to it by its names (``msdb [sql-clitestvm-d]``
    for ``msdb`` on ``sql-clitestvm-d``, ``SYSTEMDB [saphana-clitest-vm2]`` and ``systemdb``,
    a share with its storage account); ``item_jobs`` keeps the backups (``Backup (Full)``, and
    ``Backup`` untyped while running), never a configure or disable job."""
    workload = dict(ITEMS)[item_name]
    item = item_of(item_name, workload)
    serve_jobs(replay, *jobs)

    found = WorkloadItemApi(clients, item, item.friendly_name).item_jobs(*WINDOW)

    for name in jobs:
        props = payload(name)["properties"]
        assert matches(item, props["entityFriendlyName"], props.get("storageAccountName", ""))
    assert [j.job_id for j in found] == [payload(n)["name"] for n in backups]
    for state, name in zip(found, backups, strict=True):
        assert_job_state(state, payload(name))
    kind = "AzureStorage" if workload == Workload.FILES else "AzureWorkload"
    assert replay.sent[0].query["$filter"].startswith(f"backupManagementType eq '{kind}' and ")


# ---------------------------------------------------------------------------------------------
# Is what the item protects gone?


def container_item() -> WorkloadItem:
    """A SQL item in the container of ``ProtectionContainers_Get`` (the item's own name is
    the recorded SQL item's: the example names only the container)."""
    parameters = payload(CONTAINER_GET)["parameters"]
    recorded_item = item_of(SQL_ITEM, Workload.SQL)
    item_id = spec_path(CONTAINER_PATH, parameters) + f"/protectedItems/{recorded_item.name}"
    return dataclasses.replace(recorded_item, id=item_id)


def test_host_vm_from_the_container(clients: AzureClients, replay: Replay) -> None:
    """``ProtectionContainers_Get`` (AzureWorkload): ``host_vm`` GETs the example's container
    and reads the VM from its ``sourceResourceId`` (the example's ``$filter`` is optional: the
    SDK's GET takes none)."""
    example = payload(CONTAINER_GET)
    path = spec_path(CONTAINER_PATH, example["parameters"])
    replay.on("GET", path, published(CONTAINER_GET))

    vm = WorkloadItemApi(clients, container_item(), "msdb").host_vm()

    source = example["responses"]["200"]["body"]["properties"]["sourceResourceId"]
    assert vm == VmRef.parse(source)
    assert (vm.resource_group, vm.name) == ("testRG", "testSQL")
    assert [s.path.lower() for s in replay.sent] == [path.lower()]


def test_database_not_gone_while_its_host_vm_exists(clients: AzureClients, replay: Replay) -> None:
    """The container names the host VM; the VM's GET answers 200 (the published
    ``VirtualMachine_Get`` body, served at the host VM's id): not gone."""
    example = payload(CONTAINER_GET)
    replay.on("GET", spec_path(CONTAINER_PATH, example["parameters"]), published(CONTAINER_GET))
    vm = VmRef.parse(example["responses"]["200"]["body"]["properties"]["sourceResourceId"])
    replay.on("GET", vm.id, published(VM_GET))

    verdict = WorkloadItemApi(clients, container_item(), "msdb").gone()

    assert verdict == Gone(
        False, f"the host VM {vm.id} exists (a database itself cannot be checked)"
    )


def test_database_gone_with_its_host_vm(clients: AzureClients, replay: Replay) -> None:
    """The host VM's GET answers the recorded gateway 404, and the subscription's VM list (a
    page with the recorded VM ``clitest-vm000003``, served for the list) has no VM of its name
    elsewhere: gone."""
    example = payload(CONTAINER_GET)
    replay.on("GET", spec_path(CONTAINER_PATH, example["parameters"]), published(CONTAINER_GET))
    vm = VmRef.parse(example["responses"]["200"]["body"]["properties"]["sourceResourceId"])
    replay.on("GET", vm.id, recorded(NOT_FOUND))
    vms = {"value": [payload(VM_GET_RECORDED)]}
    replay.on("GET", VMS_PATH.format(subscriptionId=vm.subscription_id), ok(VM_GET_RECORDED, vms))

    verdict = WorkloadItemApi(clients, container_item(), "msdb").gone()

    assert verdict == Gone(True, f"the host VM {vm.id} is confirmed deleted (ARM 404)")


def afs_item() -> WorkloadItem:
    return item_of(AFS_ITEMS, Workload.FILES)


@pytest.mark.parametrize(
    ("share", "verdict"),
    [
        (None, "gone"),
        ("share1644", "soft-deleted"),
        ("share4052", "exists"),
    ],
)
def test_share_gone(share: str | None, verdict: str, clients: AzureClients, replay: Replay) -> None:
    """A share's item (the recorded one; its share renamed to each of the list's shares):
    its storage account's GET answers the recorded 200, then the account's shares are listed
    with ``$expand=deleted``, answered by ``DeletedFileSharesList`` (served for the recorded
    account): the recorded share is in neither form (gone), ``share1644`` is soft-deleted
    (not gone, urgent: undelete it, 30 days left), ``share4052`` is live (not gone)."""
    item = afs_item()
    if share:
        item = dataclasses.replace(item, friendly_name=share)
    account = item.source_resource_id
    replay.on("GET", account, body_file(ACCOUNT_GET))
    replay.on("GET", account + "/fileServices/default/shares", published(DELETED_SHARES))
    assert payload(ACCOUNT_GET)["id"].lower() == account.lower()  # recorded for this account

    found = WorkloadItemApi(clients, item, item.friendly_name).gone()

    name = item.friendly_name
    expected = {
        "gone": Gone(True, f"the share {name} is confirmed deleted (not listed, not soft-deleted)"),
        "soft-deleted": Gone(
            False, f"the share {name} is soft-deleted: undelete it (30 day(s) left)", True
        ),
        "exists": Gone(False, f"the share {name} exists in {account}"),
    }
    assert found == expected[verdict]
    listed = replay.calls("GET", "/fileServices/default/shares")
    assert [s.query.get("$expand") for s in listed] == ["deleted"]
    assert replay.answered_by == [ACCOUNT_GET, DELETED_SHARES]


def test_share_gone_with_its_storage_account(clients: AzureClients, replay: Replay) -> None:
    """The storage account's GET answers the recorded gateway 404: the share is gone with its
    account; no share list is read."""
    item = afs_item()
    replay.on("GET", item.source_resource_id, recorded(NOT_FOUND))

    found = WorkloadItemApi(clients, item, item.friendly_name).gone()

    account = item.source_resource_id
    assert found == Gone(True, f"the storage account {account} is confirmed deleted (ARM 404)")
    assert not replay.calls("GET", "/fileServices/")


# ---------------------------------------------------------------------------------------------
# The on-demand backup


def serve_trigger(replay: Replay, item: WorkloadItem) -> str:
    """The recorded 202 of the VM's backup-now answers the item's POST; returns its status URL."""
    answer = recorded(TRIGGER_202)
    replay.on("POST", item.id + "/backup", answer)
    return answer.headers["azure-asyncoperation"]


@pytest.mark.parametrize("backup_type", ["Full", "Differential", "Log"])
def test_trigger_sql_backup(backup_type: str, clients: AzureClients, replay: Replay) -> None:
    """Microsoft's SQL request (``objectType`` ``AzureWorkloadBackupRequest``, ``backupType``):
    our POST to Microsoft's item carries it with the failed job's type; a full backup adds
    only its expiry (at least the 45 days Azure keeps an on-demand full, as the CLI asks, in
    Azure's ISO form), a differential or log backup nothing (their retention is the policy's)."""
    item = item_of(SQL_DOCS_ITEM, Workload.SQL)
    status_url = serve_trigger(replay, item)
    api = WorkloadItemApi(clients, item, "msdb", backup_type)

    before = datetime.now(UTC)
    assert api.trigger_backup(30) == status_url
    after = datetime.now(UTC)

    [post] = replay.sent
    assert post.path.lower() == (item.id + "/backup").lower()
    request = payload(SQL_REQUEST)["properties"]
    sent = post.body["properties"]
    assert post.body.keys() == {"properties"}
    assert {k: sent[k] for k in request} == {**request, "backupType": backup_type}
    if backup_type != "Full":
        assert sent.keys() == request.keys()
        return
    assert sent.keys() - request.keys() == {"recoveryPointExpiryTimeInUTC"}
    expiry = sent["recoveryPointExpiryTimeInUTC"]
    assert ISO_UTC.match(expiry), expiry
    days = timedelta(days=MIN_FULL_RETENTION_DAYS)
    assert before + days <= azure_time(expiry) <= after + days


def test_trigger_file_share_backup(clients: AzureClients, replay: Replay) -> None:
    """Microsoft's Azure Files request: our POST to the recorded share's item has exactly its
    fields, its ``objectType`` and an expiry in the same ISO form, ``expiry_days`` ahead."""
    item = afs_item()
    status_url = serve_trigger(replay, item)

    before = datetime.now(UTC)
    assert WorkloadItemApi(clients, item, item.friendly_name).trigger_backup(30) == status_url
    after = datetime.now(UTC)

    [post] = replay.sent
    assert post.path.lower() == (item.id + "/backup").lower()
    request = payload(AFS_REQUEST)
    assert post.body.keys() == request.keys()
    assert post.body["properties"].keys() == request["properties"].keys()
    assert post.body["properties"]["objectType"] == request["properties"]["objectType"]
    expiry = post.body["properties"]["recoveryPointExpiryTimeInUTC"]
    assert ISO_UTC.match(request["properties"]["recoveryPointExpiryTimeInUTC"])
    assert ISO_UTC.match(expiry), expiry
    assert before + timedelta(days=30) <= azure_time(expiry) <= after + timedelta(days=30)


# ---------------------------------------------------------------------------------------------
# Stop protection (data kept)


def serve_stop(replay: Replay, item_name: str, item: WorkloadItem) -> None:
    """The recorded VM stop's 202 and operation bodies answer the item's PUT and the poller
    (which follows the 202's URL as given); the final GET of the item is answered by the
    recorded item (no item after a workload stop was recorded)."""
    accepted = recorded(STOP_202)
    replay.on("PUT", item.id, accepted)
    replay.on(
        "GET",
        accepted.headers["azure-asyncoperation"],
        body_file(OPERATION_IN_PROGRESS),
        body_file(STOP_OPERATION_SUCCEEDED),
    )
    replay.on("GET", item.id, ok(item_name, item_entry(item_name)))


def test_stop_protection_file_share(clients: AzureClients, replay: Replay) -> None:
    """The CLI's recorded ``protection disable`` of a share (data kept): our PUT body for the
    recorded item equals the recorded one, the storage account's ``sourceResourceId`` as the
    item has it (``Microsoft.storage``); the state returned is the item's after the PUT."""
    item = afs_item()
    serve_stop(replay, AFS_ITEMS, item)

    state = WorkloadItemApi(clients, item, item.friendly_name).stop_protection()

    [put] = replay.calls("PUT")
    assert put.path.lower() == item.id.lower()
    assert put.body == payload(AFS_STOP_REQUEST)
    assert state == item_entry(AFS_ITEMS)["properties"]["protectionState"]
    assert replay.answered_by[-1] == AFS_ITEMS


def test_stop_protection_sql(clients: AzureClients, replay: Replay) -> None:
    """The CLI's recorded ``protection disable`` of a SQL database (data kept): our PUT body
    has every recorded field with its value, and adds only ``sourceResourceId``: the host VM,
    read from the item's container (answered by ``ProtectionContainers_Get``, served at the
    recorded item's container), as Microsoft's SQL REST article sends it."""
    item = item_of(SQL_ITEM, Workload.SQL)
    _, container, _ = item_ref(item.id)
    container_path = item.id.split("/protectedItems/")[0]
    assert container_path.endswith(container)
    replay.on("GET", container_path, published(CONTAINER_GET))
    serve_stop(replay, SQL_ITEM, item)

    state = WorkloadItemApi(clients, item, "msdb [sql-clitestvm-d]").stop_protection()

    [put] = replay.calls("PUT")
    assert put.path.lower() == item.id.lower()
    host = payload(CONTAINER_GET)["responses"]["200"]["body"]["properties"]["sourceResourceId"]
    cli_request = payload(SQL_STOP_REQUEST)["properties"]
    assert put.body == {"properties": {**cli_request, "sourceResourceId": VmRef.parse(host).id}}
    assert state == "Protected"  # the recorded item, served for the GET after the stop


def test_stop_protection_hana(clients: AzureClients, replay: Replay) -> None:
    """SAP HANA: our PUT body is the CLI's recorded SQL body with HANA's item type (what the CLI
    builds for HANA: no ``sourceResourceId``), and no container is read."""
    item = item_of(HANA_ITEM, Workload.HANA)
    serve_stop(replay, HANA_ITEM, item)

    state = WorkloadItemApi(clients, item, "SYSTEMDB [saphana-clitest-vm2]").stop_protection()

    [put] = replay.calls("PUT")
    cli_request = payload(SQL_STOP_REQUEST)["properties"]
    hana = {**cli_request, "protectedItemType": "AzureVmWorkloadSAPHanaDatabase"}
    assert put.body == {"properties": hana}
    assert [s.method for s in replay.sent] == ["PUT", "GET", "GET", "GET"]  # no container GET
    assert state == "Protected"


# ---------------------------------------------------------------------------------------------
# What is not replayed, and why

#: Workload payload files that no call of ours meets, with the reason.
NOT_REPLAYED = {
    "published/stg-2025-01-01-FileSharesGet.json": (
        "we never GET a file share: gone() lists the account's shares with $expand=deleted "
        "(DeletedFileSharesList, replayed), which shows a live share and a soft-deleted one "
        "alike"
    ),
    "recorded/afs_container_registered.json": (
        "an entry of the vault's protection-container list (GET backupProtectionContainers "
        "filtered on AzureStorage): we never list containers, and our one container GET "
        "(host_vm) is for a database's VMAppContainer; a share's storage account is read from "
        "its item's sourceResourceId"
    ),
}
