"""The ``ideal`` shapes: the simulator's original, idealised documents.

Every field the spec allows is present and in the form the SDK models expect (``containerName``
on every job, ``actionsInfo`` as enum names, microsecond times, ISO 8601 durations,
``Retry-After`` on every 202). Azure does not answer like this; :mod:`sandbox.simulator.azure`
does. Kept only for tests that need these shapes (see :meth:`SimState.idealised`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sandbox.simulator import azure_workloads
from sandbox.simulator import resources as res
from sandbox.simulator.kinds import FILES, VM
from sandbox.simulator.protocol import ArmError, JsonObject, Response
from sandbox.simulator.records import (
    BackupRun,
    ContainerRecord,
    ItemRecord,
    JobRecord,
    Operation,
    VaultRecord,
)

IDEAL = "ideal"


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


class IdealShapes:
    """Renders records in the idealised shapes."""

    def vault(self, vault: VaultRecord) -> JsonObject:
        """A ``Microsoft.RecoveryServices/vaults`` resource (canonical spelling)."""
        return {
            "id": vault.id,
            "name": vault.name,
            "type": res.VAULT_TYPE,
            "location": vault.location,
            "tags": {},
            "sku": {"name": "RS0", "tier": "Standard"},
            "properties": {"provisioningState": "Succeeded"},
        }

    def item(self, item: ItemRecord) -> JsonObject:
        """A protected item: its kind's ``protectedItemType`` and the common fields (an Azure VM
        also with ``virtualMachineId`` and ``healthStatus``)."""
        last = item.last_success
        target = item.target
        properties: JsonObject = {
            "protectedItemType": item.kind.protected_item_type,
            "backupManagementType": item.kind.backup_management_type,
            "workloadType": item.kind.workload_type,
            "friendlyName": target.friendly_name,
            "containerName": _container_name(item),
            "sourceResourceId": target.source_id,
        }
        if item.kind is VM:
            properties["virtualMachineId"] = target.source_id
        properties |= {
            "policyId": item.policy_id,
            "protectionState": item.protection_state,
            "protectionStatus": "Healthy",
        }
        if item.kind is VM:
            properties["healthStatus"] = "Passed"
        properties |= {
            "lastBackupStatus": item.last_backup_status,
            "lastBackupTime": res.NO_BACKUP_TIME if last is None else format_time(last.end),
        }
        return {
            "id": item.id,
            "name": target.name,
            "type": res.ITEM_RESOURCE_TYPE,
            "properties": properties,
        }

    def recovery_point(self, item: ItemRecord, run: BackupRun) -> JsonObject:
        """An ``IaasVMRecoveryPoint`` at the backup's end."""
        name = res.recovery_point_name(run.start)
        return {
            "id": f"{item.id}/recoveryPoints/{name}",
            "name": name,
            "type": res.RECOVERY_POINT_TYPE,
            "properties": {
                "objectType": "IaasVMRecoveryPoint",
                "recoveryPointTime": format_time(run.end),
                "recoveryPointType": "CrashConsistent",
            },
        }

    def container(self, container: ContainerRecord, item_count: int) -> JsonObject:
        """A protection container: only Azure's shape exists (the idealised shapes predate
        containers)."""
        return azure_workloads.container(container, item_count)

    def job(self, job: JobRecord, _now: datetime) -> JsonObject:
        """The full job of the job details GET (``AzureIaaSVMJob`` for a VM; a database or
        share job has its own ``jobType`` and fields, and no ``containerName``)."""
        errors = [_error(job, error.to_json()) for error in job.errors]
        properties: JsonObject = {
            "jobType": job.kind.job_type,
            "entityFriendlyName": job.target.friendly_name,
            "backupManagementType": job.kind.backup_management_type,
            "operation": job.operation,
            "status": job.status,
            "startTime": format_time(job.start),
            "activityId": job.name,
            "duration": format_duration((job.end or job.updated) - job.start),
            "actionsInfo": _actions(job.status),
            "errorDetails": errors,
        }
        properties |= _kind_fields(job)
        properties |= {
            "isUserTriggered": job.is_user_triggered,
            "extendedInfo": {
                "tasksList": _tasks(job),
                "propertyBag": _bag(job),
                "dynamicErrorMessage": errors[0]["errorString"] if errors else "",
            },
        }
        if job.end is not None:
            properties["endTime"] = format_time(job.end)
        return {
            "id": res.job_id(job.vault_id, job.name),
            "name": job.name,
            "type": res.JOB_RESOURCE_TYPE,
            "properties": properties,
        }

    def job_summary(self, job: JobRecord, now: datetime) -> JsonObject:
        """A ``backupJobs`` list entry: the full job without ``errorDetails``."""
        document = self.job(job, now)
        del document["properties"]["errorDetails"]
        return document

    def operation_status(self, operation: Operation) -> JsonObject:
        """The ``OperationStatus`` document for the current state."""
        document: JsonObject = {
            "id": operation.op_id,
            "name": operation.op_id,
            "status": res.IN_PROGRESS if operation.ended is None else res.SUCCEEDED,
            "startTime": format_time(operation.started),
        }
        if operation.ended is not None:
            document["endTime"] = format_time(operation.ended)
            document["properties"] = {
                "objectType": "OperationStatusJobExtendedInfo",
                "jobId": operation.job_name,
            }
        return document

    def lro_resource_id(self, item: ItemRecord) -> str:
        """The item path the polling URLs are built on."""
        return item.id

    def lro_api_version(self, request_version: str) -> str:
        """The polling URLs carry the request's api-version."""
        return request_version

    def accepted_headers(
        self, location: str, async_operation: str, retry_after: int, _writes_left: int
    ) -> dict[str, str]:
        """Headers of a 202 to a trigger or PUT."""
        return {
            "Location": location,
            "Azure-AsyncOperation": async_operation,
            "Retry-After": str(retry_after),
        }

    def pending_result_headers(
        self, location: str, _async_operation: str, retry_after: int
    ) -> dict[str, str]:
        """Headers of the 202 of an operation result that is not ready."""
        return {"Location": location, "Retry-After": str(retry_after)}

    def error(self, error: ArmError) -> Response:
        """``{"error": {"code", "message"}}`` for every error."""
        body = {"error": {"code": error.code, "message": error.message}}
        return Response(error.status, body, dict(error.headers))


def _container_name(item: ItemRecord) -> str:
    target = item.target
    if item.kind is VM:
        return res.container_name(target.host_group, target.host_name)
    return target.container


def _kind_fields(job: JobRecord) -> JsonObject:
    """The fields of the job's own type: a VM's version and container, a database's workload
    type, a share's storage account."""
    target = job.target
    if job.kind is VM:
        return {
            "virtualMachineVersion": "Compute",
            "containerName": res.container_name(target.host_group, target.host_name),
        }
    if job.kind is FILES:
        return {"storageAccountName": target.host_name, "storageAccountVersion": "Storage"}
    return {"workloadType": job.kind.workload_type}


def _tasks(job: JobRecord) -> list[JsonObject]:
    if job.kind is not VM or job.operation != res.BACKUP:
        return []
    states = res.backup_task_states(job.status)
    return [
        {"taskId": task, "duration": "PT0S", "status": state}
        for task, state in zip(res.BACKUP_TASKS, states, strict=True)
    ]


def _bag(job: JobRecord) -> dict[str, str]:
    return {"VM Name": job.target.friendly_name} if job.kind is VM else {}


def _error(job: JobRecord, error: JsonObject) -> JsonObject:
    """An error entry; a share's (``AzureStorageErrorInfo``) has no ``errorTitle``."""
    if job.kind is FILES:
        del error["errorTitle"]
    return error


def _actions(status: str) -> list[str]:
    if status == res.IN_PROGRESS:
        return ["Cancellable"]
    return ["Retriable"] if status == res.FAILED else []
