"""ARM resource ids, names and constants shared by both shapes (``ideal`` and ``azure``).

Values such as the location and VM size are illustrative.
"""

from __future__ import annotations

import re

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

_VM_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.Compute/virtualMachines/(?P<name>[^/]+)$",
    re.IGNORECASE,
)
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
    match = _VM_ID.match(arm_id)
    if match is None:
        raise ValueError(f"not a virtual machine id: {arm_id!r}")
    return match["sub"], match["rg"], match["name"]


def container_name(vm_resource_group: str, vm_name: str) -> str:
    """The job/item ``containerName`` of an Azure VM: ``iaasvmcontainerv2;{rg};{vm}``."""
    return f"iaasvmcontainerv2;{vm_resource_group};{vm_name}"


def item_path(vault: str, vm_resource_group: str, vm_name: str) -> str:
    """The ARM id of a VM's protected item under ``vault`` (a vault ARM id)."""
    return item_path_for(vault, container_name(vm_resource_group, vm_name))


def item_path_for(vault: str, container: str) -> str:
    """The ARM id of the protected item of ``container`` (a ``containerName``) in ``vault``."""
    return (
        f"{vault}/backupFabrics/{FABRIC}/protectionContainers/IaasVMContainer;{container}"
        f"/protectedItems/VM;{container}"
    )


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
