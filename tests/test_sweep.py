"""The orphan sweep (issue #12 item 3) against the simulator and Azurite: protected VM items
whose VM ARM answers 404 for (and that did not move) are listed, or taken through the
VM-deleted path's ``stop_protection`` action; nothing else is touched."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.audit import health
from handlers.azure.backup import ItemApi
from handlers.cli.main import EXIT_FAILED, EXIT_OK, main
from handlers.core.incident import IncidentStatus
from handlers.core.model import ProtectedItemRef
from handlers.pipeline.runtime import Runtime
from handlers.sweep import report as sweep_report
from handlers.sweep.orphans import STOP_CALLS_BESIDES_VM_LIST, on_timer, sweep
from sandbox.receivers import Receivers
from sandbox.simulator import AzureSimulator
from tests.conftest import FAST_CLIENTS
from tests.world import SUB, VAULT_PREFIX, VAULT_RG, incident_of, log_of

NOW = datetime.now(UTC)


@dataclasses.dataclass
class Estate:
    """Two vaults: in ``rsv-a`` a live VM, an orphan with three recovery points, a moved VM and
    an orphan whose protection is stopped already; in ``rsv-b`` one more orphan."""

    sim: AzureSimulator
    vaults: dict[str, str]
    vms: dict[str, str]
    seeded: int  # calls made while seeding

    def state(self, vault: str, vm: str, group: str = "rg-app") -> str:
        item = self.sim.get_protected_item(self.vaults[vault], vm, group)
        return item["properties"]["protectionState"]


def _protect(sim: AzureSimulator, vault: str, name: str) -> str:
    vm = sim.add_vm(SUB, "rg-app", name)
    sim.protect_vm(vault, vm["id"])
    return vm["id"]


@pytest.fixture
def estate(sim: AzureSimulator, live: Runtime) -> Estate:
    a = sim.add_vault(SUB, VAULT_RG, "rsv-a")["id"]
    b = sim.add_vault(SUB, VAULT_RG, "rsv-b")["id"]
    vms = {name: _protect(sim, a, name) for name in ("vm-live", "vm-gone", "vm-moved", "vm-old")}
    vms["vm-gone-b"] = _protect(sim, b, "vm-gone-b")
    for hours in (30, 6):  # two more completed backups: three recovery points in all
        start = NOW - timedelta(hours=hours)
        sim.add_job(a, vm_name="vm-gone", vm_resource_group="rg-app", status="Completed",
                    start_time=start)  # fmt: skip
    item = ProtectedItemRef.from_vault_id(a, "rg-app", "vm-old")
    ItemApi(live.clients, item).stop_protection()  # stopped by a person long ago
    for name in ("vm-gone", "vm-old", "vm-gone-b"):
        sim.delete_vm(vms[name])
    sim.move_vm(vms["vm-moved"], "rg-elsewhere")
    return Estate(sim, {"rsv-a": a, "rsv-b": b}, vms, len(sim.calls))


@pytest.fixture
def sweeping(live: Runtime) -> Runtime:
    settings = dataclasses.replace(live.settings, subscription_ids=frozenset({SUB}))
    return Runtime.from_settings(settings, FAST_CLIENTS)


def _calls(sim: AzureSimulator, since: int = 0) -> list[Any]:
    return sim.calls[since:]


def _puts(estate: Estate) -> list[Any]:
    """Protection changes since the estate was seeded (its own stop of vm-old excluded)."""
    return [c for c in _calls(estate.sim, estate.seeded) if c.route == "item_put"]


def test_dry_run_lists_only_orphans_with_their_backups_and_changes_nothing(
    sweeping: Runtime, estate: Estate
) -> None:
    before = len(estate.sim.calls)

    report = sweep(sweeping, act=False)

    assert sorted(o.vm for o in report.orphans) == ["vm-gone", "vm-gone-b"]
    gone = next(o for o in report.orphans if o.vm == "vm-gone")
    assert (gone.vault, gone.protection_state, gone.outcome) == ("rsv-a", "Protected", "listed")
    assert gone.recovery_points == 3
    assert gone.last_backup_status == "Completed"
    last = datetime.fromisoformat(gone.last_backup_time)
    assert abs(last - (NOW - timedelta(hours=6))) < timedelta(seconds=1)
    assert gone.oldest_point < gone.newest_point
    assert [(m.vm_id, m.moved_to) for m in report.moved] == [
        (estate.vms["vm-moved"], estate.vms["vm-moved"].replace("rg-app", "rg-elsewhere"))
    ]
    assert report.errors == {} and report.unchecked == [] and not report.acting
    assert report.calls == len(_calls(estate.sim, before))  # counted on the wire, every call
    assert {c.method for c in _calls(estate.sim, before)} == {"GET"}
    assert list(sweeping.storage.incidents.query()) == []
    row = sweeping.storage.sweeps.latest()
    assert row is not None and (row["Orphans"], row["Moved"], row["Stopped"]) == (2, 1, 0)
    assert {o["Vm"] for o in sweeping.storage.sweeps.orphans(row)} == {"vm-gone", "vm-gone-b"}


def test_live_run_stops_only_the_orphans_through_the_action_once(
    sweeping: Runtime, estate: Estate, receivers: Receivers
) -> None:
    listing = sweep(sweeping, act=False)  # changes nothing: the stops' own calls are the rest

    report = sweep(sweeping, act=True)

    assert {o.vm: o.outcome for o in report.orphans} == {
        "vm-gone": sweep_report.STOPPED,
        "vm-gone-b": sweep_report.STOPPED,
    }
    assert estate.state("rsv-a", "vm-gone") == "ProtectionStopped"
    assert estate.state("rsv-b", "vm-gone-b") == "ProtectionStopped"
    assert estate.state("rsv-a", "vm-live") == "Protected"
    assert estate.state("rsv-a", "vm-moved") == "Protected"  # moved: left alone
    puts = _puts(estate)
    assert len(puts) == 2 and all("vm-gone" in c.path for c in puts)
    for orphan in report.orphans:
        incident = incident_of(sweeping, orphan.incident)
        assert (incident.Source, incident.Status) == ("sweep", IncidentStatus.RESOLVED)
        assert incident.Rule == "vm-not-found"
        steps = log_of(incident)
        assert ("stop_protection", "started") in steps and ("ticket", "opened") in steps
        assert steps.index(("stop_protection", "succeeded")) < steps.index(("ticket", "opened"))
    assert len(receivers.tickets("servicenow")) == 2
    # The action verified again (its own VM GET after the sweep's), within the reserved calls.
    vm_gets = [c for c in estate.sim.calls_to(route="vm_get") if c.path.endswith("/vm-gone")]
    assert len(vm_gets) == 3  # the listing's, this sweep's, the action's
    for orphan in report.orphans:  # the VM list is one page here
        assert 0 < orphan.stop_calls <= STOP_CALLS_BESIDES_VM_LIST + 1
    assert report.calls - listing.calls == sum(o.stop_calls for o in report.orphans)

    again = sweep(sweeping, act=True)  # next week: the items are stopped, nothing to do

    assert again.orphans == [] and len(_puts(estate)) == 2
    assert len(list(sweeping.storage.incidents.query())) == 2


def test_a_stop_interrupted_after_its_put_is_resumed_by_the_next_sweep_without_a_second_put(
    sweeping: Runtime, estate: Estate
) -> None:
    estate.sim.faults.add("item_operation_status", "500", times=4)  # every try of one poll

    first = sweep(sweeping, act=True)

    (cut,) = [o for o in first.orphans if o.outcome == "interrupted"]
    assert estate.state("rsv-a", cut.vm) == "ProtectionStopped"  # the PUT had gone through
    assert incident_of(sweeping, cut.incident).Status not in IncidentStatus.FINAL
    later = dataclasses.replace(sweeping, clock=lambda: datetime.now(UTC) + timedelta(hours=1))

    second = sweep(later, act=True)  # the lease ran out: taken up again, though stopped

    assert [(o.vm, o.outcome) for o in second.orphans] == [(cut.vm, sweep_report.STOPPED)]
    assert [c.path.rsplit(";", 1)[-1] for c in _puts(estate)].count(cut.vm) == 1
    incident = incident_of(sweeping, cut.incident)
    assert incident.Status == IncidentStatus.RESOLVED
    assert ("ticket", "opened") in log_of(incident)
    assert sweep(later, act=True).orphans == []  # resolved: nothing more to take up


def test_an_orphan_the_action_refuses_to_stop_becomes_a_ticket(
    sweeping: Runtime, estate: Estate
) -> None:
    estate.sim.faults.add("item_put", "mua_403")

    report = sweep(sweeping, act=True)

    refused = [o for o in report.orphans if o.outcome != sweep_report.STOPPED]
    assert [o.outcome for o in refused] == ["not stopped: a ticket says why"]
    incident = incident_of(sweeping, refused[0].incident)
    assert incident.Status == IncidentStatus.ESCALATED
    # the simulator's MUA refusal names the Resource Guard: blocked for good, never retried
    assert ("stop_protection", "blocked") in log_of(incident)
    assert estate.state("rsv-a", refused[0].vm) == "Protected"


def test_a_failing_vault_is_skipped_and_reported_and_the_others_are_swept(
    sweeping: Runtime, estate: Estate
) -> None:
    estate.sim.faults.add("item_list", "403")  # the first vault's item listing is denied

    report = sweep(sweeping, act=True)

    (failed,) = report.errors
    assert failed in estate.vaults.values() and "AuthorizationFailed" in report.errors[failed]
    assert report.vaults == 1
    found = {o.vault_id for o in report.orphans}
    assert found and failed not in found
    stopped = _puts(estate)
    assert stopped and all(failed.lower() not in c.path.lower() for c in stopped)
    row = sweeping.storage.sweeps.latest()
    assert row is not None and row["Errors"] == 1


def test_the_run_stops_at_its_arm_call_budget_and_says_what_it_left(
    sweeping: Runtime, estate: Estate
) -> None:
    budget = 5
    small = Runtime.from_settings(
        dataclasses.replace(sweeping.settings, sweep_max_arm_calls=budget), FAST_CLIENTS
    )
    before = len(estate.sim.calls)

    report = sweep(small, act=False)

    assert len(_calls(estate.sim, before)) == report.calls <= budget
    assert report.unchecked, "the budget must have left work"
    assert any(estate.vaults["rsv-b"] in scope for scope in report.unchecked)
    row = small.storage.sweeps.latest()
    assert row is not None and row["Unchecked"] == len(report.unchecked)


def test_a_stop_starts_only_when_the_budget_can_finish_it(
    sweeping: Runtime, estate: Estate
) -> None:
    listing = sweep(sweeping, act=False)  # what one list-only pass costs
    first = next(iter(listing.orphans))
    tight = Runtime.from_settings(
        dataclasses.replace(sweeping.settings, sweep_max_arm_calls=listing.calls), FAST_CLIENTS
    )

    report = sweep(tight, act=True)

    assert report.orphans[0].vm == first.vm
    assert report.orphans[0].outcome.startswith("not stopped yet")
    assert _puts(estate) == []
    assert report.calls <= listing.calls


def test_the_timer_is_off_by_default_and_records_its_runs(
    sweeping: Runtime, estate: Estate, as_app_settings: Any
) -> None:
    before = len(estate.sim.calls)
    assert sweeping.settings.sweep_mode == "off"
    assert on_timer(sweeping) is None
    assert _calls(estate.sim, before) == []

    import function_app

    listing = as_app_settings(dataclasses.replace(sweeping.settings, sweep_mode="list"))
    function_app.sweep_orphans(None)  # type: ignore[arg-type]

    row = listing.storage.sweeps.latest()
    assert row is not None and (row["Orphans"], row["Acting"]) == (2, False)
    assert _puts(estate) == []
    queues = (listing.retry_queue, listing.poison_queue)
    report = health.check(listing.storage, listing.settings, listing.dead_letters, queues, NOW)
    (check,) = [c for c in report.checks if c.name == "orphan sweep"]
    assert check.status == health.DEGRADED
    assert any("vm-gone-b" in detail for detail in check.details)


def test_stop_mode_acts_only_without_dry_run(sweeping: Runtime, estate: Estate) -> None:
    dry = dataclasses.replace(sweeping.settings, sweep_mode="stop", dry_run=True)
    assert on_timer(Runtime.from_settings(dry, FAST_CLIENTS)).acting is False  # type: ignore[union-attr]
    assert _puts(estate) == []
    live = dataclasses.replace(dry, dry_run=False)
    assert on_timer(Runtime.from_settings(live, FAST_CLIENTS)).stopped == 2  # type: ignore[union-attr]


def test_cli_sweep_prints_a_table_or_json(
    sweeping: Runtime, estate: Estate, as_app_settings: Any
) -> None:
    as_app_settings(dataclasses.replace(sweeping.settings, sweep_mode="stop", dry_run=False))
    table, data = io.StringIO(), io.StringIO()

    assert main(["sweep", "--dry-run"], table) == EXIT_OK
    assert main(["sweep", "--dry-run", "--format", "json"], data) == EXIT_OK

    text = table.getvalue()
    assert "vm-gone-b" in text and "rsv-b" in text and "listed only, nothing changed" in text
    assert "moved, left alone: vm-moved" in text
    found = json.loads(data.getvalue())
    assert {o["vm"]: o["recovery_points"] for o in found["orphans"]} == {
        "vm-gone": 3,
        "vm-gone-b": 1,
    }
    assert _puts(estate) == []  # --dry-run wins over SWEEP_MODE=stop


def test_cli_sweep_exits_1_when_a_vault_was_skipped(
    sweeping: Runtime, estate: Estate, as_app_settings: Any
) -> None:
    as_app_settings(sweeping.settings)
    estate.sim.faults.add("vault_list", "403")
    assert main(["sweep"], io.StringIO()) == EXIT_FAILED


def test_no_subscription_to_sweep_is_reported(live: Runtime, sim: AzureSimulator) -> None:
    report = sweep(live, act=False)
    assert "SUBSCRIPTION_IDS" in report.errors and sim.calls == []


def test_findings_name_the_vault_prefix() -> None:
    orphan = sweep_report.Orphan(
        f"{VAULT_PREFIX}/rsv-x",
        "item",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/v1",
        "Protected",
        "",
        "",
    )
    assert (orphan.vault, orphan.vm) == ("rsv-x", "v1")


def _orphan_checks(runtime: Runtime) -> tuple[health.Check, Any]:
    """The health check of the sweep, and the digest's orphans, as they read the last run."""
    from handlers.digest.daily import compose_for

    queues = (runtime.retry_queue, runtime.poison_queue)
    report = health.check(runtime.storage, runtime.settings, runtime.dead_letters, queues, NOW)
    (check,) = [c for c in report.checks if c.name == "orphan sweep"]
    digest = compose_for(runtime.storage, NOW - timedelta(days=1), NOW, dry_run=True)
    return check, [w for w in digest.waiting if w.kind == "orphan"]


