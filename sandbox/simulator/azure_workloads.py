"""The ``azure`` shapes of SQL Server and SAP HANA databases in Azure VMs and of Azure file shares:
protected items, jobs and protection containers.

Each document follows one payload of ``azure_payloads/`` (named below; see its ``SOURCES.md``),
key for key and in its order; a document has the shape of the payload that shows the same state.
Where no payload shows a state, the nearest one is used and the comment says so (unverified).

* Databases: before the first backup, the keys of Microsoft's enable-protection response
  (docs-sql-rest-AzureVmWorkloadSQLDatabase-irpending.json); afterwards those of the recorded
  CLI traffic (wl_sql_item_protected.json, wl_hana_item_protected.json).
* Database jobs: a failed one as Microsoft's failed SQL job
  (docs-sql-mgmt-rest-AzureWorkloadJob-failed.json); a running or finished backup as the
  recorded ones (wl_sql_job_backup_*.json); a protection change as the recorded DisableBackup
  job (wl_sql_job_disablebackup_completed.json).
* File shares and their jobs: as the recorded CLI traffic (afs_*.json; the ConfigureBackup job
  also in docs-afs-mgmt-rest-AzureStorageJob-configurebackup.json).
* Containers: the spec's ProtectionContainers_Get example for databases
  (rsb-2026-10-01-AzureWorkload-ProtectionContainers_Get.json), the recorded registered storage
  container for shares (afs_container_registered.json).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sandbox.simulator import payloads
from sandbox.simulator import resources as res
from sandbox.simulator.azure_forms import ISO, format_time, whole_seconds
from sandbox.simulator.azure_jobs import job_duration, job_resource, job_tail, trimmed
from sandbox.simulator.kinds import FILES, HANA, SQL, is_backup
from sandbox.simulator.protocol import JsonObject
from sandbox.simulator.records import ContainerRecord, ItemRecord, JobError, JobRecord, Target

_DATABASE_IRPENDING = "published/docs-sql-rest-AzureVmWorkloadSQLDatabase-irpending.json"
_DATABASE_PROTECTED = "recorded/wl_sql_item_protected.json"
_WORKLOAD_CONTAINER = "published/rsb-2026-10-01-AzureWorkload-ProtectionContainers_Get.json"
_STORAGE_CONTAINER = "recorded/afs_container_registered.json"

# parentType of a database: recorded wl_sql_item_protected.json and wl_hana_item_protected.json.
_PARENT_TYPES = {SQL: "AzureVmWorkloadSQLInstance", HANA: "AzureVmWorkloadSAPHanaSystem"}
# lastBackupStatus and protectedItemHealthStatus of a database or share: "IRPending" before the
# first backup and "Healthy" after a completed one (both recorded); "Unhealthy" after a failed one
# is the spec's value ("Possible values: Healthy, Unhealthy"), unverified in a real response.
_IR_PENDING = "IRPending"
_HEALTHY = "Healthy"
_UNHEALTHY = "Unhealthy"
_HEALTHY_RUNS = frozenset({res.COMPLETED, "CompletedWithWarnings"})
# Recovery points of a database follow the backup job's start by the transfer's 38 s in the
# recorded SQL item (job start 07:17:20, recovery point 07:17:58), written to the second.
_RECOVERY_POINT_DELAY = timedelta(seconds=38)
# The single task of a database backup job and the data it moved (recorded wl_sql_job_backup_*;
# sizes are not simulated, so the recording's value; "0" on the failed job of the docs example).
_TRANSFER_TASK = "Transfer data to vault"
_DATA_TRANSFERRED = "Data Transferred (in MB)"
_TRANSFERRED_MB = "20.1147"
# JobSupportedAction "Cancellable" as the number the live service sends (recorded, docs example).
_CANCELLABLE = 1
_PROTECTION_CHANGES = frozenset({res.CONFIGURE_BACKUP, res.DISABLE_BACKUP})
# storageAccountVersion of a share's jobs (recorded afs_job_*; docs example).
_STORAGE_ACCOUNT_VERSION = "Storage"


# -- protected items ------------------------------------------------------------------------


def item(record: ItemRecord) -> JsonObject:
    """A protected database or file share as Azure's item lists and GET show it.

    Databases: the docs example's keys until the first completed backup, then the recorded
    ones (``kpisHealths``, ``lastBackupTime``, ``lastRecoveryPoint``, ``isArchiveEnabled``; the
    recorded ``recoveryModel`` only for SQL). ``policyId`` is left out while protection is
    stopped, as in the recorded stopped items.
    """
    if record.kind is FILES:
        return _file_share_item(record)
    recorded = record.last_success is not None
    container = _database_container(record.target, recorded)
    body = _database_after_backup(record) if recorded else _database_before_backup(record)
    body |= _item_identity(record, container)
    if recorded:
        body["lastRecoveryPoint"] = _recovery_point(record.last_success.start)  # type: ignore[union-attr]
        body["isArchiveEnabled"] = False
    return _item_resource(record, container, body)


def _database_before_backup(record: ItemRecord) -> JsonObject:
    """The leading keys of the docs example (an item just protected)."""
    status = _backup_status(record)
    return _database_names(record) | {
        "protectionStatus": "Healthy",
        "protectionState": record.protection_state,
        "lastBackupStatus": status,
        "lastBackupErrorDetail": {"code": "Success", "message": ""},
        "protectedItemDataSourceId": record.data_id,
        "protectedItemHealthStatus": status,
        "extendedInfo": {"recoveryPointCount": 0, "policyState": "Consistent"},
    }


def _database_after_backup(record: ItemRecord) -> JsonObject:
    """The leading keys of the recorded item (after a completed backup)."""
    recorded = payloads.load(_DATABASE_PROTECTED)["properties"]
    status = _backup_status(record)
    return (
        {"kpisHealths": recorded["kpisHealths"]}
        | _database_names(record)
        | {
            "protectionStatus": "Healthy",
            "protectionState": record.protection_state,
            "lastBackupStatus": status,
            "lastBackupTime": format_time(record.last_success.start),  # type: ignore[union-attr]
            "protectedItemDataSourceId": record.data_id,
            "protectedItemHealthStatus": status,
            "extendedInfo": _database_extended_info(record),
        }
    )


def _database_names(record: ItemRecord) -> JsonObject:
    target = record.target
    return {
        "friendlyName": target.friendly_name,
        "serverName": target.server_name,
        "parentName": target.parent_name,
        "parentType": _PARENT_TYPES[target.kind],
    }


def _database_extended_info(record: ItemRecord) -> JsonObject:
    oldest = record.first_success or record.last_success
    info: JsonObject = {
        "oldestRecoveryPoint": _recovery_point(oldest.start),  # type: ignore[union-attr]
        "recoveryPointCount": record.recovery_points,
        "policyState": "Consistent",
    }
    if record.target.recovery_model:
        info["recoveryModel"] = record.target.recovery_model
    return info


def _file_share_item(record: ItemRecord) -> JsonObject:
    """A protected file share: the keys of the recorded afs_item_list_irpending.json.

    After a completed backup ``lastBackupTime`` follows ``lastBackupStatus`` (a spec property of
    AzureFileshareProtectedItem placed as the database recordings place it; no share with a
    backup was recorded, so its presence and place are unverified).
    """
    container = _storage_container_spelling(record.target)
    body: JsonObject = {
        "kpisHealths": {},
        "friendlyName": record.target.friendly_name,
        "protectionStatus": "Healthy",
        "protectionState": record.protection_state,
        "lastBackupStatus": _backup_status(record),
    }
    if record.last_success is not None:
        body["lastBackupTime"] = format_time(record.last_success.start)
    body |= _item_identity(record, container)
    body["isArchiveEnabled"] = False
    return _item_resource(record, container, body)


def _item_identity(record: ItemRecord, container: str) -> JsonObject:
    """``protectedItemType`` … ``policyId``, in the payloads' order."""
    kind = record.kind
    identity: JsonObject = {
        "protectedItemType": kind.protected_item_type,
        "backupManagementType": kind.backup_management_type,
        "workloadType": kind.workload_type,
        "containerName": container,
        "sourceResourceId": record.target.source_id,
    }
    if record.policy_id:
        identity["policyId"] = record.policy_id
    return identity


