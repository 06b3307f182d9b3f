"""Replay of Azure's real traffic through our SDK calls and our parser (issue #9, item 3).

Every published and recorded Azure response in ``sandbox/simulator/azure_payloads/`` (see its
``SOURCES.md``) is served by :class:`Replay`, an azure-core transport that answers from the file
(never from the network), to the call of ours that meets it in production:

- job details (``GetJobDetails``, the docs capture, the go6543 fragment, every recorded
  ``scenario_job_*`` and ``job_details_*``): ``VaultApi.job_details`` + ``job_state``, then
  ``parse_job`` on ``as_dict()`` as the watcher and the alert path do. None of these jobs failed
  (no failed IaaS VM job was ever recorded), so the parser must reject each for its status and
  for nothing else; the same job with only its status set to ``Failed`` must parse whole
  (container, 7-digit times, numeric ``actionsInfo``, no ``containerName``).
- job lists (``ListJobs``, ``ListJobsWithAllSupportedFilters``, the go5339 item, the recorded
  ``job_list_*``): ``VaultApi.failed_jobs``/``jobs`` and ``ItemApi.item_jobs``; the ``$filter``
  we send has the clauses and the time form of the published filter example.
- protected items (``BackupProtectedItems_List``, the recorded item lists in IRPending, Protected
  and ProtectionStopped): ``VaultApi.vm_items``; ``Compute_ProtectedItem_Get``:
  ``ItemApi.protected_item``; ``RecoveryPoints_List``: ``ItemApi.recovery_point_times`` (the
  orphan sweep).
- vault lists (``ListBySubscriptionIds``, the recorded list with a ``/Vaults/`` id):
  ``vault_refs``.
- the VM (``VirtualMachine_Get``, ``vm_get_200``, and the recorded gateway 404):
  ``ItemApi.vm_exists`` and ``call``'s error kind.
- the on-demand backup (``TriggerBackup_Post``, the recorded 202 with lower-case headers, the
  operation status bodies): ``ItemApi.trigger_backup``, ``operation_job``, ``started_job``; the
  request body matches the CLI's recorded one field by field.
- stop protection with data kept (``StopProtection``, the recorded 202 and operation status
  bodies): ``ItemApi.stop_protection`` follows Azure's own LRO URLs (their api-version kept) to
  ``ProtectionStopped``; the PUT body equals the CLI's recorded one; never a DELETE.
- a Backup RP 400 (``supplementary_error_bms_invalid_input_400``) on the trigger: ``refused``.
- the ARM delete event (``eventgrid-ResourceDeleteSuccess``): ``read_deleted_vm``.

How files are served (a recorded response with its status and lower-case headers, a body-only
file as a 200 with no header, a published example's ``responses[status]``, the transcriber's
``_`` notes left out) is said in ``tests/replay.py``, which holds the transport ``Replay`` and
the helpers this module shares with ``tests/test_replay_workloads.py``. Where a body is served
at another URL than the one it was recorded at, the test says so.

The workloads' payloads (SQL Server and SAP HANA in Azure VMs, Azure Files, Microsoft.Storage)
are replayed in ``tests/test_replay_workloads.py``. ``NOT_REPLAYED`` at the end (and the one
there) lists every payload file no call of ours meets, with the reason;
``test_every_payload_is_replayed_or_listed`` keeps both modules' ``REPLAYED`` and
``NOT_REPLAYED`` complete.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.azure.backup import VM_ITEMS, ItemApi, JobState, VaultApi, VmItem, job_state
from handlers.azure.backup import vault_refs as list_vault_refs
from handlers.azure.clients import AzureClients
from handlers.azure.errors import AzureCallError, ErrorKind, call
from handlers.core.ids import VaultRef, VmRef, job_ref, vm_from_container
from handlers.core.model import ProtectedItemRef, Source
from handlers.intake.events import PayloadError, parse, parse_job
from handlers.intake.vm_deleted import read_deleted_vm
from sandbox.simulator.payloads import PAYLOADS_DIR
from tests.replay import (
    CLI_SUB,
    ISO_UTC,
    ITEM_PATH,
    JOB_PATH,
    VAULT_PATH,
    VAULTS_PATH,
    VM_PATH,
    Payloads,
    Replay,
    azure_time,
    clients_fixture,  # noqa: F401 (the clients fixture)
    lro_item_path,
    ok,
    replay_fixture,  # noqa: F401 (the replay fixture)
    spec_path,
)
from tests.test_replay_guard import NOT_REPLAYED as GUARD_NOT_REPLAYED
from tests.test_replay_guard import REPLAYED as GUARD_REPLAYED
from tests.test_replay_workloads import NOT_REPLAYED as WORKLOAD_NOT_REPLAYED
from tests.test_replay_workloads import REPLAYED as WORKLOAD_REPLAYED

# ---------------------------------------------------------------------------------------------
# The payload files this module serves

# The Azure CLI's recorded scenario (test_backup_scenario.yaml, test_backup_job.yaml).
CLI_RG = "clitest.rg000001"
CLI_VAULT = VaultRef(CLI_SUB, CLI_RG, "clitest-vault000002")
CLI_ITEM = ProtectedItemRef(CLI_SUB, CLI_RG, CLI_VAULT.name, CLI_RG, "clitest-vm000003")

#: Job details, as ``JobDetails_Get`` returns them. Every operation (Backup, Restore,
#: ConfigureBackup, DisableBackup) meets ``job_details``: the watcher lists failed VM jobs of
#: any operation and reads their details, and an alert may name any job.
JOB_DETAILS = (
    "published/rsb-2026-10-01-GetJobDetails.json",
    "published/docs-managejobs-JobDetails_Get-response.json",
    "recorded/job_details_restore_inprogress.json",
    "recorded/scenario_job_backup_completed.json",
    "recorded/scenario_job_backup_inprogress.json",
    "recorded/scenario_job_configurebackup_completed.json",
    "recorded/scenario_job_disablebackup_completed.json",
    "recorded/scenario_job_restore_inprogress.json",
)
JOB_FRAGMENT = "published/observed-go6543-JobDetails_Get-fragment.json"
#: Pages of ``BackupJobs_List``.
JOB_LISTS = (
    "published/rsb-2026-10-01-ListJobs.json",
    "published/rsb-2026-10-01-ListJobsWithAllSupportedFilters.json",
    "published/observed-go5339-BackupJobs_List-item.json",
    "recorded/job_list_filter_operation_restore_and_status.json",
    "recorded/job_list_filter_status_inprogress.json",
    "recorded/job_list_nofilter.json",
)
JOB_FILTERS = "published/rsb-2026-10-01-ListJobsWithAllSupportedFilters.json"
#: Pages of ``BackupProtectedItems_List`` with the Azure VM filter.
ITEM_LIST_EXAMPLE = "published/rsb-2026-10-01-BackupProtectedItems_List.json"
ITEM_LISTS = (
    ITEM_LIST_EXAMPLE,
    "recorded/scenario_protected_items_list_irpending.json",
    "recorded/scenario_protected_items_list_protected_before_stop.json",
    "recorded/scenario_protected_items_list_after_stop_retain_data.json",
)
ITEM_GET = "published/rsb-2026-10-01-Compute_ProtectedItem_Get.json"
VAULT_LISTS = (
    "published/rs-2026-11-01-ListBySubscriptionIds.json",
    "recorded/vault_list_subscription_excerpt.json",
)
VM_GETS = ("published/compute-2024-11-01-VirtualMachine_Get.json", "recorded/vm_get_200.json")
NOT_FOUND = "recorded/error_vault_get_404.json"
TRIGGER = "published/rsb-2026-10-01-TriggerBackup_Post.json"
TRIGGER_202 = "recorded/scenario_backup_trigger_response_202.json"
TRIGGER_REQUEST = "recorded/scenario_backup_trigger_request.json"
OPERATION_STATUS = "published/rsb-2026-10-01-ProtectedItemOperationStatus.json"
OPERATION_IN_PROGRESS = "recorded/scenario_backup_operation_status_inprogress.json"
BACKUP_OPERATION_SUCCEEDED = "recorded/scenario_backup_operation_status_succeeded.json"
STOP = "published/rsb-2026-10-01-StopProtection.json"
STOP_202 = "recorded/scenario_stop_protection_put_response_202.json"
STOP_REQUEST = "recorded/scenario_stop_protection_put_request.json"
STOP_OPERATION_SUCCEEDED = "recorded/scenario_stop_protection_operation_status_succeeded.json"
ITEMS_AFTER_STOP = "recorded/scenario_protected_items_list_after_stop_retain_data.json"
BAD_REQUEST = "recorded/supplementary_error_bms_invalid_input_400.json"
VM_DELETED_EVENT = "published/eventgrid-ResourceDeleteSuccess.json"
RECOVERY_POINTS = "published/rsb-2026-10-01-RecoveryPoints_List.json"

#: Every payload file a test here serves or compares with.
REPLAYED = frozenset(
    {
        *JOB_DETAILS,
        JOB_FRAGMENT,
        *JOB_LISTS,
        *ITEM_LISTS,
        ITEM_GET,
        *VAULT_LISTS,
        *VM_GETS,
        NOT_FOUND,
        TRIGGER,
        TRIGGER_202,
        TRIGGER_REQUEST,
        OPERATION_STATUS,
        OPERATION_IN_PROGRESS,
        BACKUP_OPERATION_SUCCEEDED,
        STOP,
        STOP_202,
        STOP_REQUEST,
        STOP_OPERATION_SUCCEEDED,
        BAD_REQUEST,
        VM_DELETED_EVENT,
        RECOVERY_POINTS,
    }
)


payload, body_file, recorded, published, body_of = Payloads(REPLAYED).readers()


def _item_parameters(item: ProtectedItemRef) -> dict[str, str]:
    """The specification's path parameters of one of our items."""
    return {
        "subscriptionId": item.subscription_id,
        "resourceGroupName": item.vault_resource_group,
        "vaultName": item.vault_name,
        "fabricName": "Azure",
        "containerName": item.container_name,
        "protectedItemName": item.protected_item_name,
    }


