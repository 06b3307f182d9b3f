"""Which incidents: filters, time ranges, and the Table Storage query they become.

Every filter runs in the Table service, never in Python, and the keys do the heavy lifting:

- a VM is the PartitionKey (``safe_key`` of its name), so ``vm=`` makes a single-partition
  query;
- the RowKey starts with the inverted time the job failed, so ``since``/``until`` become a
  RowKey range (a range scan within a partition; a filter evaluated by the service otherwise);
- vault, rule, category, action (the planned one), status and dry run are property filters,
  compared exactly (case-sensitive, as OData ``eq`` is).

>>> now = datetime(2024, 5, 31, 12, tzinfo=UTC)
>>> q = IncidentQuery.from_params({"vm": "VM-Web-01", "since": "7d", "status": "open"}, now)
>>> q.odata()[0]
'PartitionKey eq @vm and Status eq @status and RowKey lt @since'
>>> q.is_partition_query, q.odata()[1]["vm"]
(True, 'vm-web-01')
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.core.incident import STATUSES, Incident
from handlers.core.model import Workload
from handlers.storage import Storage
from handlers.storage.keys import inverted_ticks, safe_key

_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
#: The inverted form of tick 0: subtracting a RowKey's time prefix from it gives the ticks.
_TICK_ZERO = int(inverted_ticks(_EPOCH))
_TIME_DIGITS = len(inverted_ticks(_EPOCH))
_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})

#: Filter properties of the incidents table, by query field.
_PROPERTIES = {
    "vault": "VaultName",
    "rule": "Rule",
    "category": "Category",
    "action": "PlannedAction",
    "status": "Status",
    "dry_run": "DryRun",
    "workload": "Workload",
}


class QueryError(ValueError):
    """A filter value that cannot be used; the message names the filter."""


def parse_moment(text: str, now: datetime) -> datetime:
    """A point in time: ``30m``, ``12h``, ``7d``, ``2w`` before ``now``, or an ISO 8601 date
    or time (UTC when it has no offset).

    >>> now = datetime(2024, 5, 31, 12, tzinfo=UTC)
    >>> parse_moment("7d", now).isoformat()
    '2024-05-24T12:00:00+00:00'
    >>> parse_moment("2024-05-01", now).isoformat()
    '2024-05-01T00:00:00+00:00'
    """
    relative = _RELATIVE.match(text.strip())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise QueryError(
            f"{text!r} is not a time: use 30m, 12h, 7d, 2w or an ISO date such as 2024-05-01"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def failed_at(incident: Incident) -> datetime:
    """When the incident's job failed, as its RowKey records it (the time queries select on)."""
    ticks = _TICK_ZERO - int(incident.RowKey[:_TIME_DIGITS])
    return _EPOCH + timedelta(microseconds=ticks // 10)


def _row_bound(moment: datetime) -> str:
    """The RowKey just past every incident that failed at ``moment`` (newest-first order)."""
    return f"{int(inverted_ticks(moment)) + 1:0{_TIME_DIGITS}d}"


def _flag(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise QueryError(f"{name}={text!r}: expected true or false")


@dataclass(frozen=True)
class IncidentQuery:
    """Filters on the incidents table; empty fields do not filter.

    :ivar vm: what failed to be backed up, any case: a VM's name, or a database's or share's
        as its jobs name it (the PartitionKey is derived from it).
    :ivar workload: ``vm``, ``sql``, ``hana`` or ``files`` (incidents recorded before workloads
        were answered carry none: they are all VMs).
    :ivar action: the planned action (the rule's), e.g. ``retry``.
    :ivar since: failed at or after this time (inclusive).
    :ivar until: failed before this time (exclusive).
    """

    vm: str = ""
    vault: str = ""
    rule: str = ""
    category: str = ""
    action: str = ""
    status: str = ""
    dry_run: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    workload: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any], now: datetime) -> IncidentQuery:
        """From text values (query string, command line): names are the field names.

        :raises QueryError: a value is unusable.
        """
        values: dict[str, Any] = {}
        for name in FILTERS:
            raw = params.get(name)
            if raw is None or raw == "":
                continue
            if isinstance(raw, bool):
                values[name] = raw
            elif name == "dry_run":
                values[name] = _flag(str(raw), name)
            elif name in ("since", "until"):
                values[name] = parse_moment(str(raw), now)
            else:
                values[name] = str(raw).strip()
        query = cls(**values)
        if query.status and query.status not in STATUSES:
            raise QueryError(f"status={query.status!r}: expected one of {', '.join(STATUSES)}")
        if query.workload and query.workload not in Workload.ALL:
            known = ", ".join(Workload.ALL)
            raise QueryError(f"workload={query.workload!r}: expected one of {known}")
        if query.since and query.until and query.since >= query.until:
            raise QueryError("since must be before until")
        return query

    @property
    def is_partition_query(self) -> bool:
        return bool(self.vm)

    def odata(self) -> tuple[str, dict[str, Any]]:
        """The OData filter (with ``@name`` parameters, spaced as the SDK needs) and its values."""
        clauses: list[str] = []
        values: dict[str, Any] = {}

        def add(name: str, clause: str, value: Any) -> None:
            clauses.append(clause)
            values[name] = value

        if self.vm:
            add("vm", "PartitionKey eq @vm", safe_key(self.vm))
        for name, prop in _PROPERTIES.items():
            value = getattr(self, name)
            if value is not None and value != "":
                add(name, f"{prop} eq @{name}", value)
        if self.since:
            add("since", "RowKey lt @since", _row_bound(self.since))
        if self.until:
            add("until", "RowKey ge @until", _row_bound(self.until))
        return " and ".join(clauses), values

    def explain(self) -> str:
        """How the Table service answers this query, for a person."""
        ranged = " over a RowKey (time) range" if self.since or self.until else ""
        if self.is_partition_query:
            return f"partition query (PartitionKey {safe_key(self.vm)!r}){ranged}"
        if self.odata()[0]:
            return f"table scan filtered by the service{ranged}"
        return "whole table"

    def describe(self) -> str:
        """The filters in use, for a person (times to the minute, in UTC)."""
        return (
            ", ".join(
                f"{name} {value:%Y-%m-%d %H:%M} UTC"
                if isinstance(value, datetime)
                else f"{name} {value}"
                for name, value in vars(self).items()
                if value is not None and value != ""
            )
            or "all incidents"
        )

    def as_params(self) -> dict[str, str]:
        """The filters in use, as text (what ``from_params`` reads back)."""
        out: dict[str, str] = {}
        for name in FILTERS:
            value = getattr(self, name)
            if isinstance(value, bool):
                out[name] = str(value).lower()
            elif isinstance(value, datetime):
                out[name] = value.isoformat()
            elif value:
                out[name] = value
        return out