def _item_resource(record: ItemRecord, container: str, properties: JsonObject) -> JsonObject:
    item_id = res.item_path(record.vault_id, container, record.target.name)
    return {
        "id": item_id,
        "name": record.target.name,
        "type": res.ITEM_RESOURCE_TYPE,
        "properties": properties,
    }


def _backup_status(record: ItemRecord) -> str:
    if not record.last_backup_status:
        return _IR_PENDING
    return _HEALTHY if record.last_backup_status in _HEALTHY_RUNS else _UNHEALTHY


def _recovery_point(backup_start: datetime) -> str:
    return whole_seconds(backup_start + _RECOVERY_POINT_DELAY)


def _database_container(target: Target, recorded: bool) -> str:
    """The container name a database item shows: ``VMAppContainer;Compute;…`` as the docs example
    spells it, ``VMAppContainer;compute;…`` as the recorded items do."""
    return target.container.replace(";Compute;", ";compute;", 1) if recorded else target.container


def _storage_container_spelling(target: Target) -> str:
    """``StorageContainer;storage;…``: how the recorded share item spells its container."""
    return target.container.replace(";Storage;", ";storage;", 1)


# -- jobs -------------------------------------------------------------------------------------


def job(record: JobRecord, now: datetime, form: str) -> JsonObject:
    """A database or file share job as the job details GET returns it.

    :param form: the duration form (``timespan`` as the docs examples, ``iso`` as the recorded
        traffic).
    """
    if record.kind is FILES:
        properties = _storage_job(record, now, form)
    elif record.operation in _PROTECTION_CHANGES:
        properties = _database_protection_job(record, now, form)
    elif record.errors:
        properties = _failed_database_job(record, now, form)
    else:
        properties = _database_backup_job(record, now, form)
    return job_resource(record, properties)


