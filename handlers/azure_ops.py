"""The Azure management calls the actions make, with their failures sorted into kinds.

Every call goes through the SDK clients from :mod:`handlers.clients` (timeouts, bounded
retries that honour ``Retry-After``). What still fails after those retries is raised as an
:class:`AzureCallError` whose ``kind`` tells the caller what to do: ``denied`` (403,
including a Multi-User Authorization denial: a person must act), ``unavailable`` (throttled,
5xx, timeouts, dropped connections: try later), ``rejected`` (400/409 with a service error
code), ``not_found``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from handlers.clients import AzureClients
from handlers.model import ProtectedItemRef

DENIED = "denied"
UNAVAILABLE = "unavailable"
REJECTED = "rejected"
NOT_FOUND = "not_found"

FABRIC = "Azure"
#: The date format of the Backup Jobs ``$filter`` (as the Azure CLI sends it).
FILTER_TIME = "%Y-%m-%d %I:%M:%S %p"


class AzureCallError(RuntimeError):
    """An Azure call that failed for good; ``kind`` says how to react."""

    def __init__(self, kind: str, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{kind}: {code or status}: {message}")
        self.kind, self.code, self.status = kind, code, status


def _kind(status: int | None, code: str) -> str:
    # A Resource Guard (Multi-User Authorization) denial is a person's decision, whatever
    # status carries it.
    if status in (401, 403) or "resourceguard" in code.lower():
        return DENIED
    if status == 404:
        return NOT_FOUND
    if status is None or status == 429 or status >= 500:
        return UNAVAILABLE
    return REJECTED


def _error_code(error: HttpResponseError) -> str:
    odata = getattr(error, "error", None)
    return getattr(odata, "code", "") or ""


def call(operation: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one SDK call; turn what fails into an :class:`AzureCallError`."""
    try:
        return operation(*args, **kwargs)
    except HttpResponseError as error:
        status, code = error.status_code, _error_code(error)
        message = (getattr(error, "message", "") or str(error)).splitlines()[0][:500]
        raise AzureCallError(_kind(status, code), code, message, status) from error
    except (ServiceRequestError, ServiceResponseError) as error:
        raise AzureCallError(UNAVAILABLE, "", str(error)[:500]) from error
    except AzureError as error:  # e.g. a polling timeout
        raise AzureCallError(UNAVAILABLE, "", str(error)[:500]) from error


def _text(value: Any) -> str:
    """SDK enums and plain strings alike, as the service spells them."""
    return str(getattr(value, "value", value) or "")


def call_list(operation: Any, *args: Any, **kwargs: Any) -> list[Any]:
    """Like :func:`call`, for a paged listing: every page is read inside the guard."""
    return call(lambda: list(operation(*args, **kwargs)))


@dataclass(frozen=True)
class JobState:
    """What the Backup API says about one job now."""

    job_id: str
    status: str
    operation: str
    codes: tuple[str, ...]
    start_time: datetime | None
    container: str
    entity: str

    def is_for(self, item: ProtectedItemRef) -> bool:
        container = self.container.lower()
        wanted = f"iaasvmcontainerv2;{item.vm_resource_group};{item.vm_name}".lower()
        return container.endswith(wanted) or (
            not container and self.entity.lower() == item.vm_name.lower()
        )


def _job_state(job: Any) -> JobState:
    props = job.properties
    details = getattr(props, "error_details", None) or []
    return JobState(
        job_id=job.name,
        status=_text(props.status),
        operation=_text(props.operation),
        codes=tuple(str(d.error_code) for d in details if d.error_code is not None),
        start_time=props.start_time,
        container=getattr(props, "container_name", None) or "",
        entity=props.entity_friendly_name or "",
    )


