"""The local sandbox: the bundled sample events through the real function entry points.

Starts Azurite, the Azure API simulator (HTTPS) and local ticket/chat receivers; seeds the
simulator with the vaults, VMs, protected items and failed jobs the samples describe (the VM
of a "VM not found" sample is deleted); points the app settings at all of them with
``DRY_RUN=false``; then:

1. delivers every sample to ``function_app.on_backup_failure``, as the worker would;
2. plays the Functions host for the retry queue (``function_app.run_retry``): delayed
   retries start on-demand backups, follow-ups read the new jobs;
3. delivers every sample again (redelivery: duplicates only);
4. shows an approval: with ``APPROVAL_REQUIRED=true``, one more VM is deleted and its
   ``ResourceDeleteSuccess`` event goes to ``function_app.on_vm_deleted``; the verified stop
   waits, the Approve link the Slack message carries is opened and confirmed through
   ``function_app.approvals`` (GET, then the page's POST), and protection is stopped;
5. runs the weekly orphan sweep (``function_app.sweep_orphans``, ``SWEEP_MODE=stop``): a
   protected VM deleted while nothing watched has its protection stopped (data kept) through
   the same action; a VM moved to another resource group is left alone;
6. fires the morning digest's timer twice (``function_app.send_digest``): one digest reaches
   Teams, Slack and the webhook;

and prints what was decided and done, the incident table, and what reached Azure, the
ticket systems and chat. Everything stops at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from sandbox.azurite import Azurite
from sandbox.receivers import (
    DEVOPS_PAT,
    DEVOPS_PROJECT,
    SERVICENOW_PASSWORD,
    SERVICENOW_USER,
    Receivers,
)
from sandbox.simulator import AzureSimulator

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "events"
TOKEN = "sandbox-token"
#: The approval scene: its own vault and a VM deleted while protected.
APPROVAL_SUB = "6f0c3a52-8d1e-4b7a-9c55-2f1d8e4a7b10"
APPROVAL_VAULT, APPROVAL_GROUP, APPROVAL_VM = "rsv-approvals", "rg-retired", "vm-retired-01"
APPROVAL_SETTINGS = {
    "APPROVAL_REQUIRED": "true",
    "APPROVAL_SECRET": "sandbox-approval-secret-0123456789abcdef",
    "APPROVAL_BASE_URL": "http://localhost:7071",  # where `func start` would serve the app
}


class _Outcomes(logging.Handler):
    """Collects the one log line ``respond()`` writes per event."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "outcome"):
            self.records.append(record)


def _as_trigger_input(raw: Any) -> Any:
    """What the worker hands the function for the JSON event ``raw``."""
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum

    return EventGridEventInConverter.decode(Datum(json.dumps(raw), "json"), trigger_metadata=None)


def _seed(sim: AzureSimulator, events: list[tuple[str, Any]]) -> None:
    """Make the simulated Azure agree with the samples (the actions verify against it)."""
    from handlers.core.model import BackupFailure, Workload
    from handlers.intake.events import parse
    from rules import default_rule_set

    rules = default_rule_set()
    vaults: set[str] = set()
    jobs: set[str] = set()
    for _, raw in events:
        failure = parse(raw)
        if not isinstance(failure, BackupFailure) or failure.job_id in jobs:
            continue
        jobs.add(failure.job_id)
        if failure.vault_id not in vaults:
            vaults.add(failure.vault_id)
            sim.add_vault(failure.subscription_id, failure.vault_resource_group, failure.vault_name)
        decision = rules.classify(
            failure.codes, failure.message, failure.operation, failure.workload
        )
        gone = decision.category == "vm_missing"
        if failure.workload == Workload.VM:
            _seed_vm(sim, failure, gone)
        elif failure.workload == Workload.FILES:
            _seed_share(sim, failure, decision.rule)
        else:
            _seed_database(sim, failure)