# ---------------------------------------------------------------------------------------------
# Job details


def assert_job_state(state: JobState, job: dict[str, Any]) -> None:
    """``state`` says what the job resource ``job`` (Azure's JSON) says."""
    props = job["properties"]
    assert state.job_id == job["name"]
    assert state.status == props.get("status", "")
    assert state.operation == props.get("operation", "")
    assert state.entity == props.get("entityFriendlyName", "")
    assert state.container == props.get("containerName", "")
    assert state.vm == vm_from_container(props.get("containerName", ""))
    assert state.codes == ()
    for key, value in (("startTime", state.start_time), ("endTime", state.end_time)):
        if key in props:
            assert value is not None
            assert value == azure_time(props[key]), key
        else:
            assert value is None, key


def assert_parses_as_failed(job_json: dict[str, Any], job: dict[str, Any]) -> None:
    """Our parser takes the job whole once only its status says Failed (none was recorded)."""
    props = job["properties"]
    as_failed = {**job_json, "properties": {**job_json["properties"], "status": "Failed"}}
    failure = parse_job(as_failed, Source.REPLAY)
    vault, job_name = job_ref(job["id"])
    vm_group, vm_name = vm_from_container(props.get("containerName", ""))
    assert (failure.job_id, failure.vault_name, failure.vault_resource_group) == (
        job_name,
        vault.name,
        vault.resource_group,
    )
    assert failure.subscription_id == vault.subscription_id
    assert (failure.vm_resource_group, failure.vm_name) == (
        vm_group,
        vm_name or props.get("entityFriendlyName", ""),
    )
    assert failure.operation == props.get("operation", "")
    assert failure.start_time == (azure_time(props["startTime"]) if "startTime" in props else None)
    assert failure.end_time == (azure_time(props["endTime"]) if "endTime" in props else None)
    names = ("Invalid", "Cancellable", "Retriable")
    assert failure.actions_info == tuple(names[a] for a in props.get("actionsInfo", []))
    assert failure.errors == ()


