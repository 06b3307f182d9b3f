"""The Azure simulator, driven through the real SDK clients the project uses."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.recoveryservices import RecoveryServicesClient
from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient, models

from handlers.azure.backup import header
from sandbox.simulator import (
    BACKUP_IN_PROGRESS_CODE,
    ITEM_NOT_FOUND_CODE,
    MUA_DENIED_CODE,
    ON_DEMAND_DAILY_LIMIT,
    QUOTA_EXCEEDED_CODE,
    AzureSimulator,
    StaticCredential,
)

SUB = "11111111-2222-3333-4444-555555555555"
VAULT_RG = "rg-backup"
VAULT = "vault1"
VM_RG = "rg-vm"
VM = "vm1"
FABRIC = "Azure"
CONTAINER = f"IaasVMContainer;iaasvmcontainerv2;{VM_RG};{VM}"
ITEM = f"VM;iaasvmcontainerv2;{VM_RG};{VM}"
CLI_TIME = "%Y-%m-%d %I:%M:%S %p"


@pytest.fixture(scope="module")
def running() -> Iterator[AzureSimulator]:
    """A simulator of this module's own, not conftest's ``sim``: these tests make requests the
    shared fixture fails any test for (a DELETE of backup data, to see it refused)."""
    with AzureSimulator() as simulator:
        yield simulator


@pytest.fixture
def own_sim(running: AzureSimulator) -> AzureSimulator:
    """The module's simulator, reset, in Azure's real shapes unless a test says otherwise."""
    running.reset()
    return running


def _client_options(own_sim: AzureSimulator) -> dict[str, Any]:
    return {
        "base_url": own_sim.base_url,
        "connection_verify": own_sim.ca_pem_path,
        "polling_interval": 0,
        "retry_total": 0,
    }


@pytest.fixture
def backup(own_sim: AzureSimulator) -> RecoveryServicesBackupClient:
    return RecoveryServicesBackupClient(StaticCredential(), SUB, **_client_options(own_sim))


@pytest.fixture
def compute(own_sim: AzureSimulator) -> ComputeManagementClient:
    return ComputeManagementClient(StaticCredential(), SUB, **_client_options(own_sim))


@pytest.fixture
def vaults(own_sim: AzureSimulator) -> RecoveryServicesClient:
    return RecoveryServicesClient(StaticCredential(), SUB, **_client_options(own_sim))


@pytest.fixture
def seeded(own_sim: AzureSimulator) -> dict[str, Any]:
    """A vault protecting one VM."""
    vault = own_sim.add_vault(SUB, VAULT_RG, VAULT)
    vm = own_sim.add_vm(SUB, VM_RG, VM)
    return {"vault": vault, "vm": vm, "item": own_sim.protect_vm(vault, vm["id"])}


def _trigger(backup: RecoveryServicesBackupClient) -> dict[str, str]:
    """Trigger an on-demand backup of the VM and return the 202 headers."""
    request = models.BackupRequestResource(
        properties=models.IaasVMBackupRequest(
            recovery_point_expiry_time_in_utc=datetime(2030, 1, 1, tzinfo=UTC)
        )
    )
    return backup.backups.trigger(
        VAULT,
        VAULT_RG,
        FABRIC,
        CONTAINER,
        ITEM,
        request,
        cls=lambda response, _body, _headers: dict(response.http_response.headers),
    )


def _operation_id(headers: dict[str, str]) -> str:
    status_url = header(headers, "Azure-AsyncOperation")  # any case, as Azure may send it
    return status_url.split("/operationsStatus/")[1].split("?")[0]


def _stop_body(
    source_resource_id: str, item_type: type = models.AzureIaaSComputeVMProtectedItem
) -> models.ProtectedItemResource:
    return models.ProtectedItemResource(
        properties=item_type(
            protection_state="ProtectionStopped",
            source_resource_id=source_resource_id,
            policy_id="",
        )
    )


def _raw_get(own_sim: AzureSimulator, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(own_sim.base_url + path, verify=own_sim.ca_pem_path, timeout=5, **kwargs)


# -- vaults ----------------------------------------------------------------------------------


def test_vaults_listed_by_subscription_and_resource_group(
    own_sim: AzureSimulator, vaults: RecoveryServicesClient
) -> None:
    own_sim.add_vault(SUB, VAULT_RG, VAULT)
    own_sim.add_vault(SUB, "rg-other", "vault2")
    own_sim.add_vault("99999999-0000-0000-0000-000000000000", VAULT_RG, "elsewhere")

    assert sorted(v.name for v in vaults.vaults.list_by_subscription_id()) == ["vault1", "vault2"]
    assert [v.name for v in vaults.vaults.list_by_resource_group("rg-other")] == ["vault2"]
    assert {call.api_version for call in own_sim.calls_to("vault_list")} == {"2026-11-01"}


# -- jobs ------------------------------------------------------------------------------------


def test_job_list_returns_failed_backups_in_window_across_pages(
    own_sim: AzureSimulator, backup: RecoveryServicesBackupClient
) -> None:
    vault = own_sim.add_vault(SUB, VAULT_RG, VAULT)
    newest = datetime(2026, 11, 25, 22, 0, 0, tzinfo=UTC)
    expected = set()
    for index in range(120):
        status = "Completed" if index % 4 == 0 else "Failed"
        operation = "Restore" if index % 10 == 7 else "Backup"
        start = newest - timedelta(minutes=10 * index)
        job = own_sim.add_job(
            vault,
            vm_name=f"vm{index}",
            vm_resource_group=VM_RG,
            status=status,
            operation=operation,
            start_time=start,
        )
        if 5 <= index <= 114 and status == "Failed" and operation == "Backup":
            expected.add(job["name"])
    window_start = newest - timedelta(minutes=10 * 114)
    window_end = newest - timedelta(minutes=10 * 5)
    flt = (
        "operation eq 'Backup' and status eq 'Failed' and "
        f"startTime eq '{window_start:{CLI_TIME}}' and endTime eq '{window_end:{CLI_TIME}}' "
        "and backupManagementType eq 'AzureIaasVM'"
    )

    jobs = list(backup.backup_jobs.list(VAULT, VAULT_RG, filter=flt))

    assert {job.name for job in jobs} == expected
    assert len(jobs) == len(expected) > own_sim.page_size
    assert all(job.properties.error_details is None for job in jobs)
    pages = own_sim.calls_to("job_list")
    assert len(pages) == 2
    assert pages[1].query["$skipToken"] == "50"
    assert pages[1].query["$filter"] == flt


def test_job_filter_by_job_id_with_iso_times(
    own_sim: AzureSimulator, backup: RecoveryServicesBackupClient
) -> None:
    vault = own_sim.add_vault(SUB, VAULT_RG, VAULT)
    start = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    wanted = own_sim.add_job(vault, vm_name=VM, vm_resource_group=VM_RG, start_time=start)
    own_sim.add_job(vault, vm_name=VM, vm_resource_group=VM_RG, start_time=start)
    flt = f"jobId eq '{wanted['name']}' and startTime eq '{start.isoformat()}'"

    assert [job.name for job in backup.backup_jobs.list(VAULT, VAULT_RG, filter=flt)] == [
        wanted["name"]
    ]


def test_malformed_job_filter_is_a_bad_request(
    own_sim: AzureSimulator, backup: RecoveryServicesBackupClient
) -> None:
    own_sim.add_vault(SUB, VAULT_RG, VAULT)

    with pytest.raises(HttpResponseError) as caught:
        list(backup.backup_jobs.list(VAULT, VAULT_RG, filter="status ne 'Failed'"))

    assert caught.value.status_code == 400


def test_job_details_deserialize_as_iaas_vm_job_with_error_details(
    own_sim: AzureSimulator, backup: RecoveryServicesBackupClient
) -> None:
    vault = own_sim.add_vault(SUB, VAULT_RG, VAULT)
    start = datetime(2026, 11, 24, 2, 1, 7, tzinfo=UTC)
    job = own_sim.add_job(
        vault,
        vm_name=VM,
        vm_resource_group=VM_RG,
        error_code=400094,
        error_string="The virtual machine doesn't exist",
        recommendations=["Stop protection"],
        start_time=start,
        end_time=start + timedelta(minutes=2, seconds=12),
        container_in_details=True,
    )

    # ARM names are case-insensitive: vault, group and job name in other cases still resolve.
    detail = backup.job_details.get(VAULT.upper(), VAULT_RG.upper(), job["name"].upper())

    assert detail.id.startswith("/Subscriptions/")
    assert detail.type == "Microsoft.RecoveryServices/vaults/backupJobs"
    props = detail.properties
    assert isinstance(props, models.AzureIaaSVMJob)
    assert (props.status, props.operation, props.entity_friendly_name) == ("Failed", "Backup", VM)
    # Azure's job details write the duration as a .NET TimeSpan, which the SDK leaves as text.
    assert props.duration == "00:02:12"
    assert props.container_name == f"iaasvmcontainerv2;{VM_RG};{VM}"
    assert props.is_user_triggered is None  # Azure's job details do not carry it
    assert props.extended_info.property_bag == {"VM Name": VM}
    [error] = props.error_details
    assert (error.error_code, error.error_string) == (400094, "The virtual machine doesn't exist")
    assert error.recommendations == ["Stop protection"]


def test_unknown_job_is_not_found(
    own_sim: AzureSimulator, backup: RecoveryServicesBackupClient
) -> None:
    own_sim.add_vault(SUB, VAULT_RG, VAULT)

    with pytest.raises(ResourceNotFoundError):
        backup.job_details.get(VAULT, VAULT_RG, "00000000-0000-0000-0000-000000000000")


def test_unknown_vault_is_not_found(
    own_sim: AzureSimulator, backup: RecoveryServicesBackupClient
) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        list(backup.backup_jobs.list("no-such-vault", VAULT_RG))

    assert caught.value.error.code == "ResourceNotFound"


# -- protected items -------------------------------------------------------------------------


def test_protected_item_get(
    own_sim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    item = backup.protected_items.get(VAULT, VAULT_RG, FABRIC, CONTAINER.lower(), ITEM.upper())

    # azure-mgmt-recoveryservicesbackup 11.2.0 leaves nested polymorphic items as the base type.
    props = item.properties
    assert props["protectedItemType"] == "Microsoft.Compute/virtualMachines"
    assert props["protectionState"] == "Protected"
    assert props["sourceResourceId"] == seeded["vm"]["id"]
    assert props["virtualMachineId"] == seeded["vm"]["id"]
    assert props["workloadType"] == "VM"
    assert props["backupManagementType"] == "AzureIaasVM"
    assert props["policyId"].endswith("/backupPolicies/DefaultPolicy")
    assert (props["lastBackupStatus"], props["lastBackupTime"]) == (
        "Completed",
        seeded["item"]["properties"]["lastBackupTime"],
    )

    own_sim.add_job(seeded["vault"], vm_name=VM, vm_resource_group=VM_RG, status="Failed")

    again = backup.protected_items.get(VAULT, VAULT_RG, FABRIC, CONTAINER, ITEM).properties
    assert again["lastBackupStatus"] == "Failed"


def test_unknown_protected_item_is_not_found(
    seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        backup.protected_items.get(VAULT, VAULT_RG, FABRIC, CONTAINER, "VM;iaasvmcontainerv2;x;y")

    assert caught.value.error.code == ITEM_NOT_FOUND_CODE


def test_protected_items_listed_with_filter_and_paging(
    own_sim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    second = own_sim.add_vm(SUB, VM_RG, "vm2")
    own_sim.protect_vm(seeded["vault"], second)
    other_vault = own_sim.add_vault(SUB, VAULT_RG, "vault2")
    own_sim.protect_vm(other_vault, seeded["vm"])
    own_sim.page_size = 1

    items = list(
        backup.backup_protected_items.list(
            VAULT, VAULT_RG, filter="backupManagementType eq 'AzureIaasVM' and itemType eq 'VM'"
        )
    )

    assert sorted(item.properties["friendlyName"] for item in items) == ["vm1", "vm2"]
    assert len(own_sim.calls_to("item_list")) == 2


def test_stop_protection_long_running_operation_ends_protection_stopped(
    own_sim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    poller = backup.protected_items.begin_create_or_update(
        VAULT, VAULT_RG, FABRIC, CONTAINER, ITEM, _stop_body(seeded["vm"]["id"])
    )
    item = poller.result()

    assert item.properties["protectionState"] == "ProtectionStopped"
    put = own_sim.calls_to("item_put")[0]
    assert put.status == 202
    assert put.body["properties"]["protectedItemType"] == "Microsoft.Compute/virtualMachines"
    assert [call.status for call in own_sim.calls_to("item_operation_status")] == [200, 200]
    assert own_sim.calls[-1].route == "item_get"
    stored = own_sim.get_protected_item(seeded["vault"], VM, VM_RG)
    assert (stored["properties"]["protectionState"], stored["properties"]["policyId"]) == (
        "ProtectionStopped",
        "",
    )
    assert own_sim.violations == []


@pytest.mark.parametrize(
    ("body_factory", "message"),
    [
        (lambda vm_id: _stop_body(vm_id, models.AzureIaaSVMProtectedItem), "protectedItemType"),
        (lambda _vm_id: _stop_body(""), "sourceResourceId"),
    ],
    ids=["base-item-type", "no-source-resource-id"],
)
def test_stop_protection_body_is_validated(
    own_sim: AzureSimulator,
    seeded: dict[str, Any],
    backup: RecoveryServicesBackupClient,
    body_factory: Callable[[str], models.ProtectedItemResource],
    message: str,
) -> None:
    with pytest.raises(HttpResponseError) as caught:
        backup.protected_items.begin_create_or_update(
            VAULT, VAULT_RG, FABRIC, CONTAINER, ITEM, body_factory(seeded["vm"]["id"])
        ).result()

    assert caught.value.status_code == 400
    assert message in caught.value.error.message
    stored = own_sim.get_protected_item(seeded["vault"], VM, VM_RG)
    assert stored["properties"]["protectionState"] == "Protected"


def test_delete_of_protected_item_is_refused_and_recorded(
    own_sim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    with pytest.raises(ResourceExistsError) as caught:
        backup.protected_items.delete(VAULT, VAULT_RG, FABRIC, CONTAINER, ITEM)

    assert caught.value.status_code == 409
    assert own_sim.violations == [f"DELETE {seeded['item']['id']}"]
    assert own_sim.get_protected_item(seeded["vault"], VM, VM_RG)["properties"][
        "protectionState"
    ] == ("Protected")


# -- on-demand backup ------------------------------------------------------------------------


def test_backup_trigger_creates_in_progress_job_reported_by_operation_status(
    own_sim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    headers = _trigger(backup)
    op_id = _operation_id(headers)

    assert header(headers, "Location").split("?")[0].endswith(f"/operationResults/{op_id}")
    assert header(headers, "Retry-After") == ""  # Azure's 202 gives none
    assert own_sim.calls_to("backup_trigger")[0].body == {
        "properties": {
            "objectType": "IaasVMBackupRequest",
            "recoveryPointExpiryTimeInUTC": "2030-01-01T00:00:00Z",
        }
    }
    status = backup.protected_item_operation_statuses.get
    first = status(VAULT, VAULT_RG, FABRIC, CONTAINER, ITEM, op_id)
    assert first.status == models.OperationStatusValues.IN_PROGRESS
    done = status(VAULT, VAULT_RG, FABRIC, CONTAINER, ITEM, op_id)
    assert done.status == models.OperationStatusValues.SUCCEEDED
    assert isinstance(done.properties, models.OperationStatusJobExtendedInfo)
    vault_level = backup.backup_operation_statuses.get(VAULT, VAULT_RG, op_id)
    assert vault_level.properties.job_id == done.properties.job_id
    result = backup.protected_item_operation_results.get(
        VAULT, VAULT_RG, FABRIC, CONTAINER, ITEM, op_id
    )
    assert result is None
    job = backup.job_details.get(VAULT, VAULT_RG, done.properties.job_id).properties
    assert (job.status, job.operation) == ("InProgress", "Backup")
    assert job.end_time is None


def test_trigger_while_a_job_of_the_item_runs_is_rejected(
    own_sim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    first = _operation_id(_trigger(backup))

    with pytest.raises(HttpResponseError) as caught:
        _trigger(backup)
    assert caught.value.status_code == 400
    assert caught.value.error.code == BACKUP_IN_PROGRESS_CODE

    backup.backup_operation_statuses.get(VAULT, VAULT_RG, first)
    job_id = backup.backup_operation_statuses.get(VAULT, VAULT_RG, first).properties.job_id
    own_sim.complete_job(seeded["vault"], job_id, "Failed", error_code=400094, error_string="gone")
    assert _operation_id(_trigger(backup)) != first
    finished = own_sim.get_job(seeded["vault"], job_id)["properties"]
    assert finished["errorDetails"][0]["errorCode"] == 400094


def test_on_demand_backups_are_limited_per_utc_day(
    own_sim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    today = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    own_sim.clock = lambda: today
    own_sim.auto_complete_backups = "Completed"

    def trigger_and_finish() -> None:
        op_id = _operation_id(_trigger(backup))
        backup.backup_operation_statuses.get(VAULT, VAULT_RG, op_id)
        job_id = backup.backup_operation_statuses.get(VAULT, VAULT_RG, op_id).properties.job_id
        assert backup.job_details.get(VAULT, VAULT_RG, job_id).properties.status == "Completed"

    for _ in range(ON_DEMAND_DAILY_LIMIT):
        trigger_and_finish()
    with pytest.raises(HttpResponseError) as caught:
        _trigger(backup)
    assert caught.value.error.code == QUOTA_EXCEEDED_CODE

    today += timedelta(days=1)
    trigger_and_finish()


def test_auto_completion_waits_for_the_operation_to_succeed(
    own_sim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    own_sim.auto_complete_backups = "Failed"
    op_id = _operation_id(_trigger(backup))
    [job] = list(backup.backup_jobs.list(VAULT, VAULT_RG))  # the one job: the trigger's

    assert backup.job_details.get(VAULT, VAULT_RG, job.name).properties.status == "InProgress"
    backup.backup_operation_statuses.get(VAULT, VAULT_RG, op_id)
    backup.backup_operation_statuses.get(VAULT, VAULT_RG, op_id)
    assert backup.job_details.get(VAULT, VAULT_RG, job.name).properties.status == "Failed"
    item = own_sim.get_protected_item(seeded["vault"], VM, VM_RG)
    assert item["properties"]["lastBackupStatus"] == "Failed"


# -- compute ---------------------------------------------------------------------------------


def test_vm_get_then_deleted_vm_is_not_found(
    own_sim: AzureSimulator, seeded: dict[str, Any], compute: ComputeManagementClient
) -> None:
    vm = compute.virtual_machines.get(VM_RG, VM)
    assert (vm.id, vm.vm_id) == (seeded["vm"]["id"], seeded["vm"]["properties"]["vmId"])

    own_sim.delete_vm(seeded["vm"]["id"])

    with pytest.raises(ResourceNotFoundError) as caught:
        compute.virtual_machines.get(VM_RG, VM)
    assert (caught.value.status_code, caught.value.error.code) == (404, "ResourceNotFound")
    assert own_sim.calls_to("vm_get")[-1].api_version == "2026-04-01"


def test_vm_in_unknown_resource_group_reports_the_group(
    seeded: dict[str, Any], compute: ComputeManagementClient
) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        compute.virtual_machines.get("rg-never-seen", VM)

    assert caught.value.error.code == "ResourceGroupNotFound"


def test_moved_vm_keeps_its_vm_id_and_is_found_in_the_list(
    own_sim: AzureSimulator, seeded: dict[str, Any], compute: ComputeManagementClient
) -> None:
    own_sim.move_vm(seeded["vm"]["id"], "rg-new")

    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get(VM_RG, VM)
    [moved] = [
        vm
        for vm in compute.virtual_machines.list_all()
        if vm.vm_id == seeded["vm"]["properties"]["vmId"]
    ]
    assert moved.id == seeded["vm"]["id"].replace(
        f"/resourceGroups/{VM_RG}/", "/resourceGroups/rg-new/"
    )


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        ("429", 429, "TooManyRequests"),
        ("500", 500, "InternalServerError"),
        ("403", 403, "AuthorizationFailed"),
    ],
    ids=["429", "500", "403"],
)
def test_error_faults_apply_once(
    own_sim: AzureSimulator,
    seeded: dict[str, Any],
    compute: ComputeManagementClient,
    fault: tuple[str, int, str],
) -> None:
    kind, status, code = fault
    own_sim.faults.add("vm_get", kind, retry_after=7)

    with pytest.raises(HttpResponseError) as caught:
        compute.virtual_machines.get(VM_RG, VM)

    assert (caught.value.status_code, caught.value.error.code) == (status, code)
    assert ("Retry-After" in caught.value.response.headers) == (kind == "429")
    if kind == "429":
        assert caught.value.response.headers["Retry-After"] == "7"
    assert compute.virtual_machines.get(VM_RG, VM).name == VM


def test_fault_applies_the_given_number_of_times(
    own_sim: AzureSimulator, seeded: dict[str, Any], compute: ComputeManagementClient
) -> None:
    own_sim.faults.add("vm_get", "500", times=2)

    for _ in range(2):
        with pytest.raises(HttpResponseError):
            compute.virtual_machines.get(VM_RG, VM)

    assert compute.virtual_machines.get(VM_RG, VM).name == VM
    assert [call.status for call in own_sim.calls_to("vm_get")] == [500, 500, 200]


def test_mua_fault_denies_stop_protection(
    own_sim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    own_sim.faults.add("item_put", "mua_403")

    with pytest.raises(HttpResponseError) as caught:
        backup.protected_items.begin_create_or_update(
            VAULT, VAULT_RG, FABRIC, CONTAINER, ITEM, _stop_body(seeded["vm"]["id"])
        )

    assert (caught.value.status_code, caught.value.error.code) == (403, MUA_DENIED_CODE)
    assert "Resource Guard" in caught.value.error.message
    stored = own_sim.get_protected_item(seeded["vault"], VM, VM_RG)
    assert stored["properties"]["protectionState"] == "Protected"


def test_latency_fault_delays_then_serves(
    own_sim: AzureSimulator, seeded: dict[str, Any], compute: ComputeManagementClient
) -> None:
    own_sim.faults.add("vm_get", "latency", delay=0.2)

    started = time.monotonic()
    vm = compute.virtual_machines.get(VM_RG, VM)

    assert time.monotonic() - started >= 0.2
    assert vm.name == VM


def test_drop_fault_closes_the_connection(
    own_sim: AzureSimulator, seeded: dict[str, Any], compute: ComputeManagementClient
) -> None:
    own_sim.faults.add("vm_get", "drop")

    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        compute.virtual_machines.get(VM_RG, VM)

    assert own_sim.calls_to("vm_get")[0].status == 0
    assert compute.virtual_machines.get(VM_RG, VM).name == VM


def test_faults_reject_unknown_routes_and_kinds(own_sim: AzureSimulator) -> None:
    with pytest.raises(ValueError, match="route"):
        own_sim.faults.add("vm_delete", "500")
    with pytest.raises(ValueError, match="kind"):
        own_sim.faults.add("vm_get", "418")


def test_seed_helpers_reject_impossible_states(
    own_sim: AzureSimulator, seeded: dict[str, Any]
) -> None:
    failed = own_sim.add_job(seeded["vault"], vm_name=VM, vm_resource_group=VM_RG)

    with pytest.raises(ValueError, match="job status"):
        own_sim.add_job(seeded["vault"], vm_name=VM, vm_resource_group=VM_RG, status="Done")
    with pytest.raises(ValueError, match="not InProgress"):
        own_sim.complete_job(seeded["vault"], failed["name"])
    with pytest.raises(ValueError, match="final job status"):
        own_sim.auto_complete_backups = "Succeeded"
    with pytest.raises(ValueError, match="exists already"):
        own_sim.add_vault(SUB, VAULT_RG, VAULT)


# -- protocol checks -------------------------------------------------------------------------


def test_request_without_bearer_token_is_unauthenticated(
    own_sim: AzureSimulator, seeded: dict[str, Any]
) -> None:
    response = _raw_get(own_sim, seeded["vm"]["id"], params={"api-version": "2026-04-01"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthenticationFailed"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "MissingApiVersionParameter"),
        ({"api-version": "2015-01-01"}, "InvalidApiVersionParameter"),
    ],
    ids=["missing", "unsupported"],
)
def test_api_version_is_required_and_checked(
    own_sim: AzureSimulator, seeded: dict[str, Any], params: dict[str, str], code: str
) -> None:
    headers = {"Authorization": "Bearer sim-token"}
    response = _raw_get(own_sim, seeded["vm"]["id"], params=params, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.headers["x-ms-request-id"]


def test_paths_match_case_insensitively_and_unknown_ones_are_refused(
    own_sim: AzureSimulator, seeded: dict[str, Any]
) -> None:
    headers = {"Authorization": "Bearer sim-token"}
    version = {"api-version": "2026-04-01"}
    shouted = seeded["vm"]["id"].replace("/subscriptions/", "/SUBSCRIPTIONS/").upper()

    assert _raw_get(own_sim, shouted, params=version, headers=headers).json()["name"] == VM
    unknown = _raw_get(
        own_sim,
        f"/subscriptions/{SUB}/providers/Microsoft.Nope/things",
        params=version,
        headers=headers,
    )
    assert unknown.status_code == 404
    wrong_method = requests.post(
        own_sim.base_url + seeded["vm"]["id"],
        params=version,
        headers=headers,
        verify=own_sim.ca_pem_path,
        timeout=5,
    )
    assert wrong_method.status_code == 405


def test_client_that_does_not_trust_the_ca_is_refused(
    own_sim: AzureSimulator, seeded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    untrusting = ComputeManagementClient(
        StaticCredential(), SUB, base_url=own_sim.base_url, retry_total=0
    )

    with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.virtual_machines.get(VM_RG, VM)


def test_call_log_decodes_paths_and_records_bearer_token(
    own_sim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    backup.protected_items.get(VAULT, VAULT_RG, FABRIC, CONTAINER, ITEM)

    [call] = own_sim.calls_to(route="item_get", method="get")
    assert call.path == seeded["item"]["id"]
    assert call.headers["Authorization"] == "Bearer sim-token"
    assert call.api_version == "2026-10-01"
    assert own_sim.calls_to(route="item_get", method="PUT") == []


def test_reset_forgets_resources_calls_and_faults(
    own_sim: AzureSimulator, seeded: dict[str, Any], compute: ComputeManagementClient
) -> None:
    compute.virtual_machines.get(VM_RG, VM)
    own_sim.faults.add("vm_get", "500")
    own_sim.page_size = 3

    own_sim.reset()

    assert (own_sim.calls, own_sim.page_size) == ([], 50)
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get(VM_RG, VM)
    assert own_sim.calls[0].status == 404
