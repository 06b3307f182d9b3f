"""What one incident says, flattened: its outcome, and its JSON and CSV forms."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any, TextIO

from handlers.audit.query import failed_at
from handlers.core.incident import Incident
from handlers.core.model import Workload
from handlers.core.results import outcome, resolution_time

#: Columns of ``--format csv`` (the action log is left to JSON and ``show``).
CSV_COLUMNS = (
    "FailedAt",
    "IncidentId",
    "VmName",
    "VaultName",
    "SubscriptionId",
    "VmResourceGroup",
    "Operation",
    "ErrorCodes",
    "Rule",
    "Category",
    "PlannedAction",
    "Outcome",
    "Status",
    "DryRun",
    "Occurrences",
    "FirstSeen",
    "LastSeen",
    "ErrorMessage",
)


def action_outcome(incident: Incident) -> str:
    """The planned action and how it went, e.g. ``retry: succeeded``."""
    return f"{incident.PlannedAction}: {outcome(incident) or '-'}"


#: Columns of the incident table, in the terminal and in the HTML report.
TABLE_COLUMNS = (
    "failed (UTC)",
    "protected item",
    "vault",
    "rule",
    "category",
    "action",
    "outcome",
    "status",
    "×",
    "dry run",
    "incident",
)


def table_cells(incident: Incident) -> tuple[str, ...]:
    """The incident's cells under :data:`TABLE_COLUMNS`."""
    return (
        failed_at(incident).strftime("%Y-%m-%d %H:%M"),
        incident.resource_name
        if incident.Workload == Workload.VM
        else f"{incident.resource_name} ({incident.resource_label})",
        incident.VaultName,
        incident.Rule,
        incident.Category,
        incident.PlannedAction,
        outcome(incident),
        incident.Status,
        str(incident.Occurrences),
        "yes" if incident.DryRun else "",
        incident.IncidentId,
    )


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def as_record(incident: Incident) -> dict[str, Any]:
    """The incident as JSON-ready values: every stored property, times in ISO 8601, the action
    log as a list, plus ``FailedAt``, ``Outcome`` and ``ResolvedAfterSeconds`` (first seen to
    the step that fixed it; null when nothing fixed it)."""
    record = {k: _plain(v) for k, v in incident.to_entity().items() if k != "ActionLog"}
    record["FailedAt"] = failed_at(incident).isoformat()
    record["Outcome"] = outcome(incident)
    took = resolution_time(incident)
    record["ResolvedAfterSeconds"] = None if took is None else took.total_seconds()
    record["Actions"] = [asdict(a) for a in incident.actions]
    return record


def write_json(incidents: Iterable[Incident], out: TextIO) -> None:
    json.dump([as_record(i) for i in incidents], out, ensure_ascii=False, indent=2)
    out.write("\n")


def write_csv(incidents: Iterable[Incident], out: TextIO) -> None:
    writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for incident in incidents:
        writer.writerow(as_record(incident))
