"""ARM resource ids, names and JSON documents in the shapes Azure returns them.

Shapes follow the ``bms.json`` (Recovery Services Backup) and Compute REST specifications.
Values such as the location, VM size and task names are illustrative.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sandbox.simulator.protocol import JsonObject

FABRIC = "Azure"
BACKUP_MANAGEMENT_TYPE = "AzureIaasVM"
COMPUTE_VM_ITEM_TYPE = "Microsoft.Compute/virtualMachines"
JOB_RESOURCE_TYPE = "Microsoft.RecoveryServices/vaults/backupJobs"
ITEM_RESOURCE_TYPE = (
    "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems"
)

IN_PROGRESS = "InProgress"
COMPLETED = "Completed"
FAILED = "Failed"
SUCCEEDED = "Succeeded"
FINAL_JOB_STATUSES = frozenset({COMPLETED, FAILED, "CompletedWithWarnings", "Cancelled"})

_VM_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.Compute/virtualMachines/(?P<name>[^/]+)$",
    re.IGNORECASE,
)
_BACKUP_TASKS = ("Take Snapshot", "Transfer data to vault")
# Task states per job status; any other final status fails at the snapshot task.
_TASK_STATES = {
    COMPLETED: (COMPLETED, COMPLETED),
    "CompletedWithWarnings": (COMPLETED, COMPLETED),
    IN_PROGRESS: (IN_PROGRESS, "NotStarted"),
}


@dataclass(frozen=True)
class JobError:
    """One ``errorDetails`` entry of an ``AzureIaaSVMJob``.

    :ivar code: the integer ``errorCode``.
    :ivar message: the ``errorString`` (a localized message in Azure).
    :ivar recommendations: the ``recommendations`` list.
    """

    code: int
    message: str
    recommendations: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        """The ``AzureIaaSVMErrorInfo`` JSON."""
        return {
            "errorCode": self.code,
            "errorTitle": "",
            "errorString": self.message,
            "recommendations": list(self.recommendations),
        }


def format_time(moment: datetime) -> str:
    """An ARM timestamp: UTC, microseconds, ``Z`` suffix.

    :param moment: an aware or naive (taken as UTC) datetime.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_duration(span: timedelta) -> str:
    """An ISO 8601 duration such as ``PT1H2M3.5S``.

    :param span: a non-negative duration.
    """
    total = max(span.total_seconds(), 0.0)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "PT"
    if hours:
        text += f"{int(hours)}H"
    if minutes:
        text += f"{int(minutes)}M"
    return text + f"{round(seconds, 3):g}S"


def vault_id(subscription_id: str, resource_group: str, name: str) -> str:
    """The ARM id of a Recovery Services vault."""
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.RecoveryServices/vaults/{name}"
    )


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
    container = container_name(vm_resource_group, vm_name)
    return (
        f"{vault}/backupFabrics/{FABRIC}/protectionContainers/IaasVMContainer;{container}"
        f"/protectedItems/VM;{container}"
    )


def vault_json(subscription_id: str, resource_group: str, name: str, location: str) -> JsonObject:
    """A ``Microsoft.RecoveryServices/vaults`` resource."""
    return {
        "id": vault_id(subscription_id, resource_group, name),
        "name": name,
        "type": "Microsoft.RecoveryServices/vaults",
        "location": location,
        "tags": {},
        "sku": {"name": "RS0", "tier": "Standard"},
        "properties": {"provisioningState": "Succeeded"},
    }


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


def item_json(
    vault: JsonObject, vm: JsonObject, policy_name: str, last_backup: datetime
) -> JsonObject:
    """A protected Azure VM (``protectedItemType`` ``Microsoft.Compute/virtualMachines``).

    :param last_backup: time of its last (successful) backup.
    """
    _, vm_rg, vm_name = split_vm_id(vm["id"])
    item_id = item_path(vault["id"], vm_rg, vm_name)
    return {
        "id": item_id,
        "name": item_id.rsplit("/", 1)[1],
        "type": ITEM_RESOURCE_TYPE,
        "properties": {
            "protectedItemType": COMPUTE_VM_ITEM_TYPE,
            "backupManagementType": BACKUP_MANAGEMENT_TYPE,
            "workloadType": "VM",
            "friendlyName": vm_name,
            "containerName": container_name(vm_rg, vm_name),
            "sourceResourceId": vm["id"],
            "virtualMachineId": vm["id"],
            "policyId": f"{vault['id']}/backupPolicies/{policy_name}",
            "protectionState": "Protected",
            "protectionStatus": "Healthy",
            "healthStatus": "Passed",
            "lastBackupStatus": COMPLETED,
            "lastBackupTime": format_time(last_backup),
        },
    }