def test_health_and_the_digest_see_every_orphan_of_a_large_first_sweep(
    sweeping: Runtime, sim: AzureSimulator
) -> None:
    vault = sim.add_vault(SUB, VAULT_RG, "rsv-many")["id"]
    names = [f"vm-deleted-long-ago-{n:03d}" for n in range(40)]
    for name in names:  # 40 orphans' findings came to about 38,000 characters of JSON
        sim.delete_vm(_protect(sim, vault, name))

    report = sweep(sweeping, act=False)

    assert len(report.orphans) == 40
    check, waiting = _orphan_checks(sweeping)
    assert check.status == health.DEGRADED
    assert [d.split(" in ")[0] for d in check.details] == names[:20]
    assert sorted(w.item for w in waiting) == names


def test_orphans_counted_without_rows_are_shown_as_a_number_never_as_none(
    sweeping: Runtime,
) -> None:
    sweeping.storage.sweeps.record(NOW, '{"truncated": true}', Orphans=31, Stopped=1)

    check, waiting = _orphan_checks(sweeping)

    assert check.status == health.DEGRADED
    assert "30 more orphaned item(s) not listed: backup-responder sweep" in check.details
    assert [(w.item, w.detail) for w in waiting] == [
        ("30 more orphaned item(s)", "not listed: backup-responder sweep")
    ]


