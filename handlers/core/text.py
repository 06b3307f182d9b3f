"""Text from outside, made storable: lone surrogates made visible, lengths bounded.

>>> bounded("x" * 10, 4)
'xxxx'
"""

from __future__ import annotations

import json
from typing import Any

#: The longest excerpt of a raw payload kept with a rejection (a Table string holds 32K
#: UTF-16 code units; escapes make cleaned text longer than its source).
MAX_RAW_CHARS = 16_000


def clean(text: str) -> str:
    """``text`` with lone surrogates (legal in JSON, not in UTF-8) made visible as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def bounded(text: str, limit: int) -> str:
    """``text`` cleaned and at most ``limit`` characters (escapes make cleaned text longer)."""
    return clean(text[:limit])[:limit]


def excerpt(raw: Any) -> str:
    """A bounded JSON (or repr) rendering of ``raw`` for the rejected-events table."""
    try:
        text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        text = repr(raw)
    shown = clean(text[:MAX_RAW_CHARS])
    if len(text) > MAX_RAW_CHARS or len(shown) > MAX_RAW_CHARS:
        return shown[:MAX_RAW_CHARS] + f"... [truncated, {len(text)} characters in all]"
    return shown
