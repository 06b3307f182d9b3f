"""The simulated Azure: vaults, VMs, protected items, jobs and long-running operations.

Seed helpers (``add_*``, ``protect_vm``, ``complete_job`` ...) raise ``KeyError``/``ValueError``;
the lookups the routes use raise :class:`~sandbox.simulator.protocol.ArmError` with Azure's codes.
Seed helpers take :attr:`SimState.lock` themselves; callers of the lookups hold it.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.simulator import resources as res
from sandbox.simulator.filters import Predicate
from sandbox.simulator.protocol import ArmError, JsonObject

ResourceRef = str | Mapping[str, Any]
Clock = Callable[[], datetime]

# The documented hard limit of on-demand backup attempts per item per UTC day.
ON_DEMAND_DAILY_LIMIT = 9
# Azure Backup's documented code for "limit on number of operations permitted in 24 hours";
# that it is the code for the VM on-demand limit (and its 400 status) is an inference.
QUOTA_EXCEEDED_CODE = "CloudDosAbsoluteLimitReached"
BACKUP_IN_PROGRESS_CODE = "UserErrorBackupOperationInProgress"
ITEM_NOT_FOUND_CODE = "BMSUserErrorDataSourceObjectNotFound"
# The only published numeric/string pair for a deleted VM.
VM_NOT_FOUND_ERROR = res.JobError(
    400094,
    "The virtual machine doesn't exist",
    (
        "Re-create the virtual machine with the same name and same resource group name, or "
        "stop protecting the virtual machine with or without deleting the backup data.",
    ),
)
# Deliberately not a real Azure code, so nothing mistakes it for one.
SYNTHETIC_FAILURE = res.JobError(999999, "Simulated backup failure.")


@dataclass
class Operation:
    """An asynchronous Backup operation (on-demand backup or protection change).

    :ivar op_id: the operation id used in the polling URLs.
    :ivar vault_key: lower-cased vault id.
    :ivar item_key: lower-cased protected item id.
    :ivar job_name: the job the operation created.
    :ivar is_backup: ``True`` for an on-demand backup, ``False`` for a protection change.
    :ivar started: creation time.
    :ivar ended: time it succeeded, once it has.
    :ivar polls: how many times its status or result was read.
    """

    op_id: str
    vault_key: str
    item_key: str
    job_name: str
    is_backup: bool
    started: datetime
    ended: datetime | None = None
    polls: int = 0

    def status_json(self) -> JsonObject:
        """The ``OperationStatus`` document for the current state."""
        doc: JsonObject = {
            "id": self.op_id,
            "name": self.op_id,
            "status": res.IN_PROGRESS if self.ended is None else res.SUCCEEDED,
            "startTime": res.format_time(self.started),
        }
        if self.ended is not None:
            doc["endTime"] = res.format_time(self.ended)
            doc["properties"] = {
                "objectType": "OperationStatusJobExtendedInfo",
                "jobId": self.job_name,
            }
        return doc


@dataclass
class _Store:
    vaults: dict[str, JsonObject] = field(default_factory=dict)
    vms: dict[str, JsonObject] = field(default_factory=dict)
    resource_groups: set[str] = field(default_factory=set)
    items: dict[str, JsonObject] = field(default_factory=dict)
    jobs: dict[str, dict[str, JsonObject]] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    # (vault key, job key) of triggered backups whose operation has succeeded.
    settleable: set[tuple[str, str]] = field(default_factory=set)
    triggers: Counter[tuple[str, date]] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)


class SimState:
    """All simulated resources, and the switches tests may change.

    :ivar clock: returns the current time (aware, UTC); the system clock by default.
    :ivar page_size: list page size before a ``nextLink`` is returned (default 50).
    :ivar lro_retry_after: ``Retry-After`` seconds on 202 answers. Azure sends 60; the default 0
        makes the SDK fall back to its ``polling_interval``.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._restore_defaults()

    def reset(self) -> None:
        """Forget every resource, job, operation and violation, and restore the defaults."""
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

    def _restore_defaults(self) -> None:
        self.clock: Clock = lambda: datetime.now(UTC)
        self.page_size = 50
        self._auto_complete_backups: str | None = None
        self.lro_retry_after = 0
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
        self, subscription_id: str, resource_group: str, name: str, location: str = "eastus"
    ) -> JsonObject:
        """Create a Recovery Services vault.

        :return: a copy of the vault resource.
        :raises ValueError: if it exists already.
        """
        vault = res.vault_json(subscription_id, resource_group, name, location)
        with self.lock:
            key = _key(vault["id"])
            if key in self._store.vaults:
                raise ValueError(f"vault exists already: {vault['id']}")
            self._store.vaults[key] = vault
            self._store.jobs[key] = {}
            self._store.resource_groups.add(_rg_key(subscription_id, resource_group))
            return copy.deepcopy(vault)

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
        self, vault: ResourceRef, vm: ResourceRef, policy_name: str = "DefaultPolicy"
    ) -> JsonObject:
        """Protect an existing VM in a vault (``protectionState`` ``Protected``).

        The item starts with a successful last backup a day ago.

        :return: a copy of the protected item.
        :raises KeyError: if the vault or VM does not exist.
        :raises ValueError: if the VM is protected in that vault already.
        """
        with self.lock:
            item = res.item_json(
                self._vault(vault),
                self._store.vms[self._vm_key(vm)],
                policy_name,
                last_backup=self.clock() - timedelta(days=1),
            )
            if _key(item["id"]) in self._store.items:
                raise ValueError(f"already protected: {item['id']}")
            self._store.items[_key(item["id"])] = item
            return copy.deepcopy(item)

    def add_job(
        self,
        vault: ResourceRef,
        *,
        vm_name: str,
        vm_resource_group: str,
        status: str = res.FAILED,
        operation: str = "Backup",
        error_code: int = VM_NOT_FOUND_ERROR.code,
        error_string: str = VM_NOT_FOUND_ERROR.message,
        recommendations: Sequence[str] | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        job_id: str | None = None,
        is_user_triggered: bool = False,
    ) -> JsonObject:
        """Record a backup job as Azure would show it.

        Error details are kept only for ``Failed`` jobs. A final job without ``end_time`` ends
        three minutes after it started; ``start_time`` defaults to an hour ago. A final Backup
        job of a protected VM becomes that item's last backup.

        :return: a copy of the job resource (``AzureIaaSVMJob``).
        :raises KeyError: if the vault does not exist.
        :raises ValueError: on an unknown status or a job name that is taken.
        """
        if status != res.IN_PROGRESS and status not in res.FINAL_JOB_STATUSES:
            raise ValueError(f"not a job status: {status!r}")
        if recommendations is None:
            recommendations = VM_NOT_FOUND_ERROR.recommendations
        error = res.JobError(error_code, error_string, tuple(recommendations))
        with self.lock:
            now = self.clock()
            start = start_time or now - timedelta(hours=1)
            end = None if status == res.IN_PROGRESS else end_time or start + timedelta(minutes=3)
            vault_id = self._vault(vault)["id"]
            job = self._new_job(
                vault_id,
                vm_name=vm_name,
                vm_resource_group=vm_resource_group,
                operation=operation,
                start=start,
                is_user_triggered=is_user_triggered,
                name=job_id,
            )
            res.set_job_status(job, status, start=start, end=end, now=now, errors=[error])
            if end is not None:
                self._note_backup_outcome(_key(vault_id), job)
            return copy.deepcopy(job)

    def complete_job(
        self,
        vault: ResourceRef,
        job_id: str,
        status: str = res.COMPLETED,
        error_code: int | None = None,
        error_string: str | None = None,
        *,
        recommendations: Sequence[str] = (),
    ) -> JsonObject:
        """Finish an InProgress job now; a Backup job also updates its item's last backup.

        :param status: a final status such as ``Completed`` or ``Failed``.
        :param error_code: ``errorCode`` of a failure (defaults to a synthetic 999999).
        :param error_string: ``errorString`` of a failure.
        :return: a copy of the job.
        :raises KeyError: if the vault or job does not exist.
        :raises ValueError: if the status is not final or the job is not InProgress.
        """
        if status not in res.FINAL_JOB_STATUSES:
            raise ValueError(f"not a final job status: {status!r}")
        error = res.JobError(
            SYNTHETIC_FAILURE.code if error_code is None else error_code,
            error_string or SYNTHETIC_FAILURE.message,
            tuple(recommendations),
        )
        with self.lock:
            vault_key = _key(self._vault(vault)["id"])
            job = self._store.jobs[vault_key][job_id.lower()]
            if job["properties"]["status"] != res.IN_PROGRESS:
                raise ValueError(f"job {job_id} is {job['properties']['status']}, not InProgress")
            self._finish(vault_key, job, status, error)
            return copy.deepcopy(job)

    def get_job(self, vault: ResourceRef, job_id: str) -> JsonObject:
        """A copy of a job (with its error details).

        :raises KeyError: if the vault or job does not exist.
        """
        with self.lock:
            return copy.deepcopy(self._store.jobs[_key(self._vault(vault)["id"])][job_id.lower()])

    def get_protected_item(
        self, vault: ResourceRef, vm_name: str, vm_resource_group: str
    ) -> JsonObject:
        """A copy of the protected item of a VM.

        :raises KeyError: if the vault or item does not exist.
        """
        with self.lock:
            path = res.item_path(self._vault(vault)["id"], vm_resource_group, vm_name)
            return copy.deepcopy(self._store.items[_key(path)])

    # -- lookups for the routes (ArmError on failure) --------------------------------------

    def find_vault(self, subscription_id: str, resource_group: str, name: str) -> JsonObject:
        """The vault document, or a 404 ``ResourceNotFound``."""
        vault = self._store.vaults.get(_key(res.vault_id(subscription_id, resource_group, name)))
        if vault is None:
            raise _not_found("Microsoft.RecoveryServices/vaults", name, resource_group)
        return vault

    def list_vaults(self, subscription_id: str, resource_group: str | None) -> list[JsonObject]:
        """Vaults of a subscription, or of one of its resource groups."""
        return self._in_scope(self._store.vaults.values(), subscription_id, resource_group)

    def find_vm(self, subscription_id: str, resource_group: str, name: str) -> JsonObject:
        """The VM document, or a 404 (``ResourceGroupNotFound`` for an unknown group)."""
        vm = self._store.vms.get(_key(res.vm_id(subscription_id, resource_group, name)))
        if vm is not None:
            return vm
        self._require_resource_group(subscription_id, resource_group)
        raise _not_found("Microsoft.Compute/virtualMachines", name, resource_group)

    def list_vms(self, subscription_id: str, resource_group: str | None) -> list[JsonObject]:
        """VMs of a subscription, or of one of its resource groups."""
        return self._in_scope(self._store.vms.values(), subscription_id, resource_group)

    def find_jobs(self, vault: JsonObject, predicate: Predicate) -> list[JsonObject]:
        """A vault's jobs matching ``predicate``, newest start first."""
        vault_key = self._settle(vault)
        found = [job for job in self._store.jobs[vault_key].values() if predicate(job)]
        return sorted(found, key=lambda job: job["properties"]["startTime"], reverse=True)

    def find_job(self, vault: JsonObject, name: str) -> JsonObject:
        """One job, or a 404."""
        job = self._store.jobs[self._settle(vault)].get(name.lower())
        if job is None:
            # Unverified: the code Azure Backup uses for an unknown job name.
            raise ArmError(404, "ResourceNotFound", f"The backup job '{name}' was not found.")
        return job

    def find_items(self, vault: JsonObject, predicate: Predicate) -> list[JsonObject]:
        """A vault's protected items matching ``predicate``."""
        prefix = _key(vault["id"]) + "/"
        return [
            item
            for key, item in self._store.items.items()
            if key.startswith(prefix) and predicate(item)
        ]

    def find_item(self, vault: JsonObject, fabric: str, container: str, name: str) -> JsonObject:
        """A protected item by its path names (any case), or a 404."""
        path = f"{vault['id']}/backupFabrics/{fabric}/protectionContainers/{container}"
        item = self._store.items.get(_key(f"{path}/protectedItems/{name}"))
        if item is None:
            raise ArmError(
                404,
                ITEM_NOT_FOUND_CODE,
                "Item not found. Selected item might have been deleted. "
                "Please check if item is registered to the vault.",
            )
        return item

    def start_protection_change(
        self, item: JsonObject, protection_state: str, policy_id: str
    ) -> str:
        """Apply a protection change at once and start its operation.

        Stopping protection keeps the data and clears the policy; ``Protected`` resumes with
        ``policy_id``. A completed ``DisableBackup``/``ConfigureBackup`` job records it.

        :return: the operation id.
        """
        props = item["properties"]
        props["protectionState"] = protection_state
        props["policyId"] = policy_id if protection_state == "Protected" else ""
        operation = "ConfigureBackup" if protection_state == "Protected" else "DisableBackup"
        return self._start_operation(item, operation, is_backup=False).op_id

    def start_backup(self, item: JsonObject) -> str:
        """Start an on-demand backup: a new InProgress, user-triggered Backup job.

        :return: the operation id.
        :raises ArmError: 400 when the daily limit is reached or a job of the item is running.
        """
        item_key = _key(item["id"])
        quota_key = (item_key, self.clock().astimezone(UTC).date())
        if self._store.triggers[quota_key] >= ON_DEMAND_DAILY_LIMIT:
            raise ArmError(
                400,
                QUOTA_EXCEEDED_CODE,
                "Operation is blocked as you have reached the limit on number of operations "
                "permitted in 24 hours.",
            )
        vault_key = item_key.split("/backupfabrics/", 1)[0]
        if any(
            job["properties"]["status"] == res.IN_PROGRESS
            and self._job_item_key(vault_key, job) == item_key
            for job in self._store.jobs[vault_key].values()
        ):
            raise ArmError(
                400,
                BACKUP_IN_PROGRESS_CODE,
                "Unable to initiate backup as another backup operation is currently in progress.",
            )
        self._store.triggers[quota_key] += 1
        return self._start_operation(item, "Backup", is_backup=True).op_id

    def find_operation(self, op_id: str, vault: JsonObject, item: JsonObject | None) -> Operation:
        """An operation of a vault (and of ``item`` when given), or a 404."""
        found = self._store.operations.get(op_id.lower())
        if (
            found is None
            or found.vault_key != _key(vault["id"])
            or (item is not None and found.item_key != _key(item["id"]))
        ):
            raise ArmError(404, "ResourceNotFound", f"The operation '{op_id}' was not found.")
        return found

    def poll(self, operation: Operation) -> None:
        """Count one status/result read; the first leaves it InProgress, later ones finish it."""
        operation.polls += 1
        if operation.polls > 1 and operation.ended is None:
            operation.ended = self.clock()
            if operation.is_backup:
                self._store.settleable.add((operation.vault_key, operation.job_name.lower()))

    # -- internals ---------------------------------------------------------------------------

    def _vault(self, vault: ResourceRef) -> JsonObject:
        arm_id = vault if isinstance(vault, str) else vault["id"]
        return self._store.vaults[_key(arm_id)]

    def _vm_key(self, vm: ResourceRef) -> str:
        return _key(vm if isinstance(vm, str) else vm["id"])

    def _require_resource_group(self, subscription_id: str, resource_group: str) -> None:
        if _rg_key(subscription_id, resource_group) not in self._store.resource_groups:
            raise ArmError(
                404,
                "ResourceGroupNotFound",
                f"Resource group '{resource_group}' could not be found.",
            )

    def _in_scope(
        self, docs: Iterable[JsonObject], subscription_id: str, resource_group: str | None
    ) -> list[JsonObject]:
        if resource_group is None:
            prefix = f"/subscriptions/{subscription_id}/".lower()
        else:
            self._require_resource_group(subscription_id, resource_group)
            prefix = _rg_key(subscription_id, resource_group) + "/"
        return [doc for doc in docs if _key(doc["id"]).startswith(prefix)]

    def _new_job(
        self,
        vault_id: str,
        *,
        vm_name: str,
        vm_resource_group: str,
        operation: str,
        start: datetime,
        is_user_triggered: bool,
        name: str | None = None,
    ) -> JsonObject:
        name = name or str(uuid.uuid4())
        jobs = self._store.jobs[_key(vault_id)]
        if name.lower() in jobs:
            raise ValueError(f"job exists already: {name}")
        job = res.job_json(
            vault_id,
            name=name,
            vm_name=vm_name,
            vm_resource_group=vm_resource_group,
            operation=operation,
            start=start,
            is_user_triggered=is_user_triggered,
        )
        jobs[name.lower()] = job
        return job

    def _start_operation(self, item: JsonObject, operation: str, *, is_backup: bool) -> Operation:
        now = self.clock()
        vault_id = item["id"].split("/backupFabrics/", 1)[0]
        _, vm_rg, vm_name = res.split_vm_id(item["properties"]["sourceResourceId"])
        job = self._new_job(
            vault_id,
            vm_name=vm_name,
            vm_resource_group=vm_rg,
            operation=operation,
            start=now,
            is_user_triggered=True,
        )
        if is_backup:
            res.set_job_status(job, res.IN_PROGRESS, start=now, end=None, now=now)
        else:
            res.set_job_status(job, res.COMPLETED, start=now, end=now, now=now)
        op = Operation(
            op_id=str(uuid.uuid4()),
            vault_key=_key(vault_id),
            item_key=_key(item["id"]),
            job_name=job["name"],
            is_backup=is_backup,
            started=now,
        )
        self._store.operations[op.op_id] = op
        return op

    def _settle(self, vault: JsonObject) -> str:
        """Finish succeeded backups of ``vault`` when auto-completion is on; return its key."""
        vault_key = _key(vault["id"])
        outcome = self.auto_complete_backups
        if outcome is None:
            return vault_key
        for owner, job_key in sorted(self._store.settleable):
            job = self._store.jobs[owner][job_key]
            if owner == vault_key and job["properties"]["status"] == res.IN_PROGRESS:
                self._finish(owner, job, outcome, SYNTHETIC_FAILURE)
        return vault_key

    def _finish(self, vault_key: str, job: JsonObject, status: str, error: res.JobError) -> None:
        now = self.clock()
        props = job["properties"]
        start = datetime.fromisoformat(props["startTime"])
        res.set_job_status(job, status, start=start, end=now, now=now, errors=[error])
        self._store.settleable.discard((vault_key, job["name"].lower()))
        self._note_backup_outcome(vault_key, job)

    def _note_backup_outcome(self, vault_key: str, job: JsonObject) -> None:
        """Copy a finished Backup job's outcome to its protected item, if there is one."""
        props = job["properties"]
        item = self._store.items.get(self._job_item_key(vault_key, job))
        if props["operation"] != "Backup" or item is None:
            return
        item["properties"]["lastBackupStatus"] = props["status"]
        if props["status"] == res.COMPLETED:
            item["properties"]["lastBackupTime"] = props["endTime"]

    @staticmethod
    def _job_item_key(vault_key: str, job: JsonObject) -> str:
        _, vm_rg, vm_name = job["properties"]["containerName"].split(";")
        return _key(res.item_path(vault_key, vm_rg, vm_name))


def _key(arm_id: str) -> str:
    return arm_id.lower()


def _rg_key(subscription_id: str, resource_group: str) -> str:
    return f"/subscriptions/{subscription_id}/resourcegroups/{resource_group}".lower()


def _not_found(resource_type: str, name: str, resource_group: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not "
        "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )
