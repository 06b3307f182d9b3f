"""The simulator's SQL Server and SAP HANA databases in Azure VMs, Azure file shares and
Microsoft.Storage (issue #11 item 4).

Through the real Backup SDK client (and plain ``requests`` for Microsoft.Storage, whose SDK is not
installed, and for Microsoft's own request bodies): each seed helper, each route, the request
checks, the daily limits, stop protection, soft-deleted shares, job lists and filters. Served
documents are compared with the payload they are taken from (``azure_payloads/``, see its
``SOURCES.md``): the same keys at every level with the same value types (:func:`structure`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient, models

from sandbox.simulator import (
    FILE_SHARE_DAILY_LIMIT,
    QUOTA_EXCEEDED_CODE,
    ROUTE_NAMES,
    SHARE_RETENTION_DAYS,
    STORAGE_API_VERSIONS,
    WORKLOAD_DAILY_LIMIT,
    AzureSimulator,
    StaticCredential,
)
from sandbox.simulator.payloads import load
from tests.test_simulator_shapes import structure
from tests.world import BACKUP_VERSION, SIM_AUTH, raw_json, sim_get, sim_send

SUB = "11111111-2222-3333-4444-555555555555"
VAULT_RG = "rg-backup"
VAULT = "vault1"
FABRIC = "Azure"
SQL_RG, SQL_VM = "RG-Data", "SQL-VM-01"
HANA_RG, HANA_VM = "rg-sap", "hana-vm-01"
STORAGE_RG, ACCOUNT, SHARE = "rg-files", "stfiles01", "finance"
SQL_CONTAINER = f"VMAppContainer;Compute;{SQL_RG};{SQL_VM}"
SQL_ITEM = "SQLDataBase;mssqlserver;salesdb"
HANA_CONTAINER = f"VMAppContainer;Compute;{HANA_RG};{HANA_VM}"
HANA_ITEM = "SAPHanaDatabase;hxe;systemdb"
FILES_CONTAINER = f"StorageContainer;Storage;{STORAGE_RG};{ACCOUNT}"
FILES_ITEM = f"AzureFileShare;{SHARE}"
STORAGE_VERSION = {"api-version": "2026-09-01"}
VAULT_PATH = (
    f"/subscriptions/{SUB}/resourceGroups/{VAULT_RG}"
    f"/providers/Microsoft.RecoveryServices/vaults/{VAULT}"
)
ACCOUNT_PATH = (
    f"/subscriptions/{SUB}/resourceGroups/{STORAGE_RG}"
    f"/providers/Microsoft.Storage/storageAccounts/{ACCOUNT}"
)
SHARES_PATH = f"{ACCOUNT_PATH}/fileServices/default/shares"
SQL_ERROR = {
    "error_code": 510008,
    "error_title": "OperationCancelledBecauseConflictingOperationRunningUserError",
    "error_string": "Operation cancelled as a conflicting operation was already running on the "
    "same database.",
    "recommendations": ["Please try again after sometime."],
}


@pytest.fixture
def backup(azsim: AzureSimulator) -> RecoveryServicesBackupClient:
    return RecoveryServicesBackupClient(
        StaticCredential(),
        SUB,
        base_url=azsim.base_url,
        connection_verify=azsim.ca_pem_path,
        polling_interval=0,
        retry_total=0,
    )


@pytest.fixture
def scene(azsim: AzureSimulator) -> dict[str, Any]:
    """A vault protecting a SQL database, a HANA database and a file share, each with a
    completed backup a day ago."""
    vault = azsim.add_vault(SUB, VAULT_RG, VAULT)
    sql_vm = azsim.add_vm(SUB, SQL_RG, SQL_VM)
    hana_vm = azsim.add_vm(SUB, HANA_RG, HANA_VM)
    account = azsim.add_storage_account(SUB, STORAGE_RG, ACCOUNT)
    azsim.add_file_share(account, SHARE)
    return {
        "vault": vault,
        "sql_vm": sql_vm,
        "hana_vm": hana_vm,
        "account": account,
        "sql": azsim.protect_sql_database(vault, sql_vm, database="SalesDb"),
        "hana": azsim.protect_hana_database(vault, hana_vm, database="SYSTEMDB", sid="HXE"),
        "files": azsim.protect_file_share(vault, account, SHARE),
    }


# -- helpers -------------------------------------------------------------------------------------


def _body(name: str) -> Any:
    """The response body of a published example file, or a recorded body as it is."""
    document = load(name)
    return document["responses"]["200"]["body"] if "responses" in document else document


def _item(backup: RecoveryServicesBackupClient, container: str, item: str) -> dict[str, Any]:
    return backup.protected_items.get(VAULT, VAULT_RG, FABRIC, container, item, cls=raw_json)


def _job(backup: RecoveryServicesBackupClient, name: str) -> dict[str, Any]:
    return backup.job_details.get(VAULT, VAULT_RG, name, cls=raw_json)


def _jobs(backup: RecoveryServicesBackupClient, expression: str | None) -> list[Any]:
    return list(backup.backup_jobs.list(VAULT, VAULT_RG, filter=expression))


def _items(backup: RecoveryServicesBackupClient, expression: str) -> list[Any]:
    return list(backup.backup_protected_items.list(VAULT, VAULT_RG, filter=expression))


def _item_path(container: str, item: str) -> str:
    containers = f"{VAULT_PATH}/backupFabrics/{FABRIC}/protectionContainers"
    return f"{containers}/{container}/protectedItems/{item}"


def _backup_now(azsim: AzureSimulator, item_path: str, properties: dict[str, Any]) -> str:
    """POST an on-demand backup and poll its operation to success; returns the job name."""
    response = sim_send(azsim, "POST", f"{item_path}/backup", {"properties": properties})
    assert response.status_code == 202, response.text
    status_url = response.headers["azure-asyncoperation"]
    sim_get(azsim, status_url)
    return sim_get(azsim, status_url).json()["properties"]["jobId"]


def _full(objecttype: str = "AzureWorkloadBackupRequest", **extra: Any) -> dict[str, Any]:
    return {"objectType": objecttype, "backupType": "Full", **extra}


def _share_request() -> dict[str, Any]:
    return {"objectType": "AzureFileShareBackupRequest"}


def _error(response: requests.Response) -> dict[str, Any]:
    return response.json()["error"]


# -- seed helpers and protected items ------------------------------------------------------------


def test_sql_database_is_served_with_the_recorded_items_keys(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    served = _item(backup, SQL_CONTAINER, SQL_ITEM)
    properties = served["properties"]

    assert structure(served) == structure(_body("recorded/wl_sql_item_protected.json"))
    assert served["id"] == _item_path(f"VMAppContainer;compute;{SQL_RG};{SQL_VM}", SQL_ITEM)
    assert (served["name"], scene["sql"]) == (SQL_ITEM, served)
    assert properties["friendlyName"] == "SalesDb"
    assert (properties["serverName"], properties["parentName"]) == (SQL_VM, "MSSQLSERVER")
    assert properties["parentType"] == "AzureVmWorkloadSQLInstance"
    assert properties["protectedItemType"] == "AzureVmWorkloadSQLDatabase"
    assert (properties["backupManagementType"], properties["workloadType"]) == (
        "AzureWorkload",
        "SQLDataBase",
    )
    assert properties["containerName"] == f"VMAppContainer;compute;{SQL_RG};{SQL_VM}"
    assert properties["sourceResourceId"] == (
        f"/subscriptions/{SUB}/resourceGroups/{SQL_RG}/providers/VMAppContainer/{SQL_VM}"
    )
    assert properties["policyId"] == f"{VAULT_PATH}/backupPolicies/HourlyLogBackup"
    assert (properties["protectionState"], properties["lastBackupStatus"]) == (
        "Protected",
        "Healthy",
    )
    assert properties["extendedInfo"]["recoveryModel"] == "FULL"
    assert azsim.get_workload_item(scene["vault"], SQL_ITEM) == served
    assert azsim.get_workload_item(scene["vault"], served["id"]) == served


def test_sql_database_before_its_first_backup_has_the_docs_example_keys(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    azsim.protect_sql_database(
        scene["vault"],
        scene["sql_vm"],
        database="msdb",
        instance="SQLEXPRESS",
        server_name="sql-vm-01.contoso.com",
        initial_backup_pending=True,
    )
    served = _item(backup, SQL_CONTAINER, "SQLDataBase;sqlexpress;msdb")
    properties = served["properties"]

    example = _body("published/docs-sql-rest-AzureVmWorkloadSQLDatabase-irpending.json")
    assert structure(served) == structure(example)
    assert served["id"] == _item_path(SQL_CONTAINER, "SQLDataBase;sqlexpress;msdb")
    assert properties["containerName"] == SQL_CONTAINER
    assert (properties["serverName"], properties["parentName"]) == (
        "sql-vm-01.contoso.com",
        "SQLEXPRESS",
    )
    assert properties["protectionState"] == properties["lastBackupStatus"] == "IRPending"
    assert properties["extendedInfo"] == example["properties"]["extendedInfo"]


def test_hana_database_is_served_with_the_recorded_items_keys(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    served = _item(backup, HANA_CONTAINER, HANA_ITEM)
    properties = served["properties"]

    assert structure(served) == structure(_body("recorded/wl_hana_item_protected.json"))
    assert properties["protectedItemType"] == "AzureVmWorkloadSAPHanaDatabase"
    assert properties["workloadType"] == "SAPHanaDatabase"
    assert (properties["parentName"], properties["parentType"]) == (
        "HXE",
        "AzureVmWorkloadSAPHanaSystem",
    )
    assert (properties["friendlyName"], properties["serverName"]) == ("SYSTEMDB", HANA_VM)
    assert "recoveryModel" not in properties["extendedInfo"]
    assert scene["hana"] == served


def test_file_share_is_served_with_the_recorded_items_keys(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    azsim.add_file_share(scene["account"], "payroll")
    azsim.protect_file_share(
        scene["vault"], scene["account"], "payroll", initial_backup_pending=True
    )
    pending = _item(backup, FILES_CONTAINER, "AzureFileShare;payroll")
    backed_up = _item(backup, FILES_CONTAINER, FILES_ITEM)

    recorded = _body("recorded/afs_item_list_irpending.json")["value"][0]
    assert structure(pending) == structure(recorded)
    assert pending["properties"]["lastBackupStatus"] == "IRPending"
    expected = structure(recorded)
    expected["properties"]["lastBackupTime"] = "str"
    assert structure(backed_up) == expected
    properties = backed_up["properties"]
    assert (properties["friendlyName"], properties["lastBackupStatus"]) == (SHARE, "Healthy")
    assert properties["protectedItemType"] == "AzureFileShareProtectedItem"
    assert (properties["backupManagementType"], properties["workloadType"]) == (
        "AzureStorage",
        "AzureFileShare",
    )
    assert properties["containerName"] == f"StorageContainer;storage;{STORAGE_RG};{ACCOUNT}"
    assert properties["sourceResourceId"].lower() == scene["account"]["id"].lower()
    assert backed_up["name"] == FILES_ITEM


def test_seed_helpers_refuse_what_does_not_exist_or_is_taken(
    azsim: AzureSimulator, scene: dict[str, Any]
) -> None:
    vault = scene["vault"]
    with pytest.raises(ValueError, match="already protected"):
        azsim.protect_sql_database(vault, scene["sql_vm"], database="salesdb")
    with pytest.raises(KeyError):
        azsim.protect_file_share(vault, scene["account"], "no-such-share")
    with pytest.raises(ValueError, match="exists already"):
        azsim.add_file_share(scene["account"], SHARE)
    with pytest.raises(ValueError, match="exists already"):
        azsim.add_storage_account(SUB, STORAGE_RG, ACCOUNT)
    with pytest.raises(KeyError):
        azsim.get_workload_item(vault, "SQLDataBase;mssqlserver;nope")

    other = azsim.add_vm(SUB, SQL_RG, "SQL-VM-02")
    azsim.protect_sql_database(vault, other, database="SalesDb")
    with pytest.raises(ValueError, match="2 items"):
        azsim.get_workload_item(vault, SQL_ITEM)


# -- item lists and filters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("management", "item_type", "name"),
    [
        ("AzureWorkload", "SQLDataBase", SQL_ITEM),
        ("AzureWorkload", "SAPHanaDatabase", HANA_ITEM),
        ("AzureStorage", "AzureFileShare", FILES_ITEM),
    ],
)
def test_item_list_filters_by_management_and_item_type(
    scene: dict[str, Any],
    backup: RecoveryServicesBackupClient,
    management: str,
    item_type: str,
    name: str,
) -> None:
    expression = f"backupManagementType eq '{management}' and itemType eq '{item_type}'"
    assert [item.name for item in _items(backup, expression)] == [name]


def test_item_list_filters_by_friendly_and_container_name(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    azsim.protect_sql_database(scene["vault"], scene["sql_vm"], database="HR")
    vm = azsim.add_vm(SUB, VAULT_RG, "web-01")
    azsim.protect_vm(scene["vault"], vm)

    workload = "backupManagementType eq 'AzureWorkload' and itemType eq 'SQLDataBase'"
    named = _items(backup, f"{workload} and friendlyName eq 'salesdb'")
    container = f"containerName eq 'vmappcontainer;compute;{SQL_RG.lower()};{SQL_VM.lower()}'"
    vms = _items(backup, "backupManagementType eq 'AzureIaasVM' and itemType eq 'VM'")
    assert [item.name for item in named] == [SQL_ITEM]
    assert sorted(item.name for item in _items(backup, container)) == [
        "SQLDataBase;mssqlserver;hr",
        SQL_ITEM,
    ]
    # The SDK reads VM and database items as the base ProtectedItem (its nested polymorphism
    # bug, azure-sdk-notes.md): their fields are read through the mapping interface.
    assert [item.properties["friendlyName"] for item in vms] == ["web-01"]
    assert len(_items(backup, "")) == 5


# -- containers ----------------------------------------------------------------------------------


def test_database_container_is_the_spec_example_with_the_vm_as_source(
    scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    served = backup.protection_containers.get(
        VAULT, VAULT_RG, FABRIC, SQL_CONTAINER.lower(), cls=raw_json
    )
    model = backup.protection_containers.get(VAULT, VAULT_RG, FABRIC, HANA_CONTAINER)

    example = _body("published/rsb-2026-10-01-AzureWorkload-ProtectionContainers_Get.json")
    # workloadType is null in the example and here: structure() types it as NoneType in both.
    assert structure(served) == structure(example)
    assert served["name"] == SQL_CONTAINER
    assert served["properties"]["sourceResourceId"] == scene["sql_vm"]["id"]
    assert served["properties"]["friendlyName"] == SQL_VM
    assert served["properties"]["extendedInfo"]["hostServerName"] == SQL_VM.lower()
    # The SDK reads a VMAppContainer (two levels below ProtectionContainer) as the base class,
    # as it reads database items: its fields are read through the mapping interface.
    assert type(model.properties) is models.ProtectionContainer
    assert model.properties["sourceResourceId"] == scene["hana_vm"]["id"]


def test_storage_container_is_the_recorded_one_with_the_account_as_source(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    azsim.add_file_share(scene["account"], "payroll")
    azsim.protect_file_share(scene["vault"], scene["account"], "payroll")
    served = backup.protection_containers.get(
        VAULT, VAULT_RG, FABRIC, FILES_CONTAINER, cls=raw_json
    )
    model = backup.protection_containers.get(VAULT, VAULT_RG, FABRIC, FILES_CONTAINER)

    assert structure(served) == structure(_body("recorded/afs_container_registered.json"))
    assert served["properties"]["sourceResourceId"] == scene["account"]["id"]
    assert (served["properties"]["protectedItemCount"], served["name"]) == (2, FILES_CONTAINER)
    assert isinstance(model.properties, models.AzureStorageContainer)


def test_unknown_container_is_a_404(
    scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    with pytest.raises(ResourceNotFoundError):
        backup.protection_containers.get(VAULT, VAULT_RG, FABRIC, "VMAppContainer;Compute;x;y")


# -- jobs ----------------------------------------------------------------------------------------


def test_failed_sql_job_is_the_docs_example(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    seeded = azsim.add_workload_job(scene["vault"], scene["sql"], **SQL_ERROR)
    served = _job(backup, seeded["name"])
    model = backup.job_details.get(VAULT, VAULT_RG, seeded["name"])
    properties = served["properties"]

    example = _body("published/docs-sql-mgmt-rest-AzureWorkloadJob-failed.json")
    assert structure(served) == structure(example)
    assert list(properties) == list(example["properties"])
    assert properties["errorDetails"] == example["properties"]["errorDetails"]
    assert properties["entityFriendlyName"] == f"MSSQLSERVER/SalesDb [{SQL_VM}]"
    assert (properties["operation"], properties["status"]) == ("Backup (Full)", "Failed")
    assert isinstance(model.properties, models.AzureWorkloadJob)
    assert model.properties.error_details[0].error_code == 510008
    assert model.properties.error_details[0].error_title == SQL_ERROR["error_title"]
    assert model.properties.actions_info == [1]
    # The failed job is the item's last backup now.
    assert _item(backup, SQL_CONTAINER, SQL_ITEM)["properties"]["lastBackupStatus"] == "Unhealthy"


def test_failed_hana_and_file_share_jobs(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    hana = azsim.add_workload_job(scene["vault"], HANA_ITEM, error_code=17, error_title="X")
    files = azsim.add_workload_job(
        scene["vault"], scene["files"], error_code=1, error_title="dropped", error_string="Gone."
    )
    hana_props = _job(backup, hana["name"])["properties"]
    files_props = _job(backup, files["name"])["properties"]
    files_model = backup.job_details.get(VAULT, VAULT_RG, files["name"]).properties

    assert hana_props["entityFriendlyName"] == f"SYSTEMDB [{HANA_VM}]"
    assert hana_props["workloadType"] == "SAPHanaDatabase"
    recorded = _body("recorded/afs_job_configurebackup_completed.json")["properties"]
    assert set(files_props) - {"errorDetails"} == set(recorded)
    assert files_props["errorDetails"] == [
        {"errorCode": 1, "errorString": "Gone.", "recommendations": []}
    ]
    assert (files_props["jobType"], files_props["operation"]) == ("AzureStorageJob", "Backup")
    assert (files_props["storageAccountName"], files_props["entityFriendlyName"]) == (
        ACCOUNT,
        SHARE,
    )
    assert files_props["storageAccountVersion"] == "Storage"
    assert files_props["isUserTriggered"] is False
    assert isinstance(files_model, models.AzureStorageJob)
    assert files_model.error_details[0].error_code == 1


def test_job_list_filters_by_management_type_and_typed_operation(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    vault = scene["vault"]
    full = azsim.add_workload_job(vault, scene["sql"])
    log = azsim.add_workload_job(vault, scene["sql"], operation="Backup (Log)", status="Completed")
    files = azsim.add_workload_job(vault, scene["files"])
    azsim.add_job(vault, vm_name="web-01", vm_resource_group=VAULT_RG)

    def names(expression: str | None) -> set[str]:
        return {job.name for job in _jobs(backup, expression)}

    assert names("backupManagementType eq 'AzureWorkload'") == {full["name"], log["name"]}
    assert names("backupManagementType eq 'AzureStorage'") == {files["name"]}
    assert names("backupManagementType eq 'AzureWorkload' and operation eq 'Backup'") == {
        full["name"],
        log["name"],
    }
    assert names("operation eq 'Backup (Log)'") == {log["name"]}
    assert names("backupManagementType eq 'AzureWorkload' and status eq 'Failed'") == {full["name"]}
    assert len(names(None)) == 4


def test_job_list_entries_are_trimmed_with_iso_durations(
    azsim: AzureSimulator, scene: dict[str, Any]
) -> None:
    azsim.add_workload_job(scene["vault"], scene["sql"], **SQL_ERROR)
    azsim.add_workload_job(scene["vault"], scene["files"])
    page = sim_get(azsim, f"{VAULT_PATH}/backupJobs", **BACKUP_VERSION).json()["value"]

    for entry in page:
        properties = entry["properties"]
        assert not {"extendedInfo", "errorDetails", "isUserTriggered"} & set(properties)
        assert properties["duration"].startswith("P")


# -- on-demand backups ---------------------------------------------------------------------------


def test_sql_backup_through_the_sdk_starts_a_typed_job_shaped_as_recorded(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    azsim.details_duration = "iso"
    request = models.BackupRequestResource(
        properties=models.AzureWorkloadBackupRequest(backup_type="Full")
    )
    response = backup.backups.trigger(
        VAULT, VAULT_RG, FABRIC, SQL_CONTAINER, SQL_ITEM, request, cls=lambda r, *_: r
    )
    status_url = response.http_response.headers["Azure-AsyncOperation"]
    sim_get(azsim, status_url)
    job_name = sim_get(azsim, status_url).json()["properties"]["jobId"]
    running = _job(backup, job_name)
    done = azsim.complete_job(scene["vault"], job_name)

    assert response.http_response.status_code == 202
    assert structure(running) == structure(_body("recorded/wl_sql_job_backup_inprogress.json"))
    assert structure(done) == structure(_body("recorded/wl_sql_job_backup_completed.json"))
    assert running["properties"]["operation"] == "Backup (Full)"
    assert running["properties"]["entityFriendlyName"] == f"SalesDb [{SQL_VM}]"
    assert running["properties"]["isUserTriggered"] is True
    item = _item(backup, SQL_CONTAINER, SQL_ITEM)["properties"]
    assert item["lastBackupTime"] == done["properties"]["startTime"]
    assert item["extendedInfo"]["recoveryPointCount"] == 2


def test_hana_backup_completes_into_the_recorded_shape(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    azsim.details_duration = "iso"
    job = _backup_now(azsim, scene["hana"]["id"], _full())
    done = azsim.complete_job(scene["vault"], job)

    assert structure(done) == structure(_body("recorded/wl_hana_job_backup_completed.json"))
    assert done["properties"]["entityFriendlyName"] == f"SYSTEMDB [{HANA_VM}]"
    assert done["properties"]["extendedInfo"]["tasksList"] == [
        {"taskId": "Transfer data to vault", "status": "Completed"}
    ]


def test_microsofts_request_bodies_start_backups(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    sql_body = load("published/docs-sql-rest-AzureWorkloadBackupRequest.json")["properties"]
    files_body = load("published/docs-afs-rest-AzureFileShareBackupRequest.json")["properties"]

    sql_job = _job(backup, _backup_now(azsim, scene["sql"]["id"], sql_body))["properties"]
    files_job = _job(backup, _backup_now(azsim, scene["files"]["id"], files_body))["properties"]

    assert (sql_job["jobType"], sql_job["operation"]) == ("AzureWorkloadJob", "Backup (Full)")
    assert (files_job["jobType"], files_job["operation"]) == ("AzureStorageJob", "Backup")
    assert (files_job["status"], files_job["isUserTriggered"]) == ("InProgress", True)
    assert azsim.calls_to("backup_trigger", "POST")[-1].body == {"properties": files_body}


@pytest.mark.parametrize(
    ("item", "properties", "expected"),
    [
        ("sql", {"objectType": "IaasVMBackupRequest"}, "AzureWorkloadBackupRequest"),
        ("sql", _share_request(), "AzureWorkloadBackupRequest"),
        ("hana", _share_request(), "AzureWorkloadBackupRequest"),
        ("files", _full(), "AzureFileShareBackupRequest"),
        ("files", {"objectType": "IaasVMBackupRequest"}, "AzureFileShareBackupRequest"),
    ],
)
def test_the_wrong_request_type_is_refused_like_the_vm_route_does(
    azsim: AzureSimulator,
    scene: dict[str, Any],
    item: str,
    properties: dict[str, Any],
    expected: str,
) -> None:
    response = sim_send(azsim, "POST", scene[item]["id"] + "/backup", {"properties": properties})

    assert response.status_code == 400
    assert _error(response)["code"] == "BadRequest"
    assert f"'{expected}'" in _error(response)["message"]
    assert not azsim.calls_to("job_list")


@pytest.mark.parametrize("backup_type", ["Log", "CopyOnlyFull", "Incremental"])
def test_hana_refuses_what_the_cli_refuses(
    azsim: AzureSimulator, scene: dict[str, Any], backup_type: str
) -> None:
    body = {"properties": _full(backupType=backup_type)}
    response = sim_send(azsim, "POST", scene["hana"]["id"] + "/backup", body)

    assert response.status_code == 400
    assert "SAPHanaDatabase" in _error(response)["message"]


@pytest.mark.parametrize("backup_type", ["Full", "Differential"])
def test_hana_takes_full_and_differential(
    azsim: AzureSimulator,
    scene: dict[str, Any],
    backup: RecoveryServicesBackupClient,
    backup_type: str,
) -> None:
    job = _backup_now(azsim, scene["hana"]["id"], _full(backupType=backup_type))

    assert _job(backup, job)["properties"]["operation"] == f"Backup ({backup_type})"


def test_log_backups_follow_the_sql_recovery_model(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    simple = azsim.protect_sql_database(
        scene["vault"], scene["sql_vm"], database="Scratch", recovery_model="SIMPLE"
    )
    refused = sim_send(
        azsim, "POST", simple["id"] + "/backup", {"properties": _full(backupType="Log")}
    )
    invalid = sim_send(
        azsim, "POST", simple["id"] + "/backup", {"properties": _full(backupType="X")}
    )
    missing = sim_send(
        azsim,
        "POST",
        simple["id"] + "/backup",
        {"properties": {"objectType": _full()["objectType"]}},
    )
    job = _backup_now(azsim, scene["sql"]["id"], _full(backupType="Log"))

    assert simple["properties"]["extendedInfo"]["recoveryModel"] == "SIMPLE"
    assert refused.status_code == 400
    assert _error(refused)["code"] == "UserErrorSQLPODoesNotSupportBackupType"
    assert (invalid.status_code, missing.status_code) == (400, 400)
    assert "backupType" in _error(invalid)["message"]
    assert _job(backup, job)["properties"]["operation"] == "Backup (Log)"


@pytest.mark.parametrize(
    "case",
    [
        ("sql", _full(), 9, "hana"),
        ("hana", _full(backupType="Differential"), 9, "sql"),
        ("files", _share_request(), 10, "sql"),
    ],
)
def test_daily_limits_per_item_and_utc_day(
    azsim: AzureSimulator, scene: dict[str, Any], case: tuple[str, dict[str, Any], int, str]
) -> None:
    item, properties, limit, other = case
    now = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    azsim.clock = lambda: now
    for _ in range(limit):
        azsim.complete_job(scene["vault"], _backup_now(azsim, scene[item]["id"], properties))
    refused = sim_send(azsim, "POST", scene[item]["id"] + "/backup", {"properties": properties})

    assert (WORKLOAD_DAILY_LIMIT, FILE_SHARE_DAILY_LIMIT) == (9, 10)
    assert refused.status_code == 400
    assert _error(refused)["code"] == QUOTA_EXCEEDED_CODE
    assert _backup_now(azsim, scene[other]["id"], _full())  # the limit is per item
    now += timedelta(days=1)
    assert _backup_now(azsim, scene[item]["id"], properties)  # and per UTC day


def test_running_backup_auto_completes_into_the_failed_shape(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    azsim.auto_complete_backups = "Failed"
    job = _backup_now(azsim, scene["sql"]["id"], _full(backupType="Differential"))
    second = sim_send(azsim, "POST", scene["sql"]["id"] + "/backup", {"properties": _full()})
    details = _job(backup, job)

    assert second.status_code == 400  # the first one still runs until its job is read
    example = _body("published/docs-sql-mgmt-rest-AzureWorkloadJob-failed.json")["properties"]
    properties = details["properties"]
    assert list(properties) == list(example)
    assert list(properties["errorDetails"][0]) == list(example["errorDetails"][0])
    assert properties["errorDetails"][0]["recommendations"] == []  # the synthetic failure's
    assert properties["operation"] == "Backup (Differential)"
    assert _item(backup, SQL_CONTAINER, SQL_ITEM)["properties"]["lastBackupStatus"] == "Unhealthy"


# -- stop protection -----------------------------------------------------------------------------


def _stop(item_type: str, source: str | None) -> dict[str, Any]:
    """The stop-protection bodies of workloads.md §2.2 (data kept)."""
    properties: dict[str, Any] = {
        "protectedItemType": item_type,
        "protectionState": "ProtectionStopped",
        "policyId": "",
    }
    if source is not None:
        properties["sourceResourceId"] = source
    return {"properties": properties}


def _disable_job(azsim: AzureSimulator, response: requests.Response) -> dict[str, Any]:
    status_url = response.headers["azure-asyncoperation"]
    sim_get(azsim, status_url)
    job_name = sim_get(azsim, status_url).json()["properties"]["jobId"]
    return sim_get(azsim, f"{VAULT_PATH}/backupJobs/{job_name}", **BACKUP_VERSION).json()


def test_stop_protection_of_a_sql_database_with_the_rest_articles_body(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    body = _stop("AzureVmWorkloadSQLDatabase", scene["sql_vm"]["id"])
    response = sim_send(azsim, "PUT", scene["sql"]["id"], body)
    job = _disable_job(azsim, response)
    item = _item(backup, SQL_CONTAINER, SQL_ITEM)["properties"]

    assert response.status_code == 202
    assert structure(job) == structure(_body("recorded/wl_sql_job_disablebackup_completed.json"))
    assert (job["properties"]["operation"], job["properties"]["entityFriendlyName"]) == (
        "DisableBackup",
        "SalesDb",
    )
    assert item["protectionState"] == "ProtectionStopped"
    assert "policyId" not in item


def test_stop_protection_takes_the_clis_bodies_and_the_items_own_source(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    cli_sql = load("recorded/wl_sql_stop_protection_put_request.json")
    hana = _stop("AzureVmWorkloadSAPHanaDatabase", None)
    other = azsim.protect_sql_database(scene["vault"], scene["sql_vm"], database="HR")
    own_source = _stop("AzureVmWorkloadSQLDatabase", other["properties"]["sourceResourceId"])

    responses = [
        sim_send(azsim, "PUT", scene["sql"]["id"], cli_sql),
        sim_send(azsim, "PUT", scene["hana"]["id"], hana),
        sim_send(azsim, "PUT", other["id"], own_source),
    ]

    assert [response.status_code for response in responses] == [202, 202, 202]
    for container, name in ((SQL_CONTAINER, SQL_ITEM), (HANA_CONTAINER, HANA_ITEM)):
        assert _item(backup, container, name)["properties"]["protectionState"] == (
            "ProtectionStopped"
        )
    stopped = azsim.get_workload_item(scene["vault"], other["id"])
    assert stopped["properties"]["protectionState"] == "ProtectionStopped"


def test_stop_protection_of_a_file_share_with_both_spellings_of_the_account(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    azsim.add_file_share(scene["account"], "payroll")
    payroll = azsim.protect_file_share(scene["vault"], scene["account"], "payroll")
    rest = _stop("AzureFileShareProtectedItem", scene["account"]["id"])
    cli = load("recorded/afs_stop_protection_put_request.json")  # the CLI's body, our share's id
    cli["properties"]["sourceResourceId"] = payroll["properties"]["sourceResourceId"]

    response = sim_send(azsim, "PUT", scene["files"]["id"], rest)
    job = _disable_job(azsim, response)
    cli_response = sim_send(azsim, "PUT", payroll["id"], cli)

    assert (response.status_code, cli_response.status_code) == (202, 202)
    assert "Microsoft.storage" in payroll["properties"]["sourceResourceId"]
    assert structure(job) == structure(_body("recorded/afs_job_disablebackup_completed.json"))
    assert job["properties"]["isUserTriggered"] is False  # as recorded, though a user asked
    served = _item(backup, FILES_CONTAINER, FILES_ITEM)["properties"]
    assert served["protectionState"] == "ProtectionStopped"
    assert "policyId" not in served


def test_resuming_a_share_makes_a_configure_backup_job_as_recorded_and_published(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    policy = f"{VAULT_PATH}/backupPolicies/schedule1"
    sim_send(azsim, "PUT", scene["files"]["id"], _stop("AzureFileShareProtectedItem", None))
    resume = {
        "properties": {
            "protectedItemType": "AzureFileShareProtectedItem",
            "sourceResourceId": scene["account"]["id"],
            "policyId": policy,
            "protectionState": "Protected",
        }
    }
    job = _disable_job(azsim, sim_send(azsim, "PUT", scene["files"]["id"], resume))
    properties = job["properties"]

    assert structure(job) == structure(_body("recorded/afs_job_configurebackup_completed.json"))
    published = _body("published/docs-afs-mgmt-rest-AzureStorageJob-configurebackup.json")
    assert set(properties) == set(published["properties"]) | {"isUserTriggered"}
    assert properties["extendedInfo"]["propertyBag"] == {
        "File Share Name": SHARE,
        "Storage Account Name": ACCOUNT,
        "Policy Name": "schedule1",
    }
    served = _item(backup, FILES_CONTAINER, FILES_ITEM)["properties"]
    assert (served["protectionState"], served["policyId"]) == ("Protected", policy)


def test_stop_protection_through_the_sdk(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    resource = models.ProtectedItemResource(
        properties=models.AzureVmWorkloadSAPHanaDatabaseProtectedItem(
            protection_state="ProtectionStopped", policy_id=""
        )
    )
    poller = backup.protected_items.begin_create_or_update(
        VAULT, VAULT_RG, FABRIC, HANA_CONTAINER, HANA_ITEM, resource
    )
    poller.result()

    put = azsim.calls_to("item_put", "PUT")[0]
    assert put.body == {
        "properties": {
            "protectedItemType": "AzureVmWorkloadSAPHanaDatabase",
            "protectionState": "ProtectionStopped",
            "policyId": "",
        }
    }
    assert _item(backup, HANA_CONTAINER, HANA_ITEM)["properties"]["protectionState"] == (
        "ProtectionStopped"
    )


@pytest.mark.parametrize(
    ("item", "body"),
    [
        ("sql", _stop("AzureVmWorkloadSAPHanaDatabase", None)),
        ("sql", _stop("Microsoft.Compute/virtualMachines", None)),
        ("hana", _stop("AzureVmWorkloadSAPHanaDatabase", "/subscriptions/x/other")),
        ("files", _stop("AzureVmWorkloadSQLDatabase", None)),
    ],
)
def test_stop_protection_refuses_another_items_body(
    azsim: AzureSimulator, scene: dict[str, Any], item: str, body: dict[str, Any]
) -> None:
    response = sim_send(azsim, "PUT", scene[item]["id"], body)

    assert response.status_code == 400
    assert _error(response)["code"] == "BadRequest"


def test_deleting_a_workload_item_stays_refused_and_recorded() -> None:
    """Its own simulator: the shared one fails any test that ever sent a DELETE."""
    with AzureSimulator() as own:
        own.shapes = "azure"
        vault = own.add_vault(SUB, VAULT_RG, VAULT)
        account = own.add_storage_account(SUB, STORAGE_RG, ACCOUNT)
        own.add_file_share(account, SHARE)
        item = own.protect_file_share(vault, account, SHARE)
        response = requests.delete(
            own.base_url + item["id"],
            params=BACKUP_VERSION,
            headers=SIM_AUTH,
            verify=own.ca_pem_path,
            timeout=5,
        )

        assert response.status_code == 409
        assert own.violations == [f"DELETE {item['id']}"]
        assert own.get_workload_item(vault, FILES_ITEM)["properties"]["protectionState"] == (
            "Protected"
        )


# -- Microsoft.Storage ---------------------------------------------------------------------------


def test_storage_account_get_is_the_recorded_answer_and_404_once_deleted(
    azsim: AzureSimulator, scene: dict[str, Any]
) -> None:
    served = sim_get(azsim, ACCOUNT_PATH, **STORAGE_VERSION)
    azsim.delete_storage_account(scene["account"])
    gone = sim_get(azsim, ACCOUNT_PATH, **STORAGE_VERSION)
    no_group = sim_get(azsim, ACCOUNT_PATH.replace(STORAGE_RG, "rg-nope"), **STORAGE_VERSION)

    assert served.status_code == 200
    assert structure(served.json()) == structure(load("recorded/storage_account_get_200.json"))
    assert served.json() == scene["account"]
    assert served.json()["id"] == ACCOUNT_PATH
    assert served.json()["properties"]["primaryEndpoints"]["file"] == (
        f"https://{ACCOUNT}.file.core.windows.net/"
    )
    assert (gone.status_code, _error(gone)["code"]) == (404, "ResourceNotFound")
    assert gone.headers["x-ms-failure-cause"] == "gateway"
    assert structure(gone.json()) == structure(load("recorded/error_vault_get_404.json")["body"])
    assert (no_group.status_code, _error(no_group)["code"]) == (404, "ResourceGroupNotFound")
    assert sim_get(azsim, f"{SHARES_PATH}/{SHARE}", **STORAGE_VERSION).status_code == 404


def test_share_get_is_the_published_example_and_404_once_deleted(
    azsim: AzureSimulator, scene: dict[str, Any]
) -> None:
    served = sim_get(azsim, f"{SHARES_PATH}/{SHARE}", **STORAGE_VERSION)
    azsim.delete_file_share(scene["account"], SHARE)
    soft = sim_get(azsim, f"{SHARES_PATH}/{SHARE}", **STORAGE_VERSION)

    assert served.status_code == 200
    assert structure(served.json()) == structure(
        _body("published/stg-2025-01-01-FileSharesGet.json")
    )
    assert (served.json()["id"], served.json()["name"]) == (f"{SHARES_PATH}/{SHARE}", SHARE)
    assert served.json()["etag"].startswith('"0x')
    assert (soft.status_code, _error(soft)["code"]) == (404, "ShareNotFound")


def test_soft_deleted_shares_are_listed_with_expand_deleted_as_published(
    azsim: AzureSimulator, scene: dict[str, Any]
) -> None:
    now = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    azsim.clock = lambda: now
    azsim.add_file_share(scene["account"], "archive")
    azsim.delete_file_share(scene["account"], SHARE)
    now += timedelta(days=3)

    plain = sim_get(azsim, SHARES_PATH, **STORAGE_VERSION).json()["value"]
    expanded = sim_get(azsim, SHARES_PATH, **STORAGE_VERSION, **{"$expand": "deleted"}).json()[
        "value"
    ]

    example = _body("published/stg-2025-01-01-DeletedFileSharesList.json")["value"]
    assert [share["name"] for share in plain] == ["archive"]
    assert [share["name"] for share in expanded] == ["archive", SHARE]
    live, deleted = expanded
    assert structure(live) == structure(example[1])
    assert structure(deleted) == structure(example[0])
    properties = deleted["properties"]
    assert properties["deleted"] is True
    assert properties["deletedTime"] == "2026-06-01T08:00:00Z"
    assert properties["remainingRetentionDays"] == SHARE_RETENTION_DAYS - 3
    assert deleted["id"] == f"{SHARES_PATH}/{SHARE}_{properties['version']}"

    now += timedelta(days=SHARE_RETENTION_DAYS)
    later = sim_get(azsim, SHARES_PATH, **STORAGE_VERSION, **{"$expand": "deleted"}).json()["value"]
    assert [share["name"] for share in later] == ["archive"]


def test_permanently_deleted_shares_are_gone_from_every_answer(
    azsim: AzureSimulator, scene: dict[str, Any]
) -> None:
    azsim.add_file_share(scene["account"], "archive")
    azsim.delete_file_share(scene["account"], SHARE, soft=False)
    azsim.delete_file_share(scene["account"], "archive")
    azsim.delete_file_share(scene["account"], "archive", soft=False)

    expanded = sim_get(azsim, SHARES_PATH, **STORAGE_VERSION, **{"$expand": "deleted"}).json()
    assert expanded == {"value": []}
    assert sim_get(azsim, f"{SHARES_PATH}/{SHARE}", **STORAGE_VERSION).status_code == 404
    with pytest.raises(KeyError):
        azsim.delete_file_share(scene["account"], SHARE)


def test_storage_routes_take_the_storage_api_versions(
    azsim: AzureSimulator, scene: dict[str, Any]
) -> None:
    for version in sorted(STORAGE_API_VERSIONS):
        assert sim_get(azsim, ACCOUNT_PATH, **{"api-version": version}).status_code == 200
    refused = sim_get(azsim, ACCOUNT_PATH, **BACKUP_VERSION)

    assert "2026-09-01" in STORAGE_API_VERSIONS
    assert (refused.status_code, _error(refused)["code"]) == (400, "InvalidApiVersionParameter")


# -- faults, call log, other shapes --------------------------------------------------------------


def test_new_routes_are_named_logged_and_take_faults(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    assert {"container_get", "storage_account_get", "file_share_get", "file_share_list"} <= (
        ROUTE_NAMES
    )
    azsim.faults.add("container_get", "500")
    azsim.faults.add("file_share_list", "429", retry_after=2)

    with pytest.raises(HttpResponseError) as caught:
        backup.protection_containers.get(VAULT, VAULT_RG, FABRIC, SQL_CONTAINER)
    throttled = sim_get(azsim, SHARES_PATH, **STORAGE_VERSION)
    served = sim_get(azsim, SHARES_PATH, **STORAGE_VERSION)

    assert caught.value.status_code == 500
    assert backup.protection_containers.get(VAULT, VAULT_RG, FABRIC, SQL_CONTAINER)
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "2")
    assert served.status_code == 200
    shares = azsim.calls_to("file_share_list", "GET")
    assert [(call.status, call.api_version) for call in shares] == [
        (429, "2026-09-01"),
        (200, "2026-09-01"),
    ]
    assert [call.status for call in azsim.calls_to("container_get")] == [500, 200]


def test_idealised_shapes_render_workload_items_and_jobs(
    azsim: AzureSimulator, scene: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    job = azsim.add_workload_job(scene["vault"], scene["files"], error_title="not served")
    with azsim.idealised("the workload kinds must render in the old shapes too"):
        item = _item(backup, SQL_CONTAINER, SQL_ITEM)["properties"]
        details = _job(backup, job["name"])["properties"]

    assert item["protectedItemType"] == "AzureVmWorkloadSQLDatabase"
    assert item["containerName"] == SQL_CONTAINER
    assert details["jobType"] == "AzureStorageJob"
    assert "errorTitle" not in details["errorDetails"][0]
    assert details["storageAccountName"] == ACCOUNT