class BackupApi:
    """The calls about one protected item, in one subscription."""

    def __init__(self, clients: AzureClients, item: ProtectedItemRef) -> None:
        self.item = item
        # Vault, its resource group, fabric, container, item: the path of every item call.
        self._item_path = (
            item.vault_name,
            item.vault_resource_group,
            FABRIC,
            item.container_name,
            item.protected_item_name,
        )
        self._backup = clients.backup(item.subscription_id)
        self._compute = clients.compute(item.subscription_id)

    def job(self, job_id: str) -> JobState:
        """The job as the service reports it now (details GET)."""
        job = call(
            self._backup.job_details.get,
            self.item.vault_name,
            self.item.vault_resource_group,
            job_id,
        )
        return _job_state(job)

    def item_jobs(self, since: datetime, until: datetime | None = None) -> list[JobState]:
        """Backup jobs of this item that started in ``[since, until]``."""
        until = until or datetime.now(UTC) + timedelta(minutes=5)
        query = (
            "operation eq 'Backup' and backupManagementType eq 'AzureIaasVM' and "
            f"startTime eq '{since.astimezone(UTC):{FILTER_TIME}}' and "
            f"endTime eq '{until.astimezone(UTC):{FILTER_TIME}}'"
        )
        jobs = call_list(
            self._backup.backup_jobs.list,
            self.item.vault_name,
            self.item.vault_resource_group,
            filter=query,
        )
        return [state for state in map(_job_state, jobs) if state.is_for(self.item)]

    def vm_exists(self) -> bool:
        """True when ARM has the VM; False only on a 404 (VM or its resource group gone)."""
        try:
            call(self._compute.virtual_machines.get, self.item.vm_resource_group, self.item.vm_name)
        except AzureCallError as error:
            if error.kind == NOT_FOUND:
                return False
            raise
        return True

    def vm_elsewhere(self) -> str:
        """The id of a VM with the same name in another resource group (a move), or ``""``."""
        for vm in call_list(self._compute.virtual_machines.list_all):
            if vm.name.lower() == self.item.vm_name.lower():
                return vm.id
        return ""

    def protected_item(self) -> dict[str, Any] | None:
        """The item's properties by JSON name, or None when the vault has no such item.

        Read by name, not attribute: SDK 11.2.0 deserializes Azure VM items as the base
        ``ProtectedItem`` (nested polymorphism bug), whose attributes lack these fields.
        """
        try:
            resource = call(
                self._backup.protected_items.get,
                *self._item_path,
            )
        except AzureCallError as error:
            if error.kind == NOT_FOUND:
                return None
            raise
        return dict(resource.properties)

    def trigger_backup(self, expiry_days: int) -> str:
        """Start an on-demand backup; returns the operation id to follow."""
        from azure.mgmt.recoveryservicesbackup import models

        expiry = datetime.now(UTC) + timedelta(days=expiry_days)
        request = models.BackupRequestResource(
            properties=models.IaasVMBackupRequest(recovery_point_expiry_time_in_utc=expiry)
        )
        headers = call(
            self._backup.backups.trigger,
            *self._item_path,
            request,
            cls=lambda response, _body, _headers: dict(response.http_response.headers),
        )
        status_url = headers.get("Azure-AsyncOperation") or headers.get("Location") or ""
        return status_url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]

    def operation_job(self, operation_id: str) -> str:
        """The job id an on-demand backup operation started, or ``""`` while it runs.

        :raises AzureCallError: the operation failed (kind ``rejected``).
        """
        status = call(
            self._backup.protected_item_operation_statuses.get,
            *self._item_path,
            operation_id,
        )
        state = _text(status.status)
        if state.lower() == "failed":
            error = getattr(status, "error", None)
            code = getattr(error, "code", "") or ""
            raise AzureCallError(
                REJECTED, code, getattr(error, "message", "") or "operation failed"
            )
        if state.lower() != "succeeded":
            return ""
        return getattr(status.properties, "job_id", "") or ""

    def stop_protection(self, source_resource_id: str) -> str:
        """Stop protection and keep every recovery point. Returns the new protection state.

        A PUT of the item with ``ProtectionStopped`` (never a DELETE, which would remove data).
        The Compute-VM item type is required: the base type is refused by the service.
        """
        from azure.mgmt.recoveryservicesbackup import models

        body = models.ProtectedItemResource(
            properties=models.AzureIaaSComputeVMProtectedItem(
                protection_state=models.ProtectionState.PROTECTION_STOPPED,
                source_resource_id=source_resource_id,
                policy_id="",
            )
        )
        poller = call(
            self._backup.protected_items.begin_create_or_update,
            *self._item_path,
            body,
        )
        result = call(poller.result)
        return _text(result.properties.get("protectionState")) if result else ""
