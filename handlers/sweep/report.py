"""What one sweep found: orphaned items, VMs that moved, vaults that failed, work left over."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from handlers.core.ids import ArmIdError, VaultRef, VmRef


def _vault_name(vault_id: str) -> str:
    try:
        return VaultRef.parse(vault_id).name
    except ArmIdError:
        return vault_id


def _vm_name(vm_id: str) -> str:
    try:
        return VmRef.parse(vm_id).name
    except ArmIdError:
        return vm_id


@dataclass(frozen=True)
class Orphan:
    """A protected Azure VM item whose VM ARM answers 404 for, with no VM of its name
    elsewhere in the subscription.

    :ivar recovery_points: how many the vault keeps (``None``: not counted, the call failed or
        the run's budget was spent).
    :ivar incident: the sweep's incident about the item, made now or by an earlier sweep.
    :ivar outcome: ``listed`` (nothing changed), or what the stop path did.
    :ivar stop_calls: the ARM requests its stop sent (0: none was started).
    """

    vault_id: str
    item_id: str
    vm_id: str
    protection_state: str
    last_backup_time: str
    last_backup_status: str
    recovery_points: int | None = None
    oldest_point: str = ""
    newest_point: str = ""
    incident: str = ""
    outcome: str = "listed"
    stop_calls: int = 0

    @property
    def vault(self) -> str:
        return _vault_name(self.vault_id)

    @property
    def vm(self) -> str:
        return _vm_name(self.vm_id)


@dataclass(frozen=True)
class Moved:
    """A protected item whose VM is gone from its resource group but a VM of its name lives
    elsewhere: a move, left alone (protect it again where it lives now)."""

    vault_id: str
    item_id: str
    vm_id: str
    moved_to: str


#: Orphan outcomes that changed something in Azure.
STOPPED = "protection stopped, data kept"


@dataclass
class SweepReport:
    """One run.

    :ivar acting: whether orphans were taken through the stop path (``SWEEP_MODE=stop`` and
        ``DRY_RUN=false``); otherwise they were only listed.
    :ivar errors: scope (subscription, vault or item id) → why it could not be swept.
    :ivar unchecked: scopes the budget left unchecked (subscriptions, vaults, or a vault's
        remaining items), for the next run.
    :ivar left_because: what ran out when something was left (calls or time).
    :ivar resume_at: the vault and item the next run begins with (empty: the beginning).
    """

    started: datetime
    acting: bool
    limit: int
    orphans: list[Orphan] = field(default_factory=list)
    moved: list[Moved] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    unchecked: list[str] = field(default_factory=list)
    vaults: int = 0
    checked: int = 0
    calls: int = 0
    ended: datetime | None = None
    left_because: str = ""
    resume_at: tuple[str, str] = ("", "")

    @property
    def stopped(self) -> int:
        return sum(1 for o in self.orphans if o.outcome == STOPPED)

    def as_json(self) -> dict[str, Any]:
        """Everything it found, JSON-ready (``sweep --format json``, the ``sweeps`` row)."""
        return {
            "startedAt": self.started.isoformat(),
            "endedAt": self.ended.isoformat() if self.ended else None,
            "acting": self.acting,
            "vaults": self.vaults,
            "itemsChecked": self.checked,
            "armCalls": self.calls,
            "armCallLimit": self.limit,
            "orphans": [
                {**asdict(o), "vault": o.vault, "vm": o.vm, "stopped": o.outcome == STOPPED}
                for o in self.orphans
            ],
            "moved": [asdict(m) for m in self.moved],
            "errors": self.errors,
            "unchecked": self.unchecked,
            "leftBecause": self.left_because,
        }

    def counts(self) -> dict[str, Any]:
        """The run's numbers, for its table row."""
        return {
            "EndedAt": self.ended,
            "Acting": self.acting,
            "Vaults": self.vaults,
            "ItemsChecked": self.checked,
            "Orphans": len(self.orphans),
            "Stopped": self.stopped,
            "Moved": len(self.moved),
            "Errors": len(self.errors),
            "Unchecked": len(self.unchecked),
            "ArmCalls": self.calls,
            "NextVault": self.resume_at[0],
            "NextItem": self.resume_at[1],
        }

    def findings(self) -> str:
        """The run's row's findings: everything but the orphans, which are rows of their own
        (:meth:`orphan_rows`), so no number of them is ever cut."""
        found = self.as_json()
        del found["orphans"]
        return json.dumps(found, ensure_ascii=False)

    def orphan_rows(self) -> list[dict[str, Any]]:
        """One table row per orphan: what health, the digest and the demo show of it."""
        return [
            {
                "Vault": o.vault,
                "Vm": o.vm,
                "ItemId": o.item_id,
                "ProtectionState": o.protection_state,
                "LastBackupTime": o.last_backup_time,
                "LastBackupStatus": o.last_backup_status,
                **({"RecoveryPoints": o.recovery_points} if o.recovery_points is not None else {}),
                "Outcome": o.outcome,
                "Stopped": o.outcome == STOPPED,
                "Incident": o.incident,
            }
            for o in self.orphans
        ]


#: Columns of ``sweep``'s table.
COLUMNS = (
    "vault",
    "VM (item)",
    "state",
    "last backup (UTC)",
    "last status",
    "recovery points",
    "oldest point (UTC)",
    "outcome",
)


#: ``lastBackupTime`` of an item never backed up (Azure's recorded IRPending item).
NEVER = "2001-01-01T00:00:00"


def _minute(text: str) -> str:
    return "never" if text.startswith(NEVER) else text[:16].replace("T", " ")


def rows(report: SweepReport) -> list[tuple[str, ...]]:
    """One row per orphan under :data:`COLUMNS`."""
    return [
        (
            o.vault,
            o.vm,
            o.protection_state,
            _minute(o.last_backup_time),
            o.last_backup_status,
            "?" if o.recovery_points is None else str(o.recovery_points),
            _minute(o.oldest_point),
            o.outcome + (f" ({o.incident})" if o.incident else ""),
        )
        for o in report.orphans
    ]


def footer(report: SweepReport) -> list[str]:
    """What else a person should know: moved VMs, failed scopes, work left, the calls spent."""
    what = "taken through the stop path" if report.acting else "listed only, nothing changed"
    lines = [
        f"({len(report.orphans)} orphaned item(s) in {report.vaults} vault(s), {what}; "
        f"{report.checked} item(s) checked; {report.calls} of {report.limit} ARM calls)"
    ]
    lines += [f"moved, left alone: {_vm_name(m.vm_id)} → {m.moved_to}" for m in report.moved]
    lines += [f"skipped: {scope}: {error}" for scope, error in report.errors.items()]
    lines += [f"not checked ({report.left_because}): {scope}" for scope in report.unchecked]
    return lines