def job_summary(record: JobRecord, now: datetime) -> JsonObject:
    """A ``backupJobs`` list entry: the details with an ISO 8601 duration, without
    ``extendedInfo``, ``errorDetails`` and ``isUserTriggered``. No workload job list was
    recorded: this trimming is the VM lists' (unverified for these job types)."""
    return trimmed(job(record, now, ISO))


def _database_backup_job(record: JobRecord, now: datetime, form: str) -> JsonObject:
    """A running or finished database backup: the keys of the recorded wl_sql_job_backup_*.

    The recorded HANA job showed ``Backup``, no ``workloadType`` and an empty task list while it
    ran (wl_hana_job_backup_inprogress.json); the SQL one, served here for both, did not.
    """
    bag = {_DATA_TRANSFERRED: _TRANSFERRED_MB} if record.status == res.COMPLETED else {}
    task = {"taskId": _TRANSFER_TASK, "status": record.status}
    return (
        {"jobType": record.kind.job_type, "actionsInfo": [_CANCELLABLE]}
        | {"workloadType": record.kind.workload_type}
        | {"duration": job_duration(record, now, form)}
        | {"extendedInfo": {"tasksList": [task], "propertyBag": bag}}
        | {"isUserTriggered": record.is_user_triggered}
        | job_tail(record, _recorded_entity(record.target))
    )


def _failed_database_job(record: JobRecord, now: datetime, form: str) -> JsonObject:
    """A failed database job: the keys of the docs example (no ``isUserTriggered``)."""
    task = {"taskId": _TRANSFER_TASK, "status": res.FAILED}
    return {
        "jobType": record.kind.job_type,
        "workloadType": record.kind.workload_type,
        "duration": job_duration(record, now, form),
        "actionsInfo": [_CANCELLABLE],
        "errorDetails": [_workload_error(error) for error in record.errors],
        "extendedInfo": {"tasksList": [task], "propertyBag": {_DATA_TRANSFERRED: "0"}},
    } | job_tail(record, _failed_entity(record.target))


def _database_protection_job(record: JobRecord, now: datetime, form: str) -> JsonObject:
    """A ConfigureBackup or DisableBackup job: the keys of the recorded DisableBackup job (the
    database's name alone as ``entityFriendlyName``)."""
    return {
        "jobType": record.kind.job_type,
        "workloadType": record.kind.workload_type,
        "duration": job_duration(record, now, form),
        "extendedInfo": {"tasksList": [], "propertyBag": {}},
        "isUserTriggered": record.is_user_triggered,
    } | job_tail(record, record.target.friendly_name)