def job_json(
    vault: str,
    *,
    name: str,
    vm_name: str,
    vm_resource_group: str,
    operation: str,
    start: datetime,
    is_user_triggered: bool,
) -> JsonObject:
    """An ``AzureIaaSVMJob`` skeleton, InProgress; :func:`set_job_status` moves it on.

    :param vault: the vault ARM id.
    :param name: the job name (a GUID).
    """
    return {
        # Azure spells the job id with a capital "Subscriptions".
        "id": f"/Subscriptions{vault[len('/subscriptions') :]}/backupJobs/{name}",
        "name": name,
        "type": JOB_RESOURCE_TYPE,
        "properties": {
            "jobType": "AzureIaaSVMJob",
            "entityFriendlyName": vm_name,
            "backupManagementType": BACKUP_MANAGEMENT_TYPE,
            "operation": operation,
            "status": IN_PROGRESS,
            "startTime": format_time(start),
            "activityId": name,
            "duration": "PT0S",
            "actionsInfo": [],
            "errorDetails": [],
            "virtualMachineVersion": "Compute",
            "containerName": container_name(vm_resource_group, vm_name),
            "isUserTriggered": is_user_triggered,
            "extendedInfo": {
                "tasksList": [],
                "propertyBag": {"VM Name": vm_name},
                "dynamicErrorMessage": "",
            },
        },
    }


def set_job_status(
    job: JsonObject,
    status: str,
    *,
    start: datetime,
    end: datetime | None,
    now: datetime,
    errors: Sequence[JobError] = (),
) -> None:
    """Set a job's status and everything that follows from it, in place.

    :param job: a document made by :func:`job_json`.
    :param status: ``InProgress`` or a final status.
    :param start: the job's start time.
    :param end: its end time; ``None`` while in progress.
    :param now: the current time, for the running duration.
    :param errors: error details, kept only for ``Failed``.
    """
    props = job["properties"]
    props["status"] = status
    props["duration"] = format_duration((end or now) - start)
    if end is None:
        props.pop("endTime", None)
    else:
        props["endTime"] = format_time(end)
    kept = list(errors) if status == FAILED else []
    props["errorDetails"] = [error.to_json() for error in kept]
    props["extendedInfo"]["dynamicErrorMessage"] = kept[0].message if kept else ""
    props["actionsInfo"] = _actions(status)
    if props["operation"] == "Backup":
        props["extendedInfo"]["tasksList"] = _backup_tasks(status)


def _actions(status: str) -> list[str]:
    if status == IN_PROGRESS:
        return ["Cancellable"]
    return ["Retriable"] if status == FAILED else []


def _backup_tasks(status: str) -> list[JsonObject]:
    states = _TASK_STATES.get(status, (status, "NotStarted"))
    return [
        {"taskId": task, "duration": "PT0S", "status": state}
        for task, state in zip(_BACKUP_TASKS, states, strict=True)
    ]


def failed_job_json(
    vault_id: str,
    vm_name: str,
    vm_resource_group: str,
    error: tuple[int | str, str],
    start: datetime,
) -> JsonObject:
    """A failed ``AzureIaaSVMJob`` as the job details GET returns it, outside any simulator.

    For building events about jobs (benchmarks, hostile-input tests) without seeding state.
    """
    job = job_json(
        vault_id,
        name=str(uuid.uuid4()),
        vm_name=vm_name,
        vm_resource_group=vm_resource_group,
        operation="Backup",
        start=start,
        is_user_triggered=False,
    )
    end = start + timedelta(minutes=30)
    errors = [JobError(error[0], error[1])]  # type: ignore[arg-type]
    set_job_status(job, FAILED, start=start, end=end, now=end, errors=errors)
    return job