@pytest.mark.parametrize("name", JOB_DETAILS)
def test_job_details(name: str, clients: AzureClients, replay: Replay) -> None:
    """``job_details`` + ``job_state`` read every field the payload has; ``parse_job`` on
    ``as_dict()`` (the watcher's and the alerts' path) rejects the job for its status only."""
    job = body_of(name)
    vault, job_name = job_ref(job["id"])
    document = payload(name)
    path = spec_path(JOB_PATH, document["parameters"]) if "parameters" in document else job["id"]
    replay.on("GET", path, ok(name, job))

    sdk_job = VaultApi(clients, vault).job_details(job_name)

    assert [s.path.lower() for s in replay.sent] == [path.lower()]
    state = job_state(sdk_job)
    assert_job_state(state, job)
    assert state.status in ("InProgress", "Completed")
    start = job["properties"]["startTime"]
    if re.search(r"\.\d{7}Z$", start):  # Azure's 7 digits: the 7th is below Python's resolution
        assert state.start_time == azure_time(start)
        assert f"{state.start_time:%S.%f}" == re.search(r"(\d\d\.\d{6})\dZ$", start)[1]
    job_json = sdk_job.as_dict()
    reason = f"properties.status is {state.status!r}, not 'Failed'"
    with pytest.raises(PayloadError) as rejected:
        parse_job(job_json, Source.REPLAY)
    assert str(rejected.value) == reason
    rejection = parse(job_json)
    assert getattr(rejection, "reason", None) == reason
    assert_parses_as_failed(job_json, job)


def test_job_details_go6543_fragment(clients: AzureClients, replay: Replay) -> None:
    """The truncated details quoted in azure-sdk-for-go#6543 (no status, no times): the SDK and
    ``job_state`` take it (status and times empty, the container as given); the parser accepts
    its id and jobType and rejects it because the status is missing."""
    job = payload(JOB_FRAGMENT)
    vault, job_name = job_ref(job["id"])
    replay.on("GET", job["id"], ok(JOB_FRAGMENT, job))

    sdk_job = VaultApi(clients, vault).job_details(job_name)

    state = job_state(sdk_job)
    assert_job_state(state, job)
    assert (state.status, state.start_time, state.container) == ("", None, "xxxxxx")
    assert state.vm == ("", "")  # the quote hid the container's real name
    with pytest.raises(PayloadError, match=r"^properties\.status is missing$"):
        parse_job(sdk_job.as_dict(), Source.REPLAY)


# ---------------------------------------------------------------------------------------------
# Job lists


def _job_page(name: str) -> tuple[VaultRef, str, dict[str, Any]]:
    """The vault, the list path and the page a job list file serves."""
    document = payload(name)
    if "parameters" in document:
        page = document["responses"]["200"]["body"]
        vault_path = spec_path(VAULT_PATH, document["parameters"])
    else:  # the go5339 quote is one list item: served as a page of one
        page = document if "value" in document else {"value": [document]}
        vault_path = job_ref(page["value"][0]["id"])[0].id
    return VaultRef.parse(vault_path), vault_path + "/backupJobs", page