def _storage_job(record: JobRecord, now: datetime, form: str) -> JsonObject:
    """An ``AzureStorageJob``: the keys of the recorded ConfigureBackup/DisableBackup jobs.

    A backup job gets the same keys and the DisableBackup job's property bag (no backup job of a
    share was recorded: unverified). A failed one has ``errorDetails`` after ``duration``, in the
    spec's order, each without ``errorTitle`` (``AzureStorageErrorInfo``).
    """
    properties: JsonObject = {
        "jobType": record.kind.job_type,
        "duration": job_duration(record, now, form),
    }
    if record.errors:
        properties["errorDetails"] = [_storage_error(error) for error in record.errors]
    return (
        properties
        | {
            "storageAccountName": record.target.host_name,
            "storageAccountVersion": _STORAGE_ACCOUNT_VERSION,
            "extendedInfo": {"tasksList": [], "propertyBag": _storage_bag(record)},
            # The recorded ConfigureBackup and DisableBackup jobs say false although the CLI
            # started them; a backup job says whether it was on demand (unverified).
            "isUserTriggered": record.is_user_triggered and is_backup(record.operation),
        }
        | job_tail(record, record.target.friendly_name)
    )


def _storage_bag(record: JobRecord) -> JsonObject:
    bag = {
        "File Share Name": record.target.friendly_name,
        "Storage Account Name": record.target.host_name,
    }
    if record.operation == res.CONFIGURE_BACKUP:
        bag["Policy Name"] = record.policy_name
    return bag


def _recorded_entity(target: Target) -> str:
    """``msdb [sql-clitestvm-d]``: database and server, as the recorded backup jobs show them."""
    return f"{target.friendly_name} [{target.server_name}]"


def _failed_entity(target: Target) -> str:
    """``MSSQLSERVER/msDB [sqlserver-0.contoso.com]`` for SQL, as the docs example shows a failed
    job; HANA as the recorded jobs (``db [host]``), the only HANA form seen."""
    if target.kind is SQL:
        return f"{target.parent_name}/{target.friendly_name} [{target.server_name}]"
    return _recorded_entity(target)


def _workload_error(error: JobError) -> JsonObject:
    """An ``AzureWorkloadErrorInfo`` in the docs example's key order."""
    return {
        "errorCode": error.code,
        "errorString": error.message,
        "errorTitle": error.title,
        "recommendations": list(error.recommendations),
    }


def _storage_error(error: JobError) -> JsonObject:
    """An ``AzureStorageErrorInfo``: the spec has no ``errorTitle``."""
    return {
        "errorCode": error.code,
        "errorString": error.message,
        "recommendations": list(error.recommendations),
    }


# -- containers -------------------------------------------------------------------------------


def container(record: ContainerRecord, item_count: int) -> JsonObject:
    """A protection container, as ``GET …/protectionContainers/{container}`` returns it.

    :param item_count: the container's protected items (``protectedItemCount`` of a storage
        container).
    """
    if record.kind is FILES:
        return _storage_container(record, item_count)
    return _workload_container(record)


def _workload_container(record: ContainerRecord) -> JsonObject:
    """The spec example's container with this VM's names; its ``inquiryInfo`` (a SQL inquiry of
    14 items) and ``workloadType`` null are served as published, also for a HANA VM
    (unverified)."""
    body = payloads.load(_WORKLOAD_CONTAINER)["responses"]["200"]["body"]
    path = res.container_path(record.vault_id, record.name)
    body |= {"name": record.name, "id": "/Subscriptions" + path[len("/subscriptions") :]}
    properties = body["properties"]
    properties["extendedInfo"]["hostServerName"] = record.host_name.lower()
    properties |= {"friendlyName": record.host_name, "sourceResourceId": record.host_id}
    return body


def _storage_container(record: ContainerRecord, item_count: int) -> JsonObject:
    """The recorded registered storage container with this account's names."""
    body = payloads.load(_STORAGE_CONTAINER)
    body |= {"id": res.container_path(record.vault_id, record.name), "name": record.name}
    body["properties"] |= {
        "sourceResourceId": record.host_id,
        "protectedItemCount": item_count,
        "friendlyName": record.host_name,
    }
    return body
