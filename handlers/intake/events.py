"""The edge: raw event payloads in, :class:`BackupFailure` or :class:`Rejection` out.

Accepted shapes, all carrying our ``BackupJobFailed`` contract (see
``docs/backup-job-failed.schema.json``): an Event Grid schema event, a CloudEvents 1.0 event,
the ``azure.functions`` objects for both, and, for replaying, a bare job resource as the
Backup Jobs REST API returns it. Anything else becomes a :class:`Rejection` with a reason;
parsing never raises.

>>> parse({"specversion": "1.0"}).reason
'CloudEvent: missing required attribute(s): id, source, type'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.core.ids import ArmIdError, job_ref, vm_from_container
from handlers.core.model import BackupFailure, ErrorDetail, Rejection, Source, Workload
from handlers.core.text import clean, excerpt

#: The event type of our contract, on our own Event Grid topic.
EVENT_TYPE = "BackupResponder.BackupJobFailed"

#: The earliest time Table Storage holds (and the latest is Python's, in UTC).
EARLIEST = datetime(1601, 1, 1, tzinfo=UTC)
ZERO = timedelta(0)
#: Bounds that keep one hostile event from costing unbounded memory or storage.
MAX_TEXT_CHARS = 8_000
MAX_ERRORS = 20
MAX_NAME_CHARS = 1_024

#: The job types this app answers for, and the workload each names (a workload job's
#: ``workloadType`` says which database it is).
_JOB_TYPES = {
    "azureiaasvmjob": Workload.VM,
    "azureiaasvmjobv2": Workload.VM,
    "azureworkloadjob": "",
    "azurestoragejob": Workload.FILES,
}
_WORKLOAD_TYPES = {"sqldatabase": Workload.SQL, "saphanadatabase": Workload.HANA}
#: ``Backup (Log)``: a workload job's operation with its backup type.
_TYPED_OPERATION = re.compile(r"^\s*[A-Za-z]+\s*\(\s*([A-Za-z]+)\s*\)\s*$")
# JobSupportedAction in the REST spec, for old payloads that serialize it as a number.
_ACTIONS_INFO = ("Invalid", "Cancellable", "Retriable")


class PayloadError(ValueError):
    """The payload is not a usable ``BackupJobFailed`` event; the message says why."""


def _string(
    value: Any,
    path: str,
    *,
    limit: int = MAX_TEXT_CHARS,
    required: bool = False,
    name: bool = False,
) -> str:
    """A string field, cut at ``limit``; a ``name`` (an id) is never cut: too long rejects."""
    if value is None:
        if required:
            raise PayloadError(f"{path} is missing")
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"{path} must be a string, not {type(value).__name__}")
    if name and len(value) > limit:
        raise PayloadError(f"{path} is longer than {limit} characters ({len(value)})")
    return clean(value[:limit])


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        kind = "missing" if value is None else f"a {type(value).__name__}, not an object"
        raise PayloadError(f"{path} is {kind}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{path} must be a list, not {type(value).__name__}")
    return value


def _time(value: Any, path: str) -> datetime | None:
    """A time in UTC, or None when absent (``0001-01-01T00:00:00`` is .NET's "no value",
    which Azure sends for times not reached yet).

    :raises PayloadError: not a time, or one Table Storage cannot hold (before 1601, or past
        the year 9999 once in UTC).
    """
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = _string(value, path, limit=64)
        try:
            moment = datetime.fromisoformat(_trim_fraction(text))
        except ValueError:
            raise PayloadError(f"{path} is not an ISO 8601 time: {text!r}") from None
    if moment.replace(tzinfo=None) == datetime.min and moment.utcoffset() in (None, ZERO):
        return None
    try:
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise PayloadError(f"{path} is outside the years 1601-9999: {moment.isoformat()}") from None
    if moment < EARLIEST:
        raise PayloadError(f"{path} is before 1601, which Table Storage cannot hold: {moment}")
    return moment


def _trim_fraction(text: str) -> str:
    # Azure writes 7 fractional digits; Python 3.11 accepts at most 6.
    return re.sub(r"(\.\d{6})\d+", r"\1", text.strip().replace("Z", "+00:00"))


def _code(value: Any, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str | None):
        raise PayloadError(f"{path} must be a number or a string")
    return "" if value is None else clean(str(value).strip()[:200])


def _error(raw: Any, path: str) -> ErrorDetail:
    entry = _mapping(raw, path)
    recommendations = tuple(
        _string(r, f"{path}.recommendations[{i}]")
        for i, r in enumerate(_list(entry.get("recommendations"), f"{path}.recommendations"))
    )
    return ErrorDetail(
        code=_code(entry.get("errorCode"), f"{path}.errorCode"),
        message=_string(entry.get("errorString"), f"{path}.errorString"),
        recommendations=recommendations[:MAX_ERRORS],
        title=_code(entry.get("errorTitle"), f"{path}.errorTitle"),
    )


def _actions_info(raw: Any) -> tuple[str, ...]:
    names = []
    for i, action in enumerate(_list(raw, "properties.actionsInfo")):
        if isinstance(action, int) and not isinstance(action, bool):
            if not 0 <= action < len(_ACTIONS_INFO):
                raise PayloadError(f"properties.actionsInfo[{i}] is not a known action: {action}")
            names.append(_ACTIONS_INFO[action])
        else:
            names.append(_string(action, f"properties.actionsInfo[{i}]", limit=64))
    return tuple(names)


def _workload(props: Mapping[str, Any]) -> str:
    job_type = _string(props.get("jobType"), "properties.jobType", required=True, limit=64)
    if job_type.lower() not in _JOB_TYPES:
        raise PayloadError(f"properties.jobType {job_type!r} is not a job this app answers for")
    workload = _JOB_TYPES[job_type.lower()]
    if workload:
        return workload
    kind = _string(props.get("workloadType"), "properties.workloadType", required=True, limit=64)
    if kind.lower() not in _WORKLOAD_TYPES:
        raise PayloadError(f"properties.workloadType {kind!r} is not SQL or SAP HANA")
    return _WORKLOAD_TYPES[kind.lower()]


def _name(props: Mapping[str, Any], key: str) -> str:
    return _string(props.get(key), f"properties.{key}", limit=MAX_NAME_CHARS, name=True)


def parse_job(job: Any, source: Source, event_id: str = "", item_id: str = "") -> BackupFailure:
    """Normalize one job resource (the Backup Jobs REST API's JSON) into a BackupFailure.

    :param item_id: the protected item's ARM id when the source names it (an alert).
    :raises PayloadError: the job is not a failed backup job of Azure VM, SQL or SAP HANA in
        Azure VM, or Azure Files, in a usable shape.
    """
    job = _mapping(job, "data")
    job_id = _string(job.get("id"), "data.id", required=True, limit=MAX_NAME_CHARS * 2, name=True)
    try:
        vault, job_name = job_ref(job_id)
    except ArmIdError:
        raise PayloadError(
            f"data.id is not a Recovery Services backup job id: {job_id[:200]!r}"
        ) from None
    props = _mapping(job.get("properties"), "data.properties")
    # The status first: a job that did not fail is refused for that alone (Azure may leave
    # other fields out while a job runs, e.g. a SAP HANA job's workloadType).
    status = _string(props.get("status"), "properties.status", required=True, limit=64)
    if status.lower() != "failed":
        raise PayloadError(f"properties.status is {status!r}, not 'Failed'")
    workload = _workload(props)
    vm_group, vm_name = vm_from_container(_name(props, "containerName"))
    entity = _name(props, "entityFriendlyName")
    if workload == Workload.VM:
        vm_name = vm_name or entity
    operation = _string(props.get("operation"), "properties.operation", limit=64)
    typed = _TYPED_OPERATION.match(operation)
    errors = tuple(
        _error(e, f"properties.errorDetails[{i}]")
        for i, e in enumerate(_list(props.get("errorDetails"), "properties.errorDetails"))
    )
    extended = props.get("extendedInfo")
    dynamic = ""
    if extended is not None:
        dynamic = _string(
            _mapping(extended, "properties.extendedInfo").get("dynamicErrorMessage"),
            "properties.extendedInfo.dynamicErrorMessage",
        )
    return BackupFailure(
        job_id=job_name,
        subscription_id=vault.subscription_id,
        vault_resource_group=vault.resource_group,
        vault_name=vault.name,
        vm_name=vm_name,
        vm_resource_group=vm_group,
        operation=operation,
        status=status,
        errors=errors[:MAX_ERRORS],
        source=source,
        start_time=_time(props.get("startTime"), "properties.startTime"),
        end_time=_time(props.get("endTime"), "properties.endTime"),
        event_id=event_id,
        actions_info=_actions_info(props.get("actionsInfo")),
        dynamic_message=dynamic,
        workload=workload,
        entity=entity,
        backup_type=typed.group(1) if typed else "",
        storage_account=_name(props, "storageAccountName"),
        item_id=item_id,
    )


def cloud_event(job: Mapping[str, Any], event_id: str) -> dict[str, Any]:
    """The wire form of our ``BackupJobFailed`` CloudEvent for a job resource.

    >>> event = cloud_event({"id": "/subscriptions/s/x/vaults/v/backupJobs/j", "name": "j"}, "e1")
    >>> event["source"], event["subject"]
    ('/subscriptions/s/x/vaults/v', 'backupJobs/j')
    """
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": str(job["id"]).split("/backupJobs/")[0],
        "type": EVENT_TYPE,
        "subject": f"backupJobs/{job['name']}",
        "datacontenttype": "application/json",
        "data": job,
    }


def _event_type_ok(event_type: str) -> None:
    if event_type.lower() != EVENT_TYPE.lower():
        raise PayloadError(f"event type {event_type[:200]!r} is not {EVENT_TYPE}")


def _parse_cloud_event(raw: Mapping[str, Any]) -> BackupFailure:
    missing = [k for k in ("id", "source", "type") if not raw.get(k)]
    if missing:
        raise PayloadError(f"CloudEvent: missing required attribute(s): {', '.join(missing)}")
    if raw.get("specversion") != "1.0":
        raise PayloadError(f"CloudEvent: specversion {raw.get('specversion')!r} is not '1.0'")
    event_id = _string(raw["id"], "id", limit=256)
    _event_type_ok(_string(raw["type"], "type", limit=256))
    return parse_job(raw.get("data"), Source.CLOUD_EVENT, event_id)


def _parse_event_grid(raw: Mapping[str, Any]) -> BackupFailure:
    missing = [k for k in ("id", "eventType", "subject", "data") if raw.get(k) in (None, "")]
    if missing:
        raise PayloadError(f"Event Grid event: missing field(s): {', '.join(missing)}")
    event_id = _string(raw["id"], "id", limit=256)
    _event_type_ok(_string(raw["eventType"], "eventType", limit=256))
    return parse_job(raw["data"], Source.EVENT_GRID, event_id)


def _source_of(raw: Any) -> str:
    if isinstance(raw, Mapping):
        if "specversion" in raw:
            return Source.CLOUD_EVENT
        if "eventType" in raw:
            return Source.EVENT_GRID
    return Source.REPLAY


def parse(raw: Any) -> BackupFailure | Rejection:
    """Parse one event (a dict from JSON) into a BackupFailure, or say why it cannot be."""
    source = _source_of(raw)
    try:
        if not isinstance(raw, Mapping):
            raise PayloadError(f"an event must be a JSON object, not {type(raw).__name__}")
        if source == Source.CLOUD_EVENT:
            return _parse_cloud_event(raw)
        if source == Source.EVENT_GRID:
            return _parse_event_grid(raw)
        return parse_job(raw, Source.REPLAY)
    except PayloadError as exc:
        event_id = raw.get("id") if isinstance(raw, Mapping) else ""
        return Rejection(
            reason=str(exc),
            source=str(source),
            payload=excerpt(raw),
            event_id=event_id[:256] if isinstance(event_id, str) else "",
        )
