"""The simulated Azure: vaults, VMs, storage accounts, protected items (VMs, SQL and SAP HANA
databases, file shares), jobs and long-running operations.

Seed helpers (``add_*``, ``protect_vm``, ``complete_job`` ...) raise ``KeyError``/``ValueError``
and return documents in the current shapes; the lookups the routes use return records
(:mod:`sandbox.simulator.records`) and raise :class:`~sandbox.simulator.protocol.ArmError` with
Azure's codes. Seed helpers take :attr:`SimState.lock` themselves; callers of the lookups hold it.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.simulator import resources as res
from sandbox.simulator import storage
from sandbox.simulator.azure_forms import DURATION_FORMS, TIMESPAN
from sandbox.simulator.filters import ItemPredicate, JobPredicate
from sandbox.simulator.kinds import VM, is_backup
from sandbox.simulator.protocol import ArmError, BackupError, JsonObject
from sandbox.simulator.records import (
    BackupRun,
    ContainerRecord,
    ItemRecord,
    JobError,
    JobRecord,
    Operation,
    Target,
    VaultRecord,
)
from sandbox.simulator.shapes import (
    HEADER_CASES,
    IDEAL,
    SHAPES,
    Shapes,
    checked,
    default_header_case,
    default_shapes,
    renderer,
)
from sandbox.simulator.storage import AccountRecord, ShareRecord
from sandbox.simulator.targets import (
    hana_target,
    share_target,
    sql_target,
    vm_target,
    vm_target_of,
)

ResourceRef = str | Mapping[str, Any]
Clock = Callable[[], datetime]

# The documented hard limit of on-demand backup attempts per item per UTC day.
ON_DEMAND_DAILY_LIMIT = 9
# Azure Backup's documented code for "limit on number of operations permitted in 24 hours";
# that it is the code for the VM on-demand limit (and its 400 status) is an inference.
QUOTA_EXCEEDED_CODE = "CloudDosAbsoluteLimitReached"
# Its message in the SQL and SAP HANA troubleshooting tables.
QUOTA_EXCEEDED_MESSAGE = (
    "Operation is blocked as you have reached the limit on number of operations permitted in "
    "24 hours."
)
BACKUP_IN_PROGRESS_CODE = "UserErrorBackupOperationInProgress"
ITEM_NOT_FOUND_CODE = "BMSUserErrorDataSourceObjectNotFound"
# The only published numeric/string pair for a deleted VM.
VM_NOT_FOUND_ERROR = JobError(
    400094,
    "The virtual machine doesn't exist",
    (
        "Re-create the virtual machine with the same name and same resource group name, or "
        "stop protecting the virtual machine with or without deleting the backup data.",
    ),
)
# Deliberately not a real Azure code, so nothing mistakes it for one.
SYNTHETIC_FAILURE = JobError(999999, "Simulated backup failure.")
# ARM's subscription write budget per hour; the first recorded write answered 1199
# (x-ms-ratelimit-remaining-subscription-writes in scenario_backup_trigger_response_202.json).
_WRITES_PER_HOUR = 1200


# The failed AzureWorkloadJob of Microsoft's REST article [SQL-MGMT-REST]: the only published
# numeric code of a workload job (its errorTitle is the code name).
WORKLOAD_CONFLICT_CODE = 510008
# Policies of newly protected databases and shares: SQL's default policy in the docs example and
# the recording (HourlyLogBackup); the same for HANA and the VM default for shares (names only).
_WORKLOAD_POLICY = "HourlyLogBackup"
_SHARE_POLICY = "DefaultPolicy"
# A SQL database's recovery model when not given. Only "SIMPLE" is recorded
# (wl_sql_item_protected.json); "FULL" (SQL Server's name for the model that allows log backups)
# is assumed to be written the same way.
DEFAULT_RECOVERY_MODEL = "FULL"
SIMPLE_RECOVERY_MODEL = "SIMPLE"


@dataclass
class _Store:
    vaults: dict[str, VaultRecord] = field(default_factory=dict)
    vms: dict[str, JsonObject] = field(default_factory=dict)
    accounts: dict[str, AccountRecord] = field(default_factory=dict)
    resource_groups: set[str] = field(default_factory=set)
    items: dict[str, ItemRecord] = field(default_factory=dict)
    containers: dict[str, ContainerRecord] = field(default_factory=dict)
    jobs: dict[str, dict[str, JobRecord]] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    # (vault key, job key) of triggered backups whose operation has succeeded.
    settleable: set[tuple[str, str]] = field(default_factory=set)
    triggers: Counter[tuple[str, date]] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    writes: int = 0


class SimState:
    """All simulated resources, and the switches tests may change.

    :ivar clock: returns the current time (aware, UTC); the system clock by default.
    :ivar page_size: list page size before a ``nextLink`` is returned (default 50).
    :ivar lro_retry_after: ``Retry-After`` seconds where a 202 carries one: every 202 in the
        ``ideal`` shapes; in the ``azure`` shapes only a pending operation result (Azure's trigger
        and PUT 202s carry none). Azure's examples say 60; the default 0 makes the SDK fall back
        to its ``polling_interval``.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._restore_defaults()

    def reset(self) -> None:
        """Forget every resource, job, operation and violation, and restore the defaults
        (``shapes`` and ``header_case`` from the environment, see their properties)."""
        with self.lock:
            self._restore_defaults()

    @property
    def auto_complete_backups(self) -> str | None:
        """How triggered backup jobs finish.

        ``"Completed"`` or ``"Failed"`` finishes one at the first job read after its operation
        succeeded; ``None`` (the default) keeps it InProgress until :meth:`complete_job`.
        """
        return self._auto_complete_backups

    @auto_complete_backups.setter
    def auto_complete_backups(self, status: str | None) -> None:
        if status is not None and status not in res.FINAL_JOB_STATUSES:
            raise ValueError(f"not a final job status: {status!r}")
        self._auto_complete_backups = status

    @property
    def shapes(self) -> str:
        """``"azure"`` (Azure's real shapes) or ``"ideal"`` (the original idealised ones).

        Defaults to ``BACKUP_SIM_SHAPES`` if set, else
        :data:`~sandbox.simulator.shapes.DEFAULT_SHAPES`.
        """
        return self._shapes

    @shapes.setter
    def shapes(self, value: str) -> None:
        self._shapes = checked(value, SHAPES, "shapes")

    @property
    def header_case(self) -> str:
        """``"lower"`` (every response header name in lower case) or ``"canonical"``.

        Defaults to ``BACKUP_SIM_HEADER_CASE`` if set, else ``"canonical"``.
        """
        return self._header_case

    @header_case.setter
    def header_case(self, value: str) -> None:
        self._header_case = checked(value, HEADER_CASES, "header_case")

    @property
    def details_duration(self) -> str:
        """Form of durations in job details in the ``azure`` shapes: ``"timespan"`` (default,
        ``00:20:23.0896697`` as in the docs capture) or ``"iso"`` (``PT41M12.684856S`` as in the
        recorded CLI traffic); Azure has served both."""
        return self._details_duration

    @details_duration.setter
    def details_duration(self, value: str) -> None:
        self._details_duration = checked(value, DURATION_FORMS, "details_duration")

    @property
    def renderer(self) -> Shapes:
        """Renders documents in the current shapes."""
        return renderer(self._shapes, self._details_duration)

    @contextlib.contextmanager
    def idealised(self, reason: str) -> Iterator[None]:
        """Serve the ``ideal`` shapes inside the ``with`` block, then the shapes from before.

        Only for a test that cannot work with Azure's real shapes (``sim.shapes = "ideal"``
        does the same for a whole test); ``reason`` must say why, so every use documents it.

        :raises ValueError: if ``reason`` is blank.
        """
        if not reason.strip():
            raise ValueError("say why the test needs the idealised shapes")
        with self.lock:
            previous, self.shapes = self._shapes, IDEAL
        try:
            yield
        finally:
            with self.lock:
                self.shapes = previous

    def _restore_defaults(self) -> None:
        self.clock: Clock = lambda: datetime.now(UTC)
        self.page_size = 50
        self._auto_complete_backups: str | None = None
        self.lro_retry_after = 0
        self.shapes = default_shapes()
        self.header_case = default_header_case()
        self.details_duration = TIMESPAN
        self._store = _Store()

    @property
    def violations(self) -> list[str]:
        """Requests a real deployment must never make (a copy)."""
        with self.lock:
            return list(self._store.violations)

    def record_violation(self, text: str) -> None:
        """Remember a forbidden request."""
        with self.lock:
            self._store.violations.append(text)

    # -- seed helpers -----------------------------------------------------------------------

    def add_vault(
        self,
        subscription_id: str,
        resource_group: str,
        name: str,
        location: str = "eastus",
        *,
        type_spelling: str = res.VAULT_TYPE,
        id_type_spelling: str = res.VAULT_TYPE,
    ) -> JsonObject:
        """Create a Recovery Services vault.

        :param type_spelling: its ``type`` in the ``azure`` shapes (Azure's vault lists also
            show ``microsoft.recoveryservices/vaults`` and ``Microsoft.RecoveryServices/Vaults``).
        :param id_type_spelling: the provider and type segments of its ``id`` in the ``azure``
            shapes (for example ``Microsoft.RecoveryServices/Vaults``). Lookups ignore case.
        :return: the vault resource in the current shapes.
        :raises ValueError: if it exists already.
        """
        with self.lock:
            vault = VaultRecord(
                subscription_id,
                resource_group,
                name,
                location,
                created=self.clock(),
                type_spelling=type_spelling,
                id_type_spelling=id_type_spelling,
            )
            if vault.key in self._store.vaults:
                raise ValueError(f"vault exists already: {vault.id}")
            self._store.vaults[vault.key] = vault
            self._store.jobs[vault.key] = {}
            self._store.resource_groups.add(_rg_key(subscription_id, resource_group))
            return self.renderer.vault(vault)

    def guard_vault(self, vault: ResourceRef, guard_id: str, *, protects_stop: bool = True) -> None:
        """Map a Resource Guard to a vault (Multi-User Authorization); with ``protects_stop``
        it protects "stop protection with retain data" (see :mod:`sandbox.simulator.guards`).

        :raises KeyError: if the vault does not exist.
        """
        from sandbox.simulator.guards import GuardRecord

        with self.lock:
            self._vault(vault).guard = GuardRecord(guard_id, protects_stop, self.clock())

    def add_vm(
        self,
        subscription_id: str,
        resource_group: str,
        name: str,
        location: str = "eastus",
        vm_guid: str | None = None,
    ) -> JsonObject:
        """Create a virtual machine with a fresh (or the given) ``properties.vmId``.

        :return: a copy of the VM resource.
        :raises ValueError: if it exists already.
        """
        guid = vm_guid or str(uuid.uuid4())
        vm = res.vm_json(subscription_id, resource_group, name, location, guid)
        with self.lock:
            if _key(vm["id"]) in self._store.vms:
                raise ValueError(f"VM exists already: {vm['id']}")
            self._store.vms[_key(vm["id"])] = vm
            self._store.resource_groups.add(_rg_key(subscription_id, resource_group))
            return copy.deepcopy(vm)

    def delete_vm(self, vm: ResourceRef) -> None:
        """Delete a VM; its resource group stays.

        :param vm: the VM resource or its ARM id.
        :raises KeyError: if there is no such VM.
        """
        with self.lock:
            self._store.vms.pop(self._vm_key(vm))

    def move_vm(self, vm: ResourceRef, new_resource_group: str) -> JsonObject:
        """Move a VM to another resource group of its subscription; ``vmId`` is kept.

        :return: a copy of the moved VM resource.
        :raises KeyError: if there is no such VM.
        """
        with self.lock:
            old = self._store.vms.pop(self._vm_key(vm))
            subscription, _, name = res.split_vm_id(old["id"])
            moved = res.vm_json(
                subscription, new_resource_group, name, old["location"], old["properties"]["vmId"]
            )
            self._store.vms[_key(moved["id"])] = moved
            self._store.resource_groups.add(_rg_key(subscription, new_resource_group))
            return copy.deepcopy(moved)

    def protect_vm(
        self,
        vault: ResourceRef,
        vm: ResourceRef,
        policy_name: str = "DefaultPolicy",
        *,
        initial_backup_pending: bool = False,
    ) -> JsonObject:
        """Protect an existing VM in a vault.

        The item starts ``Protected`` with a successful last backup a day ago or, with
        ``initial_backup_pending``, as Azure shows a VM just protected: ``IRPending``, no last
        backup (``lastBackupStatus`` ``""``, ``lastBackupTime`` ``2001-01-01T00:00:00Z``) until
        its first backup completes.

        :return: the protected item in the current shapes.
        :raises KeyError: if the vault or VM does not exist.
        :raises ValueError: if the VM is protected in that vault already.
        """
        with self.lock:
            vm_id = self._store.vms[self._vm_key(vm)]["id"]
            item = self._protect(vault, vm_target(vm_id), policy_name, initial_backup_pending)
            return self.renderer.item(item)

    def add_job(
        self,
        vault: ResourceRef,
        *,
        vm_name: str,
        vm_resource_group: str,
        status: str = res.FAILED,
        operation: str = res.BACKUP,
        error_code: int = VM_NOT_FOUND_ERROR.code,
        error_string: str = VM_NOT_FOUND_ERROR.message,
        recommendations: Sequence[str] | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        job_id: str | None = None,
        is_user_triggered: bool = False,
        container_in_details: bool = False,
    ) -> JsonObject:
        """Record a backup job as Azure would show it.

        Error details are kept only for ``Failed`` jobs. A final job without ``end_time`` ends
        three minutes after it started; ``start_time`` defaults to an hour ago (naive times are
        UTC). A final Backup job of a protected VM becomes that item's last backup.

        :param container_in_details: in the ``azure`` shapes, show ``containerName`` in the job's
            details and list entries, as some of Azure's answers do (the recorded CLI traffic);
            by default it is absent, as in Azure's published examples. The ``ideal`` shapes always
            show it. Either way the simulator knows which VM the job is about.
        :return: the job in the current shapes, as the job details GET returns it.
        :raises KeyError: if the vault does not exist.
        :raises ValueError: on an unknown status or a job name that is taken.
        """
        _check_job_status(status)
        if recommendations is None:
            recommendations = VM_NOT_FOUND_ERROR.recommendations
        error = JobError(error_code, error_string, tuple(recommendations))
        with self.lock:
            now = self.clock()
            start, end = _job_times(status, start_time, end_time, now)
            record = self._vault(vault)
            job = JobRecord(
                vault_id=record.id,
                name=job_id or str(uuid.uuid4()),
                target=vm_target_of(record.subscription_id, vm_resource_group, vm_name),
                operation=operation,
                start=start,
                is_user_triggered=is_user_triggered,
                activity_id=str(uuid.uuid4()),
                updated=now,
                container_in_details=container_in_details,
            )
            return self._record_job(job, status, end, error)

    def complete_job(
        self,
        vault: ResourceRef,
        job_id: str,
        status: str = res.COMPLETED,
        error_code: int | None = None,
        error_string: str | None = None,
        *,
        recommendations: Sequence[str] = (),
        error_title: str = "",
    ) -> JsonObject:
        """Finish an InProgress job now; a Backup job also updates its item's last backup.

        :param status: a final status such as ``Completed`` or ``Failed``.
        :param error_code: ``errorCode`` of a failure (defaults to a synthetic 999999).
        :param error_string: ``errorString`` of a failure.
        :param error_title: ``errorTitle`` of a workload job's failure (the code's name).
        :return: the job in the current shapes.
        :raises KeyError: if the vault or job does not exist.
        :raises ValueError: if the status is not final or the job is not InProgress.
        """
        if status not in res.FINAL_JOB_STATUSES:
            raise ValueError(f"not a final job status: {status!r}")
        error = JobError(
            SYNTHETIC_FAILURE.code if error_code is None else error_code,
            error_string or SYNTHETIC_FAILURE.message,
            tuple(recommendations),
            error_title,
        )
        with self.lock:
            job = self._job(vault, job_id)
            if job.status != res.IN_PROGRESS:
                raise ValueError(f"job {job_id} is {job.status}, not InProgress")
            self._finish(job, status, error)
            return self.renderer.job(job, self.clock())

    def get_job(self, vault: ResourceRef, job_id: str) -> JsonObject:
        """A job as the job details GET returns it in the current shapes.

        :raises KeyError: if the vault or job does not exist.
        """
        with self.lock:
            return self.renderer.job(self._job(vault, job_id), self.clock())

    def get_protected_item(
        self, vault: ResourceRef, vm_name: str, vm_resource_group: str
    ) -> JsonObject:
        """The protected item of a VM in the current shapes.

        :raises KeyError: if the vault or item does not exist.
        """
        with self.lock:
            record = self._vault(vault)
            target = vm_target_of(record.subscription_id, vm_resource_group, vm_name)
            return self.renderer.item(self._store.items[_key(target.item_id(record.id))])

    # -- SQL and SAP HANA databases in Azure VMs, Azure file shares --------------------------

    def protect_sql_database(
        self,
        vault: ResourceRef,
        vm: ResourceRef,
        *,
        database: str,
        instance: str = "MSSQLSERVER",
        server_name: str | None = None,
        policy_name: str = _WORKLOAD_POLICY,
        recovery_model: str = DEFAULT_RECOVERY_MODEL,
        initial_backup_pending: bool = False,
    ) -> JsonObject:
        """Protect a SQL Server database of an existing VM: item ``SQLDataBase;{instance};{db}``
        (lower case) in the VM's container ``VMAppContainer;Compute;{vm-rg};{vm}``.

        The item starts ``Protected`` with a completed backup a day ago or, with
        ``initial_backup_pending``, as Microsoft's enable-protection example shows it
        (``IRPending``).

        :param server_name: its ``serverName``; the VM name when ``None``.
        :param recovery_model: ``extendedInfo.recoveryModel``; on-demand ``Log`` backups of a
            ``"SIMPLE"`` database are refused.
        :return: the protected item in the current shapes.
        :raises KeyError: if the vault or VM does not exist.
        :raises ValueError: if the database is protected in that vault already.
        """
        with self.lock:
            vm_id = self._store.vms[self._vm_key(vm)]["id"]
            target = sql_target(vm_id, database, instance, server_name, recovery_model)
            return self._protected(vault, target, policy_name, initial_backup_pending)

    def protect_hana_database(
        self,
        vault: ResourceRef,
        vm: ResourceRef,
        *,
        database: str,
        sid: str,
        policy_name: str = _WORKLOAD_POLICY,
        initial_backup_pending: bool = False,
    ) -> JsonObject:
        """Protect an SAP HANA database of system ``sid`` in an existing VM: item
        ``SAPHanaDatabase;{sid};{db}`` (lower case) in ``VMAppContainer;Compute;{vm-rg};{vm}``;
        states as :meth:`protect_sql_database`.

        :return: the protected item in the current shapes.
        :raises KeyError: if the vault or VM does not exist.
        :raises ValueError: if the database is protected in that vault already.
        """
        with self.lock:
            vm_id = self._store.vms[self._vm_key(vm)]["id"]
            target = hana_target(vm_id, database, sid)
            return self._protected(vault, target, policy_name, initial_backup_pending)

    def add_storage_account(
        self, subscription_id: str, resource_group: str, name: str, location: str = "eastus"
    ) -> JsonObject:
        """Create a storage account (no shares yet).

        :return: the account as its GET returns it.
        :raises ValueError: if it exists already.
        """
        account = AccountRecord(subscription_id, resource_group, name, location, self.clock())
        with self.lock:
            if account.key in self._store.accounts:
                raise ValueError(f"storage account exists already: {account.id}")
            self._store.accounts[account.key] = account
            self._store.resource_groups.add(_rg_key(subscription_id, resource_group))
            return storage.account_json(account)

    def add_file_share(self, account: ResourceRef, share: str) -> JsonObject:
        """Create a file share in a storage account.

        :param account: the account (as :meth:`add_storage_account` returns it) or its ARM id.
        :return: the share as its GET returns it.
        :raises KeyError: if the account does not exist.
        :raises ValueError: if the share exists already.
        """
        with self.lock:
            record = self._account(account)
            if share.lower() in record.shares:
                raise ValueError(f"share exists already: {share}")
            created = ShareRecord(share, self.clock())
            record.shares[share.lower()] = created
            return storage.share_json(record, created, self.clock())

    def protect_file_share(
        self,
        vault: ResourceRef,
        account: ResourceRef,
        share: str,
        *,
        policy_name: str = _SHARE_POLICY,
        initial_backup_pending: bool = False,
    ) -> JsonObject:
        """Protect an existing file share: item ``AzureFileShare;{share}`` in the account's
        container ``StorageContainer;Storage;{account-rg};{account}``; states as
        :meth:`protect_sql_database`.

        :return: the protected item in the current shapes.
        :raises KeyError: if the vault, account or share does not exist.
        :raises ValueError: if the share is protected in that vault already.
        """
        with self.lock:
            record = self._account(account)
            record.share(share)
            target = share_target(record.id, share)
            return self._protected(vault, target, policy_name, initial_backup_pending)

    def delete_storage_account(self, account: ResourceRef) -> None:
        """Delete a storage account and its shares (its GET answers 404 from then on).

        :raises KeyError: if there is no such account.
        """
        with self.lock:
            self._store.accounts.pop(self._account(account).key)

    def delete_file_share(self, account: ResourceRef, share: str, soft: bool = True) -> None:
        """Delete a file share: ``soft`` keeps it listed with ``$expand=deleted`` (``deleted``,
        ``deletedTime``, ``remainingRetentionDays``) for
        :data:`~sandbox.simulator.storage.SHARE_RETENTION_DAYS`; otherwise it is gone for good
        (also from that list, when it was soft-deleted before). Its GET answers 404 either way.

        :raises KeyError: if the account or share does not exist.
        """
        with self.lock:
            self._account(account).delete_share(share, self.clock(), soft)

    def add_workload_job(
        self,
        vault: ResourceRef,
        item: ResourceRef,
        *,
        status: str = res.FAILED,
        operation: str | None = None,
        error_code: int = WORKLOAD_CONFLICT_CODE,
        error_title: str = "",
        error_string: str = "",
        recommendations: Sequence[str] = (),
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        job_id: str | None = None,
        is_user_triggered: bool = False,
    ) -> JsonObject:
        """Record a job of a protected database or file share as Azure would show it: an
        ``AzureWorkloadJob`` (SQL, HANA) or an ``AzureStorageJob`` (Files, without
        ``errorTitle``). Times as :meth:`add_job`; a final backup job becomes the item's last
        backup. The simulator links the job to the item; the served JSON does not.

        :param item: the protected item (as a ``protect_*`` helper returns it), its ARM id, or
            its name (e.g. ``SQLDataBase;mssqlserver;db``) when that is unique in the vault.
        :param operation: defaults to ``Backup (Full)`` for a database, ``Backup`` for a share.
        :param error_code: the integer ``errorCode`` (default 510008, the published example's).
        :param error_title: ``errorTitle`` (the code name in the published example).
        :return: the job in the current shapes, as the job details GET returns it.
        :raises KeyError: if the vault or item does not exist.
        :raises ValueError: on an unknown status, a taken job name or an ambiguous item name.
        """
        _check_job_status(status)
        error = JobError(error_code, error_string, tuple(recommendations), error_title)
        with self.lock:
            now = self.clock()
            start, end = _job_times(status, start_time, end_time, now)
            record = self._workload_item(vault, item)
            job = JobRecord(
                vault_id=record.vault_id,
                name=job_id or str(uuid.uuid4()),
                target=record.target,
                operation=operation or record.kind.backup_operation("Full"),
                start=start,
                is_user_triggered=is_user_triggered,
                activity_id=str(uuid.uuid4()),
                updated=now,
            )
            return self._record_job(job, status, end, error)

    def get_workload_item(self, vault: ResourceRef, item_name: ResourceRef) -> JsonObject:
        """A protected database or file share in the current shapes.

        :param item_name: its name (unique in the vault), its ARM id, or the item itself.
        :raises KeyError: if the vault or item does not exist.
        :raises ValueError: if the name is ambiguous.
        """
        with self.lock:
            return self.renderer.item(self._workload_item(vault, item_name))

    # -- lookups for the routes (ArmError on failure) --------------------------------------

    def find_vault(self, subscription_id: str, resource_group: str, name: str) -> VaultRecord:
        """The vault, or ARM's 404 ``ResourceNotFound``."""
        vault = self._store.vaults.get(_key(res.vault_id(subscription_id, resource_group, name)))
        if vault is None:
            raise _not_found(res.VAULT_TYPE, name, resource_group)
        return vault

    def list_vaults(self, subscription_id: str, resource_group: str | None) -> list[VaultRecord]:
        """Vaults of a subscription, or of one of its resource groups."""
        prefix = self._scope(subscription_id, resource_group)
        return [vault for key, vault in self._store.vaults.items() if key.startswith(prefix)]

    def find_vm(self, subscription_id: str, resource_group: str, name: str) -> JsonObject:
        """The VM document, or a 404 (``ResourceGroupNotFound`` for an unknown group)."""
        vm = self._store.vms.get(_key(res.vm_id(subscription_id, resource_group, name)))
        if vm is not None:
            return vm
        self._require_resource_group(subscription_id, resource_group)
        raise _not_found("Microsoft.Compute/virtualMachines", name, resource_group)

    def list_vms(self, subscription_id: str, resource_group: str | None) -> list[JsonObject]:
        """VMs of a subscription, or of one of its resource groups."""
        prefix = self._scope(subscription_id, resource_group)
        return [vm for key, vm in self._store.vms.items() if key.startswith(prefix)]

    def find_jobs(self, vault: VaultRecord, predicate: JobPredicate) -> list[JobRecord]:
        """A vault's jobs matching ``predicate``, newest start first."""
        found = [job for job in self._store.jobs[self._settle(vault)].values() if predicate(job)]
        return sorted(found, key=lambda job: job.start, reverse=True)

    def find_job(self, vault: VaultRecord, name: str) -> JobRecord:
        """One job, or a 404."""
        job = self._store.jobs[self._settle(vault)].get(name.lower())
        if job is None:
            # Unverified: the code Azure Backup uses for an unknown job name.
            raise BackupError(404, "ResourceNotFound", f"The backup job '{name}' was not found.")
        return job

    def find_items(self, vault: VaultRecord, predicate: ItemPredicate) -> list[ItemRecord]:
        """A vault's protected items matching ``predicate``."""
        prefix = vault.key + "/"
        return [
            item
            for key, item in self._store.items.items()
            if key.startswith(prefix) and predicate(item)
        ]

    def find_item(self, vault: VaultRecord, fabric: str, container: str, name: str) -> ItemRecord:
        """A protected item by its path names (any case), or a 404."""
        path = f"{vault.id}/backupFabrics/{fabric}/protectionContainers/{container}"
        item = self._store.items.get(_key(f"{path}/protectedItems/{name}"))
        if item is None:
            raise BackupError(
                404,
                ITEM_NOT_FOUND_CODE,
                "Item not found. Selected item might have been deleted. "
                "Please check if item is registered to the vault.",
            )
        return item

    def find_container(self, vault: VaultRecord, fabric: str, name: str) -> ContainerRecord:
        """A registered database or file share container by name (any case), or a 404.

        IaaS VM containers are not served (no payload shows one).
        """
        found = self._store.containers.get(res.container_path(vault.id, name).lower())
        if found is None or fabric.lower() != res.FABRIC.lower():
            # Unverified: the code Azure Backup uses for an unknown container.
            raise BackupError(404, "ResourceNotFound", f"The container '{name}' was not found.")
        return found

    def count_items(self, container: ContainerRecord) -> int:
        """How many protected items the vault holds in ``container``."""
        prefix = f"{container.key}/protecteditems/"
        return sum(1 for key in self._store.items if key.startswith(prefix))

    def find_storage_account(
        self, subscription_id: str, resource_group: str, name: str
    ) -> AccountRecord:
        """A storage account, or ARM's 404 (``ResourceGroupNotFound`` for an unknown group)."""
        account_id = res.storage_account_id(subscription_id, resource_group, name)
        account = self._store.accounts.get(_key(account_id))
        if account is None:
            self._require_resource_group(subscription_id, resource_group)
            raise storage.account_not_found(name, resource_group)
        return account

    def find_share(self, account: AccountRecord, name: str) -> ShareRecord:
        """A live share of ``account``, or a 404 (a soft-deleted share is not found either)."""
        share = account.shares.get(name.lower())
        if share is None:
            raise storage.share_not_found()
        return share

    def list_shares(self, account: AccountRecord, include_deleted: bool) -> list[ShareRecord]:
        """The live shares of ``account`` by name, and its restorable soft-deleted ones too when
        ``include_deleted`` (``$expand=deleted``)."""
        shares = list(account.shares.values())
        if include_deleted:
            shares += account.restorable(self.clock())
        return sorted(shares, key=lambda share: (share.name.lower(), share.deleted is None))

    def start_protection_change(
        self, item: ItemRecord, protection_state: str, policy_id: str
    ) -> str:
        """Apply a protection change at once and start its operation.

        Stopping protection keeps the data and clears the policy; ``Protected`` resumes with
        ``policy_id``. A completed ``DisableBackup``/``ConfigureBackup`` job records it.

        :return: the operation id.
        """
        item.protection_state = protection_state
        item.policy_id = policy_id if protection_state == res.PROTECTED else ""
        operation = (
            res.CONFIGURE_BACKUP if protection_state == res.PROTECTED else res.DISABLE_BACKUP
        )
        return self._start_operation(item, operation).op_id

    def start_backup(
        self, item: ItemRecord, expiry: datetime | None = None, backup_type: str | None = None
    ) -> str:
        """Start an on-demand backup: a new InProgress, user-triggered backup job (``Backup``, or
        ``Backup (Full)`` etc. for a database).

        :param expiry: the request's ``recoveryPointExpiryTimeInUTC``, if any.
        :param backup_type: a database request's ``backupType``.
        :return: the operation id.
        :raises ArmError: 400 when the kind's daily limit is reached or a job of the item is
            running (assumed for databases and shares as for VMs).
        """
        quota_key = (item.key, self.clock().astimezone(UTC).date())
        if self._store.triggers[quota_key] >= item.kind.daily_limit:
            raise quota_exceeded()
        jobs = self._store.jobs[_key(item.vault_id)].values()
        if any(job.status == res.IN_PROGRESS and job.item_key == item.key for job in jobs):
            raise BackupError(
                400,
                BACKUP_IN_PROGRESS_CODE,
                "Unable to initiate backup as another backup operation is currently in progress.",
            )
        self._store.triggers[quota_key] += 1
        operation = item.kind.backup_operation(backup_type)
        return self._start_operation(item, operation, expiry=expiry).op_id

    def find_operation(self, op_id: str, vault: VaultRecord, item: ItemRecord | None) -> Operation:
        """An operation of a vault (and of ``item`` when given), or a 404."""
        found = self._store.operations.get(op_id.lower())
        if (
            found is None
            or found.vault_key != vault.key
            or (item is not None and found.item_key != item.key)
        ):
            raise BackupError(404, "ResourceNotFound", f"The operation '{op_id}' was not found.")
        return found

    def poll(self, operation: Operation) -> None:
        """Count one status/result read; the first leaves it InProgress, later ones finish it."""
        operation.polls += 1
        if operation.polls > 1 and operation.ended is None:
            operation.ended = self.clock()
            if operation.is_backup:
                self._store.settleable.add((operation.vault_key, operation.job_name.lower()))

    def count_write(self) -> int:
        """Count one accepted write; return how many ARM would still allow this hour."""
        self._store.writes += 1
        return max(_WRITES_PER_HOUR - self._store.writes, 0)

    # -- internals ---------------------------------------------------------------------------

    def _vault(self, vault: ResourceRef) -> VaultRecord:
        arm_id = vault if isinstance(vault, str) else vault["id"]
        return self._store.vaults[_key(arm_id)]

    def _vm_key(self, vm: ResourceRef) -> str:
        return _key(vm if isinstance(vm, str) else vm["id"])

    def _job(self, vault: ResourceRef, job_id: str) -> JobRecord:
        return self._store.jobs[self._vault(vault).key][job_id.lower()]

    def _account(self, account: ResourceRef) -> AccountRecord:
        return self._store.accounts[_key(account if isinstance(account, str) else account["id"])]

    def _workload_item(self, vault: ResourceRef, ref: ResourceRef) -> ItemRecord:
        """A database or share item by its document, ARM id or (unique) name."""
        record = self._vault(vault)
        text = ref if isinstance(ref, str) else ref["id"]
        if text.startswith("/"):
            found = [self._store.items[_key(text)]]
        else:
            found = [
                item
                for item in self.find_items(record, lambda item: item.kind is not VM)
                if item.target.name.lower() == text.lower()
            ]
        if len(found) > 1:
            raise ValueError(f"{text!r} names {len(found)} items; give the item or its id")
        if not found or found[0].kind is VM or found[0].vault_id != record.id:
            raise KeyError(text)
        return found[0]

    def _protected(
        self, vault: ResourceRef, target: Target, policy_name: str, pending: bool
    ) -> JsonObject:
        """Protect ``target`` in ``vault`` and render the new item (:meth:`_protect`)."""
        return self.renderer.item(self._protect(vault, target, policy_name, pending))

    def _protect(
        self, vault: ResourceRef, target: Target, policy_name: str, pending: bool
    ) -> ItemRecord:
        """A new protected item: ``Protected`` with a completed backup a day ago, or
        ``IRPending`` without any when ``pending``; its container is registered.

        :raises ValueError: if it is protected in that vault already.
        """
        vault_id = self._vault(vault).id
        item = ItemRecord(
            vault_id=vault_id,
            target=target,
            policy_id=f"{vault_id}/backupPolicies/{policy_name}",
            protection_state=res.IR_PENDING if pending else res.PROTECTED,
            data_id=str(uuid.uuid4().int % 10**14),
            last_backup_status="" if pending else res.COMPLETED,
        )
        if not pending:
            day_ago = self.clock() - timedelta(days=1)
            item.note_success(BackupRun(day_ago, day_ago))
        if item.key in self._store.items:
            raise ValueError(f"already protected: {item.id}")
        self._store.items[item.key] = item
        if target.kind is not VM:
            container = ContainerRecord(
                vault_id, target.container, target.kind, target.host_id, target.host_name
            )
            self._store.containers.setdefault(container.key, container)
        return item

    def _record_job(
        self, job: JobRecord, status: str, end: datetime | None, error: JobError
    ) -> JsonObject:
        """Give a seeded job its status, register it and render it; a final backup job becomes
        its item's last backup."""
        now = self.clock()
        job.set_status(status, end=end, now=now, errors=(error,))
        self._register(job)
        if end is not None:
            self._note_backup_outcome(job)
        return self.renderer.job(job, now)

    def _require_resource_group(self, subscription_id: str, resource_group: str) -> None:
        if _rg_key(subscription_id, resource_group) not in self._store.resource_groups:
            raise ArmError(
                404,
                "ResourceGroupNotFound",
                f"Resource group '{resource_group}' could not be found.",
            )

    def _scope(self, subscription_id: str, resource_group: str | None) -> str:
        """The key prefix of a subscription's or resource group's resources."""
        if resource_group is None:
            return f"/subscriptions/{subscription_id}/".lower()
        self._require_resource_group(subscription_id, resource_group)
        return _rg_key(subscription_id, resource_group) + "/"

    def _register(self, job: JobRecord) -> None:
        jobs = self._store.jobs[_key(job.vault_id)]
        if job.name.lower() in jobs:
            raise ValueError(f"job exists already: {job.name}")
        jobs[job.name.lower()] = job

    def _start_operation(
        self, item: ItemRecord, operation: str, expiry: datetime | None = None
    ) -> Operation:
        now = self.clock()
        backup = is_backup(operation)
        job = JobRecord(
            vault_id=item.vault_id,
            name=str(uuid.uuid4()),
            target=item.target,
            operation=operation,
            start=now,
            is_user_triggered=True,
            activity_id=str(uuid.uuid4()),
            updated=now,
            policy_name=item.policy_name,
            expiry=None if expiry is None else _utc(expiry),
        )
        if not backup:
            job.set_status(res.COMPLETED, end=now, now=now, errors=())
        self._register(job)
        op = Operation(
            op_id=str(uuid.uuid4()),
            vault_key=_key(item.vault_id),
            item_key=item.key,
            job_name=job.name,
            is_backup=backup,
            started=now,
        )
        self._store.operations[op.op_id] = op
        return op

    def _settle(self, vault: VaultRecord) -> str:
        """Finish succeeded backups of ``vault`` when auto-completion is on; return its key."""
        outcome = self.auto_complete_backups
        if outcome is None:
            return vault.key
        for owner, job_key in sorted(self._store.settleable):
            job = self._store.jobs[owner][job_key]
            if owner == vault.key and job.status == res.IN_PROGRESS:
                self._finish(job, outcome, SYNTHETIC_FAILURE)
        return vault.key

    def _finish(self, job: JobRecord, status: str, error: JobError) -> None:
        now = self.clock()
        job.set_status(status, end=now, now=now, errors=(error,))
        self._store.settleable.discard((_key(job.vault_id), job.name.lower()))
        self._note_backup_outcome(job)

    def _note_backup_outcome(self, job: JobRecord) -> None:
        """Copy a finished Backup job's outcome to its protected item, if there is one.

        A completed backup ends an item's ``IRPending`` state.
        """
        item = self._store.items.get(job.item_key)
        if not is_backup(job.operation) or item is None or job.end is None:
            return
        item.last_backup_status = job.status
        if job.status == res.COMPLETED:
            item.note_success(BackupRun(job.start, job.end))
            if item.protection_state == res.IR_PENDING:
                item.protection_state = res.PROTECTED


