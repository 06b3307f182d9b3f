"""SQL Server and SAP HANA in Azure VMs, and Azure Files: their items, their calls, and whether
what they protect is verifiably gone.

A workload job names no container: its item is found among the vault's protected items of its
kind by the job's ``entityFriendlyName`` (``[instance/]db [host]``, ``db [host]``, the share
with the job's ``storageAccountName``). Only ARM can say a protected resource is gone: the host
VM for a database (a dropped database is not an ARM resource, so it is never "gone" here), the
storage account or the share for Azure Files (a soft-deleted share is not gone: it can be
undeleted, and says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.azure.backup import (
    Gone,
    ItemOperations,
    JobState,
    VaultApi,
    job_state,
    service_text,
    vm_elsewhere,
    vm_exists,
)
from handlers.azure.clients import AzureClients
from handlers.azure.errors import AzureCallError, ErrorKind, call, call_list
from handlers.core.ids import ArmIdError, VaultRef, VmRef, item_ref
from handlers.core.model import Workload

#: The vault's item query of each workload (``ProtectedItemQueryObject``).
ITEM_QUERIES = {
    Workload.SQL: "backupManagementType eq 'AzureWorkload' and itemType eq 'SQLDataBase'",
    Workload.HANA: "backupManagementType eq 'AzureWorkload' and itemType eq 'SAPHanaDatabase'",
    Workload.FILES: "backupManagementType eq 'AzureStorage' and itemType eq 'AzureFileShare'",
}
MANAGEMENT_TYPES = {
    Workload.SQL: "AzureWorkload",
    Workload.HANA: "AzureWorkload",
    Workload.FILES: "AzureStorage",
}
#: Full backups made on demand keep their recovery points at least this long (SQL, HANA).
MIN_FULL_RETENTION_DAYS = 45
#: ``[instance/]db [host]`` (SQL) and ``db [host]`` (HANA): the jobs' names for a database.
_DATABASE_ENTITY = re.compile(
    r"^\s*(?:(?P<instance>[^/\[]+)/)?(?P<database>[^\[]+?)\s*(?:\[(?P<host>[^\]]+)\])?\s*$"
)


@dataclass(frozen=True)
class WorkloadItem:
    """A protected database or file share, by the JSON names of its properties."""

    id: str
    workload: str
    friendly_name: str
    server_name: str
    parent_name: str
    source_resource_id: str
    protection_state: str

    @property
    def container(self) -> str:
        return item_ref(self.id)[1]

    @property
    def name(self) -> str:
        return item_ref(self.id)[2]

    @property
    def storage_account(self) -> str:
        """A file share's storage account (the container ends with it)."""
        return self.container.rsplit(";", 1)[-1] if self.workload == Workload.FILES else ""


def _workload_item(resource: Any, workload: str) -> WorkloadItem:
    # Read by JSON name: SDK 11.2.0 deserializes SQL and HANA items as the base ProtectedItem
    # (the same nested polymorphism bug as the VM items).
    props = dict(resource.properties)
    return WorkloadItem(
        id=resource.id or "",
        workload=workload,
        friendly_name=str(props.get("friendlyName") or ""),
        server_name=str(props.get("serverName") or ""),
        parent_name=str(props.get("parentName") or ""),
        source_resource_id=str(props.get("sourceResourceId") or ""),
        protection_state=str(props.get("protectionState") or ""),
    )


def _host_matches(wanted: str, server: str) -> bool:
    """Hosts compare by their first label: a job may name ``vm1`` where the item says
    ``vm1.contoso.com``, or the other way round."""
    return wanted.split(".", maxsplit=1)[0].lower() == server.split(".", maxsplit=1)[0].lower()


def matches(item: WorkloadItem, entity: str, storage_account: str = "") -> bool:
    """Whether ``item`` is what a job calls ``entity`` (and, for a share, its account)."""
    if item.workload == Workload.FILES:
        same_share = item.friendly_name.lower() == entity.strip().lower()
        return same_share and item.storage_account.lower() == storage_account.lower()
    named = _DATABASE_ENTITY.match(entity)
    if named is None or item.friendly_name.lower() != named["database"].strip().lower():
        return False
    instance, host = named["instance"], named["host"]
    if instance and item.parent_name and instance.strip().lower() != item.parent_name.lower():
        return False
    return not (host and item.server_name and not _host_matches(host.strip(), item.server_name))


def workload_items(clients: AzureClients, vault: VaultRef, workload: str) -> list[WorkloadItem]:
    """The vault's protected items of ``workload``."""
    found = VaultApi(clients, vault).items(ITEM_QUERIES[workload])
    return [_workload_item(item, workload) for item in found]


