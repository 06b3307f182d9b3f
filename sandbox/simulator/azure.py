"""The ``azure`` shapes: documents, headers and errors in the shapes Azure really serves.

Every field and form comes from a file in ``azure_payloads/`` (named in the comments; see its
``SOURCES.md``) or from the spec definitions there
(``published/spec-2026-10-01-bms-job-definitions.json``). Where the files disagree, the
comments say which one a choice follows. Azure VMs are rendered here; SQL/HANA databases, file
shares and protection containers in :mod:`sandbox.simulator.azure_workloads`.

Forms Azure uses and the idealised shapes do not (:mod:`sandbox.simulator.azure_forms`):

* times with 7 fractional digits, trailing zeros trimmed as .NET does
  (``2022-05-16T14:28:23.5523231Z``), and ``0001-01-01T00:00:00`` for "no end yet";
* durations as ISO 8601 (``PT41M12.684856S``) in job lists and, with
  ``details_duration="iso"``, in job details; as a .NET TimeSpan (``00:20:23.0896697``) in job
  details by default (docs-managejobs-JobDetails_Get-response.json);
* ``actionsInfo`` as numbers (``[1]``), no ``containerName`` on jobs unless seeded so, lower-case
  container and item names, no ``Retry-After`` on the 202 of a trigger or PUT, and polling URLs
  with ``api-version=2016-12-01``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from urllib.parse import quote

from sandbox.simulator import azure_workloads as workloads
from sandbox.simulator import payloads
from sandbox.simulator import resources as res
from sandbox.simulator.azure_forms import (
    DURATION_FORMS,
    ISO,
    NO_END_TIME,
    TIMESPAN,
    duration_text,
    elapsed,
    format_time,
    general_time,
    iso_duration,
    ticks,
    timespan,
)
from sandbox.simulator.azure_jobs import job_resource, job_tail
from sandbox.simulator.kinds import VM
from sandbox.simulator.protocol import ArmError, BackupError, JsonObject, Response
from sandbox.simulator.records import (
    BackupRun,
    ContainerRecord,
    ItemRecord,
    JobRecord,
    Operation,
    VaultRecord,
)

__all__ = [
    "AZURE",
    "DURATION_FORMS",
    "ISO",
    "LRO_API_VERSION",
    "NO_END_TIME",
    "TIMESPAN",
    "AzureShapes",
    "elapsed",
    "format_time",
    "iso_duration",
    "ticks",
    "timespan",
]

AZURE = "azure"

# The api-version of the Location and Azure-AsyncOperation URLs in the published TriggerBackup_Post,
# StopProtection and ProtectedItemOperationResults examples (the requests used 2026-10-01).
LRO_API_VERSION = "2016-12-01"
# JobSupportedAction "Cancellable" as the number the live service sends (recorded scenario_job_*,
# job_list_*, Azure/azure-sdk-for-go#5339).
_CANCELLABLE = 1
# Operations whose jobs carry actionsInfo in the recordings (ConfigureBackup and DisableBackup
# jobs there have none), and the statuses that carry it (InProgress and Completed recorded; Failed
# per the issue #9 brief: no failed job was recorded).
_ACTIONABLE_OPERATIONS = frozenset({res.BACKUP, res.RESTORE})
_ACTIONABLE_STATUSES = frozenset({res.IN_PROGRESS, res.COMPLETED, res.FAILED})
# "Backup Size" of a completed backup; sizes are not simulated, so the docs capture's value.
_BACKUP_SIZE = "2332 MB"
# lastRecoveryPoint follows lastBackupTime (the backup job's start) by the snapshot's 4-5 s in
# the recordings (scenario_protected_items_list_protected_before_stop.json,
# protected_item_after_job_cancel_kpis.json).
_SNAPSHOT_DELAY = timedelta(seconds=5)

_PROTECTED_ITEM = "recorded/scenario_protected_items_list_protected_before_stop.json"
_RECOVERY_POINTS = "published/rsb-2026-10-01-RecoveryPoints_List.json"


class AzureShapes:
    """Renders records in Azure's shapes.

    :param details_duration: :data:`TIMESPAN` or :data:`ISO`, the form of durations in job
        details (both appear in Azure's job details; lists always use ISO 8601).
    """

    def __init__(self, details_duration: str = TIMESPAN) -> None:
        self._details_duration = details_duration

    # -- vaults ---------------------------------------------------------------------------

    def vault(self, vault: VaultRecord) -> JsonObject:
        """A vault as the subscription's vault list shows it (recorded
        vault_list_subscription_excerpt.json, its first entry's keys), with the ``id`` and
        ``type`` spelt as seeded (the same excerpt has ``/Vaults/`` and lower-case types)."""
        return {
            "location": vault.location,
            "name": vault.name,
            "etag": f"W/\"datetime'{quote(format_time(vault.created), safe='')}'\"",
            "properties": {
                "provisioningState": "Succeeded",
                "privateEndpointStateForBackup": "None",
                "privateEndpointStateForSiteRecovery": "None",
            },
            "id": (
                f"/subscriptions/{vault.subscription_id}/resourceGroups/{vault.resource_group}"
                f"/providers/{vault.id_type_spelling}/{vault.name}"
            ),
            "type": vault.type_spelling,
            "sku": {"name": "RS0", "tier": "Standard"},
        }

    # -- protected items ------------------------------------------------------------------

    def item(self, item: ItemRecord) -> JsonObject:
        """A protected item as the recorded item lists show it (a database or file share as
        :func:`sandbox.simulator.azure_workloads.item` renders it)."""
        if item.kind is not VM:
            return workloads.item(item)
        return self._vm_item(item)

    def _vm_item(self, item: ItemRecord) -> JsonObject:
        """A protected VM.

        Before its first completed backup it has the keys of
        scenario_protected_items_list_irpending.json (empty ``kpisHealths``, no
        ``healthDetails`` or ``lastRecoveryPoint``, ``lastBackupTime`` 2001-01-01); afterwards
        those of scenario_protected_items_list_protected_before_stop.json, whose KPI and health
        entries are served as recorded. ``lastBackupTime`` is the last completed backup job's
        start, as in those recordings. Container and item names are lower case
        (protectable_items_excerpt.json: lower-cased even when the VM and group are not).
        """
        target = item.target
        container = _container(target.host_group, target.host_name)
        item_id = _vm_item_id(item)
        last = item.last_success
        recorded = payloads.load(_PROTECTED_ITEM)["value"][0]["properties"]
        properties: JsonObject = {
            "kpisHealths": {} if last is None else recorded["kpisHealths"],
            "friendlyName": target.friendly_name,
            "virtualMachineId": target.source_id,
            "protectionStatus": "Healthy",
            "protectionState": item.protection_state,
            "healthStatus": "Passed",
        }
        if last is not None:
            properties["healthDetails"] = recorded["healthDetails"]
        properties |= {
            "lastBackupStatus": item.last_backup_status,
            "lastBackupTime": res.NO_BACKUP_TIME if last is None else format_time(last.start),
            "protectedItemDataId": item.data_id,
            "protectedItemType": res.COMPUTE_VM_ITEM_TYPE,
            "backupManagementType": res.BACKUP_MANAGEMENT_TYPE,
            "workloadType": "VM",
            "containerName": container,
            "sourceResourceId": target.source_id,
            "policyId": item.policy_id,
            "policyName": item.policy_name,
        }
        if last is not None:
            properties["lastRecoveryPoint"] = format_time(last.start + _SNAPSHOT_DELAY)
        properties["isArchiveEnabled"] = False
        return {
            "id": item_id,
            "name": item_id.rsplit("/", 1)[1],
            "type": res.ITEM_RESOURCE_TYPE,
            "properties": properties,
        }

    def recovery_point(self, item: ItemRecord, run: BackupRun) -> JsonObject:
        """A VM's recovery point as the published ``RecoveryPoints_List`` shows its first entry
        (a crash-consistent point in the vault tier), taken at the backup's snapshot: the
        ``lastRecoveryPoint`` time of the item for its newest point."""
        template = payloads.load(_RECOVERY_POINTS)["responses"]["200"]["body"]["value"][0]
        name = res.recovery_point_name(run.start)
        return {
            "name": name,
            "type": res.RECOVERY_POINT_TYPE,
            "id": f"{_vm_item_id(item)}/recoveryPoints/{name}",
            "properties": {
                **template["properties"],
                "recoveryPointTime": format_time(run.start + _SNAPSHOT_DELAY),
            },
        }

    def container(self, container: ContainerRecord, item_count: int) -> JsonObject:
        """A protection container of databases or file shares, see
        :func:`sandbox.simulator.azure_workloads.container`."""
        return workloads.container(container, item_count)

    # -- jobs ------------------------------------------------------------------------------

    def job(self, job: JobRecord, now: datetime) -> JsonObject:
        """The job details GET, with the keys of the recorded scenario_job_* files (a database or
        file share job as :func:`sandbox.simulator.azure_workloads.job` renders it).

        ``containerName`` only when seeded so (published GetJobDetails and the docs capture have
        none); ``errorDetails`` (spec ``AzureIaaSVMJob``) only on a Failed job.
        """
        if job.kind is not VM:
            return workloads.job(job, now, self._details_duration)
        properties = self._head(job)
        duration = elapsed(job.start, job.end or now)
        properties["duration"] = self._details_span(duration)
        properties["virtualMachineVersion"] = "Compute"
        properties["extendedInfo"] = self._extended_info(job)
        properties |= job_tail(job, job.target.friendly_name)
        if job.errors:
            properties["errorDetails"] = [error.to_json() for error in job.errors]
        return job_resource(job, properties)

    def job_summary(self, job: JobRecord, now: datetime) -> JsonObject:
        """A ``backupJobs`` list entry, trimmed as Azure trims it (no ``extendedInfo``,
        ``errorDetails`` or ``isUserTriggered``; observed-go5339-BackupJobs_List-item.json,
        published ListJobs, recorded job_list_*), the duration in ISO 8601."""
        if job.kind is not VM:
            return workloads.job_summary(job, now)
        properties = self._head(job)
        properties["duration"] = iso_duration(elapsed(job.start, job.end or now))
        properties["virtualMachineVersion"] = "Compute"
        properties |= job_tail(job, job.target.friendly_name)
        return job_resource(job, properties)

    def _head(self, job: JobRecord) -> JsonObject:
        head: JsonObject = {"jobType": res.JOB_TYPE}
        if job.operation in _ACTIONABLE_OPERATIONS and job.status in _ACTIONABLE_STATUSES:
            head["actionsInfo"] = [_CANCELLABLE]
        if job.container_in_details:
            # As the recorded CLI traffic shows it, in the job details and in the job lists.
            head["containerName"] = _container(job.target.host_group, job.target.host_name)
        return head

    def _details_span(self, span: int) -> str:
        return duration_text(self._details_duration, span)

    def _extended_info(self, job: JobRecord) -> JsonObject:
        """``extendedInfo`` per operation, with the keys its recordings show."""
        if job.operation == res.BACKUP:
            # scenario_job_backup_inprogress.json / _completed.json; "Backup Size" also in the
            # docs capture.
            bag = {"VM Name": job.target.friendly_name}
            if job.expiry is not None:
                bag["Recovery Point Expiry Time in UTC"] = general_time(job.expiry)
            if job.status == res.COMPLETED:
                bag["Backup Size"] = _BACKUP_SIZE
            states = res.backup_task_states(job.status)
            return {
                "tasksList": self._tasks(zip(res.BACKUP_TASKS, states, strict=True)),
                "propertyBag": bag,
                "internalPropertyBag": {"IsInstantRpJob": "True"},
            }
        if job.operation in (res.CONFIGURE_BACKUP, res.DISABLE_BACKUP):
            # scenario_job_configurebackup_completed.json, scenario_job_disablebackup_completed.json
            bag = {"VM Name": job.target.friendly_name, "Policy Name": job.policy_name}
            return {"tasksList": [], "propertyBag": bag}
        if job.operation == res.RESTORE:
            # scenario_job_restore_inprogress.json, job_details_restore_inprogress.json: their
            # task and the keys whose values do not depend on a restore target.
            return {
                "tasksList": self._tasks([("Transfer data from vault", job.status)]),
                "propertyBag": {"Job Type": "Recover disks"},
                "internalPropertyBag": {"restoreLocationType": "RestoreDisks"},
            }
        # Any other operation: the recorded ConfigureBackup form without its policy.
        return {"tasksList": [], "propertyBag": {"VM Name": job.target.friendly_name}}

    def _tasks(self, tasks: Iterable[tuple[str, str]]) -> list[JsonObject]:
        # Task durations are zero in every payload: "PT0S" in ISO form, "00:00:00" as TimeSpan.
        zero = self._details_span(0)
        return [{"taskId": task, "duration": zero, "status": state} for task, state in tasks]

    # -- long-running operations ----------------------------------------------------------

    def operation_status(self, operation: Operation) -> JsonObject:
        """An operation status: recorded scenario_backup_operation_status_inprogress.json while
        running, then scenario_*_operation_status_succeeded.json (and the published
        ProtectedItemOperationStatus example)."""
        document: JsonObject = {
            "id": operation.op_id,
            "name": operation.op_id,
            "status": res.IN_PROGRESS if operation.ended is None else res.SUCCEEDED,
            "startTime": format_time(operation.started),
            "endTime": NO_END_TIME if operation.ended is None else format_time(operation.ended),
        }
        if operation.ended is not None:
            document["properties"] = {
                "objectType": "OperationStatusJobExtendedInfo",
                "jobId": operation.job_name,
            }
        return document

    def lro_resource_id(self, item: ItemRecord) -> str:
        """The item path of the polling URLs, spelt as the published examples spell it
        (``/Subscriptions/``, container and item names as the item is served: lower case for a
        VM)."""
        item_id = _vm_item_id(item) if item.kind is VM else workloads.item(item)["id"]
        return "/Subscriptions" + item_id[len("/subscriptions") :]

    def lro_api_version(self, _request_version: str) -> str:
        """:data:`LRO_API_VERSION`, whatever the request used."""
        return LRO_API_VERSION

    def accepted_headers(
        self, location: str, async_operation: str, _retry_after: int, writes_left: int
    ) -> dict[str, str]:
        """Headers of the 202 to a trigger or PUT: no ``Retry-After`` (recorded
        scenario_backup_trigger_response_202.json and
        scenario_stop_protection_put_response_202.json)."""
        return {
            "Azure-AsyncOperation": async_operation,
            "Location": location,
            "x-ms-ratelimit-remaining-subscription-writes": str(writes_left),
        }

    def pending_result_headers(
        self, location: str, async_operation: str, retry_after: int
    ) -> dict[str, str]:
        """Headers of the 202 of an operation result that is not ready (published
        ProtectedItemOperationResults example, which does carry ``Retry-After``)."""
        return {
            "Azure-AsyncOperation": async_operation,
            "Location": location,
            "Retry-After": str(retry_after),
        }

    # -- errors ----------------------------------------------------------------------------

    def error(self, error: ArmError) -> Response:
        """ARM's error body.

        The gateway answers ``{"error": {"code", "message"}}`` (recorded
        error_vault_get_404.json), with ``x-ms-failure-cause`` where known; the Backup provider
        also sends ``target`` and ``details`` as null
        (supplementary_error_bms_invalid_input_400.json). Not ``additionalInfo``, although the
        spec's ErrorDetail allows it: no payload shows the provider sending it (a fuller quote of
        the same error, Azure/azure-rest-api-specs#14715, goes on with ``innerError``), and
        ``"additionalInfo": null`` would make azure-mgmt-core drop the whole parsed error.
        """
        detail: JsonObject = {"code": error.code, "message": error.message}
        if isinstance(error, BackupError):
            detail |= {"target": None, "details": None}
        headers = dict(error.headers)
        if error.failure_cause is not None:
            headers["x-ms-failure-cause"] = error.failure_cause
        return Response(error.status, {"error": detail}, headers)


def _container(vm_resource_group: str, vm_name: str) -> str:
    return res.container_name(vm_resource_group, vm_name).lower()


def _vm_item_id(item: ItemRecord) -> str:
    """A VM item's id with lower-case container and item names, as Azure serves it."""
    short = _container(item.target.host_group, item.target.host_name)
    return res.item_path(item.vault_id, f"IaasVMContainer;{short}", f"VM;{short}")
