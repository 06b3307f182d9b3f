"""``backup-responder sweep`` and ``backup-responder digest``: the weekly and the daily timers'
work, on demand.

``sweep`` runs the orphan sweep now with the function's settings: it lists what it finds, and
stops protection (data kept, through the ``stop_protection`` action) only with
``SWEEP_MODE=stop`` and ``DRY_RUN=false`` and without ``--dry-run``. Like the timer's, the run
is recorded in the ``sweeps`` table. Exit 1 when a subscription, vault or item could not be
swept.

``digest`` previews the digest of the window since the last one (or ``--since``), changing
nothing; ``digest --send`` sends today's digest as the timer does (at most once per UTC day;
a channel that failed earlier today gets it now).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any, TextIO

EXIT_OK, EXIT_FAILED = 0, 1


def _runtime() -> Any:
    from handlers.core.settings import Settings
    from handlers.pipeline.runtime import Runtime

    return Runtime.from_settings(Settings.from_env())


def cmd_sweep(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from handlers.audit.console import rows_table
    from handlers.sweep import report as sweep_report
    from handlers.sweep.orphans import sweep

    runtime = _runtime()
    settings = runtime.settings
    act = settings.sweep_mode == "stop" and not settings.dry_run and not args.dry_run
    report = sweep(runtime, act=act)
    if args.format == "json":
        json.dump(report.as_json(), out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        rows_table(
            sweep_report.COLUMNS,
            sweep_report.rows(report),
            out,
            sweep_report.footer(report),
        )
    return EXIT_FAILED if report.errors else EXIT_OK


def _preview(since: datetime | None, now: datetime) -> Any:
    """The digest the next run would send, read with read-only storage (nothing recorded)."""
    from handlers.cli.main import _reader_storage
    from handlers.core.settings import Settings
    from handlers.digest import daily

    storage = _reader_storage()
    start = since or daily.since_last(storage, now)
    return daily.compose_for(storage, start, now, dry_run=Settings.from_env().dry_run)


def cmd_digest(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from handlers.audit.query import parse_moment
    from handlers.digest import daily, render

    now = datetime.now(UTC)
    since = parse_moment(args.since, now) if args.since else None
    errors: dict[str, str] = {}
    if args.send:
        sent = daily.send_daily(_runtime(), since)
        if sent.digest is None:
            err.write(f"digest of {sent.day}: {sent.state}\n")
            return EXIT_OK
        to = ", ".join(sent.channels) or "no channel"
        failed = "".join(f"; {c} failed: {e}" for c, e in sent.errors.items())
        err.write(f"digest of {sent.day} {sent.state}: to {to}{failed}\n")
        digest, errors = sent.digest, sent.errors
    else:
        digest = _preview(since, now)
    if args.format == "json":
        json.dump(digest.as_json(), out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        out.write(render.text(digest))
    return EXIT_FAILED if errors else EXIT_OK


def add_commands(commands: Any) -> None:
    """The ``sweep`` and ``digest`` subcommands."""
    sweep = commands.add_parser(
        "sweep", help="find protected VM items whose VM is gone (orphans); list or stop them"
    )
    sweep.add_argument(
        "--dry-run",
        action="store_true",
        help="only list, even with SWEEP_MODE=stop and DRY_RUN=false",
    )
    sweep.add_argument("--format", choices=("table", "json"), default="table")
    sweep.set_defaults(run=cmd_sweep)

    digest = commands.add_parser(
        "digest", help="the morning digest: preview it, or --send today's (once a day)"
    )
    digest.add_argument(
        "--since", help="window start: 12h, 2d or an ISO date/time (default: the last digest)"
    )
    digest.add_argument("--send", action="store_true", help="send it as the daily timer does")
    digest.add_argument("--format", choices=("text", "json"), default="text")
    digest.set_defaults(run=cmd_digest)
