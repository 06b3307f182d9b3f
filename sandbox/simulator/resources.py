"""ARM resource ids, names and constants shared by both shapes (``ideal`` and ``azure``).

Values such as the location and VM size are illustrative.
"""

from __future__ import annotations

import re
from datetime import datetime

from sandbox.simulator.protocol import JsonObject

FABRIC = "Azure"
BACKUP_MANAGEMENT_TYPE = "AzureIaasVM"
COMPUTE_VM_ITEM_TYPE = "Microsoft.Compute/virtualMachines"
VAULT_TYPE = "Microsoft.RecoveryServices/vaults"
JOB_RESOURCE_TYPE = "Microsoft.RecoveryServices/vaults/backupJobs"
JOB_TYPE = "AzureIaaSVMJob"
ITEM_RESOURCE_TYPE = (
    "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems"
)
RECOVERY_POINT_TYPE = ITEM_RESOURCE_TYPE + "/recoveryPoints"


def recovery_point_name(moment: datetime) -> str:
    """A recovery point's name: digits, as Azure's are (``22244821112382`` in the published
    ``RecoveryPoints_List``); derived from its time, so it is stable."""
    return str(int(moment.timestamp() * 1000))


IN_PROGRESS = "InProgress"
COMPLETED = "Completed"
FAILED = "Failed"
SUCCEEDED = "Succeeded"
FINAL_JOB_STATUSES = frozenset({COMPLETED, FAILED, "CompletedWithWarnings", "Cancelled"})
PROTECTED = "Protected"
# The state of a newly protected VM until its first backup (recorded
# scenario_protected_items_list_irpending.json).
IR_PENDING = "IRPending"
# ``lastBackupTime`` of an item never backed up (same recording).
NO_BACKUP_TIME = "2001-01-01T00:00:00Z"

BACKUP = "Backup"
RESTORE = "Restore"
CONFIGURE_BACKUP = "ConfigureBackup"
DISABLE_BACKUP = "DisableBackup"

_RESOURCE_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/(?P<type>[^/]+/[^/]+)/(?P<name>[^/]+)$",
    re.IGNORECASE,
)
VM_TYPE = "Microsoft.Compute/virtualMachines"
STORAGE_ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"
BACKUP_TASKS = ("Take Snapshot", "Transfer data to vault")
# Task states per job status; any other final status fails at the snapshot task.
_TASK_STATES = {
    COMPLETED: (COMPLETED, COMPLETED),
    "CompletedWithWarnings": (COMPLETED, COMPLETED),
    IN_PROGRESS: (IN_PROGRESS, "NotStarted"),
}


def backup_task_states(status: str) -> tuple[str, str]:
    """The states of the two :data:`BACKUP_TASKS` of a Backup job in ``status``."""
    return _TASK_STATES.get(status, (status, "NotStarted"))


def vault_id(subscription_id: str, resource_group: str, name: str) -> str:
    """The ARM id of a Recovery Services vault."""
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/{VAULT_TYPE}/{name}"
    )


def job_id(vault: str, name: str) -> str:
    """The ARM id of a job of ``vault`` (a vault ARM id), spelt as Azure serves it.

    Azure writes ``/Subscriptions/`` with a capital S in job ids (published GetJobDetails and
    ListJobs examples, Azure/azure-sdk-for-go#5339).
    """
    return f"/Subscriptions{vault[len('/subscriptions') :]}/backupJobs/{name}"


def vm_id(subscription_id: str, resource_group: str, name: str) -> str:
    """The ARM id of a virtual machine."""
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.Compute/virtualMachines/{name}"
    )


def split_vm_id(arm_id: str) -> tuple[str, str, str]:
    """Split a VM ARM id into ``(subscription, resource group, name)``.

    :raises ValueError: if ``arm_id`` is not a VM id.
    """
    return split_resource_id(arm_id, VM_TYPE)


def split_resource_id(arm_id: str, resource_type: str) -> tuple[str, str, str]:
    """Split the ARM id of a resource of ``resource_type`` (``Namespace/type``) into
    ``(subscription, resource group, name)``; the type matches in any case.

    :raises ValueError: if ``arm_id`` is not the id of such a resource.
    """
    match = _RESOURCE_ID.match(arm_id)
    if match is None or match["type"].lower() != resource_type.lower():
        raise ValueError(f"not a {resource_type} id: {arm_id!r}")
    return match["sub"], match["rg"], match["name"]


def storage_account_id(subscription_id: str, resource_group: str, name: str) -> str:
    """The ARM id of a storage account."""
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/{STORAGE_ACCOUNT_TYPE}/{name}"
    )


def container_name(vm_resource_group: str, vm_name: str) -> str:
    """The job/item ``containerName`` of an Azure VM: ``iaasvmcontainerv2;{rg};{vm}``."""
    return f"iaasvmcontainerv2;{vm_resource_group};{vm_name}"


def item_path(vault: str, container: str, item: str) -> str:
    """The ARM id of protected item ``item`` of ``container`` in ``vault`` (a vault ARM id)."""
    return f"{container_path(vault, container)}/protectedItems/{item}"


def container_path(vault: str, container: str) -> str:
    """The ARM id of protection container ``container`` in ``vault`` (a vault ARM id)."""
    return f"{vault}/backupFabrics/{FABRIC}/protectionContainers/{container}"


def vm_names(vm_resource_group: str, vm_name: str) -> tuple[str, str]:
    """``(container, item)`` names of an Azure VM's protected item."""
    short = container_name(vm_resource_group, vm_name)
    return f"IaasVMContainer;{short}", f"VM;{short}"


def workload_container(vm_resource_group: str, vm_name: str) -> str:
    """The container of the databases in a VM: ``VMAppContainer;Compute;{rg};{vm}`` [SQL-REST]."""
    return f"VMAppContainer;Compute;{vm_resource_group};{vm_name}"


def storage_container(account_resource_group: str, account: str) -> str:
    """The container of a storage account's shares: ``StorageContainer;Storage;{rg};{account}``
    [AFS-REST]."""
    return f"StorageContainer;Storage;{account_resource_group};{account}"


def vm_json(
    subscription_id: str, resource_group: str, name: str, location: str, guid: str
) -> JsonObject:
    """A ``Microsoft.Compute/virtualMachines`` resource; ``guid`` is its ``properties.vmId``."""
    return {
        "id": vm_id(subscription_id, resource_group, name),
        "name": name,
        "type": "Microsoft.Compute/virtualMachines",
        "location": location,
        "properties": {
            "vmId": guid,
            "provisioningState": "Succeeded",
            "hardwareProfile": {"vmSize": "Standard_B2s"},
        },
    }
