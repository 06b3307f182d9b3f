"""Parts of the ``azure`` shapes every kind of job shares: the ``Job`` base properties, the
resource around them, the duration, and the trimming of list entries."""

from __future__ import annotations

from datetime import datetime

from sandbox.simulator import resources as res
from sandbox.simulator.azure_forms import duration_text, elapsed, format_time
from sandbox.simulator.protocol import JsonObject
from sandbox.simulator.records import JobRecord


def job_tail(job: JobRecord, entity: str) -> JsonObject:
    """The ``Job`` base properties, in the recordings' order.

    :param entity: the ``entityFriendlyName``.
    """
    tail: JsonObject = {
        "entityFriendlyName": entity,
        "backupManagementType": job.kind.backup_management_type,
        "operation": job.operation,
        "status": job.status,
        "startTime": format_time(job.start),
    }
    if job.end is not None:
        tail["endTime"] = format_time(job.end)
    tail["activityId"] = job.activity_id
    return tail


def job_resource(job: JobRecord, properties: JsonObject) -> JsonObject:
    """The ``JobResource`` around a job's ``properties``."""
    return {
        "id": res.job_id(job.vault_id, job.name),
        "name": job.name,
        "type": res.JOB_RESOURCE_TYPE,
        "properties": properties,
    }


def job_duration(job: JobRecord, now: datetime, form: str) -> str:
    """A job's duration in ``form`` (to its end, or to ``now`` while it runs)."""
    return duration_text(form, elapsed(job.start, job.end or now))


def trimmed(details: JsonObject) -> JsonObject:
    """A ``backupJobs`` list entry from job details rendered with an ISO duration: without
    ``extendedInfo``, ``errorDetails`` and ``isUserTriggered``, as Azure trims VM jobs."""
    for key in ("extendedInfo", "errorDetails", "isUserTriggered"):
        details["properties"].pop(key, None)
    return details
