"""The Backup and Compute calls of the app, on the SDK clients of :mod:`handlers.azure.clients`.

- :class:`VaultApi`: one vault's jobs and protected Azure VM items (watcher, alerts, VM
  deletions, resolving a job's item).
- :class:`ItemApi`: one protected item and its VM (the actions): job checks, is the VM gone or
  moved, the on-demand backup and its operation, stop protection with data kept.
- :func:`vault_refs`: the vaults of a subscription.

Azure's own shapes, not ours: a job may carry no ``containerName`` (the published
``GetJobDetails`` example, every job list item), response header names may come in any case,
and long-running-operation URLs carry their own api-version; they are followed as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from handlers.azure.clients import AzureClients
from handlers.azure.errors import AzureCallError, ErrorKind, call, call_list
from handlers.core.ids import VaultRef, VmRef, vm_from_container
from handlers.core.model import ProtectedItemRef

FABRIC = "Azure"
#: The date format of the Backup Jobs ``$filter`` (as the Azure CLI sends it).
FILTER_TIME = "%Y-%m-%d %I:%M:%S %p"
VM_ITEMS = "backupManagementType eq 'AzureIaasVM' and itemType eq 'VM'"
#: The backup management types whose failed jobs the watcher publishes.
WATCHED = frozenset({"AzureIaasVM", "AzureWorkload", "AzureStorage"})
STOPPED = "ProtectionStopped"
#: Job details read at most per check when jobs of same-named VMs must be told apart.
MAX_DETAIL_READS = 10
#: Reads of an on-demand backup's operation right after the trigger, for the job it started,
#: at most this many seconds apart (the operation usually names its job within seconds).
STARTED_JOB_POLLS = 5
STARTED_JOB_POLL_SECONDS = 2.0


def service_text(value: Any) -> str:
    """SDK enums and plain strings alike, as the service spells them."""
    return str(getattr(value, "value", value) or "")


def header(headers: Any, name: str) -> str:
    """A response header by name, whatever case the service or a proxy gave it.

    >>> header({"azure-asyncoperation": "u"}, "Azure-AsyncOperation")
    'u'
    """
    wanted = name.lower()
    return next((str(v) for k, v in dict(headers).items() if k.lower() == wanted), "")


@dataclass(frozen=True)
class JobState:
    """What the Backup API says about one job now (details or a list item)."""

    job_id: str
    status: str
    operation: str
    codes: tuple[str, ...]
    start_time: datetime | None
    end_time: datetime | None
    container: str
    entity: str

    @property
    def vm(self) -> tuple[str, str]:
        """``(resource group, VM name)`` when the job names its container, else ``("", "")``."""
        return vm_from_container(self.container)


def job_state(job: Any) -> JobState:
    """A :class:`JobState` from an SDK ``JobResource``."""
    props = job.properties
    details = getattr(props, "error_details", None) or []
    return JobState(
        job_id=job.name,
        status=service_text(props.status),
        operation=service_text(props.operation),
        # A workload job's code name comes beside its number (as the edge parser takes it).
        codes=tuple(
            str(code)
            for d in details
            for code in (d.error_code, getattr(d, "error_title", None))
            if code not in (None, "")
        ),
        start_time=props.start_time,
        end_time=props.end_time,
        container=getattr(props, "container_name", None) or "",
        entity=props.entity_friendly_name or "",
    )


@dataclass(frozen=True)
class VmItem:
    """A protected Azure VM item of a vault, by the JSON names of its properties."""

    id: str
    friendly_name: str
    source_resource_id: str
    protection_state: str
    last_backup_time: str = ""
    #: The last backup job's status (``Completed``, ``Failed``…; ``""`` before the first).
    last_backup_status: str = ""
    #: When its newest recovery point was taken (absent before the first backup).
    last_recovery_point: str = ""

    @property
    def vm(self) -> VmRef | None:
        """The VM it backs up, from ``sourceResourceId`` (None when that is not a VM id)."""
        try:
            return VmRef.parse(self.source_resource_id)
        except ValueError:
            return None


def _vm_item(resource: Any) -> VmItem:
    # Read by JSON name: SDK 11.2.0 deserializes Azure VM items as the base ProtectedItem
    # (nested polymorphism bug), whose attributes lack these fields.
    props = dict(resource.properties)
    return VmItem(
        id=resource.id or "",
        friendly_name=str(props.get("friendlyName") or ""),
        source_resource_id=str(
            props.get("sourceResourceId") or props.get("virtualMachineId") or ""
        ),
        protection_state=str(props.get("protectionState") or ""),
        last_backup_time=str(props.get("lastBackupTime") or ""),
        last_backup_status=str(props.get("lastBackupStatus") or ""),
        last_recovery_point=str(props.get("lastRecoveryPoint") or ""),
    )


def _point_time(resource: Any) -> datetime | None:
    """A recovery point's time: the SDK's, or its JSON ``recoveryPointTime`` read directly
    (as for items, a point the SDK reads as the base type lacks the attribute)."""
    props = resource.properties
    moment = getattr(props, "recovery_point_time", None)
    if isinstance(moment, datetime):
        return moment
    try:  # Python reads Azure's 7 fractional digits and its "Z"
        moment = datetime.fromisoformat(str(dict(props or {}).get("recoveryPointTime")))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _job_filter(clauses: str, since: datetime, until: datetime) -> str:
    return (
        f"{clauses} and startTime eq '{since.astimezone(UTC):{FILTER_TIME}}' and "
        f"endTime eq '{until.astimezone(UTC):{FILTER_TIME}}'"
    )


def vault_refs(clients: AzureClients, subscription_id: str) -> list[VaultRef]:
    """Every Recovery Services vault of the subscription."""
    vaults = clients.vaults(subscription_id).vaults
    return [VaultRef.parse(v.id) for v in call_list(vaults.list_by_subscription_id)]


class VaultApi:
    """The calls about one vault."""

    def __init__(self, clients: AzureClients, vault: VaultRef) -> None:
        self.vault = vault
        self._backup = clients.backup(vault.subscription_id)

    def job_details(self, job_id: str) -> Any:
        """The job as the details GET returns it (an SDK ``JobResource``)."""
        return call(
            self._backup.job_details.get, self.vault.name, self.vault.resource_group, job_id
        )

    def job_details_json(self, job_id: str) -> dict[str, Any]:
        """The job exactly as the details GET returns it (JSON, not an SDK model): what the
        watcher publishes, read without a model to build and take apart again."""
        from urllib.parse import quote

        from azure.core.rest import HttpRequest

        path = (
            f"/subscriptions/{quote(self.vault.subscription_id)}/resourceGroups/"
            f"{quote(self.vault.resource_group)}/providers/Microsoft.RecoveryServices/vaults/"
            f"{quote(self.vault.name)}/backupJobs/{quote(job_id)}"
        )
        request = HttpRequest("GET", path, params={"api-version": self._backup._config.api_version})
        response = call(self._backup.send_request, request)
        if response.status_code >= 400:
            call(response.raise_for_status)
        return dict(response.json())

    def jobs(self, clauses: str, since: datetime, until: datetime) -> list[Any]:
        """Jobs (list items) matching ``clauses`` that started in ``[since, until]``."""
        return call_list(
            self._backup.backup_jobs.list,
            self.vault.name,
            self.vault.resource_group,
            filter=_job_filter(clauses, since, until),
        )

    def failed_jobs(self, since: datetime, until: datetime) -> list[Any]:
        """Failed jobs of Azure VMs, SQL and SAP HANA in Azure VMs and Azure Files that started
        in ``[since, until]`` (list items): one listing for the three, so the watcher's reads
        per vault do not triple."""
        jobs = self.jobs("status eq 'Failed'", since, until)
        return [j for j in jobs if service_text(j.properties.backup_management_type) in WATCHED]

    def items(self, query: str) -> list[Any]:
        """The vault's protected items matching ``query`` (SDK resources)."""
        return call_list(
            self._backup.backup_protected_items.list,
            self.vault.name,
            self.vault.resource_group,
            filter=query,
        )

    def vm_items(self, friendly_name: str = "") -> list[VmItem]:
        """The vault's protected Azure VM items (those named ``friendly_name``, if given)."""
        query = VM_ITEMS
        if friendly_name:
            query += f" and friendlyName eq '{friendly_name.replace(chr(39), chr(39) * 2)}'"
        found = [_vm_item(item) for item in self.items(query)]
        if friendly_name:  # the filter narrows; the name decides (any case, like ARM)
            found = [i for i in found if i.friendly_name.lower() == friendly_name.lower()]
        return found


