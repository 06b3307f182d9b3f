"""Terminal rendering of incidents, one incident, a summary, health and dead letters (rich).

Cell values are wrapped in :class:`rich.text.Text`, so brackets in error messages are shown,
never read as markup. Written to a file or a pipe, tables are plain text and wide enough not
to wrap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from handlers.audit.health import Health
from handlers.audit.query import failed_at
from handlers.audit.records import TABLE_COLUMNS, outcome, table_cells
from handlers.audit.summary import Summary
from handlers.core.incident import Incident
from handlers.core.results import duration_text
from handlers.storage import DeadLetter, DeadLetterBlob

#: Width of tables written to a file or a pipe, where no terminal says how wide to be.
PLAIN_WIDTH = 220
#: Rows of the longer summary lists shown on a terminal.
TOP = 10
_TIME = "%Y-%m-%d %H:%M"


def console(out: TextIO) -> Console:
    terminal = out.isatty()
    return Console(
        file=out,
        width=None if terminal else PLAIN_WIDTH,
        force_terminal=terminal,
        highlight=False,
        soft_wrap=False,
    )


def _table(title: str, *columns: str, **options: Any) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, **options)
    for column in columns:
        table.add_column(column, justify="right" if column in ("n", "×") else "left")
    return table


def _row(table: Table, *cells: Any) -> None:
    table.add_row(*(Text(str(cell)) for cell in cells))


def incident_table(incidents: Sequence[Incident], out: TextIO, how: str = "") -> None:
    """One line per incident, in the given order, with a count (and how it was queried)."""
    table = _table("", *TABLE_COLUMNS)
    for incident in incidents:
        _row(table, *table_cells(incident))
    screen = console(out)
    screen.print(table)
    count = f"{len(incidents)} incident{'s' if len(incidents) != 1 else ''}"
    screen.print(Text(f"({count}; {how})" if how else f"({count})"))


def incident_detail(incident: Incident, out: TextIO) -> None:
    """Everything about one incident: the facts, the evidence, the whole action log."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for name, value in (
        ("incident", incident.IncidentId),
        ("failed (UTC)", failed_at(incident).strftime(_TIME)),
        (incident.resource_label, incident.resource_id),
        ("vault", incident.VaultId or incident.VaultName),
        ("operation", incident.Operation),
        ("job", incident.JobResourceId or incident.JobId),
        ("rule", f"{incident.Rule}: {incident.RuleTitle} (matched by {incident.MatchedBy})"),
        ("category", incident.Category),
        ("action", f"{incident.PlannedAction} → {outcome(incident) or '-'}"),
        ("status", incident.Status + ("  (dry run)" if incident.DryRun else "")),
        ("seen", f"{incident.Occurrences}× via {incident.Source}, first {incident.FirstSeen}"),
        ("error codes", incident.ErrorCodes or "(none)"),
        ("error message", incident.ErrorMessage or "(none)"),
        ("remediation", incident.Remediation),
        ("doc", incident.Doc),
    ):
        _row(facts, name, value)
    log = _table("action log", "at", "action", "state", "attempt", "ref", "detail")
    for entry in incident.actions:
        _row(log, entry.at, entry.action, entry.state, entry.attempt or "", entry.ref, entry.detail)
    screen = console(out)
    screen.print(facts)
    screen.print(log)


def _counts(title: str, rows: Sequence[tuple[str, int]], label: str) -> Table:
    table = _table(title, label, "n")
    for key, count in rows:
        _row(table, key, count)
    return table


def summary_text(summary: Summary, out: TextIO) -> None:
    """The summary as a few small tables."""
    screen = console(out)
    retry = summary.retry
    rate = f"{retry.rate:.0%}" if retry.rate is not None else "n/a"
    screen.print(
        Text(
            f"{summary.total} incidents on {summary.vms} VMs ({summary.query.describe()}); "
            f"{summary.dry_run} in dry run\n"
            f"retry success {rate}: {retry.succeeded} succeeded, {retry.failed} failed, "
            f"{retry.withheld} withheld, {retry.redirected} redirected, {retry.pending} pending\n"
            f"{len(summary.open_tickets)} open tickets"
        )
    )
    screen.print(_counts("by category", summary.by_category, "category"))
    screen.print(_counts("by rule", summary.by_rule, "rule"))
    screen.print(_counts("by vault", summary.by_vault, "vault"))
    screen.print(_counts("action outcomes", summary.by_outcome, "action: outcome"))
    rates = _table("retry success per rule", "rule", "succeeded", "failed", "rate")
    for r in summary.retry_by_rule:
        _row(rates, r.rule, r.succeeded, r.failed, f"{r.rate:.0%}")
    screen.print(rates)
    times = _table("time to resolution per rule", "rule", "resolved", "median", "p90")
    for r in summary.resolution:
        _row(times, r.rule, r.resolved, duration_text(r.median), duration_text(r.p90))
    screen.print(times)
    repeated = _table("failing repeatedly", "vault", "VM", "n", "last failed (UTC)", "rules")
    for item in summary.repeated[:TOP]:
        rules = ", ".join(item.rules[:3]) + (", …" if len(item.rules) > 3 else "")
        _row(repeated, item.vault, item.vm, item.failures, item.last_failed.strftime(_TIME), rules)
    screen.print(repeated)
    _more(screen, len(summary.repeated))
    tickets = _table("open tickets", "ticket", "VM", "rule", "×", "opened (UTC)")
    for ticket in summary.open_tickets[:TOP]:
        _row(
            tickets,
            ticket.ticket_id,
            ticket.vm,
            ticket.rule,
            ticket.occurrences,
            ticket.opened.strftime(_TIME),
        )
    screen.print(tickets)
    _more(screen, len(summary.open_tickets))


def _more(screen: Console, count: int) -> None:
    if count > TOP:
        screen.print(Text(f"({count - TOP} more; --format json lists them all)"))


def health_text(report: Health, out: TextIO) -> None:
    """Each check with its status and what it found, then the overall status."""
    table = _table("", "check", "status", "summary")
    for check in report.checks:
        _row(table, check.name, check.status, check.summary)
        for detail in check.details:
            _row(table, "", "", f"  {detail}")
    screen = console(out)
    screen.print(table)
    checked = report.checked_at.strftime(_TIME)
    screen.print(Text(f"health: {report.status} (checked {checked} UTC)"))


def dead_letter_table(letters: Sequence[tuple[DeadLetterBlob, DeadLetter]], out: TextIO) -> None:
    """One line per dead-lettered event: its blob, why Event Grid gave up, and the event."""
    table = _table("", "dead-lettered", "replayed", "reason", "attempts", "event", "subject")
    for blob, letter in letters:
        event = letter.event if isinstance(letter.event, dict) else {}
        _row(
            table,
            blob.dead_lettered_at.strftime(_TIME),
            blob.replayed_at or "no",
            letter.why.get("deadLetterReason", ""),
            letter.why.get("deliveryAttempts", ""),
            event.get("id", "(not an event)"),
            event.get("subject", ""),
        )
    screen = console(out)
    screen.print(table)
    waiting = len({b.name for b, _ in letters if not b.replayed_at})
    screen.print(Text(f"({len(letters)} event(s); {waiting} blob(s) not replayed yet)"))


def rows_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO, notes: Sequence[str] = ()
) -> None:
    """Any rows under ``columns`` (cells shown as text, never as markup), then ``notes``, one
    per line (the sweep's table uses it)."""
    table = _table("", *columns)
    for cells in rows:
        _row(table, *cells)
    screen = console(out)
    screen.print(table)
    for note in notes:
        screen.print(Text(note))
