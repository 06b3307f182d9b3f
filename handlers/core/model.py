"""The one normalized model that every event source is parsed into.

Raw payloads (Event Grid events, CloudEvents, alerts, jobs read from the API) stop at
:mod:`handlers.intake.events`; everything after it works on :class:`BackupFailure`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar

from handlers.core.ids import VaultRef, VmRef
from handlers.core.text import bounded

#: Longest reason kept with a rejection.
MAX_REASON_CHARS = 1_000


class Source(StrEnum):
    """Where a failure came from."""

    EVENT_GRID = "eventgrid"
    CLOUD_EVENT = "cloudevent"
    ALERT = "alert"
    WATCHER = "watcher"
    VM_DELETED = "vm-deleted"
    #: The orphan sweep: a protected VM whose VM ARM no longer has, found before any failure.
    SWEEP = "sweep"
    REPLAY = "replay"


#: Sources whose failures have no backup job behind them (a VM found deleted): there is no job
#: for an action to re-read; ARM's 404 is the evidence.
JOBLESS_SOURCES = frozenset({Source.VM_DELETED, Source.SWEEP})


class Workload:
    """What a backup item protects (the rules scope themselves by these names)."""

    VM = "vm"
    SQL = "sql"
    HANA = "hana"
    FILES = "files"
    ALL = (VM, SQL, HANA, FILES)
    #: How people call them, for tickets and reports.
    LABELS: ClassVar[dict[str, str]] = {
        VM: "Azure VM",
        SQL: "SQL database",
        HANA: "SAP HANA database",
        FILES: "file share",
    }


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of a job's ``errorDetails``: the code as text (numeric codes too), and for
    workload jobs the code's name (``errorTitle``), which Azure sends beside a numeric code."""

    code: str
    message: str = ""
    recommendations: tuple[str, ...] = ()
    title: str = ""


@dataclass(frozen=True)
class ProtectedItemRef:
    """Names of one Azure VM backup item: its vault, its VM, its Backup container and item.

    >>> ref = ProtectedItemRef("sub", "rg-backup", "vault1", "rg-vm", "vm1")
    >>> ref.container_name, ref.protected_item_name
    ('IaasVMContainer;iaasvmcontainerv2;rg-vm;vm1', 'VM;iaasvmcontainerv2;rg-vm;vm1')
    """

    subscription_id: str
    vault_resource_group: str
    vault_name: str
    vm_resource_group: str
    vm_name: str

    @classmethod
    def from_vault_id(cls, vault_id: str, vm_resource_group: str, vm_name: str) -> ProtectedItemRef:
        """From a vault ARM id (:raises handlers.core.ids.ArmIdError: not a vault id)."""
        vault = VaultRef.parse(vault_id)
        return cls(
            vault.subscription_id, vault.resource_group, vault.name, vm_resource_group, vm_name
        )

    @property
    def vault(self) -> VaultRef:
        return VaultRef(self.subscription_id, self.vault_resource_group, self.vault_name)

    @property
    def vault_id(self) -> str:
        return self.vault.id

    @property
    def vm(self) -> VmRef | None:
        """The VM, when its resource group is known."""
        if not (self.vm_name and self.vm_resource_group):
            return None
        return VmRef(self.subscription_id, self.vm_resource_group, self.vm_name)

    @property
    def vm_id(self) -> str:
        return self.vm.id if self.vm else ""

    @property
    def container_name(self) -> str:
        if not self.vm_id:
            return ""
        return f"IaasVMContainer;iaasvmcontainerv2;{self.vm_resource_group};{self.vm_name}"

    @property
    def protected_item_name(self) -> str:
        if not self.vm_id:
            return ""
        return f"VM;iaasvmcontainerv2;{self.vm_resource_group};{self.vm_name}"

    @property
    def key(self) -> str:
        """One string naming the item (vault + VM), for table keys."""
        return f"{self.vault_id}|{self.vm_resource_group}|{self.vm_name}"


@dataclass(frozen=True)
class BackupFailure:
    """A failed backup job of a Recovery Services vault, as every later stage sees it.

    :ivar job_id: the backup job's GUID, the idempotency key of the whole pipeline.
    :ivar workload: what the item protects (:class:`Workload`); for an Azure VM, ``vm_name``
        and ``vm_resource_group`` name it, for the others ``entity`` does (the job's
        ``entityFriendlyName``: ``[instance/]db [host]``, ``db [host]``, the share), and
        ``vm_name`` is the host VM only once it is known.
    :ivar backup_type: what a workload job backed up (``Full``, ``Log``…: ``Backup (Log)``).
    :ivar storage_account: the storage account of a file share.
    :ivar item_id: the protected item's ARM id, when the source names it (an alert): a hint
        the actions verify, never trust.
    """

    job_id: str
    subscription_id: str
    vault_resource_group: str
    vault_name: str
    vm_name: str
    vm_resource_group: str
    operation: str
    status: str
    errors: tuple[ErrorDetail, ...]
    source: Source
    start_time: datetime | None = None
    end_time: datetime | None = None
    event_id: str = ""
    actions_info: tuple[str, ...] = ()
    dynamic_message: str = ""
    workload: str = Workload.VM
    entity: str = ""
    backup_type: str = ""
    storage_account: str = ""
    item_id: str = ""

    @property
    def resource_name(self) -> str:
        """The name of what failed to be backed up: the VM, the database, the share."""
        return self.vm_name if self.workload == Workload.VM else self.entity

    @property
    def item(self) -> ProtectedItemRef:
        return ProtectedItemRef(
            self.subscription_id,
            self.vault_resource_group,
            self.vault_name,
            self.vm_resource_group,
            self.vm_name,
        )

    @property
    def vault_id(self) -> str:
        return self.item.vault_id

    @property
    def job_resource_id(self) -> str:
        return f"{self.vault_id}/backupJobs/{self.job_id}"

    @property
    def vm_id(self) -> str:
        return self.item.vm_id

    @property
    def container_name(self) -> str:
        return self.item.container_name

    @property
    def protected_item_name(self) -> str:
        return self.item.protected_item_name

    @property
    def codes(self) -> tuple[str, ...]:
        """Every code the job gives: numeric codes and, for workload jobs, their names."""
        return tuple(c for e in self.errors for c in (e.code, e.title) if c)

    @property
    def message(self) -> str:
        """All error text of the job, most specific first, for text matching and tickets."""
        parts = [e.message for e in self.errors if e.message]
        if self.dynamic_message:
            parts.append(self.dynamic_message)
        return "\n".join(parts)

    @property
    def recommendations(self) -> tuple[str, ...]:
        return tuple(r for e in self.errors for r in e.recommendations)

    @property
    def occurred_at(self) -> datetime | None:
        return self.end_time or self.start_time


@dataclass(frozen=True)
class Rejection:
    """An input that could not be handled, kept with its reason and a bounded excerpt."""

    reason: str
    source: str
    payload: str
    event_id: str = ""
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        # Reasons quote the payload and the id comes from it: bounded and cleaned here, so
        # that whatever arrived can be stored (a Table string holds 32K UTF-16 code units).
        object.__setattr__(self, "reason", bounded(self.reason, MAX_REASON_CHARS))
        object.__setattr__(self, "event_id", bounded(self.event_id, 256))
