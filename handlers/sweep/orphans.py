"""One sweep: every protected Azure VM item of every vault of the configured subscriptions,
checked against ARM; orphans listed, or taken through the stop path.

Per item, in order, each step only when the budget (``SWEEP_MAX_ARM_CALLS``, counted on the
wire by :class:`~handlers.azure.budget.CallBudget`) can pay for it: the VM's GET (200: not an
orphan; only a 404 goes on), the subscription's VM list (a VM of the same name elsewhere is a
move: left alone and reported), the item's recovery points (what a stop keeps). Items whose
protection is stopped already are skipped, unless a sweep's stop of them was interrupted
(its incident is not final): that one is taken up again, as the VM-deleted path does.

A subscription or vault whose listing fails is skipped and reported; a failing item is
reported and the next one checked. When the budget is spent (``SWEEP_MAX_ARM_CALLS`` calls,
or ``SWEEP_TIME_BUDGET_SECONDS`` on the Azure layer's clock, so that a run ends before the
function's timeout: a stop starts only when its polls fit too) the run ends and reports what it
did not check; its row is written however the run ends, with where it stopped (a vault and
an item): the next run begins there and wraps round to the beginning, so runs the budget cuts
short cover the whole estate in turn instead of the same first vaults every time (vaults and
items are taken in a fixed order, by id).

Acting (``SWEEP_MODE=stop`` and ``DRY_RUN=false``), each orphan becomes the same
``VmDeleted`` failure a VM-deleted event makes, with a fixed key per vault and VM, through
``respond()``: the ``stop_protection`` action verifies again (ARM 404, not moved, the item's
state) before its PUT, keeps every recovery point, opens the owner's ticket and logs every
step on the incident. The key makes a later sweep of the same orphan a duplicate that only
counts, and lets it resume a stop a crash interrupted.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime

from handlers.azure.backup import ItemApi, VaultApi, VmItem, vault_refs, vm_elsewhere, vm_exists
from handlers.azure.budget import CALLS_SPENT, BudgetSpentError, CallBudget
from handlers.core.ids import VaultRef, VmRef
from handlers.core.incident import IncidentStatus
from handlers.core.model import ProtectedItemRef, Source
from handlers.core.outcome import OutcomeKind
from handlers.intake.vm_deleted import deleted_vm_failure
from handlers.pipeline.respond import respond
from handlers.pipeline.runtime import Runtime
from handlers.sweep.report import STOPPED, Moved, Orphan, SweepReport

log = logging.getLogger("backup_responder.sweep")

#: Protection states in which no backup runs any more (nothing will fail, nothing to stop).
INACTIVE = frozenset({"ProtectionStopped", "ProtectionPaused", "BackupsSuspended"})
#: The key of the sweep's failures (per vault and VM): one incident per orphan, ever.
SWEEP_KEY = "orphan-sweep"
MESSAGE = (
    "Found by the orphan sweep: ARM answers 404 for the VM and no VM of its name lives "
    "elsewhere in the subscription, while its backup item is still protected."
)
#: ARM requests a stop takes besides the pages of the subscription's VM list, reserved before
#: it starts (a stop is never left half-way): the action's VM GET, the item GET, the vault GET
#: (its Multi-User Authorization) and its Resource Guard proxies (one page: a vault has at most
#: one guard), the PUT, the operation's polls (two in Azure's recorded stop, and one to spare)
#: and the item GET that ends them.
STOP_CALLS_BESIDES_VM_LIST = 9
#: Polls a stop waits for (``AZURE_POLL_SECONDS`` each), reserved in time before it starts.
STOP_POLLS = 3
TIME_SPENT = "the run's time budget is spent"


@dataclasses.dataclass
class _Run:
    runtime: Runtime
    budget: CallBudget
    report: SweepReport
    deadline: float

    def __post_init__(self) -> None:
        self.clients = self.budget.clients(self.runtime.clients)

    def shortfall(self, calls: int = 1, seconds: float = 0.0) -> str:
        """What the run lacks to start a step of ``calls`` ARM requests and ``seconds`` of
        waiting (on the Azure layer's clock), or ``""`` when it can pay for it."""
        if not self.budget.affords(calls):
            return CALLS_SPENT
        if self.clients.clock.now() + seconds > self.deadline:
            return TIME_SPENT
        return ""

    def pay(self, calls: int = 1, seconds: float = 0.0) -> None:
        lacking = self.shortfall(calls, seconds)
        if lacking:
            raise BudgetSpentError(lacking)


def _unfinished(runtime: Runtime, job_id: str) -> str:
    """The sweep incident about an item whose stop was interrupted (not final), or ``""``."""
    incident = runtime.storage.find_incident(job_id)
    if incident is None or incident.Status in IncidentStatus.FINAL:
        return ""
    return incident.IncidentId


def _points(run: _Run, vault: VaultRef, vm: VmRef) -> tuple[int | None, str, str]:
    """How many recovery points the vault keeps for the VM's item, the oldest and newest."""
    if run.shortfall():
        return None, "", ""
    item = ProtectedItemRef.from_vault_id(vault.id, vm.resource_group, vm.name)
    try:
        times = ItemApi(run.clients, item).recovery_point_times()
    except BudgetSpentError:  # a page past the budget: not counted, the orphan still reported
        return None, "", ""
    except Exception as error:  # counting is a courtesy: the orphan is reported regardless
        run.report.errors[item.vm_id] = f"recovery points not read: {error}"[:500]
        return None, "", ""
    if not times:
        return 0, "", ""
    return len(times), times[0].isoformat(), times[-1].isoformat()


def _stop(run: _Run, vault: VaultRef, vm: VmRef, orphan: Orphan, at: datetime) -> Orphan:
    """Take the orphan through the VM-deleted path (the action verifies and stops)."""
    failure = deleted_vm_failure(vault, vm, SWEEP_KEY, at, source=Source.SWEEP, message=MESSAGE)
    counted = dataclasses.replace(run.runtime, clients=run.clients)
    try:
        outcome = respond(counted, failure)
    except Exception as error:  # the claim stays: the next sweep resumes this stop
        run.report.errors[orphan.item_id] = f"stop not finished: {error}"[:500]
        return dataclasses.replace(orphan, incident=failure.job_id, outcome="interrupted")
    if outcome.status == IncidentStatus.RESOLVED:
        said = STOPPED
    elif outcome.status == IncidentStatus.ESCALATED:
        said = "not stopped: a ticket says why"
    else:
        said = outcome.status
    if outcome.kind == OutcomeKind.DUPLICATE:
        said = f"seen by an earlier sweep: {outcome.status}"
    return dataclasses.replace(orphan, incident=outcome.job_id, outcome=said)


def _examine(run: _Run, vault: VaultRef, item: VmItem) -> None:
    vm = item.vm
    if vm is None:  # not an ARM VM id (a classic VM): nothing here can confirm it gone
        return
    at = run.report.started
    job_id = deleted_vm_failure(vault, vm, SWEEP_KEY, at).job_id
    interrupted = _unfinished(run.runtime, job_id) if item.protection_state in INACTIVE else ""
    if item.protection_state in INACTIVE and not interrupted:
        return
    run.pay()
    run.report.checked += 1
    if vm_exists(run.clients, vm):
        return
    run.pay()
    listed_from = run.budget.spent
    moved_to = vm_elsewhere(run.clients, vm)
    vm_list_pages = run.budget.spent - listed_from
    if moved_to:
        run.report.moved.append(Moved(vault.id, item.id, vm.id, moved_to))
        return
    count, oldest, newest = _points(run, vault, vm)
    orphan = Orphan(
        vault.id,
        item.id,
        vm.id,
        item.protection_state,
        item.last_backup_time,
        item.last_backup_status,
        count,
        oldest,
        newest,
    )
    if run.report.acting:
        reserved = STOP_CALLS_BESIDES_VM_LIST + vm_list_pages  # the action lists them again
        try:
            run.pay(reserved, STOP_POLLS * run.clients.polling_interval)
        except BudgetSpentError as spent:
            run.report.orphans.append(
                dataclasses.replace(orphan, outcome=f"not stopped yet: {spent}")
            )
            raise
        started = run.budget.spent
        with run.budget.finishing():
            orphan = _stop(run, vault, vm, orphan, at)
        orphan = dataclasses.replace(orphan, stop_calls=run.budget.spent - started)
    else:
        known = run.runtime.storage.find_incident(job_id)
        if known is not None:
            orphan = dataclasses.replace(
                orphan, incident=known.IncidentId, outcome=f"listed; incident {known.Status}"
            )
    run.report.orphans.append(orphan)


def _vaults(run: _Run, subscriptions: list[str]) -> list[VaultRef]:
    """Every vault of the subscriptions, in a fixed order (by id, whatever its case); a
    subscription whose listing fails is skipped and reported."""
    vaults: list[VaultRef] = []
    for index, subscription in enumerate(subscriptions):
        scope = f"/subscriptions/{subscription}"
        try:
            run.pay()
            vaults += vault_refs(run.clients, subscription)
        except BudgetSpentError:  # before the listing or between its pages
            run.report.unchecked += [f"/subscriptions/{s}" for s in subscriptions[index:]]
            raise
        except Exception as error:  # one subscription never stops the others
            run.report.errors[scope] = f"vaults not listed: {error}"[:500]
            log.error("sweep: subscription %s skipped: %s", subscription, run.report.errors[scope])
    return sorted(vaults, key=lambda vault: vault.id.lower())


def _items(run: _Run, vault: VaultRef) -> list[VmItem] | None:
    """The vault's protected VM items in a fixed order, or None when the listing failed."""
    try:
        run.pay()
        items = VaultApi(run.clients, vault).vm_items()
    except BudgetSpentError:  # before the listing or between its pages
        raise
    except Exception as error:  # one vault never stops the others
        run.report.errors[vault.id] = f"{type(error).__name__}: {error}"[:500]
        log.error("sweep: vault %s skipped: %s", vault.id, run.report.errors[vault.id])
        return None
    run.report.vaults += 1
    return sorted(items, key=lambda item: item.id.lower())


@dataclasses.dataclass
class _Ring:
    """The estate in a fixed order, begun where the last run stopped (its cursor) and
    wrapping round, so that runs the budget cuts short cover everything in turn.

    :ivar vaults: every vault, the cursor's (or the next one) first.
    :ivar head: the first vault's items before the cursor's item: checked last.
    """

    vaults: list[VaultRef]
    cursor: tuple[str, str]
    head: list[VmItem] = dataclasses.field(default_factory=list)

    @classmethod
    def begun_at(cls, vaults: list[VaultRef], cursor: tuple[str, str]) -> _Ring:
        start = next((n for n, v in enumerate(vaults) if v.id.lower() >= cursor[0]), 0)
        return cls(vaults[start:] + vaults[:start], cursor)

    def split(self, vault: VaultRef, items: list[VmItem]) -> list[VmItem]:
        """The first vault's items from the cursor's on (the rest are kept for the end)."""
        if vault is not self.vaults[0] or vault.id.lower() != self.cursor[0]:
            return items
        at = next((n for n, i in enumerate(items) if i.id.lower() >= self.cursor[1]), len(items))
        self.head = items[:at]
        return items[at:]

    def left_after(self, index: int) -> list[str]:
        """What stays unchecked when the run stops after vault ``index`` of the ring."""
        before = [f"{self.vaults[0].id} ({len(self.head)} item(s) before where the run began)"]
        return [v.id for v in self.vaults[index + 1 :]] + (before if self.head else [])


def _check(run: _Run, vault: VaultRef, items: list[VmItem], left: list[str]) -> None:
    """Check ``items`` of ``vault``; when the budget is spent, say what is left and where the
    next run resumes."""
    for index, item in enumerate(items):
        try:
            _examine(run, vault, item)
        except BudgetSpentError:
            run.report.resume_at = (vault.id, item.id)
            run.report.unchecked += [f"{vault.id} ({len(items) - index} item(s) left)", *left]
            raise
        except Exception as error:  # one item never stops the others
            run.report.errors[item.id] = f"{type(error).__name__}: {error}"[:500]


def _sweep_ring(run: _Run, ring: _Ring) -> None:
    for index, vault in enumerate(ring.vaults):
        try:
            items = _items(run, vault)
        except BudgetSpentError:
            run.report.resume_at = (vault.id, "")
            run.report.unchecked += [vault.id, *ring.left_after(index)]
            raise
        if items is not None:
            _check(run, vault, ring.split(vault, items), ring.left_after(index))
    if ring.head:
        head, ring.head = ring.head, []
        _check(run, ring.vaults[0], head, [])


def _cursor(runtime: Runtime) -> tuple[str, str]:
    """Where the last run stopped (vault and item id, lower case), or the beginning."""
    last = runtime.storage.sweeps.latest() or {}
    return last.get("NextVault", "").lower(), last.get("NextItem", "").lower()


def sweep(runtime: Runtime, *, act: bool) -> SweepReport:
    """One sweep over every vault of ``SUBSCRIPTION_IDS``, from where the last one stopped;
    orphans stopped only when ``act``.

    The run is recorded in the ``sweeps`` table (health and the digest read it).
    """
    settings = runtime.settings
    report = SweepReport(runtime.clock(), act, settings.sweep_max_arm_calls)
    deadline = runtime.clients.clock.now() + settings.sweep_time_budget_seconds
    run = _Run(runtime, CallBudget(settings.sweep_max_arm_calls), report, deadline)
    subscriptions = sorted(settings.subscription_ids)
    if not subscriptions:
        report.errors["SUBSCRIPTION_IDS"] = "empty: there is no subscription to sweep"
    cursor = _cursor(runtime)
    try:
        _sweep_ring(run, _Ring.begun_at(_vaults(run, subscriptions), cursor))
    except BudgetSpentError as spent:
        report.left_because = str(spent)
        if not any(report.resume_at):  # spent before any vault: begin there again
            report.resume_at = cursor
    finally:  # whatever ends the run, health and the digest see what it did
        report.calls, report.ended = run.budget.spent, runtime.clock()
        runtime.storage.sweeps.record(
            report.started, report.findings(), report.orphan_rows(), **report.counts()
        )
    log.info(
        "sweep: %d orphan(s), %d stopped, %d moved, %d error(s), %d ARM call(s)",
        len(report.orphans),
        report.stopped,
        len(report.moved),
        len(report.errors),
        report.calls,
    )
    return report


def on_timer(runtime: Runtime) -> SweepReport | None:
    """The weekly timer: nothing with ``SWEEP_MODE=off``; otherwise one sweep, acting only
    with ``SWEEP_MODE=stop`` and ``DRY_RUN=false``."""
    settings = runtime.settings
    if settings.sweep_mode == "off":
        log.info("sweep: SWEEP_MODE=off, nothing to do")
        return None
    return sweep(runtime, act=settings.sweep_mode == "stop" and not settings.dry_run)