#: Protected VMs no sample mentions: one deleted while nothing watched (no event, no failure
#: yet), one moved to another resource group. The sweep finds the first and leaves the second.
FORGOTTEN_VM, MOVED_VM, LEGACY_GROUP = "vm-forgotten-01", "vm-moved-01", "rg-legacy"


def _seed_orphans(sim: AzureSimulator, events: list[tuple[str, Any]]) -> str:
    """Seed what the weekly sweep is for, in the first sample's vault; returns its
    subscription."""
    from handlers.core.model import BackupFailure
    from handlers.intake.events import parse

    first = next(f for f in (parse(raw) for _, raw in events) if isinstance(f, BackupFailure))
    sub = first.subscription_id
    forgotten, moved = (sim.add_vm(sub, LEGACY_GROUP, name) for name in (FORGOTTEN_VM, MOVED_VM))
    for vm in (forgotten, moved):
        sim.protect_vm(first.vault_id, vm["id"])
    sim.delete_vm(forgotten["id"])
    sim.move_vm(moved["id"], "rg-new-home")
    return sub


def _number(failure: Any) -> int:
    code = failure.errors[0].code if failure.errors else "0"
    return int(code) if code.isdigit() else 0


def _seed_vm(sim: AzureSimulator, failure: Any, gone: bool) -> None:
    vm = sim.add_vm(failure.subscription_id, failure.vm_resource_group, failure.vm_name)
    sim.protect_vm(failure.vault_id, vm["id"])
    sim.add_job(
        failure.vault_id,
        job_id=failure.job_id,
        vm_name=failure.vm_name,
        vm_resource_group=failure.vm_resource_group,
        operation=failure.operation,
        error_code=_number(failure),
        error_string=failure.message,
        start_time=failure.start_time,
        end_time=failure.end_time,
    )
    if gone:
        sim.delete_vm(vm["id"])


def _workload_job(sim: AzureSimulator, failure: Any, item: Any) -> None:
    error = failure.errors[0] if failure.errors else None
    sim.add_workload_job(
        failure.vault_id,
        item,
        job_id=failure.job_id,
        operation=failure.operation,
        error_code=_number(failure),
        error_title=error.title if error else "",
        error_string=failure.message,
        start_time=failure.start_time,
        end_time=failure.end_time,
    )


def _seed_database(sim: AzureSimulator, failure: Any) -> None:
    """A database whose job names it ``[instance/]db [host]``; a dropped database cannot be
    seen in ARM, so nothing is deleted for it."""
    from handlers.core.model import Workload

    names, host = failure.entity.rsplit(" [", 1)
    instance, _, database = names.rpartition("/")
    vm = sim.add_vm(failure.subscription_id, "rg-db", host.rstrip("]"))
    if failure.workload == Workload.SQL:
        item = sim.protect_sql_database(
            failure.vault_id, vm, database=database, instance=instance or "MSSQLSERVER"
        )
    else:
        item = sim.protect_hana_database(failure.vault_id, vm, database=database, sid="HXE")
    _workload_job(sim, failure, item)


def _seed_share(sim: AzureSimulator, failure: Any, rule: str) -> None:
    account = sim.add_storage_account(failure.subscription_id, "rg-files", failure.storage_account)
    sim.add_file_share(account, failure.entity)
    item = sim.protect_file_share(failure.vault_id, account, failure.entity)
    _workload_job(sim, failure, item)
    if rule == "files-storage-account-deleted":
        sim.delete_storage_account(account)
    elif rule == "files-share-deleted":
        sim.delete_file_share(account, failure.entity, soft=False)
    elif rule == "files-share-soft-deleted":
        sim.delete_file_share(account, failure.entity, soft=True)


