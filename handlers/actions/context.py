"""What an action works with: :class:`ActionContext` (one incident) over :class:`Services`.

Every step an action takes is written to the incident's action log (ETag-guarded), so a
redelivery can tell what already happened and never does it twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from handlers.actions.registry import ACTIONS
from handlers.azure.backup import ItemApi, VaultApi, job_state
from handlers.azure.clients import AzureClients
from handlers.azure.workloads import WorkloadItemApi, matches, workload_items
from handlers.core.incident import Incident, IncidentStatus, logged_detail
from handlers.core.model import ProtectedItemRef, Workload
from handlers.core.settings import Settings
from handlers.outbound import telemetry
from handlers.storage import RetryQueue, Storage

if TYPE_CHECKING:
    from handlers.actions.desk import TicketDesk, TicketResult
    from handlers.outbound.notify import Notifier


class Services(Protocol):
    """The services actions use (the pipeline's runtime provides them)."""

    settings: Settings
    storage: Storage
    clients: AzureClients
    #: The time as actions see it (UTC; tests move it).
    clock: Callable[[], datetime]

    @property
    def tickets(self) -> TicketDesk: ...

    @property
    def notifier(self) -> Notifier: ...

    @property
    def retry_queue(self) -> RetryQueue: ...


class ItemUnresolvedError(RuntimeError):
    """The job names no container and the vault does not say which item is the VM's."""


@dataclass
class ActionContext:
    """One incident being acted on."""

    services: Services
    pk: str
    rk: str
    _api: ItemApi | WorkloadItemApi | None = field(default=None, init=False, repr=False)

    def incident(self) -> Incident:
        """The incident as stored now."""
        return self.services.storage.incidents.get(self.pk, self.rk)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def now(self) -> datetime:
        """The time now, from the runtime's clock."""
        return self.services.clock()

    def params(self, action_name: str) -> dict[str, Any]:
        """The action's parameters as the rule gave them (recorded on the incident), completed
        with the defaults the action declares."""
        return ACTIONS[action_name].with_defaults(self.incident().action_params)

    @property
    def api(self) -> ItemApi | WorkloadItemApi:
        """The item's API; resolves the item from the Backup API first when the job did not
        name it (see :meth:`resolve_item` and :meth:`resolve_workload_item`)."""
        if self._api is None:
            incident = self.incident()
            vm = incident.Workload == Workload.VM
            self._api = self.resolve_item() if vm else self.resolve_workload_item(incident)
        return self._api

    def resolve_item_now(self) -> None:
        """Resolve the incident's item before anything is keyed by it (see :attr:`api`)."""
        self.api  # noqa: B018 - the property resolves and records the item once

    def resolve_workload_item(self, incident: Incident) -> WorkloadItemApi:
        """The protected database or share of a workload incident.

        The item an alert named is checked against the job's names for it; otherwise the
        vault's items of the workload are searched by the job's names. The item found is
        written on the incident once (``item resolved``).

        :raises ItemUnresolvedError: no item, or several, fit: never a guess.
        """
        clients, vault = self.services.clients, incident.item.vault
        candidates = [
            item
            for item in workload_items(clients, vault, incident.Workload)
            if matches(item, incident.Entity, incident.StorageAccount)
        ]
        if incident.ItemId:  # named by the source: only if the vault's names agree
            candidates = [c for c in candidates if c.id.lower() == incident.ItemId.lower()]
        if len(candidates) != 1:
            named = ", ".join(c.id for c in candidates) or "none"
            label = Workload.LABELS[incident.Workload]
            raise ItemUnresolvedError(
                f"vault {incident.VaultName} has {len(candidates)} protected {label} item(s) "
                f"for {incident.Entity!r}: {named}"
            )
        item = candidates[0]
        if item.id != incident.ItemId:
            self._record_item(item.id, item.name)
        return WorkloadItemApi(clients, item, incident.Entity, incident.BackupType)

    def _record_item(self, item_id: str, name: str) -> None:
        def record(stored: Incident) -> None:
            stored.ItemId, stored.ProtectedItem = item_id, name
            stored.log("item", "resolved", f"the job's item is {name}", ref=item_id)

        self.services.storage.incidents.mutate(self.pk, self.rk, record)

    def resolve_item(self) -> ItemApi:
        """The protected item of the incident, for the item calls.

        A job that names its container says which VM it is; one that does not (Azure's job
        details need not carry ``containerName``) is matched by VM name among the vault's
        protected Azure VM items, and the VM's id comes from the item's ``sourceResourceId``.
        The result is written on the incident once, so later steps read it from there.

        :raises ItemUnresolvedError: no item, or several, carry the VM's name: never a guess.
        """
        incident = self.incident()
        clients = self.services.clients
        if incident.VmResourceGroup:
            return ItemApi(clients, incident.item)
        candidates = VaultApi(clients, incident.item.vault).vm_items(incident.VmName)
        vms = [c.vm for c in candidates if c.vm is not None]
        if len(vms) != 1 or len(candidates) != 1:
            named = ", ".join(c.source_resource_id or c.id for c in candidates) or "none"
            raise ItemUnresolvedError(
                f"the job names no container and vault {incident.VaultName} has "
                f"{len(candidates)} protected VM item(s) named {incident.VmName!r}: {named}"
            )
        vm = vms[0]
        item = ProtectedItemRef.from_vault_id(incident.VaultId, vm.resource_group, vm.name)

        def record(stored: Incident) -> None:
            stored.VmResourceGroup, stored.VmId = vm.resource_group, vm.id
            stored.ProtectedItem = item.protected_item_name
            stored.log("item", "resolved", f"the job's VM is {vm.id}", ref=candidates[0].id)

        self.services.storage.incidents.mutate(self.pk, self.rk, record)
        return ItemApi(clients, item, same_name_items=1)

    def log(
        self,
        action_name: str,
        state: str,
        detail: str = "",
        *,
        attempt: int = 0,
        ref: str = "",
        status: str = "",
        also: Callable[[Incident], None] | None = None,
    ) -> Incident:
        """Append to the action log and, optionally, move the incident to ``status`` and make
        another change (``also``) in the same write."""

        def change(incident: Incident) -> None:
            incident.log(action_name, state, detail, attempt=attempt, ref=ref)
            incident.LastSeen = datetime.now(UTC)
            if status:
                incident.Status = status
            if also:
                also(incident)

        incident = self.services.storage.incidents.mutate(self.pk, self.rk, change)
        telemetry.action_step(incident, action_name, state, detail)
        return incident

    def notify(
        self,
        outcome: str,
        text: str,
        incident: Incident | None = None,
        links: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Announce; a failed notification is logged on the incident, never raised.

        :param incident: the incident as just written, when the caller has it (saves a read).
        :param links: (label, URL) pairs the message offers as buttons.
        """
        if not self.services.notifier.enabled:
            return
        incident = incident or self.incident()
        for error in self.services.notifier.announce(outcome, incident, text, links):
            self.log("notify", "failed", error)

    def ticket(self, summary: str) -> tuple[TicketResult, str]:
        """Open or add to the incident's ticket in every sink; each sink that takes it is
        logged at once (``ticket sent``), so a redelivery sends only what is missing. A later
        message of the same incident (an approval's answer, what came of it) is a note in the
        ticket it opened or joined.

        The caller logs the returned state with ``summary`` as its detail: that is how a
        redelivery recognises a message already sent.

        :returns: the result, and ``opened``, ``reopened`` (the item and rule's resolved
            ticket), ``appended`` or ``noted`` (``""`` when the log already said it, on a
            redelivery).
        """
        incident = self.incident()
        ticketing = [a for a in incident.actions if a.action == "ticket"]
        told = [a for a in ticketing if a.state in ("opened", "reopened", "appended", "noted")]
        if any(a.detail == logged_detail(summary) for a in told):
            from handlers.actions.desk import TicketResult

            return TicketResult(told[-1].ref, created=False), ""
        if told:
            result = self.services.tickets.note(incident, told[0].ref, summary)
            for error in result.errors:
                self.log("ticket", "failed", error, ref=result.ticket_id)
            return result, "noted"
        sent = frozenset(a.detail for a in ticketing if a.state == "sent")
        result = self.services.tickets.open_or_append(
            incident,
            summary,
            sent,
            on_sent=lambda sink, ref: self.log("ticket", "sent", sink, ref=ref),
        )
        for error in result.errors:
            self.log("ticket", "failed", error, ref=result.ticket_id)
        state = "opened" if result.created else "reopened" if result.reopened else "appended"
        said = any(a.state == state and a.ref == result.ticket_id for a in ticketing)
        return result, "" if said else state

    def escalate(self, reason: str) -> Incident:
        """Hand the incident to a person: a ticket with the remediation, status escalated."""
        result, state = self.ticket(reason)
        escalated = IncidentStatus.ESCALATED
        if not state:  # a redelivery: the ticket was opened or appended to already
            return self.log("ticket", "checked", reason, ref=result.ticket_id, status=escalated)
        incident = self.log("ticket", state, reason, ref=result.ticket_id, status=escalated)
        self.notify("ticket_reopened" if state == "reopened" else "ticket_opened", reason, incident)
        return incident

    def failure_unconfirmed(self, action_name: str, attempt: int = 0) -> bool:
        """Re-read the job: when the Backup API does not report it failed, reject the incident.

        The event is never trusted for an action; a job the API does not show as failed
        means the payload was stale or wrong, and nothing is done about it.
        """
        incident = self.incident()
        vault = VaultApi(self.services.clients, incident.item.vault)
        status = job_state(vault.job_details(incident.JobId)).status
        if status.lower() == "failed":
            return False
        reason = f"the Backup API reports job {incident.JobId} as {status}, not Failed"
        self.log(action_name, "skipped", reason, attempt=attempt, status=IncidentStatus.REJECTED)
        return True

    def resolve(self, action_name: str, reason: str, *, attempt: int = 0, ref: str = "") -> None:
        """The incident needs nothing more: resolve it and its open ticket, if any."""
        resolved = IncidentStatus.RESOLVED
        incident = self.log(
            action_name, "succeeded", reason, attempt=attempt, ref=ref, status=resolved
        )
        ticket_id = self.services.tickets.resolve(incident, reason)
        if ticket_id:
            incident = self.log("ticket", "resolved", reason, ref=ticket_id)
        self.notify("resolved", reason, incident)