class WorkloadItemApi(ItemOperations):
    """The calls about one protected database or file share.

    :param backup_type: the backup type a retry takes (the failed job's: ``Full``, ``Log``…).
    """

    def __init__(
        self, clients: AzureClients, item: WorkloadItem, entity: str, backup_type: str = ""
    ) -> None:
        super().__init__(clients, item_ref(item.id)[0])
        self.item = item
        self._clients = clients
        self._entity = entity
        self._backup_type = backup_type or "Full"

    @property
    def _path(self) -> tuple[str, str, str, str, str]:
        vault = self._vault.vault
        return (vault.name, vault.resource_group, "Azure", self.item.container, self.item.name)

    def item_jobs(self, since: datetime, until: datetime | None = None) -> list[JobState]:
        """Backup jobs of this item (by the job's name for it) started in the window."""
        until = until or datetime.now(UTC) + timedelta(minutes=5)
        kind = MANAGEMENT_TYPES[self.item.workload]
        listed = self._vault.jobs(f"backupManagementType eq '{kind}'", since, until)
        return [
            job_state(job)
            for job in listed
            if service_text(job.properties.operation).lower().startswith("backup")
            and matches(self.item, job.properties.entity_friendly_name or "", self._account(job))
        ]

    def _account(self, job: Any) -> str:
        return str(getattr(job.properties, "storage_account_name", "") or self.item.storage_account)

    def current(self) -> WorkloadItem | None:
        """The item as the vault has it now, or None."""
        resource = self._item_resource()
        return _workload_item(resource, self.item.workload) if resource is not None else None

    def protection_state(self) -> str | None:
        """The item's protection state now, or None when the vault has no such item."""
        found = self.current()
        return found.protection_state if found else None

    def host_vm(self) -> VmRef | None:
        """The VM a database lives on: its workload container's ``sourceResourceId``."""
        vault = self._vault.vault
        container = call(
            self._backup.protection_containers.get,
            vault.name,
            vault.resource_group,
            "Azure",
            self.item.container,
        )
        try:
            return VmRef.parse(str(dict(container.properties).get("sourceResourceId") or ""))
        except ArmIdError:
            return None

    def gone(self) -> Gone:
        """Whether what the item protects is verifiably gone (ARM), and why not when not."""
        if self.item.workload == Workload.FILES:
            return self._share_gone()
        vm = self.host_vm()
        if vm is None:
            return Gone(
                False, "the database's host VM is not known, so its deletion cannot be verified"
            )
        if vm_exists(self._clients, vm):
            return Gone(False, f"the host VM {vm.id} exists (a database itself cannot be checked)")
        moved_to = vm_elsewhere(self._clients, vm)
        if moved_to:
            return Gone(False, f"a VM of the same name exists at {moved_to} (moved?)")
        return Gone(True, f"the host VM {vm.id} is confirmed deleted (ARM 404)")

    def _share_gone(self) -> Gone:
        account = self.item.source_resource_id
        parts = account.strip("/").split("/")
        if len(parts) < 8:
            return Gone(False, "the share's storage account is not known")
        # The account's own subscription: never assume it is the vault's.
        storage = self._clients.storage(parts[1])
        group, name = parts[3], parts[7]
        try:
            call(storage.storage_accounts.get_properties, group, name)
        except AzureCallError as error:
            if error.kind != ErrorKind.NOT_FOUND:
                raise
            return Gone(True, f"the storage account {account} is confirmed deleted (ARM 404)")
        share = self.item.friendly_name
        listed = [
            found
            for found in call_list(storage.file_shares.list, group, name, expand="deleted")
            if (found.name or "").lower() == share.lower()
        ]
        if any(not getattr(found, "deleted", False) for found in listed):
            return Gone(False, f"the share {share} exists in {account}")
        if listed:  # only soft-deleted copies: undeletable, never stopped
            days = getattr(listed[0], "remaining_retention_days", None)
            left = f"{days} day(s) left" if days is not None else "before its retention ends"
            return Gone(False, f"the share {share} is soft-deleted: undelete it ({left})", True)
        return Gone(True, f"the share {share} is confirmed deleted (not listed, not soft-deleted)")

    def trigger_backup(self, expiry_days: int) -> str:
        """Start an on-demand backup of the failed job's type; returns its status URL."""
        from azure.mgmt.recoveryservicesbackup import models

        now = datetime.now(UTC)
        if self.item.workload == Workload.FILES:
            expiry = now + timedelta(days=expiry_days)
            return self._trigger(
                models.AzureFileShareBackupRequest(recovery_point_expiry_time_in_utc=expiry)
            )
        kind = self._backup_type
        request: dict[str, Any] = {"backup_type": kind}
        if kind.lower() in ("full", "copyonlyfull"):  # only full backups take a retention
            days = max(expiry_days, MIN_FULL_RETENTION_DAYS) if kind.lower() == "full" else 30
            request["recovery_point_expiry_time_in_utc"] = now + timedelta(days=days)
        return self._trigger(models.AzureWorkloadBackupRequest(**request))

    def stop_protection(self, source_resource_id: str = "") -> str:
        """Stop protection and keep every recovery point; returns the state after it (the
        item says what it protects: ``source_resource_id`` is not needed)."""
        from azure.mgmt.recoveryservicesbackup import models

        stopped = models.ProtectionState.PROTECTION_STOPPED
        if self.item.workload == Workload.FILES:
            item: Any = models.AzureFileshareProtectedItem(
                protection_state=stopped,
                source_resource_id=self.item.source_resource_id,
                policy_id="",
            )
        elif self.item.workload == Workload.SQL:
            vm = self.host_vm()
            item = models.AzureVmWorkloadSQLDatabaseProtectedItem(
                protection_state=stopped, source_resource_id=vm.id if vm else None, policy_id=""
            )
        else:
            item = models.AzureVmWorkloadSAPHanaDatabaseProtectedItem(
                protection_state=stopped, policy_id=""
            )
        return self._stop(item)
