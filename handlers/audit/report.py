"""``backup-responder report --html FILE``: one self-contained HTML page.

Headline numbers, charts (incidents per day by category, top rules, top failing VMs, action
outcomes, retry results), retry success and time to resolution per rule, and the incident
table with a filter box. Everything is inline: the
charts are SVG drawn here, the one small script filters the table, and the page's Content
Security Policy forbids loading anything else, so it opens the same offline, from a mail
attachment or a file share.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from html import escape
from pathlib import Path
from string import Template
from typing import Any

from handlers.audit import charts
from handlers.audit.query import IncidentQuery, failed_at
from handlers.audit.records import TABLE_COLUMNS, action_outcome, table_cells
from handlers.audit.summary import Summary, summarize
from handlers.core.incident import Incident, IncidentStatus
from handlers.core.results import duration_text, resolution_time, retry_result

TEMPLATE = Template((Path(__file__).parent / "report.html").read_text(encoding="utf-8"))
#: Categories drawn in their own colour per day; the rest are stacked as "other".
DAY_CATEGORIES = len(charts.PALETTE) - 2
TOP = 10
_CELL_CLASS = {"×": "num", "incident": "id"}
RETRY_COLORS = {
    "succeeded": "#067647",
    "failed": "#b42318",
    "withheld": "#b54708",
    "redirected": "#0072B2",
    "pending": charts.OTHER,
}


def _days(incidents: Sequence[Incident], query: IncidentQuery, generated: datetime) -> list[date]:
    moments = [failed_at(i) for i in incidents]
    first = (query.since or min(moments, default=generated)).date()
    last = ((query.until - timedelta(microseconds=1)) if query.until else generated).date()
    last = max([last, *(m.date() for m in moments)])
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _per_day(incidents: Sequence[Incident], summary: Summary, days: list[date]) -> str:
    named = [category for category, _ in summary.by_category[:DAY_CATEGORIES]]
    counts: Counter[tuple[date, str]] = Counter()
    for incident in incidents:
        category = incident.Category if incident.Category in named else "other"
        counts[failed_at(incident).date(), category] += 1
    colors = dict(zip(named, charts.PALETTE, strict=False))
    names = named + (["other"] if len(summary.by_category) > len(named) else [])
    series = [
        (name, [counts[day, name] for day in days], colors.get(name, charts.OTHER))
        for name in names
    ]
    svg = charts.stacked_columns([d.isoformat() for d in days], series, "incidents per day")
    legend = "".join(
        f'<li><i style="background:{color}"></i>{escape(name)}</li>' for name, _, color in series
    )
    return f'{svg}<ul class="legend">{legend}</ul>'


def _panel(title: str, body: str, chart: str, wide: bool = False) -> str:
    return (
        f'<div class="panel{" wide" if wide else ""}" data-chart="{chart}">'
        f"<h2>{escape(title)}</h2>{body}</div>"
    )


def _kpi(name: str, value: Any, label: str) -> str:
    return (
        f'<div class="kpi" data-kpi="{name}"><b>{escape(str(value))}</b><span>{label}</span></div>'
    )


def _row(incident: Incident) -> str:
    result = action_outcome(incident)
    cells = table_cells(incident)
    css = {**_CELL_CLASS, "status": f"st-{incident.Status}"}
    tds = "".join(
        f'<td class="{escape(css.get(column, ""))}">{escape(cell)}</td>'
        for column, cell in zip(TABLE_COLUMNS, cells, strict=True)
    )
    data = {
        "day": failed_at(incident).date().isoformat(),
        "vm": incident.VmName,
        "vault": incident.VaultName,
        "rule": incident.Rule,
        "category": incident.Category,
        "outcome": result,
        "retry": retry_result(incident) if incident.PlannedAction == "retry" else "",
        "ttr": _seconds(resolution_time(incident)),
        "status": incident.Status,
        "search": " | ".join((*cells, result)).lower(),
    }
    attributes = " ".join(f'data-{k}="{escape(v)}"' for k, v in data.items())
    return f"<tr {attributes}>{tds}</tr>"


def _seconds(span: timedelta | None) -> str:
    return "" if span is None else f"{span.total_seconds():.0f}"


def _per_rule(summary: Summary) -> str:
    """Retry success and time to resolution per rule, one table row each; every number is
    in the row's data attributes too (seconds for times)."""
    rates = {r.rule: r for r in summary.retry_by_rule}
    times = {r.rule: r for r in summary.resolution}
    if not (rates or times):
        return '<p class="empty">No retry finished and no incident was fixed.</p>'
    head = "".join(
        f"<th>{c}</th>"
        for c in ("rule", "retries succeeded", "retry success", "fixed", "median", "p90")
    )
    rows = []
    for rule in sorted(rates.keys() | times.keys()):
        rate, took = rates.get(rule), times.get(rule)
        data = {
            "rule": rule,
            "succeeded": str(rate.succeeded) if rate else "",
            "failed": str(rate.failed) if rate else "",
            "resolved": str(took.resolved) if took else "",
            "median": _seconds(took.median) if took else "",
            "p90": _seconds(took.p90) if took else "",
        }
        cells = (
            rule,
            f"{rate.succeeded} of {rate.succeeded + rate.failed}" if rate else "",
            f"{rate.rate:.0%}" if rate else "",
            str(took.resolved) if took else "",
            duration_text(took.median) if took else "",
            duration_text(took.p90) if took else "",
        )
        attributes = " ".join(f'data-{k}="{escape(v)}"' for k, v in data.items())
        tds = "".join(f"<td>{escape(cell)}</td>" for cell in cells)
        rows.append(f"<tr {attributes}>{tds}</tr>")
    return (
        f'<table class="per-rule"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _panels(incidents: Sequence[Incident], summary: Summary, days: list[date]) -> str:
    retry = summary.retry
    retry_rows = [(name, getattr(retry, name)) for name in RETRY_COLORS]
    rate = f"{retry.rate:.0%}" if retry.rate is not None else "n/a"
    return "".join(
        (
            _panel(
                "Incidents per day, by category",
                _per_day(incidents, summary, days),
                "per-day",
                wide=True,
            ),
            _panel(
                "Top rules",
                charts.bars(summary.by_rule[:TOP], "top rules", tips=summary.rule_titles),
                "rules",
            ),
            _panel(
                "Top failing VMs",
                charts.bars(summary.by_vm[:TOP], "top failing VMs", color=charts.PALETTE[5]),
                "vms",
            ),
            _panel(
                "Action outcomes",
                charts.bars(summary.by_outcome, "action outcomes", color=charts.PALETTE[2]),
                "outcomes",
            ),
            _panel(
                f"Retries: {rate} succeeded of those finished",
                charts.bars(retry_rows, "retry results", colors=RETRY_COLORS),
                "retries",
            ),
            _panel(
                "Per rule: retry success, and time to resolution (first seen to the fix)",
                _per_rule(summary),
                "per-rule",
                wide=True,
            ),
        )
    )


def _subtitle(query: IncidentQuery, incidents: Sequence[Incident], generated: datetime) -> str:
    return escape(
        f"{query.describe()} · {len(incidents)} incidents · generated "
        f"{generated.astimezone(UTC):%Y-%m-%d %H:%M} UTC · times in UTC"
    )


def report_html(
    incidents: Iterable[Incident],
    tickets: Iterable[Mapping[str, Any]],
    query: IncidentQuery,
    generated: datetime,
) -> str:
    """The report page for ``incidents`` (selected by ``query``) and the open ``tickets``."""
    ordered = sorted(incidents, key=lambda i: i.RowKey)  # newest first
    summary = summarize(ordered, tickets, query)
    rate = f"{summary.retry.rate:.0%}" if summary.retry.rate is not None else "n/a"
    escalated = dict(summary.by_status).get(IncidentStatus.ESCALATED, 0)
    kpis = "".join(
        (
            _kpi("incidents", summary.total, "incidents"),
            _kpi("vms", summary.vms, "VMs affected"),
            _kpi("retry-success", rate, "retry success"),
            _kpi("escalated", escalated, "escalated to a person"),
            _kpi("open-tickets", len(summary.open_tickets), "open tickets"),
            _kpi("dry-run", summary.dry_run, "in dry run"),
        )
    )
    panels = (
        _panels(ordered, summary, _days(ordered, query, generated))
        if ordered
        else '<p class="empty">No incidents match.</p>'
    )
    return TEMPLATE.substitute(
        title="Backup incidents",
        subtitle=_subtitle(query, ordered, generated),
        kpis=kpis,
        panels=panels,
        count=len(ordered),
        head="".join(f"<th>{escape(c)}</th>" for c in TABLE_COLUMNS),
        rows="\n".join(_row(i) for i in ordered),
    )
