"""The local sandbox: the bundled sample events through the real function entry point.

Starts Azurite, points the app settings at it, decodes every sample the way the Functions
worker does, calls ``function_app.on_backup_failure`` for each (each sample twice, in a
second pass, to show that redelivery changes nothing but the occurrence count), prints what
was decided and the incident table, and stops Azurite.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from sandbox.azurite import Azurite

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "events"


class _Outcomes(logging.Handler):
    """Collects the one log line ``respond()`` writes per event."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "outcome"):
            self.records.append(record)


def _as_trigger_input(raw: Any) -> Any:
    """What the worker would hand the function for ``raw`` (bare jobs get an envelope)."""
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum

    from handlers.events import EVENT_TYPE

    if isinstance(raw, dict) and "specversion" not in raw and "eventType" not in raw:
        raw = {
            "id": f"demo-{raw.get('name', 'event')}",
            "topic": "/sandbox",
            "subject": str(raw.get("id", "")),
            "eventType": EVENT_TYPE,
            "eventTime": "2026-11-25T00:00:00Z",
            "dataVersion": "1.0",
            "data": raw,
        }
    return EventGridEventInConverter.decode(Datum(json.dumps(raw), "json"), trigger_metadata=None)


def run(samples: Path, out: TextIO) -> int:
    """Replay ``samples`` through the function app on a fresh Azurite; 0 when all went well."""
    with Azurite() as azurite:
        os.environ.update({"AzureWebJobsStorage": azurite.connection_string, "DRY_RUN": "true"})
        import function_app
        from handlers.cli import read_events, render_table
        from handlers.runtime import current

        collector = _Outcomes()
        logging.getLogger("backup_responder").addHandler(collector)
        logging.getLogger("backup_responder").setLevel(logging.INFO)
        events = list(read_events([str(samples)]))
        out.write(f"Azurite on 127.0.0.1:{azurite.table_port}; {len(events)} sample events\n\n")
        for label in ("first delivery", "redelivery"):
            out.write(f"== {label} ==\n")
            for origin, raw in events:
                before = len(collector.records)
                function_app.on_backup_failure(_as_trigger_input(raw))
                for record in collector.records[before:]:
                    out.write(f"{record.getMessage()}  <- {Path(origin).name}\n")
            out.write("\n")
        kinds = Counter(getattr(r, "outcome", "") for r in collector.records)
        store = current().store
        incidents = sorted(store.incidents(), key=lambda i: (i.VmName, i.RowKey))
        out.write("== incidents table ==\n")
        render_table([i.to_entity() for i in incidents], out)
        rejected = list(store.rejections())
        out.write(f"\n{len(rejected)} rejected inputs kept with their reason\n")
        out.write(", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) + "\n")
        one_per_job = len(incidents) == kinds["new"] + kinds["resumed"]
        return 0 if one_per_job else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("samples", nargs="?", type=Path, default=SAMPLES)
    args = parser.parse_args(argv)
    return run(args.samples, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
