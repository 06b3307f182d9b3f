"""VM deleted: stop protection (data kept) before any backup has failed.

ARM publishes ``Microsoft.Resources.ResourceDeleteSuccess`` on the subscription's system topic
when a VM is deleted; the built-in backup alert stays silent for deleted VMs. For every
protected item whose source is that VM, a ``BackupFailure`` with our own code ``VmDeleted``
goes through ``respond()``, so the incident, the verification (ARM 404, no move) and the
guarded stop-protection are the same as for a failed job. The incident id is derived from the
event id and the item, so a redelivered event is a duplicate.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from typing import Any

from handlers.azure_ops import call_list
from handlers.events import PayloadError, Rejection, excerpt
from handlers.intake import function_event_to_dict
from handlers.model import BackupFailure, ErrorDetail, Source
from handlers.respond import Outcome, respond
from handlers.runtime import Runtime

log = logging.getLogger("backup_responder.vm_deleted")

DELETE_EVENT = "Microsoft.Resources.ResourceDeleteSuccess"
VM_DELETE = "Microsoft.Compute/virtualMachines/delete"
VM_DELETED_CODE = "VmDeleted"
_VM_ID = re.compile(
    r"^/subscriptions/([^/]+)/resourcegroups/([^/]+)/providers/microsoft\.compute/virtualmachines/([^/]+)$",
    re.IGNORECASE,
)
_ITEM_FILTER = "backupManagementType eq 'AzureIaasVM' and itemType eq 'VM'"


def read_deleted_vm(raw: dict[str, Any]) -> re.Match[str]:
    """The deleted VM's id (as a match: subscription, resource group, name).

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
    uri = data.get("resourceUri")
    match = _VM_ID.match(uri.strip()) if isinstance(uri, str) else None
    if match is None:
        raise PayloadError("data.resourceUri is not a virtual machine id")
    return match


def _protected_sources(
    runtime: Runtime, subscription: str, vm_id: str
) -> list[tuple[str, dict[str, Any]]]:
    """(vault id, item properties) of every protected item backing up ``vm_id``."""
    backup = runtime.clients.backup(subscription)
    vaults = runtime.clients.vaults(subscription).vaults
    found = []
    for vault in call_list(vaults.list_by_subscription_id):
        group = vault.id.strip("/").split("/")[3]
        items = call_list(
            backup.backup_protected_items.list, vault.name, group, filter=_ITEM_FILTER
        )
        for item in items:
            props = dict(item.properties)
            source = str(props.get("sourceResourceId") or props.get("virtualMachineId") or "")
            if (
                source.lower() == vm_id.lower()
                and props.get("protectionState") != "ProtectionStopped"
            ):
                found.append((vault.id, props))
    return found


def _failure(vault_id: str, vm: re.Match[str], event_id: str, at: datetime) -> BackupFailure:
    _, vm_group, vm_name = vm.groups()
    vault_parts = vault_id.strip("/").split("/")
    key = f"{vault_id}|{vm.group(0)}|{event_id}".lower()
    return BackupFailure(
        job_id="vmdeleted-" + hashlib.sha256(key.encode()).hexdigest()[:24],
        subscription_id=vault_parts[1],
        vault_resource_group=vault_parts[3],
        vault_name=vault_parts[7],
        vm_name=vm_name,
        vm_resource_group=vm_group,
        operation="Backup",
        status="Failed",
        errors=(
            ErrorDetail(
                VM_DELETED_CODE, f"The VM was deleted ({DELETE_EVENT}) while still protected."
            ),
        ),
        source=Source.VM_DELETED,
        start_time=at,
        event_id=event_id,
    )


def handle_vm_deleted(event: Any, runtime: Runtime) -> list[Outcome]:
    """Entry of ``on_vm_deleted``: one outcome per protected item of the deleted VM."""
    raw = function_event_to_dict(event)
    event_id = str(raw.get("id") or "")
    try:
        vm = read_deleted_vm(raw)
    except PayloadError as error:
        return [respond(Rejection(str(error), Source.VM_DELETED, excerpt(raw), event_id), runtime)]
    subscription = vm.group(1)
    if not runtime.settings.in_scope(subscription):
        reason = f"subscription {subscription} is outside this deployment's scope"
        return [respond(Rejection(reason, Source.VM_DELETED, excerpt(raw), event_id), runtime)]
    at = raw.get("eventTime") or raw.get("time")
    moment = at if isinstance(at, datetime) else datetime.now(UTC)
    items = _protected_sources(runtime, subscription, vm.group(0))
    if not items:
        log.info("deleted VM %s had no active backup protection", vm.group(0))
    return [respond(_failure(vault_id, vm, event_id, moment), runtime) for vault_id, _ in items]