@dataclass(frozen=True)
class Gone:
    """Whether what an item protects is verifiably gone (ARM says so), and what was found.

    :ivar urgent: a person must act before data is lost (a soft-deleted file share).
    """

    gone: bool
    why: str
    urgent: bool = False


class ItemOperations:
    """The calls every protected item takes at its path in the vault: read it, an on-demand
    backup and the operation that follows it, stop protection keeping the data."""

    def __init__(self, clients: AzureClients, vault: VaultRef) -> None:
        self._vault = VaultApi(clients, vault)
        self._backup = clients.backup(vault.subscription_id)
        self._management = urlsplit(clients.settings.management_url)
        self._poll_seconds = min(clients.polling_interval, STARTED_JOB_POLL_SECONDS)
        self._sleep = clients.clock.sleep

    @property
    def _path(self) -> tuple[str, str, str, str, str]:
        """Vault, its resource group, fabric, container, item: the path of every item call."""
        raise NotImplementedError

    def job(self, job_id: str) -> JobState:
        """The job as the service reports it now (details GET)."""
        return job_state(self._vault.job_details(job_id))

    def _item_resource(self) -> Any | None:
        """The item as the vault has it now (an SDK resource), or None when it has none."""
        try:
            return call(self._backup.protected_items.get, *self._path)
        except AzureCallError as error:
            if error.kind == ErrorKind.NOT_FOUND:
                return None
            raise

    def recovery_point_times(self) -> list[datetime]:
        """When each recovery point the vault keeps for the item was taken, oldest first
        (``RecoveryPoints_List``, every page, no ``$filter``: all of them). A point without a
        readable time is left out."""
        points = call_list(self._backup.recovery_points.list, *self._path)
        times = [_point_time(point) for point in points]
        return sorted(t for t in times if t is not None)

    def _trigger(self, request: Any) -> str:
        """Start an on-demand backup with ``request`` (a backup request model); returns the URL
        of its operation status (or ``""``)."""
        from azure.mgmt.recoveryservicesbackup import models

        headers = call(
            self._backup.backups.trigger,
            *self._path,
            models.BackupRequestResource(properties=request),
            cls=lambda response, _body, _headers: response.http_response.headers,
        )
        return header(headers, "Azure-AsyncOperation")

    def started_job(self, status_url: str) -> str:
        """The job an on-demand backup started, waiting a few seconds for the operation to
        name it; ``""`` when it has not yet (a later follow-up asks again)."""
        for poll in range(STARTED_JOB_POLLS):
            job_id = self.operation_job(status_url)
            if job_id:
                return job_id
            if poll + 1 < STARTED_JOB_POLLS:
                self._sleep(self._poll_seconds)
        return ""

    def operation_job(self, status_url: str) -> str:
        """The job an on-demand backup started, from its operation status URL (as Azure gave
        it, api-version included); ``""`` while the operation runs.

        :raises AzureCallError: the operation failed (kind ``refused``), or the URL is not on
            the management endpoint (never sent our token elsewhere).
        """
        from azure.core.rest import HttpRequest

        target = urlsplit(status_url)
        if (target.scheme, target.netloc) != (self._management.scheme, self._management.netloc):
            raise AzureCallError(ErrorKind.REFUSED, "", "operation URL is not on the ARM endpoint")
        response = call(self._backup.send_request, HttpRequest("GET", status_url))
        if response.status_code >= 400:
            call(response.raise_for_status)
        status = response.json() if response.content else {}
        state = str(status.get("status", "")).lower()
        if state in ("failed", "canceled", "cancelled"):
            error = status.get("error") or {}
            raise AzureCallError(
                ErrorKind.REFUSED, str(error.get("code", "")), str(error.get("message", state))
            )
        if state != "succeeded":
            return ""
        return str((status.get("properties") or {}).get("jobId") or "")

    def _stop(self, stopped_item: Any) -> str:
        """PUT the item as ``stopped_item`` (``ProtectionStopped``: every recovery point kept,
        never a DELETE, which would remove data); returns the protection state after it."""
        from azure.mgmt.recoveryservicesbackup import models

        body = models.ProtectedItemResource(properties=stopped_item)
        poller = call(self._backup.protected_items.begin_create_or_update, *self._path, body)
        result = call(poller.result)
        return service_text(dict(result.properties).get("protectionState")) if result else ""