@pytest.mark.parametrize("name", JOB_LISTS)
def test_job_list(name: str, clients: AzureClients, replay: Replay) -> None:
    """``failed_jobs`` reads every list item (no ``containerName`` in the published ones,
    numeric ``actionsInfo``, TimeSpan and ISO durations) into a ``job_state``; the parser
    takes each item whole once its status says Failed. The filter is the service's job: the
    replay serves the page as recorded, whatever we ask."""
    vault, path, page = _job_page(name)
    replay.on("GET", path, ok(name, page))
    since, until = datetime(2016, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)

    jobs = VaultApi(clients, vault).failed_jobs(since, until)

    assert len(jobs) == len(page["value"]) > 0
    for sdk_job, job in zip(jobs, page["value"], strict=True):
        assert_job_state(job_state(sdk_job), job)
        assert_parses_as_failed(sdk_job.as_dict(), job)
    [sent] = replay.sent
    clauses = sent.query["$filter"].split(" and ")
    assert clauses[0] == "status eq 'Failed'"  # of every workload: the types are kept after
    assert [c.split(" ")[0] for c in clauses[1:]] == ["startTime", "endTime"]


FILTER_TIME = r"'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [AP]M'"


def _filter_clauses(text: str) -> set[str]:
    """The clauses of a jobs ``$filter``, times replaced by their form."""
    return {re.sub(FILTER_TIME, "<time>", c) for c in text.split(" and ")}


def test_job_filter_matches_the_published_filter_example(
    clients: AzureClients, replay: Replay
) -> None:
    """``ListJobsWithAllSupportedFilters``: the ``$filter`` our ``jobs`` sends for the same
    clauses has the example's clauses and its time form (``yyyy-MM-dd hh:mm:ss AM``); the
    example's item (no ``containerName``) reads into a job state."""
    example = payload(JOB_FILTERS)
    published_filter = example["parameters"]["$filter"]
    vault, path, page = _job_page(JOB_FILTERS)
    replay.on("GET", path, ok(JOB_FILTERS, page))
    clauses = (
        "operation eq 'Backup' and backupManagementType eq 'AzureIaasVM' and status eq 'InProgress'"
    )
    since, until = datetime(2016, 1, 1, tzinfo=UTC), datetime(2017, 11, 29, 13, 30, tzinfo=UTC)

    [sdk_job] = VaultApi(clients, vault).jobs(clauses, since, until)

    sent_filter = replay.sent[0].query["$filter"]
    assert _filter_clauses(sent_filter) == _filter_clauses(published_filter)
    # the example's times have the form matched: both clauses are compared in it
    assert {"startTime eq <time>", "endTime eq <time>"} <= _filter_clauses(published_filter)
    assert "startTime eq '2016-01-01 12:00:00 AM'" in sent_filter
    assert "endTime eq '2017-11-29 01:30:00 PM'" in sent_filter
    assert_job_state(job_state(sdk_job), page["value"][0])


def test_item_jobs_places_the_published_item_without_container(
    clients: AzureClients, replay: Replay
) -> None:
    """``ListJobsWithAllSupportedFilters``: its Backup job names no container; ``item_jobs``
    gives it to the item by the VM's name when that name is unique in the vault."""
    example = payload(JOB_FILTERS)
    vault, path, page = _job_page(JOB_FILTERS)
    replay.on("GET", path, ok(JOB_FILTERS, page))
    item = ProtectedItemRef(vault.subscription_id, vault.resource_group, vault.name, "rg", "testvm")

    [job] = ItemApi(clients, item, same_name_items=1).item_jobs(
        datetime(2016, 1, 1, tzinfo=UTC), datetime(2017, 11, 29, tzinfo=UTC)
    )

    assert (job.job_id, job.container, job.entity) == (page["value"][0]["name"], "", "testvm")
    published_clauses = _filter_clauses(example["parameters"]["$filter"])
    sent_clauses = _filter_clauses(replay.sent[0].query["$filter"])
    assert sent_clauses == published_clauses - {"status eq 'InProgress'"}


# ---------------------------------------------------------------------------------------------
# Protected items


def expected_item(entry: dict[str, Any]) -> VmItem:
    props = entry["properties"]
    return VmItem(
        id=entry["id"],
        friendly_name=props["friendlyName"],
        source_resource_id=props["sourceResourceId"],
        protection_state=props["protectionState"],
        last_backup_time=props.get("lastBackupTime", ""),
        last_backup_status=props.get("lastBackupStatus", ""),
        last_recovery_point=props.get("lastRecoveryPoint", ""),
    )


