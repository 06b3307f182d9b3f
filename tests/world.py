"""The one test helper module: the worlds the tests run in.

- Scenes (:func:`scene`): the simulator seeded with a protected VM and its failed backup job,
  and the delivery helpers (:func:`deliver`, :func:`deliver_concurrently`, :func:`drain`). The
  delivered event carries the job exactly as the simulator's Backup API reports it, so the
  payload and the API agree unless a test makes them differ on purpose.
- A seeded incidents table (:func:`shared_world`), for the audit tests and the README's report
  screenshot: a few hundred failed jobs over ``days`` days across four vaults, classified by
  the real rule set, with the action logs, statuses and tickets the pipeline would leave (the
  oldest week in dry run; retries that succeed, fail or still run; tickets opened, appended to
  and resolved; a few VMs failing again and again). Deterministic for a given seed;
  ``python -m tests.world docs/report.png`` seeds a fresh Azurite, writes the report and takes
  its screenshot with headless Chromium.

Payload fixtures live in ``tests/events/`` (:func:`tests.conftest.load_event`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import random
import sys
import tempfile
import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from handlers.actions.desk import TicketDesk
from handlers.core.incident import ActionEntry, Incident, IncidentStatus, new_incident
from handlers.core.model import BackupFailure, ErrorDetail, Rejection, Source
from handlers.core.outcome import Outcome
from handlers.core.settings import Settings
from handlers.intake.events import cloud_event, parse
from handlers.intake.retry_queue import run_retry
from handlers.pipeline.respond import respond
from handlers.pipeline.runtime import Runtime
from handlers.storage import DeliveryInFlightError, Storage
from handlers.storage.keys import incident_keys
from rules import RuleSet, default_rule_set
from sandbox.simulator import AzureSimulator

SUB = "6f0c3a52-8d1e-4b7a-9c55-2f1d8e4a7b10"
VAULT_RG = "rg-backup"
VAULT = "rsv-prod"
VAULT_PREFIX = (
    f"/subscriptions/{SUB}/resourceGroups/{VAULT_RG}/providers/Microsoft.RecoveryServices/vaults"
)

STORAGE_TIMEOUT = (400234, "Copying backed up data from vault timed out")
VM_GONE = (400094, "The virtual machine doesn't exist")
AGENT = (400012, "Could not communicate with the VM agent for snapshot status")
SIM_AUTH = {"Authorization": "Bearer sim-token"}


@dataclass
class Scene:
    """One protected VM with one failed backup job."""

    sim: AzureSimulator
    vault: dict[str, Any]
    vm_id: str
    vm_name: str
    vm_group: str
    job: dict[str, Any]

    @property
    def job_id(self) -> str:
        return self.job["name"]

    def add_job(self, **fields: Any) -> dict[str, Any]:
        """Another job of the same VM in the simulator (a later backup, a running one...)."""
        return self.sim.add_job(
            self.vault["id"], vm_name=self.vm_name, vm_resource_group=self.vm_group, **fields
        )

    def repeat(self, error: tuple[int, str], **fields: Any) -> Scene:
        """The same VM failing again: the scene of a new failed job."""
        job = self.add_job(error_code=error[0], error_string=error[1], **fields)
        return dataclasses.replace(self, job=self.sim.get_job(self.vault["id"], job["name"]))

    def event(self, **error: Any) -> dict[str, Any]:
        """A CloudEvent carrying the job (optionally with a different error than the API's)."""
        data = copy.deepcopy(self.job)
        if error:
            data["properties"]["errorDetails"] = [
                {"errorCode": error["code"], "errorString": error["message"]}
            ]
        return cloud_event(data, f"evt-{self.job_id}")


def scene(
    sim: AzureSimulator,
    error: tuple[int, str],
    *,
    vm_name: str = "vm-web-01",
    vm_group: str = "rg-web",
    vault: str = VAULT,
    started: datetime | None = None,
    container_in_details: bool = False,
) -> Scene:
    """Seed (or reuse) the vault, a protected VM and its failed backup job (whose details name
    no container, as Azure's need not, unless ``container_in_details``)."""
    try:
        vault_res = sim.add_vault(SUB, VAULT_RG, vault)
    except ValueError:  # seeded by an earlier scene of the same test
        vault_res = {"id": f"{VAULT_PREFIX}/{vault}"}
    vm = sim.add_vm(SUB, vm_group, vm_name)
    sim.protect_vm(vault_res["id"], vm["id"])
    start = started or datetime.now(UTC) - timedelta(hours=2)
    job = sim.add_job(
        vault_res["id"],
        vm_name=vm_name,
        vm_resource_group=vm_group,
        status="Failed",
        error_code=error[0],
        error_string=error[1],
        start_time=start,
        end_time=start + timedelta(minutes=30),
        container_in_details=container_in_details,
    )
    return Scene(
        sim, vault_res, vm["id"], vm_name, vm_group, sim.get_job(vault_res["id"], job["name"])
    )


@dataclass
class WorkloadScene:
    """One protected SQL or SAP HANA database (on a VM) or Azure file share, with one failed
    backup job of it."""

    sim: AzureSimulator
    vault: dict[str, Any]
    item: dict[str, Any]
    host_id: str  # the VM of a database, the storage account of a share
    job: dict[str, Any]

    @property
    def job_id(self) -> str:
        return self.job["name"]

    def add_job(self, **fields: Any) -> dict[str, Any]:
        """Another job of the same item in the simulator."""
        return self.sim.add_workload_job(self.vault["id"], self.item, **fields)

    def repeat(self, **fields: Any) -> WorkloadScene:
        """The same item failing again: the scene of a new failed job."""
        job = self.add_job(status="Failed", **fields)
        return dataclasses.replace(self, job=self.sim.get_job(self.vault["id"], job["name"]))

    def event(self) -> dict[str, Any]:
        """The watcher's CloudEvent carrying the job as the Backup API reports it."""
        return cloud_event(copy.deepcopy(self.job), f"evt-{self.job_id}")

    def protection_state(self) -> str:
        return self.sim.get_workload_item(self.vault["id"], self.item)["properties"][
            "protectionState"
        ]


def workload_scene(
    sim: AzureSimulator,
    workload: str,
    *,
    error_code: int = 0,
    error_title: str = "",
    error_string: str = "",
    operation: str | None = None,
    database: str = "sales",
    share: str = "finance",
) -> WorkloadScene:
    """Seed a vault, a protected database (``sql``, ``hana``: on VM ``vm-db-01``) or file
    share (``files``: in storage account ``stfiles01``) and its failed backup job."""
    vault = sim.add_vault(SUB, VAULT_RG, VAULT)
    if workload == "files":
        host = sim.add_storage_account(SUB, "rg-files", "stfiles01")
        sim.add_file_share(host, share)
        item = sim.protect_file_share(vault["id"], host, share)
    else:
        host = sim.add_vm(SUB, "rg-db", "vm-db-01")
        protect = sim.protect_sql_database if workload == "sql" else sim.protect_hana_database
        extra = {} if workload == "sql" else {"sid": "HXE"}
        item = protect(vault["id"], host, database=database, **extra)
    job = sim.add_workload_job(
        vault["id"],
        item,
        status="Failed",
        operation=operation,
        error_code=error_code,
        error_title=error_title,
        error_string=error_string,
        start_time=datetime.now(UTC) - timedelta(hours=2),
    )
    return WorkloadScene(sim, vault, item, host["id"], sim.get_job(vault["id"], job["name"]))


def as_trigger_input(raw: Any) -> Any:
    """What the Functions worker hands an Event Grid trigger for ``raw`` (a
    ``func.EventGridEvent`` or ``func.CloudEvent``)."""
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum

    return EventGridEventInConverter.decode(Datum(json.dumps(raw), "json"), trigger_metadata=None)


def deliver(runtime: Runtime, event: dict[str, Any]) -> Outcome:
    return respond(runtime, parse(event))


def deliver_concurrently(
    runtime: Runtime, item: BackupFailure | Rejection, copies: int
) -> list[str]:
    """Deliver ``item`` from ``copies`` threads at once, redelivering like the platform does
    when a delivery answers "in flight"; returns the outcome kinds."""
    kinds: list[str] = []
    start = threading.Barrier(copies)

    def until_handled() -> None:
        start.wait()
        while True:
            try:
                kinds.append(respond(runtime, item).kind)
                return
            except DeliveryInFlightError:
                continue

    threads = [threading.Thread(target=until_handled) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return kinds


def published(receivers: Any) -> list[dict[str, Any]]:
    """Every event the watcher published to the (local) topic."""
    return [event for r in receivers.received("eventgrid") for event in r.body]


def deliver_published(receivers: Any) -> None:
    """Play Event Grid: every published event to ``function_app.on_backup_failure``."""
    import azure.functions as func

    import function_app

    for event in published(receivers):
        decoded = as_trigger_input(event)
        assert isinstance(decoded, func.CloudEvent)
        function_app.on_backup_failure(decoded)


def drain(runtime: Runtime, rounds: int = 30) -> int:
    """Play the Functions host for the retry queue: run every visible message. Returns the count."""
    handled = 0
    for _ in range(rounds):
        messages = list(runtime.retry_queue.receive(visibility_seconds=30))
        if not messages:
            return handled
        for message in messages:
            run_retry(runtime, message.content.decode(), message.dequeue_count, message.id)
            runtime.retry_queue.delete(message)
            handled += 1
    raise AssertionError(f"the retry queue did not drain in {rounds} rounds")


def incident_of(runtime: Runtime, job_id: str) -> Incident:
    incident = runtime.storage.find_incident(job_id)
    assert incident is not None, f"no incident for job {job_id}"
    return incident


def log_of(incident: Incident) -> list[tuple[str, str]]:
    return [(a.action, a.state) for a in incident.actions]


# -- what the audit tests expect, computed from the log (never by the code under test) -------


def fixed_after(incident: Incident) -> float | None:
    """Seconds from when a resolved incident was first seen to the first retry or stop
    protection step of its log that succeeded; None when nothing of the kind resolved it."""
    if incident.Status != IncidentStatus.RESOLVED:
        return None
    for entry in incident.actions:
        if entry.action in ("retry", "stop_protection") and entry.state == "succeeded":
            return max((datetime.fromisoformat(entry.at) - incident.FirstSeen).total_seconds(), 0)
    return None


def p90(values: list[float]) -> float:
    """The 90th percentile by nearest rank: of n values sorted, the ⌈0.9 n⌉-th."""
    ordered = sorted(values)
    return ordered[(9 * len(ordered) + 9) // 10 - 1]


# -- raw HTTP to the simulator (for tests of the shapes it serves) ---------------------------

#: The Backup API version the raw requests name.
BACKUP_VERSION = {"api-version": "2026-10-01"}


def sim_get(sim: AzureSimulator, url: str, **params: str) -> requests.Response:
    """GET a path (or an absolute URL the simulator gave out, verbatim)."""
    target = url if url.startswith("https://") else sim.base_url + url
    return requests.get(target, params=params, headers=SIM_AUTH, verify=sim.ca_pem_path, timeout=5)


def sim_send(
    sim: AzureSimulator, method: str, path: str, body: dict[str, Any]
) -> requests.Response:
    """Send ``body`` to a Backup API path."""
    return requests.request(
        method,
        sim.base_url + path,
        params=BACKUP_VERSION,
        json=body,
        headers=SIM_AUTH,
        verify=sim.ca_pem_path,
        timeout=5,
    )


def raw_json(pipeline_response: Any, _deserialized: Any, _headers: Any) -> Any:
    """``cls=`` for SDK calls: the JSON body exactly as served."""
    return pipeline_response.http_response.json()


# -- a seeded incidents table (audit, report) -----------------------------------------

VAULTS = {
    "rsv-prod-weu": ("rg-sql", ["vm-sql-01", "vm-sql-02", "vm-sql-03", "vm-app-01", "vm-app-02"]),
    "rsv-prod-neu": ("rg-web", ["vm-web-01", "vm-web-02", "vm-web-03", "vm-web-04", "vm-cache-01"]),
    "rsv-dev-weu": ("rg-dev", ["vm-dev-01", "vm-dev-02", "vm-build-01", "vm-build-02"]),
    "rsv-corp": ("rg-corp", ["vm-dc-01", "vm-dc-02", "vm-file-01", "vm-print-01", "vm-jump-01"]),
}
#: Error codes by how often they fail here (each classified by the real rule set).
CODES = {
    "CopyingVHDsFromBackUpVaultTakingLongTime": 12,
    "BackUpOperationFailed": 9,
    "UserErrorBackupOperationInProgress": 6,
    "UserErrorVmNotInDesirableState": 5,
    "GuestAgentSnapshotTaskStatusError": 9,
    "ExtensionFailedVssWriterInBadState": 7,
    "UserErrorGuestAgentStatusUnavailable": 6,
    "ExtensionSnapshotFailedNoNetwork": 4,
    "ExtensionFailedSnapshotLimitReachedError": 3,
    "ExtentionOperationFailed": 4,
    "UserErrorKeyvaultPermissionsNotConfigured": 2,
    "400094": 3,
    "UserErrorRequestDisallowedByPolicy": 2,
    "UserErrorFsFreezeFailed": 3,
    "UserErrorSomethingNobodyDocumented": 3,
}
DRY_RUN_DAYS = 7


def _vms() -> list[tuple[str, str, str]]:
    return [(vault, group, vm) for vault, (group, vms) in VAULTS.items() for vm in vms]


class _World:
    def __init__(
        self, storage: Storage, rules: RuleSet, rng: random.Random, now: datetime, days: int
    ) -> None:
        self.storage, self.rules, self.rng, self.now, self.days = storage, rules, rng, now, days
        self.desk = TicketDesk(storage.tickets, [], "en")

    def failure(
        self, failed: datetime, vault: str, group: str, vm: str, code: str
    ) -> BackupFailure:
        message = self.rules.classify([code], "", "Backup").title
        return BackupFailure(
            job_id=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            subscription_id=SUB,
            vault_resource_group="rg-backup",
            vault_name=vault,
            vm_name=vm,
            vm_resource_group=group,
            operation="Backup",
            status="Failed",
            errors=(ErrorDetail(code, message),),
            source=self.rng.choice([Source.CLOUD_EVENT, Source.CLOUD_EVENT, Source.ALERT]),
            start_time=failed - timedelta(minutes=self.rng.randint(20, 120)),
            end_time=failed,
        )

    def act(self, incident: Incident, failed: datetime) -> None:
        """Leave the action log, status and tickets that the live pipeline would."""
        log: list[ActionEntry] = []
        at = failed + timedelta(minutes=2)

        def step(action: str, state: str, detail: str = "", attempt: int = 0) -> None:
            nonlocal at
            at += timedelta(minutes=self.rng.randint(1, 40))
            moment = at.isoformat(timespec="seconds")
            log.append(ActionEntry(moment, action, state, detail, attempt))

        def escalate(reason: str) -> None:
            result = self.desk.open_or_append(incident, reason)
            step("ticket", "opened" if result.created else "appended", reason)
            incident.Status = IncidentStatus.ESCALATED

        action = incident.PlannedAction
        note = "dry run: nothing is changed" if incident.DryRun else ""
        step(action, "planned", note)
        if incident.DryRun and action != "record":
            incident.ActionLog = _dump(log)
            return
        roll = self.rng.random()
        if action == "record":
            step("record", "done", "informational: nothing to do")
            incident.Status = IncidentStatus.RESOLVED
        elif action == "retry" and self.now - failed < timedelta(hours=8):
            step("retry", "scheduled", "on-demand backup in 30 min", 1)
            incident.Status = IncidentStatus.REMEDIATING
        elif action == "retry":
            attempts = 2 if roll < 0.3 else 1
            for attempt in range(1, attempts + 1):
                step("retry", "scheduled", "on-demand backup in 30 min", attempt)
                step("retry", "triggered", "on-demand backup started", attempt)
                if attempt < attempts:
                    step("retry", "failed", "the retry's backup job ended Failed", attempt)
            if roll < 0.72:
                step("retry", "succeeded", "the retry's backup job succeeded", attempts)
                incident.Status = IncidentStatus.RESOLVED
                if self.desk.resolve(incident, "a retry succeeded"):
                    step("ticket", "resolved", "a retry succeeded")
            else:
                step("retry", "exhausted", f"{attempts} attempt(s) failed", attempts)
                escalate("The backup still fails after automatic retries.")
        elif action == "stop_protection" and roll < 0.8:
            step(action, "started", "VM confirmed deleted (ARM 404); stopping, data retained")
            step(action, "succeeded", "protection stopped, recovery points retained")
            incident.Status = IncidentStatus.RESOLVED
            step("ticket", "opened", "owner informed")
        elif action == "stop_protection":
            step(action, "skipped", "a VM with the same name exists elsewhere (moved?)")
            escalate("Protection not stopped: the VM seems to have moved.")
        else:
            escalate(f"Backup of {incident.VmName} failed: {incident.RuleTitle}.")
        incident.ActionLog = _dump(log)
        incident.LastSeen = datetime.fromisoformat(log[-1].at)

    def incident(self, failed: datetime, vm: tuple[str, str, str], code: str) -> Incident:
        failure = self.failure(failed, *vm, code)
        received = failed + timedelta(minutes=2)
        keys = incident_keys(failure, received)
        claim = self.storage.claims.claim(failure.job_id, keys, received, timedelta(minutes=5))
        decision = self.rules.classify(failure.codes, failure.message, failure.operation)
        dry_run = self.now - failed > timedelta(days=self.days - DRY_RUN_DAYS)
        incident = new_incident(failure, decision, keys, dry_run=dry_run, now=received)
        if self.rng.random() < 0.1:
            incident.Occurrences = 2
            incident.Source = ",".join(sorted({incident.Source, str(Source.ALERT)}))
        self.act(incident, failed)
        self.storage.incidents.insert(incident)
        self.storage.claims.complete(claim)
        return incident


def _dump(log: list[ActionEntry]) -> str:
    return json.dumps([asdict(entry) for entry in log])


def seed(
    storage: Storage,
    count: int = 300,
    *,
    days: int = 30,
    now: datetime | None = None,
    seed: int = 7,
) -> list[Incident]:
    """Write ``count`` incidents failed within ``days`` days before ``now``; returns them."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    world = _World(storage, default_rule_set(), rng, now, days)
    vms = _vms()
    # A few items fail far more often than the rest, as in real estates.
    vm_weights = [1 / (rank + 1) ** 0.7 for rank in range(len(vms))]
    rng.shuffle(vm_weights)
    habits = {vm: rng.choices(list(CODES), CODES.values())[0] for vm in vms}
    day_weights = [3 if day % 7 in (2, 3) else 1 for day in range(days)]
    moments = sorted(
        now - timedelta(days=rng.choices(range(days), day_weights)[0], minutes=rng.randint(1, 1439))
        for _ in range(count)
    )
    incidents = []
    for failed in moments:
        vm = rng.choices(vms, vm_weights)[0]
        code = habits[vm] if rng.random() < 0.5 else rng.choices(list(CODES), CODES.values())[0]
        incidents.append(world.incident(failed, vm, code))
    return incidents


@dataclass(frozen=True)
class World:
    """A seeded incidents table: its settings, what was written, and the "now" it was made at."""

    settings: Settings
    incidents: list[Incident]
    now: datetime

    @property
    def storage(self) -> Storage:
        return Runtime.from_settings(self.settings).storage


@functools.cache
def shared_world(connection_string: str, count: int = 300) -> World:
    """One seeded table per Azurite and size, shared by the test modules (read only!)."""
    settings = Settings(
        storage_connection=connection_string, table_name_prefix=f"audit{uuid.uuid4().hex[:8]}"
    )
    now = datetime.now(UTC)
    return World(settings, seed(Runtime.from_settings(settings).storage, count, now=now), now)


def main(argv: list[str]) -> int:
    """Seed a fresh Azurite, write the report and screenshot it to ``argv[0]``."""
    from handlers.audit.query import IncidentQuery, select
    from handlers.audit.report import report_html
    from handlers.audit.summary import open_tickets
    from sandbox.azurite import Azurite
    from tests.chromium import chromium, load

    target = Path(argv[0] if argv else "docs/report.png")
    with Azurite() as azurite, tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        world = shared_world(azurite.connection_string)
        storage = world.storage
        query = IncidentQuery.from_params({"since": "30d"}, world.now)
        html = report_html(select(storage, query), open_tickets(storage), query, world.now)
        page_file = Path(tmp) / "report.html"
        page_file.write_text(html, encoding="utf-8")
        load(browser, page_file, height=1500).page.screenshot(path=str(target))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