def _app_settings(
    azurite: Azurite, sim: AzureSimulator, hooks: Receivers, subscription: str
) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "DRY_RUN": "false",
        "SUBSCRIPTION_IDS": subscription,
        "SWEEP_MODE": "stop",
        "AZURE_MANAGEMENT_URL": sim.base_url,
        "AZURE_CA_BUNDLE": sim.ca_pem_path,
        "AZURE_STATIC_TOKEN": TOKEN,
        "AZURE_POLL_SECONDS": "0",  # the simulator answers at once; Azure's 202s name no wait
        "QUEUE_DELAY_SCALE": "0",
        "TICKET_WEBHOOK_URL": hooks.url("webhook"),
        "SERVICENOW_INSTANCE_URL": hooks.url("servicenow"),
        "SERVICENOW_USERNAME": SERVICENOW_USER,
        "SERVICENOW_PASSWORD": SERVICENOW_PASSWORD,
        "AZURE_DEVOPS_ORG_URL": hooks.url("devops"),
        "AZURE_DEVOPS_PROJECT": DEVOPS_PROJECT,
        "AZURE_DEVOPS_PAT": DEVOPS_PAT,
        "TEAMS_WEBHOOK_URL": hooks.url("teams"),
        "SLACK_WEBHOOK_URL": hooks.url("slack"),
        "NOTIFY_WEBHOOK_URL": hooks.url("webhook") + "/notify",
        "NOTIFY_FILTER": "outcome=retry_succeeded,protection_stopped,ticket_opened",
    }


def _run_retry_queue(out: TextIO) -> int:
    """Play the Functions host for the retry queue until it is empty."""
    from azure.functions.queue import QueueMessage  # the worker's concrete trigger type

    import function_app
    from handlers.pipeline.runtime import current

    queue = current().retry_queue
    handled = 0
    for _ in range(50):
        messages = queue.receive(visibility_seconds=60)
        if not messages:
            break
        for message in messages:
            body = (
                message.content if isinstance(message.content, bytes) else message.content.encode()
            )
            function_app.run_retry(
                QueueMessage(id=message.id, body=body, dequeue_count=message.dequeue_count)
            )
            queue.delete(message)
            handled += 1
    out.write(f"{handled} retry-queue messages handled\n")
    return handled


def _deliver_all(events: list[tuple[str, Any]], collector: _Outcomes, out: TextIO) -> None:
    import function_app

    for origin, raw in events:
        before = len(collector.records)
        function_app.on_backup_failure(_as_trigger_input(raw))
        for record in collector.records[before:]:
            out.write(f"{record.getMessage()}  <- {Path(origin).name}\n")


def _delete_event(vm_id: str) -> dict[str, Any]:
    """ARM's ``ResourceDeleteSuccess`` for ``vm_id`` (the published event's keys)."""
    return {
        "topic": f"/subscriptions/{APPROVAL_SUB}",
        "subject": vm_id,
        "eventType": "Microsoft.Resources.ResourceDeleteSuccess",
        "eventTime": "2026-11-25T08:00:00Z",
        "id": "5b1f6a0e-3c2d-4e8f-9a7b-6c5d4e3f2a1b",
        "data": {
            "resourceProvider": "Microsoft.Compute",
            "resourceUri": vm_id,
            "operationName": "Microsoft.Compute/virtualMachines/delete",
            "status": "Succeeded",
            "subscriptionId": APPROVAL_SUB,
        },
        "dataVersion": "2",
        "metadataVersion": "1",
    }


def _approval_link(hooks: Receivers) -> str:
    """The Approve button's URL in the last Slack message that offered one."""
    for received in reversed(hooks.received("slack")):
        for block in received.body.get("blocks", []):
            for element in block.get("elements", []) if block["type"] == "actions" else []:
                if element["text"]["text"] == "Approve":
                    return str(element["url"])
    raise AssertionError("no Slack message carried an Approve link")