def test_the_run_stops_starting_steps_at_its_time_budget_and_records_itself(
    sweeping: Runtime, estate: Estate
) -> None:
    from sandbox.clock import SimulatedClock

    clock = SimulatedClock()
    settings = dataclasses.replace(
        sweeping.settings, arm_reads_per_second=10, arm_read_burst=1, sweep_time_budget_seconds=1
    )
    paced = Runtime.from_settings(settings, FAST_CLIENTS, clock.pace())

    report = sweep(paced, act=True)  # a read every 0.1 s: about ten of the estate's reads

    assert report.left_because == "the run's time budget is spent"
    assert any(estate.vaults["rsv-b"] in scope for scope in report.unchecked)
    assert 1 <= clock.now() <= 1.2  # it ended at its budget, not a step later
    row = paced.storage.sweeps.latest()
    assert row is not None and row["Unchecked"] == len(report.unchecked) > 0
    assert "time budget" in row["Findings"]


def test_the_run_is_recorded_however_it_ends(
    sweeping: Runtime, estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers.sweep import orphans

    def cancelled(*_: Any) -> Any:
        raise KeyboardInterrupt  # what no "except Exception" stops (the host cancelling)

    monkeypatch.setattr(orphans, "vault_refs", cancelled)

    with pytest.raises(KeyboardInterrupt):
        sweep(sweeping, act=True)

    row = sweeping.storage.sweeps.latest()
    assert row is not None and row["EndedAt"] >= row["StartedAt"]


def test_runs_the_budget_cuts_short_go_on_where_the_last_stopped_and_health_says_so(
    sweeping: Runtime, estate: Estate
) -> None:
    from handlers.digest import render
    from handlers.digest.daily import compose_for

    # 7 calls: the vault list, rsv-a's items, vm-gone (3) and vm-live (1), then vm-moved's
    # list cannot be paid for; the same first vault every week, were runs to start over.
    short = Runtime.from_settings(
        dataclasses.replace(sweeping.settings, sweep_max_arm_calls=7), FAST_CLIENTS
    )

    runs = [sweep(short, act=False) for _ in range(2)]

    assert [o.vm for o in runs[0].orphans] == ["vm-gone"]
    assert [o.vm for o in runs[1].orphans] == ["vm-gone-b"]  # the tail of the estate
    assert all(r.unchecked for r in runs)
    assert runs[1].unchecked == [f"{estate.vaults['rsv-a']} (2 item(s) left)"]  # its head, last
    check, _ = _orphan_checks(short)
    assert check.status == health.DEGRADED
    assert check.details[0].startswith("the last 2 sweeps each left work unchecked")
    digest = compose_for(short.storage, NOW - timedelta(days=1), NOW, dry_run=False)
    assert digest.sweep_left == len(runs[1].unchecked)
    assert "scope(s) unchecked (its budget ran out)" in render.headline(digest)


def test_each_stop_stays_within_what_it_reserved_guard_reads_and_pages_included(
    sweeping: Runtime, estate: Estate
) -> None:
    # Multi-User Authorization on in rsv-a (a guard that does not protect the stop: the action
    # reads the vault and its proxies, then stops), and one VM per page of the VM list.
    estate.sim.guard_vault(estate.vaults["rsv-a"], f"{VAULT_PREFIX}-guard", protects_stop=False)
    estate.sim.page_size = 1
    vm_list_pages = len([v for v in estate.vms if v not in ("vm-gone", "vm-old", "vm-gone-b")])
    reserved = STOP_CALLS_BESIDES_VM_LIST + vm_list_pages

    report = sweep(sweeping, act=True)

    stops = {o.vm: o.stop_calls for o in report.orphans if o.outcome == sweep_report.STOPPED}
    # Each all but the spare poll; in rsv-b, whose vault says MUA is Disabled, no proxy read.
    assert stops == {"vm-gone": reserved - 1, "vm-gone-b": reserved - 2}


def test_no_budget_is_exceeded_between_the_pages_of_a_listing(
    sweeping: Runtime, estate: Estate
) -> None:
    estate.sim.page_size = 1  # every listing takes several pages
    listing = sweep(sweeping, act=False)

    for limit in range(1, listing.calls + 1):
        limited = Runtime.from_settings(
            dataclasses.replace(sweeping.settings, sweep_max_arm_calls=limit), FAST_CLIENTS
        )
        before = len(estate.sim.calls)
        report = sweep(limited, act=False)
        assert len(_calls(estate.sim, before)) == report.calls <= limit
