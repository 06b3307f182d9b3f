"""Azure's own published and recorded payloads (``azure_payloads/``, see its ``SOURCES.md``).

The ``azure`` shapes take their fixed parts from here, so that what is served is what Azure
sent; the shape tests compare served documents with the same files.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

PAYLOADS_DIR = Path(__file__).with_name("azure_payloads")


def load(relative: str) -> Any:
    """A fresh copy of one payload file.

    :param relative: its path under ``azure_payloads/``, e.g. ``"recorded/job_list_nofilter.json"``.
    :raises FileNotFoundError: if there is no such file.
    """
    return copy.deepcopy(_read(relative))


@functools.cache
def _read(relative: str) -> Any:
    return json.loads((PAYLOADS_DIR / relative).read_text(encoding="utf-8"))
