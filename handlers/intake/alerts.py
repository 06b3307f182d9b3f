"""Azure Monitor "Backup Failure" alerts (common alert schema) to ``respond()``.

The alert is only a trigger: its job id (``alertContext.extendedInfo.jobId``) and vault
(``essentials.alertTargetIDs[0]``) are taken, and the job itself is read from the Backup
API, so the incident is built from the same data as the watcher's. A resolved alert is
acknowledged and ignored; any other payload is answered 400 with the reason and recorded as
rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from handlers.azure.backup import VaultApi
from handlers.azure.errors import AzureCallError, ErrorKind
from handlers.core.ids import ArmIdError, VaultRef
from handlers.core.model import Rejection, Source
from handlers.core.outcome import Outcome
from handlers.core.text import excerpt
from handlers.intake.events import PayloadError, parse_job
from handlers.pipeline.respond import respond
from handlers.pipeline.runtime import Runtime

SCHEMA_ID = "azureMonitorCommonAlertSchema"
#: An ARM id longer than this is not one (ARM's limits are far below it).
MAX_ITEM_ID = 2_048


@dataclass(frozen=True)
class AlertAnswer:
    """The HTTP answer to the action group: status and a JSON body."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class FiredAlert:
    """What a fired Backup Failure alert says: the vault and the job to read."""

    vault: VaultRef
    job_id: str
    alert_id: str
    #: The protected item's ARM id as the alert names it (workload alerts do): a hint the
    #: actions verify against the vault's items, never trust.
    item_id: str = ""


def _field(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def read_alert(payload: Any) -> FiredAlert | str:
    """A fired Backup Failure alert, or ``"resolved"``.

    :raises PayloadError: anything else, with the reason.
    """
    if _field(payload, "schemaId") != SCHEMA_ID:
        raise PayloadError(f"schemaId is not {SCHEMA_ID}")
    essentials = _field(payload, "data", "essentials")
    if not isinstance(essentials, dict):
        raise PayloadError("data.essentials is missing")
    if str(essentials.get("monitoringService", "")).lower() != "azure backup":
        raise PayloadError(
            f"monitoringService {essentials.get('monitoringService')!r} is not Azure Backup"
        )
    condition = str(essentials.get("monitorCondition", ""))
    if condition.lower() == "resolved":
        return "resolved"
    if condition.lower() != "fired":
        raise PayloadError(f"monitorCondition {condition!r} is neither Fired nor Resolved")
    targets = essentials.get("alertTargetIDs")
    target = (
        targets[0] if isinstance(targets, list) and targets and isinstance(targets[0], str) else ""
    )
    try:
        vault = VaultRef.parse(target)
    except ArmIdError:
        raise PayloadError("alertTargetIDs[0] is not a Recovery Services vault id") from None
    job_id = _field(payload, "data", "alertContext", "extendedInfo", "jobId")
    if not isinstance(job_id, str) or not re.fullmatch(r"[0-9A-Za-z-]{1,64}", job_id):
        raise PayloadError("alertContext.extendedInfo.jobId is missing or not a job id")
    alert_id = essentials.get("alertId")
    item_id = _field(payload, "data", "alertContext", "protectedItemId")
    return FiredAlert(
        vault,
        job_id,
        alert_id if isinstance(alert_id, str) else "",
        item_id[:MAX_ITEM_ID] if isinstance(item_id, str) else "",
    )


def handle_alert(runtime: Runtime, payload: Any) -> AlertAnswer:
    """Entry of ``on_backup_alert``."""
    try:
        alert = read_alert(payload)
    except PayloadError as error:
        return _reject(runtime, payload, f"not a Backup Failure alert: {error}")
    if alert == "resolved":
        return AlertAnswer(200, {"status": "ignored", "reason": "resolved alert"})
    assert isinstance(alert, FiredAlert)
    subscription = alert.vault.subscription_id
    if not runtime.settings.in_scope(subscription):
        return _reject(
            runtime, payload, f"subscription {subscription} is outside this deployment's scope"
        )
    try:
        job = VaultApi(runtime.clients, alert.vault).job_details(alert.job_id)
        failure = parse_job(job.as_dict(), Source.ALERT, alert.alert_id, alert.item_id)
    except AzureCallError as error:
        if error.kind != ErrorKind.NOT_FOUND:
            raise  # the action group retries the webhook
        return _reject(
            runtime, payload, f"job {alert.job_id} not found in vault {alert.vault.name}"
        )
    except PayloadError as error:
        return _reject(runtime, payload, f"job {alert.job_id}: {error}")
    outcome: Outcome = respond(runtime, failure)
    return AlertAnswer(200, {"status": outcome.kind, "job": outcome.job_id, "rule": outcome.rule})


def _reject(runtime: Runtime, payload: Any, reason: str) -> AlertAnswer:
    event_id = _field(payload, "data", "essentials", "alertId")
    rejection = Rejection(
        reason, Source.ALERT, excerpt(payload), event_id if isinstance(event_id, str) else ""
    )
    respond(runtime, rejection)
    return AlertAnswer(400, {"status": "rejected", "reason": rejection.reason})