def _approval(sim: AzureSimulator, hooks: Receivers, out: TextIO) -> bool:
    """One deleted VM with approval required, approved through the HTTP function with the
    link the chat message carried; True when it was stopped only after the approval."""
    from urllib.parse import parse_qs, urlsplit

    import azure.functions as func

    import function_app
    from handlers.pipeline.runtime import current

    os.environ.update(APPROVAL_SETTINGS)
    current.cache_clear()
    vault = sim.add_vault(APPROVAL_SUB, "rg-backup", APPROVAL_VAULT)
    vm = sim.add_vm(APPROVAL_SUB, APPROVAL_GROUP, APPROVAL_VM)
    sim.protect_vm(vault["id"], vm["id"])
    sim.delete_vm(vm["id"])
    puts = len(sim.calls_to(route="item_put"))
    function_app.on_vm_deleted(_as_trigger_input(_delete_event(vm["id"])))
    waited = len(sim.calls_to(route="item_put")) == puts
    link = _approval_link(hooks)
    out.write(f"{APPROVAL_VM} deleted; stop protection waits (no PUT yet: {waited})\n")
    out.write(f"the Slack message's Approve link: {link[:70]}…\n")
    token = parse_qs(urlsplit(link).query)["token"][0]
    shown = function_app.approvals(func.HttpRequest("GET", link, body=b"", params={"token": token}))
    out.write(f"GET the link: {shown.status_code} (a page with a button; nothing changed)\n")
    form = func.HttpRequest(
        "POST",
        link.split("?")[0],
        body=f"token={token}&by=demo+on-call".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    posted = function_app.approvals(form)
    replayed = function_app.approvals(form)
    out.write(f"POST the form: {posted.status_code}; the same link again: {replayed.status_code}\n")
    incident = next(
        i for i in current().storage.incidents.query() if i.resource_name == APPROVAL_VM
    )
    for step in incident.actions:
        if step.action in ("stop_protection", "approval"):
            out.write(f"  {step.action} {step.state}: {step.detail[:90]}\n")
    stopped = len(sim.calls_to(route="item_put")) == puts + 1
    os.environ["APPROVAL_REQUIRED"] = "false"  # the rest of the sandbox runs without the gate
    current.cache_clear()
    return waited and stopped and posted.status_code == 200 and replayed.status_code == 409


def _actions(out: TextIO) -> None:
    from handlers.pipeline.runtime import current

    for incident in sorted(current().storage.incidents.query(), key=lambda i: i.resource_name):
        steps = [a for a in incident.actions if a.state != "planned"]
        if steps:
            trail = " → ".join(
                f"{a.action} {a.state}" + (f" ({a.ref[:8]})" if a.ref else "") for a in steps
            )
            out.write(f"{incident.resource_name[:44]:<44} {trail}\n")


def _sweep(out: TextIO) -> None:
    """The weekly timer, now: what it found, as it recorded it in the ``sweeps`` table."""
    import function_app
    from handlers.pipeline.runtime import current

    function_app.sweep_orphans(None)
    sweeps = current().storage.sweeps
    run = sweeps.latest() or {}
    found = json.loads(run.get("Findings") or "{}")
    for orphan in sweeps.orphans(run) if run else []:
        out.write(
            f"orphan {orphan['Vm']} in {orphan['Vault']}: last backup "
            f"{orphan['LastBackupTime'][:16]}, {orphan.get('RecoveryPoints', '?')} recovery "
            f"point(s) kept; {orphan['Outcome']}\n"
        )
    for moved in found.get("moved", []):
        name = moved["vm_id"].rsplit("/", 1)[-1]
        out.write(f"moved, left alone: {name} → {moved['moved_to']}\n")
    checked, calls = run.get("ItemsChecked", 0), run.get("ArmCalls", 0)
    out.write(f"{checked} protected VM items checked with {calls} ARM calls\n")


def _digest(out: TextIO) -> None:
    """The daily timer fired twice (a host restart, say): one digest, to every channel. It
    fires a few minutes after the night's work (a digest's window ends ``SETTLE`` before its
    run), on a clock moved on by that much."""
    from handlers.digest.daily import SETTLE, on_timer
    from handlers.pipeline.runtime import current

    now = current()
    runtime = dataclasses.replace(now, clock=lambda: now.clock() + SETTLE)
    on_timer(runtime)
    on_timer(runtime)
    row = runtime.storage.digests.get(runtime.clock().date().isoformat()) or {}
    out.write(row.get("Text", "(no digest)\n"))
    channels = ", ".join(json.loads(row.get("Channels") or "[]")) or "no channel"
    out.write(f"digest {row.get('State')}: once to {channels}, though the timer fired twice\n")


def _summary(sim: AzureSimulator, hooks: Receivers, out: TextIO) -> bool:
    from handlers.cli.main import render_table
    from handlers.pipeline.runtime import current

    storage = current().storage
    incidents = sorted(storage.incidents.query(), key=lambda i: (i.resource_name, i.RowKey))
    out.write("\n== incidents ==\n")
    render_table([i.to_entity() for i in incidents], out)
    statuses = Counter(i.Status for i in incidents)
    out.write("status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) + "\n")
    out.write(f"{len(list(storage.rejections.all()))} rejected inputs kept with their reason\n")
    routes = Counter(c.route for c in sim.calls if c.method != "GET")
    out.write("\n== what reached Azure (simulator), ticket systems and chat ==\n")
    out.write(f"on-demand backups started: {routes['backup_trigger']}, ")
    out.write(f"protection stopped (data kept): {routes['item_put']}, ")
    out.write(f"backup data deleted: {routes['item_delete']}\n")
    services = Counter(r.service for r in hooks.received())
    out.write(", ".join(f"{k}: {v} requests" for k, v in sorted(services.items())) + "\n")
    jobs = {i.JobId for i in incidents}
    return len(jobs) == len(incidents) and not sim.violations and not hooks.violations


def run(samples: Path, out: TextIO) -> int:
    """Replay ``samples`` through the function app; 0 when every promise held.

    The app settings it sets are removed again at the end.
    """
    from handlers.pipeline.runtime import current

    saved = dict(os.environ)
    try:
        return _run(samples, out)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        current.cache_clear()


def _run(samples: Path, out: TextIO) -> int:
    with Azurite() as azurite, AzureSimulator() as sim, Receivers() as hooks:
        sim.auto_complete_backups = "Completed"
        from handlers.cli.main import read_events

        events = list(read_events([str(samples)]))
        _seed(sim, events)
        subscription = _seed_orphans(sim, events)
        os.environ.update(_app_settings(azurite, sim, hooks, subscription))
        collector = _Outcomes()
        logger = logging.getLogger("backup_responder")
        logger.addHandler(collector)
        logger.setLevel(logging.INFO)
        try:
            return _replay(events, sim, hooks, collector, out)
        finally:
            logger.removeHandler(collector)


def _replay(
    events: list[tuple[str, Any]],
    sim: AzureSimulator,
    hooks: Receivers,
    collector: _Outcomes,
    out: TextIO,
) -> int:
    out.write(f"Azurite, Azure API simulator and receivers up; {len(events)} sample events\n")
    out.write("\n== first delivery ==\n")
    _deliver_all(events, collector, out)
    out.write("\n== the retry queue (delays shortened for the sandbox) ==\n")
    _run_retry_queue(out)
    out.write("\n== actions taken ==\n")
    _actions(out)
    out.write("\n== redelivery of every sample ==\n")
    _deliver_all(events, collector, out)
    out.write("\n== an approval (APPROVAL_REQUIRED=true): a deleted VM waits for a person ==\n")
    approved = _approval(sim, hooks, out)
    out.write("\n== the weekly orphan sweep (SWEEP_MODE=stop) ==\n")
    _sweep(out)
    out.write("\n== the morning digest ==\n")
    _digest(out)
    return 0 if _summary(sim, hooks, out) and approved else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("samples", nargs="?", type=Path, default=SAMPLES)
    args = parser.parse_args(argv)
    return run(args.samples, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
