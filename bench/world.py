"""Benchmark inputs: failed jobs shaped exactly as the Backup Jobs API returns them, and the
local services (Azurite, the Azure API simulator) the measured code talks to."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.intake.events import cloud_event as backup_job_failed
from sandbox.simulator import failed_job_json

SUB = "6f0c3a52-8d1e-4b7a-9c55-2f1d8e4a7b10"
VAULT_RG = "rg-backup"
TOKEN = "bench-token"

#: A night's failures: storage-side timeouts dominate an outage; the rest is the usual mix.
ERRORS: list[tuple[int | str, str]] = [
    (400234, "Copying backed up data from vault timed out"),
    ("UserErrorStorageAccountNotReachable", "The storage account could not be reached."),
    (400012, "Could not communicate with the VM agent for snapshot status"),
    (400094, "The virtual machine doesn't exist"),
    (0, "VSS Writers failed. Check the VSS writers' state on the VM."),
    (999001, "The frobnicator could not be reached while preparing the widget snapshot."),
    (0, "VM がバックアップできる状態ではありません。"),
    ("ExtensionSnapshotFailedNoNetwork", "Snapshot operation failed due to no network."),
]


def vault_id(vault: str) -> str:
    group = f"/subscriptions/{SUB}/resourceGroups/{VAULT_RG}"
    return f"{group}/providers/Microsoft.RecoveryServices/vaults/{vault}"


def failed_job(
    vault: str, vm_name: str, vm_group: str, error: tuple[int | str, str], start: datetime
) -> dict[str, Any]:
    """A failed ``AzureIaaSVMJob`` as the job details GET returns it."""
    return failed_job_json(vault_id(vault), vm_name, vm_group, error, start)


def cloud_event(job: dict[str, Any]) -> dict[str, Any]:
    """The ``BackupJobFailed`` CloudEvent the watcher publishes for ``job``."""
    return backup_job_failed(job, str(uuid.uuid4()))


def events(count: int, vaults: int = 20) -> Iterator[dict[str, Any]]:
    """``count`` distinct failure events across ``vaults`` vaults and the error mix."""
    start = datetime.now(UTC) - timedelta(hours=3)
    errors = itertools.cycle(ERRORS)
    for i in range(count):
        vault = f"rsv-{i % vaults:02d}"
        job = failed_job(vault, f"vm-{i:05d}", f"rg-app-{i % 7}", next(errors), start)
        yield cloud_event(job)