@pytest.mark.parametrize("name", ITEM_LISTS)
def test_vm_items(name: str, clients: AzureClients, replay: Replay) -> None:
    """``vm_items`` sends the published filter and reads each item's friendly name, source VM
    and protection state (IRPending, Protected, ProtectionStopped; a classic VM's id with no
    resource group is not taken for a VM)."""
    document = payload(name)
    if "parameters" in document:
        vault = VaultRef.parse(spec_path(VAULT_PATH, document["parameters"]))
        page = document["responses"]["200"]["body"]
    else:
        vault, page = CLI_VAULT, document
    replay.on("GET", vault.id + "/backupProtectedItems", ok(name, page))

    items = VaultApi(clients, vault).vm_items()

    assert items == [expected_item(e) for e in page["value"]]
    published_filter = payload(ITEM_LIST_EXAMPLE)["parameters"]["$filter"]
    assert replay.sent[0].query["$filter"] == published_filter == VM_ITEMS
    for item in items:
        if "Microsoft.ClassicCompute" in item.source_resource_id:
            assert item.vm is None
        else:
            assert item.vm == VmRef(CLI_SUB, CLI_RG, CLI_ITEM.vm_name)
            assert item.protection_state in ("IRPending", "Protected", "ProtectionStopped")


def test_vm_items_by_name_any_case(clients: AzureClients, replay: Replay) -> None:
    """The recorded item, asked for by its name in another case (ARM names ignore case)."""
    name = "recorded/scenario_protected_items_list_protected_before_stop.json"
    page = payload(name)
    replay.on("GET", CLI_VAULT.id + "/backupProtectedItems", ok(name, page))

    [item] = VaultApi(clients, CLI_VAULT).vm_items("CLITEST-VM000003")

    assert item == expected_item(page["value"][0])
    assert replay.sent[0].query["$filter"] == f"{VM_ITEMS} and friendlyName eq 'CLITEST-VM000003'"


def test_protected_item_get(clients: AzureClients, replay: Replay) -> None:
    """``Compute_ProtectedItem_Get``: ``protected_item`` GETs the example's path (our names in
    another case) and reads the item. The example's source id has an empty resource group, so
    it names no VM we could act on."""
    example = payload(ITEM_GET)
    parameters = example["parameters"]
    vault = VaultRef.parse(spec_path(VAULT_PATH, parameters))
    path = spec_path(ITEM_PATH, parameters)
    replay.on("GET", path, published(ITEM_GET))
    vm_group, vm_name = vm_from_container(parameters["containerName"])
    item = ProtectedItemRef(
        vault.subscription_id, vault.resource_group, vault.name, vm_group, vm_name
    )

    found = ItemApi(clients, item).protected_item()

    assert found == expected_item(example["responses"]["200"]["body"])
    assert (found.friendly_name, found.protection_state) == ("iaasvm-1", "Protected")
    assert found.vm is None
    assert [s.path.lower() for s in replay.sent] == [path.lower()]


def test_recovery_point_times(clients: AzureClients, replay: Replay) -> None:
    """``RecoveryPoints_List`` (the orphan sweep counts what a stop keeps):
    ``recovery_point_times`` GETs the example's path without ``$filter`` (every point) and reads
    each point's time, 7 digits and all, oldest first; the example's ``nextLink`` is null."""
    example = payload(RECOVERY_POINTS)
    parameters = example["parameters"]
    vault = VaultRef.parse(spec_path(VAULT_PATH, parameters))
    path = spec_path(ITEM_PATH, parameters) + "/recoveryPoints"
    replay.on("GET", path, published(RECOVERY_POINTS))
    vm_group, vm_name = vm_from_container(parameters["containerName"])
    item = ProtectedItemRef(
        vault.subscription_id, vault.resource_group, vault.name, vm_group, vm_name
    )

    times = ItemApi(clients, item).recovery_point_times()

    points = example["responses"]["200"]["body"]["value"]
    assert times == sorted(azure_time(p["properties"]["recoveryPointTime"]) for p in points)
    assert len(times) == 3
    assert [s.path.lower() for s in replay.sent] == [path.lower()]
    assert "$filter" not in replay.sent[0].query


# ---------------------------------------------------------------------------------------------
# Vault lists


@pytest.mark.parametrize("name", VAULT_LISTS)
def test_vault_refs(name: str, clients: AzureClients, replay: Replay) -> None:
    """``vault_refs`` parses every vault id of the page, ``/Vaults/`` and a lower-case type
    included."""
    document = payload(name)
    if "parameters" in document:
        subscription = document["parameters"]["subscriptionId"]
        page = document["responses"]["200"]["body"]
    else:
        subscription, page = CLI_SUB, document
    replay.on("GET", VAULTS_PATH.format(subscriptionId=subscription), ok(name, page))

    refs = list_vault_refs(clients, subscription)

    assert refs == [VaultRef.parse(v["id"]) for v in page["value"]]
    assert [r.name for r in refs] == [v["name"] for v in page["value"]]
    assert {r.subscription_id for r in refs} == {subscription}
    if name.startswith("recorded/"):
        assert any("/Vaults/" in v["id"] for v in page["value"])


# ---------------------------------------------------------------------------------------------
# The VM