def quota_exceeded() -> BackupError:
    """The refusal of an on-demand backup beyond the item's daily limit."""
    return BackupError(400, QUOTA_EXCEEDED_CODE, QUOTA_EXCEEDED_MESSAGE)


def _key(arm_id: str) -> str:
    return arm_id.lower()


def _check_job_status(status: str) -> None:
    if status != res.IN_PROGRESS and status not in res.FINAL_JOB_STATUSES:
        raise ValueError(f"not a job status: {status!r}")


def _job_times(
    status: str, start_time: datetime | None, end_time: datetime | None, now: datetime
) -> tuple[datetime, datetime | None]:
    """A seeded job's start (an hour ago by default) and end (three minutes after the start by
    default; ``None`` while it runs)."""
    start = _utc(start_time) if start_time else now - timedelta(hours=1)
    if status == res.IN_PROGRESS:
        return start, None
    return start, _utc(end_time) if end_time else start + timedelta(minutes=3)


def _rg_key(subscription_id: str, resource_group: str) -> str:
    return f"/subscriptions/{subscription_id}/resourcegroups/{resource_group}".lower()


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive time is taken as UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _not_found(resource_type: str, name: str, resource_group: str) -> ArmError:
    # ARM's gateway answers this for a resource it does not know, with x-ms-failure-cause
    # "gateway" (recorded error_vault_get_404.json: a vault; the VM 404 is assumed to match, as
    # the message is the same gateway message).
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not "
        "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
        failure_cause="gateway",
    )
