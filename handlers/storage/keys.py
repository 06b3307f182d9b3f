"""Table Storage keys derived from names that Azure allows but Table keys do not.

PartitionKey and RowKey may not hold ``/ \\ # ?`` or control characters, and are limited to
1 KiB. ARM ids are full of ``/``; VM names may be long and non-ASCII. Every key in the app is
built by :func:`safe_key`, so one tested function decides what reaches the service.

>>> safe_key("/subscriptions/S1/resourceGroups/RG/providers/x/vm#1?")
'%2Fsubscriptions%2Fs1%2Fresourcegroups%2Frg%2Fproviders%2Fx%2Fvm%231%3F'
>>> safe_key("")
'_'
>>> len(safe_key("v" * 5000)) <= MAX_KEY_CHARS
True
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from handlers.core.model import BackupFailure

#: Longest key produced, in characters. Far under the service's 1 KiB limit even when every
#: character needs UTF-16 surrogates, and short enough to keep queries readable.
MAX_KEY_CHARS = 200
_HASH_CHARS = 16

# Characters the Table service forbids in keys, plus '%' (our escape) and '~' (marks a
# hashed key), so that no short value can ever look like the key of a long one.
_FORBIDDEN = frozenset("/\\#?%~")

# Ticks (100 ns) since 0001-01-01 of the largest datetime, so that "inverted" timestamps sort
# newest first as plain strings.
_MAX_TICKS = 3155378975999999999
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


def _needs_escape(char: str) -> bool:
    code = ord(char)
    return (
        char in _FORBIDDEN
        or code < 0x20
        or 0x7F <= code <= 0x9F
        # Lone surrogates (possible in JSON input) cannot be sent as UTF-8.
        or 0xD800 <= code <= 0xDFFF
    )


def _escape(char: str) -> str:
    if _needs_escape(char):
        return "".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass"))
    return char


def safe_key(value: str) -> str:
    """Return a valid, deterministic Table key for ``value`` (case-insensitive, like ARM).

    Short values map one to one (percent-escaping the forbidden characters); a value whose
    escaped form is too long keeps a readable prefix and ends in a hash of the whole value.
    """
    lowered = value.lower()
    escaped = "".join(_escape(c) for c in lowered) or "_"
    if len(escaped) <= MAX_KEY_CHARS:
        return escaped
    digest = hashlib.sha256(lowered.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    head = escaped[: MAX_KEY_CHARS - _HASH_CHARS - 1]
    # Do not cut an escape sequence in half.
    cut = head.rfind("%", len(head) - 2)
    if cut != -1:
        head = head[:cut]
    return f"{head}~{digest}"


def inverted_ticks(moment: datetime) -> str:
    """A fixed-width string that sorts ``moment`` newest first."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    ticks = (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
    return f"{_MAX_TICKS - ticks:019d}"


def incident_keys(failure: BackupFailure, received_at: datetime) -> tuple[str, str]:
    """PartitionKey and RowKey of the incident for ``failure``: what failed to be backed up (the
    VM, the database, the share), then newest first."""
    moment = failure.occurred_at or received_at
    resource = safe_key(failure.resource_name or "_unknown")
    return resource, f"{inverted_ticks(moment)}_{safe_key(failure.job_id)}"
