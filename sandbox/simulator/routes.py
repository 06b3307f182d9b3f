"""The simulated API: every route with its stable name, method, paths and api-versions."""

from __future__ import annotations

from sandbox.simulator import arm_api, backup_api
from sandbox.simulator.backup_api import CONTAINER, ITEM, VAULT
from sandbox.simulator.routing import Route, Router

# What the pinned SDKs send (``_configuration.py`` of azure-mgmt-recoveryservicesbackup 11.2.0
# and azure-mgmt-recoveryservices 4.3.0; the per-operation default of azure-mgmt-compute 39.0.0),
# plus the Backup versions the REST docs show.
BACKUP_API_VERSIONS = frozenset({"2026-10-01", "2025-08-01", "2025-02-01", "2024-10-01"})
# Azure's Location and Azure-AsyncOperation URLs carry their own api-version, and azure-core polls
# them verbatim: 2016-12-01 in the published TriggerBackup_Post, StopProtection and
# ProtectedItemOperationResults examples, 2019-05-13-preview and 2022-02-01 in recorded 202s
# (job_cancel_response_202.json, scenario_backup_trigger_response_202.json). The polling routes
# accept them whatever the shapes.
LRO_URL_API_VERSIONS = frozenset({"2016-12-01", "2019-05-13-preview", "2022-02-01"})
_POLLING_API_VERSIONS = BACKUP_API_VERSIONS | LRO_URL_API_VERSIONS
VAULTS_API_VERSIONS = frozenset({"2026-11-01"})
COMPUTE_API_VERSIONS = frozenset({"2026-04-01"})
# What azure-mgmt-storage 25.3.0 (its latest release, not pinned here) sends, the published
# examples' version and the recorded CLI traffic's (storage_account_get_200.json).
STORAGE_API_VERSIONS = frozenset({"2026-09-01", "2025-01-01", "2021-09-01"})

_SUBSCRIPTION = "/subscriptions/{sub}"
_GROUP = _SUBSCRIPTION + "/resourceGroups/{rg}"
_VAULTS = "/providers/Microsoft.RecoveryServices/vaults"
_VMS = "/providers/Microsoft.Compute/virtualMachines"
_ACCOUNT = _GROUP + "/providers/Microsoft.Storage/storageAccounts/{account}"
_SHARES = _ACCOUNT + "/fileServices/default/shares"

ROUTES = (
    Route(
        "vault_list",
        "GET",
        (_SUBSCRIPTION + _VAULTS, _GROUP + _VAULTS),
        VAULTS_API_VERSIONS,
        arm_api.list_vaults,
    ),
    Route("vault_get", "GET", (VAULT,), VAULTS_API_VERSIONS, arm_api.get_vault),
    Route(
        "resource_guard_proxies",
        "GET",
        (VAULT + "/backupResourceGuardProxies",),
        BACKUP_API_VERSIONS,
        backup_api.list_resource_guard_proxies,
    ),
    Route("job_list", "GET", (VAULT + "/backupJobs",), BACKUP_API_VERSIONS, backup_api.list_jobs),
    Route(
        "job_get", "GET", (VAULT + "/backupJobs/{job}",), BACKUP_API_VERSIONS, backup_api.get_job
    ),
    Route("item_get", "GET", (ITEM,), BACKUP_API_VERSIONS, backup_api.get_item),
    Route("item_put", "PUT", (ITEM,), BACKUP_API_VERSIONS, backup_api.put_item),
    Route("item_delete", "DELETE", (ITEM,), BACKUP_API_VERSIONS, backup_api.delete_item),
    Route(
        "item_list",
        "GET",
        (VAULT + "/backupProtectedItems",),
        BACKUP_API_VERSIONS,
        backup_api.list_items,
    ),
    Route(
        "recovery_point_list",
        "GET",
        (ITEM + "/recoveryPoints",),
        BACKUP_API_VERSIONS,
        backup_api.list_recovery_points,
    ),
    Route(
        "backup_trigger",
        "POST",
        (ITEM + "/backup",),
        BACKUP_API_VERSIONS,
        backup_api.trigger_backup,
    ),
    Route(
        "item_operation_status",
        "GET",
        (ITEM + "/operationsStatus/{op}",),
        _POLLING_API_VERSIONS,
        backup_api.item_operation_status,
    ),
    Route(
        "item_operation_result",
        "GET",
        (ITEM + "/operationResults/{op}",),
        _POLLING_API_VERSIONS,
        backup_api.item_operation_result,
    ),
    Route(
        "backup_operation_status",
        "GET",
        (VAULT + "/backupOperations/{op}",),
        _POLLING_API_VERSIONS,
        backup_api.backup_operation_status,
    ),
    Route("container_get", "GET", (CONTAINER,), BACKUP_API_VERSIONS, backup_api.get_container),
    Route("vm_get", "GET", (_GROUP + _VMS + "/{vm}",), COMPUTE_API_VERSIONS, arm_api.get_vm),
    Route(
        "vm_list",
        "GET",
        (_SUBSCRIPTION + _VMS, _GROUP + _VMS),
        COMPUTE_API_VERSIONS,
        arm_api.list_vms,
    ),
)
ROUTES += (
    Route(
        "storage_account_get",
        "GET",
        (_ACCOUNT,),
        STORAGE_API_VERSIONS,
        arm_api.get_storage_account,
    ),
    Route("file_share_list", "GET", (_SHARES,), STORAGE_API_VERSIONS, arm_api.list_file_shares),
    Route(
        "file_share_get",
        "GET",
        (_SHARES + "/{share}",),
        STORAGE_API_VERSIONS,
        arm_api.get_file_share,
    ),
)
ROUTER = Router(ROUTES)
ROUTE_NAMES = ROUTER.names
