"""The ``$filter`` subset of the Backup list APIs: ``key eq 'value'`` clauses joined by ``and``.

Jobs take the documented ``JobQueryObject`` keys; ``startTime``/``endTime`` bound the job's start
time (inclusive). Times are in the Azure CLI form ``2026-11-24 10:00:00 PM`` (the documented
example also writes ``00:00:00 AM``) or ISO 8601, always UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import TypeVar

from sandbox.simulator.kinds import VM, operation_base
from sandbox.simulator.records import ItemRecord, JobRecord
from sandbox.simulator.resources import container_name

JOB_FILTER_KEYS = ("status", "operation", "backupManagementType", "jobId", "startTime", "endTime")
ITEM_FILTER_KEYS = (
    "backupManagementType",
    "itemType",
    "policyName",
    "friendlyName",
    "containerName",
)

_Record = TypeVar("_Record", JobRecord, ItemRecord)
JobPredicate = Callable[[JobRecord], bool]
ItemPredicate = Callable[[ItemRecord], bool]

_CLAUSE = re.compile(r"(?P<key>\w+)\s+eq\s+'(?P<value>[^']*)'(?:\s+and\s+|$)", re.IGNORECASE)
_CLI_TIME = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})(?:\s*([AP]M))?", re.IGNORECASE
)


def _container_names(item: ItemRecord) -> tuple[str, ...]:
    """The container as paths name it and, for a VM, as its ``containerName`` shows it."""
    target = item.target
    if item.kind is VM:
        return target.container, container_name(target.host_group, target.host_name)
    return (target.container,)


# The values a record answers to, per filter key (any one matching, in any case). backupManagement
# Type and itemType are the kind's (AzureIaasVM/VM, AzureWorkload/SQLDataBase or SAPHanaDatabase,
# AzureStorage/AzureFileShare). A database job's operation carries its backup type ("Backup
# (Log)"); JobOperationType (spec) has no such values, so `operation eq 'Backup'` is assumed to
# match every backup type, as the exact operation does too.
_JOB_FIELDS: Mapping[str, Callable[[JobRecord], Iterable[str]]] = {
    "status": lambda job: (job.status,),
    "operation": lambda job: (job.operation, operation_base(job.operation)),
    "backupManagementType": lambda job: (job.kind.backup_management_type,),
    "jobId": lambda job: (job.name,),
}
_ITEM_FIELDS: Mapping[str, Callable[[ItemRecord], Iterable[str]]] = {
    "backupManagementType": lambda item: (item.kind.backup_management_type,),
    "itemType": lambda item: (item.kind.workload_type,),
    "policyName": lambda item: (item.policy_name,),
    "friendlyName": lambda item: (item.target.friendly_name,),
    "containerName": _container_names,
}


class FilterError(ValueError):
    """The ``$filter`` expression is malformed or uses an unsupported key."""


def parse_filter(expression: str | None, allowed: Collection[str]) -> dict[str, str]:
    """Split a filter into ``{key: value}``, keys spelled as in ``allowed``.

    :param expression: the ``$filter`` text; empty or ``None`` means no filter.
    :param allowed: the supported keys (matched case-insensitively).
    :raises FilterError: on syntax errors, unknown or repeated keys.
    """
    text = (expression or "").strip()
    canonical = {key.lower(): key for key in allowed}
    clauses: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _CLAUSE.match(text, position)
        if match is None:
            raise FilterError(f"cannot parse $filter near {text[position:]!r}")
        key = canonical.get(match["key"].lower())
        if key is None:
            raise FilterError(f"unsupported $filter property {match['key']!r}")
        if key in clauses:
            raise FilterError(f"$filter property {key!r} given twice")
        clauses[key] = match["value"]
        position = match.end()
    return clauses


def parse_filter_time(text: str) -> datetime:
    """Parse a filter time (CLI ``%Y-%m-%d %I:%M:%S %p`` form or ISO 8601) as UTC.

    :raises FilterError: if the text is neither.
    """
    try:
        match = _CLI_TIME.fullmatch(text.strip())
        if match is None:
            moment = datetime.fromisoformat(text.strip())
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        year, month, day, hour, minute, second = (int(group) for group in match.groups()[:6])
        meridiem = (match[7] or "").upper()
        if meridiem:
            hour = hour % 12 + (12 if meridiem == "PM" else 0)
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise FilterError(f"invalid time {text!r} in $filter") from exc


def job_filter(expression: str | None) -> JobPredicate:
    """A predicate over jobs for a ``backupJobs`` ``$filter``.

    :raises FilterError: if the filter is invalid.
    """
    clauses = parse_filter(expression, JOB_FILTER_KEYS)
    earliest = _optional_time(clauses.pop("startTime", None))
    latest = _optional_time(clauses.pop("endTime", None))
    fields_match = _fields_predicate(clauses, _JOB_FIELDS)

    def matches(job: JobRecord) -> bool:
        return (
            fields_match(job)
            and (earliest is None or job.start >= earliest)
            and (latest is None or job.start <= latest)
        )

    return matches


def item_filter(expression: str | None) -> ItemPredicate:
    """A predicate over protected items for a ``backupProtectedItems`` ``$filter``.

    :raises FilterError: if the filter is invalid.
    """
    return _fields_predicate(parse_filter(expression, ITEM_FILTER_KEYS), _ITEM_FIELDS)


def _optional_time(text: str | None) -> datetime | None:
    return None if text is None else parse_filter_time(text)


def _fields_predicate(
    clauses: Mapping[str, str], fields: Mapping[str, Callable[[_Record], Iterable[str]]]
) -> Callable[[_Record], bool]:
    wanted = {key: value.lower() for key, value in clauses.items()}

    def matches(record: _Record) -> bool:
        return all(
            value in {answer.lower() for answer in fields[key](record)}
            for key, value in wanted.items()
        )

    return matches