@pytest.mark.parametrize("name", VM_GETS)
def test_vm_exists(name: str, clients: AzureClients, replay: Replay) -> None:
    """A VM GET answered 200 with the VM: ``vm_exists`` is True."""
    document = payload(name)
    vm_json = body_of(name)
    vm = VmRef.parse(vm_json["id"])
    path = spec_path(VM_PATH, document["parameters"]) if "parameters" in document else vm.id
    replay.on("GET", path, ok(name, vm_json))
    item = ProtectedItemRef(vm.subscription_id, "rg-backup", "vault1", vm.resource_group, vm.name)

    assert ItemApi(clients, item).vm_exists() is True
    assert [s.path.lower() for s in replay.sent] == [path.lower()]


def test_vm_gone_gateway_404(clients: AzureClients, replay: Replay) -> None:
    """The recorded ARM gateway 404 (``error_vault_get_404``, recorded for a vault GET) served
    for the VM GET: ``vm_exists`` is False, ``call`` says ``not_found``/``ResourceNotFound``."""
    vm = CLI_ITEM.vm
    assert vm is not None
    replay.on("GET", vm.id, recorded(NOT_FOUND))

    assert ItemApi(clients, CLI_ITEM).vm_exists() is False
    with pytest.raises(AzureCallError) as failed:
        call(clients.compute(CLI_SUB).virtual_machines.get, vm.resource_group, vm.name)
    assert (failed.value.kind, failed.value.code, failed.value.status) == (
        ErrorKind.NOT_FOUND,
        "ResourceNotFound",
        404,
    )


# ---------------------------------------------------------------------------------------------
# The on-demand backup


def test_trigger_backup_published(clients: AzureClients, replay: Replay) -> None:
    """``TriggerBackup_Post``: our POST goes to the example's path with its request; the
    status URL returned is the ``Azure-AsyncOperation`` header as given (api-version
    2016-12-01); ``operation_job`` GETs exactly that URL, answered by
    ``ProtectedItemOperationStatus`` (Succeeded), and returns its job."""
    example = payload(TRIGGER)
    parameters = example["parameters"]
    vault = VaultRef.parse(spec_path(VAULT_PATH, parameters))
    path = spec_path(ITEM_PATH, parameters) + "/backup"
    answer = published(TRIGGER, "202")
    status_url = answer.headers["Azure-AsyncOperation"]
    replay.on("POST", path, answer)
    replay.on("GET", status_url, published(OPERATION_STATUS))
    vm_group, vm_name = vm_from_container(parameters["containerName"])
    api = ItemApi(
        clients,
        ProtectedItemRef(
            vault.subscription_id, vault.resource_group, vault.name, vm_group, vm_name
        ),
    )

    assert api.trigger_backup(30) == status_url
    [post] = replay.sent
    assert post.path.lower() == path.lower()
    request = parameters["parameters"]["properties"]
    assert {k: post.body["properties"][k] for k in request} == request

    job_id = api.operation_job(status_url)

    status = payload(OPERATION_STATUS)["responses"]["200"]["body"]
    assert job_id == status["properties"]["jobId"]
    assert replay.sent[-1].url == status_url
    assert replay.sent[-1].query["api-version"] == "2016-12-01"


def test_trigger_backup_recorded(clients: AzureClients, replay: Replay) -> None:
    """The CLI's recorded backup-now: our POST goes to the recorded item (the path in the
    recorded status URL); our body has the recorded request's keys, its ``objectType`` and an
    expiry in the same ISO form (ours to the microsecond, the CLI's to the millisecond); the
    recorded 202 (lower-case headers, no retry-after) gives the status URL. ``operation_job``
    on it is answered by the recorded operation bodies, which the CLI read at the vault-level
    ``backupOperations/{id}`` URL and are served here at the URL our call GETs: "" while in
    progress, then the job the backup started."""
    answer = recorded(TRIGGER_202)
    status_url = answer.headers["azure-asyncoperation"]
    item_path = lro_item_path(status_url)
    replay.on("POST", item_path + "/backup", answer)
    replay.on(
        "GET", status_url, body_file(OPERATION_IN_PROGRESS), body_file(BACKUP_OPERATION_SUCCEEDED)
    )
    api = ItemApi(clients, CLI_ITEM)
    assert item_path.lower() == spec_path(ITEM_PATH, _item_parameters(CLI_ITEM)).lower()

    before = datetime.now(UTC)
    assert api.trigger_backup(30) == status_url
    after = datetime.now(UTC)

    [post] = replay.sent
    cli_request = payload(TRIGGER_REQUEST)
    assert post.body.keys() == cli_request.keys()
    assert post.body["properties"].keys() == cli_request["properties"].keys()
    assert post.body["properties"]["objectType"] == cli_request["properties"]["objectType"]
    expiry = post.body["properties"]["recoveryPointExpiryTimeInUTC"]
    assert ISO_UTC.match(cli_request["properties"]["recoveryPointExpiryTimeInUTC"])
    assert ISO_UTC.match(expiry), expiry
    assert before + timedelta(days=30) <= azure_time(expiry) <= after + timedelta(days=30)

    assert api.operation_job(status_url) == ""
    assert (
        api.operation_job(status_url) == payload(BACKUP_OPERATION_SUCCEEDED)["properties"]["jobId"]
    )
    assert [s.url for s in replay.calls("GET")] == [status_url, status_url]


