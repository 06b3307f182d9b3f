"""The forms of Azure's times and durations, shared by every renderer of the ``azure`` shapes.

* times with 7 fractional digits, trailing zeros trimmed as .NET does
  (``2022-05-16T14:28:23.5523231Z``), and ``0001-01-01T00:00:00`` for "no end yet";
* durations as ISO 8601 (``PT41M12.684856S``) or as a .NET TimeSpan (``00:20:23.0896697``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

TIMESPAN = "timespan"
ISO = "iso"
DURATION_FORMS = frozenset({TIMESPAN, ISO})
# DateTime.MinValue as the Backup service writes an InProgress operation's endTime, no "Z"
# (recorded scenario_backup_operation_status_inprogress.json).
NO_END_TIME = "0001-01-01T00:00:00"

_TICKS_PER_SECOND = 10_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ticks(moment: datetime) -> int:
    """100 ns ticks since 1970 (naive times are UTC).

    Azure's clocks have 100 ns ticks, Python's microseconds: the seventh fractional digit is
    made up (1-9, from the microseconds), so that served times have Azure's seven digits and
    still read back as the same microsecond.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    return micros * 10 + 1 + moment.microsecond % 9


def format_time(moment: datetime) -> str:
    """A time as Azure writes it: ``2022-05-16T14:28:23.5523231Z``."""
    seconds, fraction = divmod(ticks(moment), _TICKS_PER_SECOND)
    whole = _EPOCH + timedelta(seconds=seconds)
    return f"{whole:%Y-%m-%dT%H:%M:%S}{_fraction(fraction)}Z"


def iso_duration(span: int) -> str:
    """A span of ticks as .NET's XmlConvert writes it: ``PT1H9M58.9495507S``, ``PT0S``."""
    days, hours, minutes, seconds, fraction = _split(span)
    time = "".join(f"{value}{unit}" for value, unit in ((hours, "H"), (minutes, "M")) if value)
    if seconds or fraction:
        time += f"{seconds}{_fraction(fraction)}S"
    if not (days or time):
        return "PT0S"
    return ("P" + (f"{days}D" if days else "")) + (f"T{time}" if time else "")


def timespan(span: int) -> str:
    """A span of ticks as a .NET TimeSpan: ``00:20:23.0896697``, ``1.02:00:00``, ``00:00:00``."""
    days, hours, minutes, seconds, fraction = _split(span)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if fraction:
        text += f".{fraction:07d}"
    return f"{days}.{text}" if days else text


def elapsed(start: datetime, end: datetime) -> int:
    """Ticks from ``start`` to ``end`` (never negative), computed on the served times."""
    return max(ticks(end) - ticks(start), 0)


def _split(span: int) -> tuple[int, int, int, int, int]:
    seconds, fraction = divmod(span, _TICKS_PER_SECOND)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return days, hours, minutes, seconds, fraction


def _fraction(fraction: int) -> str:
    # .NET's "FFFFFFF": up to seven digits, trailing zeros and a bare dot dropped.
    return f".{fraction:07d}".rstrip("0") if fraction else ""


def general_time(moment: datetime) -> str:
    """A UTC time in .NET's en-US general form, ``6/15/2022 12:00:00 AM`` (job property bags)."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    hour = moment.hour % 12 or 12
    meridiem = "AM" if moment.hour < 12 else "PM"
    return (
        f"{moment.month}/{moment.day}/{moment.year} "
        f"{hour}:{moment.minute:02d}:{moment.second:02d} {meridiem}"
    )


def duration_text(form: str, length: int) -> str:
    """A span of ``length`` ticks in ``form`` (:data:`TIMESPAN` or :data:`ISO`)."""
    return timespan(length) if form == TIMESPAN else iso_duration(length)


def whole_seconds(moment: datetime) -> str:
    """A UTC time to the second, ``2019-05-14T08:20:47Z`` (Microsoft.Storage examples, and the
    workload items' recovery point times in the recorded CLI traffic)."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"
