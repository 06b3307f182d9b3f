"""Seeding the simulator with a protected VM and a failed job, and delivering the failure.

The delivered event carries the job exactly as the simulator's Backup API reports it, so the
payload and the API agree unless a test makes them differ on purpose.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.core.incident import Incident
from handlers.core.model import BackupFailure, Rejection
from handlers.core.outcome import Outcome
from handlers.intake.events import cloud_event, parse
from handlers.intake.retry_queue import run_retry
from handlers.pipeline.respond import respond
from handlers.pipeline.runtime import Runtime
from handlers.storage import DeliveryInFlightError
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
) -> Scene:
    """Seed (or reuse) the vault, a protected VM and its failed backup job."""
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
    )
    return Scene(
        sim, vault_res, vm["id"], vm_name, vm_group, sim.get_job(vault_res["id"], job["name"])
    )


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


def drain(runtime: Runtime, rounds: int = 30) -> int:
    """Play the Functions host for the retry queue: run every visible message. Returns the count."""
    handled = 0
    for _ in range(rounds):
        messages = list(runtime.retry_queue.receive(visibility_seconds=30))
        if not messages:
            return handled
        for message in messages:
            run_retry(runtime, message.content.decode(), message.dequeue_count)
            runtime.retry_queue.delete(message)
            handled += 1
    raise AssertionError(f"the retry queue did not drain in {rounds} rounds")


def incident_of(runtime: Runtime, job_id: str) -> Incident:
    incident = runtime.storage.find_incident(job_id)
    assert incident is not None, f"no incident for job {job_id}"
    return incident


def log_of(incident: Incident) -> list[tuple[str, str]]:
    return [(a.action, a.state) for a in incident.actions]
