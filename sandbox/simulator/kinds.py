"""The kinds of protected item the simulator serves: Azure VMs, SQL and SAP HANA databases in
Azure VMs, and Azure file shares.

A :class:`Kind` holds what the Backup API says about a kind everywhere it appears (protected item
type, backup management type, workload type, job type, the on-demand request's ``objectType``,
the on-demand daily limit), so that the routes and the renderers share one machinery. Values are
from the spec definitions (``bms.json`` 2026-10-01, quoted in ``workloads.md``) and the payloads
in ``azure_payloads/``.
"""

from __future__ import annotations

from dataclasses import dataclass

# BackupType (spec): the values an AzureWorkloadBackupRequest may name, "Invalid" excepted.
WORKLOAD_BACKUP_TYPES = frozenset(
    {
        "Full",
        "Differential",
        "Log",
        "CopyOnlyFull",
        "Incremental",
        "SnapshotFull",
        "SnapshotCopyOnlyFull",
    }
)
BACKUP = "Backup"


@dataclass(frozen=True)
class Kind:
    """One kind of protected item.

    :ivar name: short name (``vm``, ``sql``, ``hana``, ``files``).
    :ivar protected_item_type: the ``protectedItemType`` discriminator.
    :ivar backup_management_type: ``backupManagementType`` of its items and jobs.
    :ivar workload_type: ``workloadType`` (also the ``itemType`` of item list filters).
    :ivar job_type: the ``jobType`` discriminator of its jobs.
    :ivar request_type: the ``objectType`` of its on-demand backup request.
    :ivar daily_limit: on-demand backups accepted per item per UTC day.
    :ivar refused_backup_types: ``backupType`` values refused for an on-demand backup.
    :ivar source_required_on_stop: whether a protection PUT must name ``sourceResourceId``.
    """

    name: str
    protected_item_type: str
    backup_management_type: str
    workload_type: str
    job_type: str
    request_type: str
    daily_limit: int
    refused_backup_types: frozenset[str] = frozenset()
    source_required_on_stop: bool = False

    @property
    def takes_backup_type(self) -> bool:
        """Whether its on-demand request names a ``backupType`` (SQL and HANA)."""
        return self.request_type == WORKLOAD_REQUEST

    def backup_operation(self, backup_type: str | None) -> str:
        """The ``operation`` of its backup jobs: ``Backup``, or ``Backup (Full)`` for a workload
        (``Backup (Full)`` in [SQL-MGMT-REST] and the recorded CLI traffic)."""
        return f"{BACKUP} ({backup_type})" if self.takes_backup_type and backup_type else BACKUP


WORKLOAD_REQUEST = "AzureWorkloadBackupRequest"
# "The documented hard limit of on-demand backup attempts per item per UTC day": nine for VMs
# (state.ON_DEMAND_DAILY_LIMIT), SQL [SQL-MATRIX] and HANA [HANA-MATRIX]; ten for Azure Files
# ("Maximum number of on-demand backups per day: 10" [AFS-MATRIX]).
WORKLOAD_DAILY_LIMIT = 9
FILE_SHARE_DAILY_LIMIT = 10

VM = Kind(
    name="vm",
    protected_item_type="Microsoft.Compute/virtualMachines",
    backup_management_type="AzureIaasVM",
    workload_type="VM",
    job_type="AzureIaaSVMJob",
    request_type="IaasVMBackupRequest",
    daily_limit=9,
    source_required_on_stop=True,
)
SQL = Kind(
    name="sql",
    protected_item_type="AzureVmWorkloadSQLDatabase",
    backup_management_type="AzureWorkload",
    workload_type="SQLDataBase",
    job_type="AzureWorkloadJob",
    request_type=WORKLOAD_REQUEST,
    daily_limit=WORKLOAD_DAILY_LIMIT,
)
# The CLI refuses these ad hoc backup types for HANA items before calling Azure [CLI-WL]; what
# the service itself answers is unverified.
HANA = Kind(
    name="hana",
    protected_item_type="AzureVmWorkloadSAPHanaDatabase",
    backup_management_type="AzureWorkload",
    workload_type="SAPHanaDatabase",
    job_type="AzureWorkloadJob",
    request_type=WORKLOAD_REQUEST,
    daily_limit=WORKLOAD_DAILY_LIMIT,
    refused_backup_types=frozenset({"Log", "CopyOnlyFull", "Incremental"}),
)
FILES = Kind(
    name="files",
    protected_item_type="AzureFileShareProtectedItem",
    backup_management_type="AzureStorage",
    workload_type="AzureFileShare",
    job_type="AzureStorageJob",
    request_type="AzureFileShareBackupRequest",
    daily_limit=FILE_SHARE_DAILY_LIMIT,
)
WORKLOADS = (SQL, HANA)


def operation_base(operation: str) -> str:
    """``Backup`` for ``Backup (Log)``: the operation without the backup type in parentheses."""
    return operation.split(" (", 1)[0]


def is_backup(operation: str) -> bool:
    """Whether ``operation`` is a backup, of whatever backup type."""
    return operation_base(operation) == BACKUP
