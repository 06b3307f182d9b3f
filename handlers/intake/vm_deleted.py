"""VM deleted: stop protection (data kept) before any backup has failed.

ARM publishes ``Microsoft.Resources.ResourceDeleteSuccess`` on the subscription's system topic
when a VM is deleted; the built-in backup alert stays silent for deleted VMs. For every
protected item whose source is that VM, a ``BackupFailure`` with our own code ``VmDeleted``
goes through ``respond()``, so the incident, the verification (ARM 404, no move) and the
guarded stop-protection are the same as for a failed job. The incident id is derived from the
event id and the item, so a redelivered event is a duplicate; an item already stopped is only
taken up again when a delivery of this event claimed it before (and died mid-way).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

from handlers.azure.backup import STOPPED, VaultApi, vault_refs
from handlers.core.ids import ArmIdError, VaultRef, VmRef
from handlers.core.model import BackupFailure, ErrorDetail, Rejection, Source
from handlers.core.outcome import Outcome
from handlers.core.text import excerpt
from handlers.intake.eventgrid import function_event_to_dict
from handlers.intake.events import PayloadError
from handlers.pipeline.respond import respond
from handlers.pipeline.runtime import Runtime

log = logging.getLogger("backup_responder.vm_deleted")

DELETE_EVENT = "Microsoft.Resources.ResourceDeleteSuccess"
VM_DELETE = "Microsoft.Compute/virtualMachines/delete"
VM_DELETED_CODE = "VmDeleted"
DELETED_MESSAGE = f"The VM was deleted ({DELETE_EVENT}) while still protected."


def read_deleted_vm(raw: dict[str, Any]) -> VmRef:
    """The deleted VM.

    :raises PayloadError: not a successful VM delete event.
    """
    event_type = raw.get("eventType") or raw.get("type")
    if event_type != DELETE_EVENT:
        raise PayloadError(f"event type {str(event_type)[:100]!r} is not {DELETE_EVENT}")
    data = raw.get("data")
    if not isinstance(data, dict):
        raise PayloadError("data is missing")
    if str(data.get("operationName", "")).lower() != VM_DELETE.lower():
        raise PayloadError(f"operationName is not {VM_DELETE}")
    try:
        return VmRef.parse(data.get("resourceUri"))  # type: ignore[arg-type]
    except ArmIdError:
        raise PayloadError("data.resourceUri is not a virtual machine id") from None


def deleted_vm_failure(
    vault: VaultRef,
    vm: VmRef,
    event_id: str,
    at: datetime,
    *,
    source: Source = Source.VM_DELETED,
    message: str = DELETED_MESSAGE,
) -> BackupFailure:
    """The failure of ``vm``'s item in ``vault`` once the VM is gone: our own code
    ``VmDeleted``, so the rules stop protection (data kept) after the action's own checks.
    Its id derives from the vault, the VM and ``event_id``: the same event (or the orphan
    sweep's fixed key) is the same incident, however often it comes."""
    key = f"{vault.id}|{vm.id}|{event_id}".lower()
    return BackupFailure(
        job_id="vmdeleted-" + hashlib.sha256(key.encode()).hexdigest()[:24],
        subscription_id=vault.subscription_id,
        vault_resource_group=vault.resource_group,
        vault_name=vault.name,
        vm_name=vm.name,
        vm_resource_group=vm.resource_group,
        operation="Backup",
        status="Failed",
        errors=(ErrorDetail(VM_DELETED_CODE, message),),
        source=source,
        start_time=at,
        event_id=event_id,
    )


def _failures(runtime: Runtime, vm: VmRef, event_id: str, at: datetime) -> list[BackupFailure]:
    """One failure per vault protecting ``vm``: items still protected, and items a previous
    delivery of this event claimed (stopped by it, or by a person meanwhile)."""
    found = []
    for vault in vault_refs(runtime.clients, vm.subscription_id):
        for item in VaultApi(runtime.clients, vault).vm_items():
            if item.source_resource_id.lower() != vm.id.lower():
                continue
            failure = deleted_vm_failure(vault, vm, event_id, at)
            claimed = runtime.storage.claims.incident_keys(failure.job_id) is not None
            if item.protection_state != STOPPED or claimed:
                found.append(failure)
    return found


def handle_vm_deleted(runtime: Runtime, event: Any) -> list[Outcome]:
    """Entry of ``on_vm_deleted``: one outcome per protected item of the deleted VM."""
    return respond_to_deletion(runtime, function_event_to_dict(event))


def respond_to_deletion(runtime: Runtime, raw: dict[str, Any]) -> list[Outcome]:
    """One outcome per protected item of the VM a ``ResourceDeleteSuccess`` event (as a dict)
    says was deleted."""
    event_id = str(raw.get("id") or "")
    try:
        vm = read_deleted_vm(raw)
    except PayloadError as error:
        return [respond(runtime, Rejection(str(error), Source.VM_DELETED, excerpt(raw), event_id))]
    if not runtime.settings.in_scope(vm.subscription_id):
        reason = f"subscription {vm.subscription_id} is outside this deployment's scope"
        return [respond(runtime, Rejection(reason, Source.VM_DELETED, excerpt(raw), event_id))]
    at = raw.get("eventTime") or raw.get("time")
    moment = at if isinstance(at, datetime) else datetime.now(UTC)
    failures = _failures(runtime, vm, event_id, moment)
    if not failures:
        log.info("deleted VM %s had no active backup protection", vm.id)
    return [respond(runtime, failure) for failure in failures]