FILTERS = tuple(f.name for f in fields(IncidentQuery))


def select(storage: Storage, query: IncidentQuery) -> Iterator[Incident]:
    """Every incident matching ``query``, in table order (VM, then newest first)."""
    yield from storage.incidents.query(*query.odata())


def encode_token(token: Mapping[str, str | None]) -> str:
    """An opaque, URL-safe form of a Table continuation token."""
    raw = json.dumps([token.get("PartitionKey"), token.get("RowKey")], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(text: str) -> dict[str, str | None]:
    """The Table continuation token in ``text``.

    :raises QueryError: ``text`` is not a token this module made.
    """
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        pk, rk = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise QueryError("continuation: not a token from a previous page") from None
    if not all(part is None or isinstance(part, str) for part in (pk, rk)) or pk is None:
        raise QueryError("continuation: not a token from a previous page")
    return {"PartitionKey": pk, "RowKey": rk}


def page(
    storage: Storage, query: IncidentQuery, size: int, continuation: str = ""
) -> tuple[list[Incident], str]:
    """One page of at most ``size`` incidents and the token of the next (``""`` at the end).

    The service may return fewer than ``size`` (even none) with a token: follow it.
    """
    flt, values = query.odata()
    token = decode_token(continuation) if continuation else None
    items, following = storage.incidents.page(flt, values, size, token)
    return items, encode_token(following) if following else ""