def test_started_job_waits_for_the_recorded_operation(
    clients: AzureClients, replay: Replay
) -> None:
    """``started_job`` reads the recorded operation until it names its job (in progress, then
    Succeeded with ``8a1f7485…``)."""
    status_url = recorded(TRIGGER_202).headers["azure-asyncoperation"]
    replay.on(
        "GET", status_url, body_file(OPERATION_IN_PROGRESS), body_file(BACKUP_OPERATION_SUCCEEDED)
    )

    job_id = ItemApi(clients, CLI_ITEM).started_job(status_url)

    assert job_id == "8a1f7485-e8d0-426e-9dc7-5167e18bb9ec"
    assert len(replay.calls("GET", "/operationsStatus/")) == 2


def test_trigger_refused_with_the_backup_rp_400(clients: AzureClients, replay: Replay) -> None:
    """A real Backup RP 400 body (quoted in azure-sdk-for-python#19147) served for the trigger:
    ``refused`` with the service's code."""
    replay.on(
        "POST", spec_path(ITEM_PATH, _item_parameters(CLI_ITEM)) + "/backup", recorded(BAD_REQUEST)
    )

    with pytest.raises(AzureCallError) as refused:
        ItemApi(clients, CLI_ITEM).trigger_backup(30)

    error = payload(BAD_REQUEST)["body"]["error"]
    assert (refused.value.kind, refused.value.code, refused.value.status) == (
        ErrorKind.REFUSED,
        error["code"],
        400,
    )
    assert "Input provided for the call is invalid" in str(refused.value)


# ---------------------------------------------------------------------------------------------
# Stop protection (data kept)


def test_stop_protection_published(clients: AzureClients, replay: Replay) -> None:
    """``StopProtection``: our PUT carries the example's request (and ``policyId: ""``, as the
    CLI sends: the body equals the CLI's recorded one with this example's VM); the poller
    follows the 202's ``Azure-AsyncOperation`` as given (api-version 2016-12-01), answered by
    ``ProtectedItemOperationStatus`` (Succeeded), then GETs the item, answered by the example's
    200 body: ``ProtectionStopped``. The 202's ``Location`` (operationResults) is not read."""
    example = payload(STOP)
    parameters = example["parameters"]
    path = spec_path(ITEM_PATH, parameters)
    accepted = published(STOP, "202")
    status_url = accepted.headers["Azure-AsyncOperation"]
    replay.on("PUT", path, accepted)
    replay.on("GET", status_url, published(OPERATION_STATUS))
    replay.on("GET", path, published(STOP))
    vault = VaultRef.parse(spec_path(VAULT_PATH, parameters))
    vm_group, vm_name = vm_from_container(parameters["containerName"])
    item = ProtectedItemRef(
        vault.subscription_id, vault.resource_group, vault.name, vm_group, vm_name
    )
    request = parameters["parameters"]["properties"]

    state = ItemApi(clients, item).stop_protection(request["sourceResourceId"])

    assert state == "ProtectionStopped"
    [put] = replay.calls("PUT")
    assert put.path.lower() == path.lower()
    assert {k: put.body["properties"][k] for k in request} == request
    assert put.body["properties"].keys() - request.keys() == {"policyId"}
    assert put.body["properties"]["policyId"] == ""
    cli_request = payload(STOP_REQUEST)["properties"]
    assert put.body == {
        "properties": {**cli_request, "sourceResourceId": request["sourceResourceId"]}
    }
    assert replay.answered_by == [STOP, OPERATION_STATUS, STOP]
    gets = replay.calls("GET")
    assert [g.url for g in gets[:1]] == [status_url]  # Azure's URL, api-version 2016-12-01
    assert gets[0].query["api-version"] == "2016-12-01"
    assert [g.path.lower() for g in gets[1:]] == [path.lower()]
    assert not replay.calls("GET", "/operationResults/")