def vm_exists(clients: AzureClients, vm: VmRef) -> bool:
    """True when ARM has the VM; False only on a 404 (VM or its resource group gone)."""
    compute = clients.compute(vm.subscription_id)
    try:
        call(compute.virtual_machines.get, vm.resource_group, vm.name)
    except AzureCallError as error:
        if error.kind == ErrorKind.NOT_FOUND:
            return False
        raise
    return True


def vm_elsewhere(clients: AzureClients, vm: VmRef) -> str:
    """The id of a VM of the same name in another resource group (a move), or ``""``."""
    compute = clients.compute(vm.subscription_id)
    for found in call_list(compute.virtual_machines.list_all):
        if found.name.lower() == vm.name.lower() and found.id.lower() != vm.id.lower():
            return found.id
    return ""


class ItemApi(ItemOperations):
    """The calls about one protected Azure VM item and its VM.

    :param item: the item; its VM's resource group must be known for the item calls.
    :param same_name_items: how many VM items of the vault share the VM's name, when known
        (1 lets a job without ``containerName`` be attributed by name alone).
    """

    def __init__(self, clients: AzureClients, item: ProtectedItemRef, same_name_items: int = 0):
        super().__init__(clients, item.vault)
        self.item = item
        self._clients = clients
        self._same_name_items = same_name_items
        self._seen: VmItem | None = None

    @property
    def _path(self) -> tuple[str, str, str, str, str]:
        if not self.item.vm_resource_group:
            raise ValueError("the item's VM resource group is not known")
        return (
            self.item.vault_name,
            self.item.vault_resource_group,
            FABRIC,
            self.item.container_name,
            self.item.protected_item_name,
        )

    def item_jobs(self, since: datetime, until: datetime | None = None) -> list[JobState]:
        """Backup jobs of this item (never of a same-named VM elsewhere) started in the window.

        A list item names no container: it is this item's when its VM name is unique in the
        vault; otherwise the job's details decide, and a job they cannot place is left out.
        """
        until = until or datetime.now(UTC) + timedelta(minutes=5)
        listed = [
            job_state(j)
            for j in self._vault.jobs(
                "operation eq 'Backup' and backupManagementType eq 'AzureIaasVM'", since, until
            )
        ]
        mine, unplaced = [], []
        for job in listed:
            if job.container:
                if self._is_mine(job.vm):
                    mine.append(job)
            elif job.entity.lower() == self.item.vm_name.lower():
                unplaced.append(job)
        if unplaced and self._name_is_unique():
            return mine + unplaced
        details = [self.job(j.job_id) for j in unplaced[:MAX_DETAIL_READS]]
        return mine + [j for j in details if j.container and self._is_mine(j.vm)]

    def _is_mine(self, vm: tuple[str, str]) -> bool:
        return (vm[0].lower(), vm[1].lower()) == (
            self.item.vm_resource_group.lower(),
            self.item.vm_name.lower(),
        )

    def _name_is_unique(self) -> bool:
        if not self._same_name_items:
            self._same_name_items = len(self._vault.vm_items(self.item.vm_name))
        return self._same_name_items == 1

    def vm_exists(self) -> bool:
        """True when ARM has the VM; False only on a 404 (VM or its resource group gone)."""
        vm = self.item.vm
        return vm is None or vm_exists(self._clients, vm)

    def vm_elsewhere(self) -> str:
        """The id of a VM with the same name in another resource group (a move), or ``""``."""
        vm = self.item.vm
        return vm_elsewhere(self._clients, vm) if vm else ""

    def protected_item(self) -> VmItem | None:
        """The item as the vault has it now, or None when the vault has no such item."""
        resource = self._item_resource()
        self._seen = _vm_item(resource) if resource is not None else None
        return self._seen

    def protection_state(self) -> str | None:
        """The item's protection state now, or None when the vault has no such item."""
        found = self.protected_item()
        return found.protection_state if found else None

    def gone(self) -> Gone:
        """Whether the VM is verifiably gone: ARM answers 404, and no VM of its name lives
        elsewhere in the subscription (a move)."""
        if self.vm_exists():
            return Gone(False, "Azure Resource Manager still has the VM")
        moved_to = self.vm_elsewhere()
        if moved_to:
            return Gone(False, f"a VM with the same name exists at {moved_to} (moved?)")
        return Gone(True, "VM confirmed deleted (ARM 404)")

    def trigger_backup(self, expiry_days: int) -> str:
        """Start an on-demand backup; returns the URL of its operation status (or ``""``)."""
        from azure.mgmt.recoveryservicesbackup import models

        expiry = datetime.now(UTC) + timedelta(days=expiry_days)
        return self._trigger(models.IaasVMBackupRequest(recovery_point_expiry_time_in_utc=expiry))

    def stop_protection(self, source_resource_id: str = "") -> str:
        """Stop protection and keep every recovery point. Returns the new protection state.

        The Compute-VM item type is required: the base type is refused by the service. The
        item's ``sourceResourceId`` is the one this delivery read, unless given.
        """
        from azure.mgmt.recoveryservicesbackup import models

        if not source_resource_id:
            seen = self._seen or self.protected_item()
            source_resource_id = (seen.source_resource_id if seen else "") or self.item.vm_id
        return self._stop(
            models.AzureIaaSComputeVMProtectedItem(
                protection_state=models.ProtectionState.PROTECTION_STOPPED,
                source_resource_id=source_resource_id,
                policy_id="",
            )
        )
