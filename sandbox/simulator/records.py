"""What the simulator knows about each resource, independent of the JSON shape it is served in.

The renderers (:mod:`sandbox.simulator.ideal`, :mod:`sandbox.simulator.azure`) turn these records
into documents; links such as "this job belongs to that protected item" live here and never in
the served JSON, because Azure does not always serve them (a job may come without
``containerName``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.simulator import resources as res
from sandbox.simulator.kinds import Kind
from sandbox.simulator.protocol import JsonObject


@dataclass(frozen=True)
class JobError:
    """One ``errorDetails`` entry of a failed job.

    :ivar code: the integer ``errorCode``.
    :ivar message: the ``errorString`` (a localized message in Azure).
    :ivar recommendations: the ``recommendations`` list.
    :ivar title: the ``errorTitle`` of a workload job (the code name in [SQL-MGMT-REST]'s one
        example); VM jobs serve ``""`` and Azure Files jobs have no ``errorTitle``.
    """

    code: int
    message: str
    recommendations: tuple[str, ...] = ()
    title: str = ""

    def to_json(self) -> JsonObject:
        """The ``AzureIaaSVMErrorInfo`` JSON (its four spec properties)."""
        return {
            "errorCode": self.code,
            "errorTitle": "",
            "errorString": self.message,
            "recommendations": list(self.recommendations),
        }


@dataclass(frozen=True)
class Target:
    """What a protected item protects, and where the vault files it.

    :ivar kind: the kind of item (:mod:`sandbox.simulator.kinds`).
    :ivar container: the protection container name, canonically spelt.
    :ivar name: the protected item name.
    :ivar friendly_name: the VM, database or share name (``friendlyName``).
    :ivar host_id: ARM id of the VM (VM, SQL, HANA) or the storage account (Files).
    :ivar host_group: the resource group of the VM or storage account.
    :ivar host_name: the name of the VM or storage account.
    :ivar source_id: the item's ``sourceResourceId`` at protection time.
    :ivar parent_name: the SQL instance or HANA SID (``parentName``); ``""`` otherwise.
    :ivar server_name: the database's ``serverName``; ``""`` otherwise.
    :ivar recovery_model: a SQL database's recovery model; ``""`` otherwise.
    """

    kind: Kind
    container: str
    name: str
    friendly_name: str
    host_id: str
    host_group: str
    host_name: str
    source_id: str
    parent_name: str = ""
    server_name: str = ""
    recovery_model: str = ""

    def item_id(self, vault_id: str) -> str:
        """The canonical ARM id of its protected item in ``vault_id``."""
        return res.item_path(vault_id, self.container, self.name)


@dataclass
class VaultRecord:
    """A Recovery Services vault.

    :ivar type_spelling: the ``type`` Azure serves for it (normally
        ``Microsoft.RecoveryServices/vaults``; recorded lists also show other spellings).
    :ivar id_type_spelling: the provider and type segments of the ``id`` Azure serves.
    :ivar created: creation time (the ``etag`` carries it).
    """

    subscription_id: str
    resource_group: str
    name: str
    location: str
    created: datetime
    type_spelling: str = res.VAULT_TYPE
    id_type_spelling: str = res.VAULT_TYPE
    #: The Resource Guard mapped to it (:class:`sandbox.simulator.guards.GuardRecord`), if any.
    guard: Any = None

    @property
    def id(self) -> str:
        """The canonical ARM id (the one requests and lookups use)."""
        return res.vault_id(self.subscription_id, self.resource_group, self.name)

    @property
    def key(self) -> str:
        """The lower-cased id: ARM ids compare case-insensitively."""
        return self.id.lower()


@dataclass(frozen=True)
class BackupRun:
    """The start and end of a completed backup job."""

    start: datetime
    end: datetime


@dataclass
class ItemRecord:
    """A protected item in a vault.

    :ivar vault_id: the vault's canonical id.
    :ivar target: what it protects (kind, names, host).
    :ivar policy_id: the policy id; ``""`` while protection is stopped.
    :ivar data_id: the ``protectedItemDataId`` (``protectedItemDataSourceId`` of a database).
    :ivar last_backup_status: ``""`` before any backup, then the last backup job's status.
    :ivar last_success: the last completed backup; ``None`` before the first one.
    :ivar first_success: the first completed backup (the oldest recovery point).
    :ivar backups: every completed backup, oldest first: one recovery point each (none
        expires in the simulator).
    """

    vault_id: str
    target: Target
    policy_id: str
    protection_state: str
    data_id: str
    last_backup_status: str = ""
    last_success: BackupRun | None = None
    first_success: BackupRun | None = None
    backups: list[BackupRun] = field(default_factory=list)

    @property
    def kind(self) -> Kind:
        """The kind of item."""
        return self.target.kind

    @property
    def id(self) -> str:
        """The canonical ARM id of the item."""
        return self.target.item_id(self.vault_id)

    @property
    def key(self) -> str:
        """The lower-cased id."""
        return self.id.lower()

    @property
    def recovery_points(self) -> int:
        """How many recovery points the vault keeps for the item."""
        return len(self.backups)

    @property
    def policy_name(self) -> str:
        """The last segment of the policy id; ``""`` when there is none."""
        return self.policy_id.rsplit("/", 1)[-1]

    def note_success(self, run: BackupRun) -> None:
        """Record a completed backup as its last (and maybe first) recovery point."""
        self.last_success = run
        self.first_success = self.first_success or run
        self.backups.append(run)


@dataclass
class JobRecord:
    """A backup job.

    :ivar vault_id: the vault's canonical id.
    :ivar name: the job name (a GUID).
    :ivar target: what the job is about; it links the job to its protected item (whether or not
        the item exists), never shown in the served JSON as such.
    :ivar updated: when the status last changed.
    :ivar errors: error details; kept only while the status is ``Failed``.
    :ivar container_in_details: whether Azure's shapes show ``containerName`` for this (VM) job.
    :ivar policy_name: the policy a protection change applied (``""`` when it stopped it).
    :ivar expiry: the ``recoveryPointExpiryTimeInUTC`` of the backup request, if any.
    """

    vault_id: str
    name: str
    target: Target
    operation: str
    start: datetime
    is_user_triggered: bool
    activity_id: str
    updated: datetime
    status: str = res.IN_PROGRESS
    end: datetime | None = None
    errors: tuple[JobError, ...] = ()
    container_in_details: bool = False
    policy_name: str = ""
    expiry: datetime | None = None

    @property
    def kind(self) -> Kind:
        """The kind of item the job is about."""
        return self.target.kind

    @property
    def item_key(self) -> str:
        """The lower-cased id of the protected item the job is about."""
        return self.target.item_id(self.vault_id).lower()

    def set_status(
        self, status: str, *, end: datetime | None, now: datetime, errors: tuple[JobError, ...]
    ) -> None:
        """Move the job to ``status``; error details are kept only for ``Failed``.

        :param end: the end time; ``None`` while in progress.
        :param now: the current time.
        """
        self.status = status
        self.end = end
        self.updated = now
        self.errors = errors if status == res.FAILED else ()


@dataclass
class ContainerRecord:
    """A registered protection container of SQL/HANA databases or of Azure file shares.

    :ivar vault_id: the vault's canonical id.
    :ivar name: the container name, canonically spelt.
    :ivar kind: the kind of the items it holds (SQL and HANA share the VM's container).
    :ivar host_id: ARM id of the VM or storage account (its ``sourceResourceId``).
    :ivar host_name: the VM or storage account name (its ``friendlyName``).
    """

    vault_id: str
    name: str
    kind: Kind
    host_id: str
    host_name: str

    @property
    def key(self) -> str:
        """The lower-cased ARM id of the container."""
        return res.container_path(self.vault_id, self.name).lower()


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