def test_stop_protection_recorded(clients: AzureClients, replay: Replay) -> None:
    """The CLI's recorded ``protection disable`` (data kept): our PUT body equals the recorded
    one (the ``sourceResourceId`` ours); the poller follows the recorded 202's lower-case
    ``azure-asyncoperation`` URL (api-version 2022-02-01 kept) through the recorded operation
    bodies (InProgress, then Succeeded; the CLI read them at the vault-level
    ``backupOperations/{id}``; served here at the URL the poller GETs), waiting our interval
    (no retry-after was recorded), then GETs the item, answered by the item as the recorded
    list after the stop shows it: ``ProtectionStopped``."""
    accepted = recorded(STOP_202)
    status_url = accepted.headers["azure-asyncoperation"]
    item_path = lro_item_path(status_url)
    replay.on("PUT", item_path, accepted)
    replay.on(
        "GET", status_url, body_file(OPERATION_IN_PROGRESS), body_file(STOP_OPERATION_SUCCEEDED)
    )
    replay.on("GET", item_path, ok(ITEMS_AFTER_STOP, payload(ITEMS_AFTER_STOP)["value"][0]))
    vm = CLI_ITEM.vm
    assert vm is not None

    state = ItemApi(clients, CLI_ITEM).stop_protection(vm.id)

    assert state == "ProtectionStopped"
    [put] = replay.calls("PUT")
    assert put.path.lower() == item_path.lower()
    assert put.body == payload(STOP_REQUEST)
    assert put.body["properties"]["sourceResourceId"] == vm.id
    polls = replay.calls("GET", "/operationsStatus/")
    assert [p.url for p in polls] == [status_url, status_url]
    assert {p.query["api-version"] for p in polls} == {"2022-02-01"}
    assert [s.method for s in replay.sent] == ["PUT", "GET", "GET", "GET"]
    assert replay.answered_by == [
        STOP_202,
        OPERATION_IN_PROGRESS,
        STOP_OPERATION_SUCCEEDED,
        ITEMS_AFTER_STOP,
    ]
    assert replay.sent[-1].path.lower() == item_path.lower()
    assert replay.sleeps and set(replay.sleeps) == {0}


# ---------------------------------------------------------------------------------------------
# The VM-deleted event


def test_vm_deleted_event() -> None:
    """``eventgrid-ResourceDeleteSuccess``: the published example is a storage account delete,
    which ``read_deleted_vm`` refuses for its operation; the same event for a VM (the docs'
    placeholders, the storage account's names swapped for a VM's) gives the VM."""
    [event] = payload(VM_DELETED_EVENT)

    with pytest.raises(PayloadError, match=r"^operationName is not Microsoft\.Compute/"):
        read_deleted_vm(event)

    storage = "/providers/Microsoft.Storage/storageAccounts/{storage-name}"
    vm_path = "/providers/Microsoft.Compute/virtualMachines/{vm-name}"
    as_vm = json.loads(
        json.dumps(event)
        .replace(storage, vm_path)
        .replace(
            "Microsoft.Storage/storageAccounts/delete", "Microsoft.Compute/virtualMachines/delete"
        )
        .replace('"Microsoft.Storage"', '"Microsoft.Compute"')
    )
    assert as_vm["data"]["resourceUri"].endswith(vm_path)

    vm = read_deleted_vm(as_vm)

    assert vm == VmRef("{subscription-id}", "{resource-group}", "{vm-name}")


# ---------------------------------------------------------------------------------------------
# What is not replayed, and why

#: Payload files that no call of ours meets (yet), with the reason.
NOT_REPLAYED = {
    "published/spec-2026-10-01-bms-job-definitions.json": (
        "REST spec definitions, not a response (tests/test_simulator_shapes.py uses them)"
    ),
    "published/rsb-2026-10-01-ProtectedItemOperationResults.json": (
        "the item's operationResults (the 202's Location) is never GET: with an "
        "Azure-AsyncOperation header the poller polls that URL, then GETs the item itself for "
        "a PUT (test_stop_protection_* assert it)"
    ),
    "recorded/job_cancel_response_202.json": "we never cancel a job",
    "recorded/vault_create_response_201.json": "we never create a vault",
    "recorded/protectable_items_excerpt.json": (
        "we never list protectable items (we never enable protection)"
    ),
    "recorded/scenario_resume_protection_put_request.json": (
        "a request body of a call we never make (resuming protection is a person's decision)"
    ),
    "recorded/protected_item_after_job_cancel_kpis.json": (
        "an excerpt of one item's properties, not a whole response; vm_items reads none of "
        "its kpisHealths"
    ),
}


def test_every_payload_is_replayed_or_listed() -> None:
    """A new payload file is either driven by a test (here, in
    ``tests/test_replay_workloads.py`` or ``tests/test_replay_guard.py``) or listed with its
    reason in one of them."""
    on_disk = {
        f"{kind}/{path.name}"
        for kind in ("published", "recorded")
        for path in (PAYLOADS_DIR / kind).glob("*")
        if path.is_file()
    }
    assert on_disk, PAYLOADS_DIR
    replayed = REPLAYED | WORKLOAD_REPLAYED | GUARD_REPLAYED
    assert not NOT_REPLAYED.keys() & WORKLOAD_NOT_REPLAYED.keys(), "listed twice"
    not_replayed = {**NOT_REPLAYED, **WORKLOAD_NOT_REPLAYED, **GUARD_NOT_REPLAYED}
    assert not replayed & not_replayed.keys(), "both replayed and listed as not replayed"
    assert sorted(on_disk - replayed - not_replayed.keys()) == [], "neither replayed nor listed"
    assert sorted((replayed | not_replayed.keys()) - on_disk) == [], "listed but missing"
    assert all(reason.strip() for reason in not_replayed.values())
