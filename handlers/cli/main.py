"""``backup-responder``: the command line for the local loop and for operators.

Commands::

    backup-responder classify --code 400094 --message "..."   # one JSON object
    backup-responder classify --jsonl < cases.jsonl           # one JSON object per line
    backup-responder replay tests/events/                     # events through respond()
    backup-responder incidents --vm vm-web-01 --since 7d      # newest first; json, csv
    backup-responder incidents show JOB_ID                    # evidence and action log
    backup-responder summary --since 30d                      # counts, retry success
    backup-responder report --html report.html                # charts, self-contained
    backup-responder health                                   # exit 0 ok, 1 degraded, 3 unhealthy
    backup-responder deadletter list                          # what Event Grid gave up on
    backup-responder deadletter replay                        # through respond(), once
    backup-responder approve JOB_ID [--by NAME]               # a waiting stop protection
    backup-responder reject JOB_ID [--by NAME]                # leaves protection on
    backup-responder sweep                                    # orphaned VM items (--format json)
    backup-responder digest [--since 2d] [--send]             # the morning digest

Every command but ``classify`` uses the same settings as the function (``AzureWebJobsStorage``
or ``AzureWebJobsStorage__tableServiceUri`` with ``DefaultAzureCredential``, see the README);
the audit commands only read. On a terminal, ``replay`` and ``report`` show a progress bar
(on stderr); piped or redirected they print only their results.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from handlers.cli.operations import add_commands
from handlers.core.settings import Settings, SettingsError

if TYPE_CHECKING:
    from handlers.audit.query import IncidentQuery
    from handlers.storage import Storage

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNHEALTHY = 0, 1, 2, 3
T = TypeVar("T")


def _classify_line(rules: Any, line: str, language: str, workload: str = "vm") -> dict[str, Any]:
    """One answer per input line; a ``workload`` key in the line overrides ``workload``."""
    from rules.engine import WORKLOADS, unclassified

    error = ""
    try:
        case = json.loads(line) if line.strip() else {}
    except (ValueError, RecursionError) as exc:
        case, error = {}, f"not JSON: {exc}"
    if not isinstance(case, dict):
        case, error = {}, "not a JSON object"
    code, message = case.get("code"), case.get("message")
    codes = [code] if isinstance(code, str | int) and not isinstance(code, bool) else []
    text = message if isinstance(message, str) else ""
    operation = case.get("operation") if isinstance(case.get("operation"), str) else ""
    if case.get("workload") is not None:
        workload = case["workload"]
    if isinstance(workload, str) and workload in WORKLOADS:
        decision = rules.classify(codes, text, operation, workload)
    else:
        decision = unclassified([str(c) for c in codes], text)
        error = error or f"unknown workload {workload!r}: expected one of {', '.join(WORKLOADS)}"
    out = decision.as_dict()
    out["remediation"] = decision.remediation_in(language)
    out["workload"] = workload
    if error:
        out["error"] = error
    return out


def cmd_classify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from rules import default_rule_set
    from rules.engine import WORKLOADS

    if args.workload not in WORKLOADS:
        err.write(f"classify: --workload must be one of {', '.join(WORKLOADS)}\n")
        return EXIT_USAGE
    rules = default_rule_set(args.rules or Settings.from_env().user_rules_path)
    if args.jsonl:
        for line in sys.stdin:
            answer = _classify_line(rules, line, args.language, args.workload)
            out.write(json.dumps(answer, ensure_ascii=False) + "\n")
        return EXIT_OK
    case = json.dumps({"code": args.code, "message": args.message})
    answer = _classify_line(rules, case, args.language, args.workload)
    out.write(json.dumps(answer, ensure_ascii=False) + "\n")
    return EXIT_OK


def _json_files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*.json") if p.is_file())
    else:
        yield path


def read_events(paths: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """Every event in ``paths`` (files holding one event or an array, or folders of them).

    A file that is not valid JSON yields its text, so that it is rejected, not skipped.
    """
    for name in paths:
        for path in _json_files(Path(name)):
            text = path.read_text(encoding="utf-8", errors="replace")
            try:
                body = json.loads(text)
            except (ValueError, RecursionError):
                yield str(path), text
                continue
            if isinstance(body, list) and body:
                for i, event in enumerate(body):
                    yield f"{path}[{i}]", event
            else:
                yield str(path), body


class Tracker:
    """A progress bar on ``err`` while it is a terminal; nothing at all otherwise.

    :param total: number of steps, or ``None`` to count without knowing the end.
    """

    def __init__(self, description: str, err: TextIO, out: TextIO, total: int | None = None):
        self._out = out
        self._progress: Any = None
        if err.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(file=err),
                transient=True,
            )
            self._task = self._progress.add_task(description, total=total)

    def __enter__(self) -> Tracker:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)

    def echo(self, line: str) -> None:
        """Write ``line`` to the output, above the bar when both share the terminal."""
        if self._progress is not None and self._out.isatty():
            self._progress.console.print(line, markup=False, highlight=False)
        else:
            self._out.write(line + "\n")

    def each(self, items: Iterable[T]) -> Iterator[T]:
        for item in items:
            yield item
            self.advance()


def cmd_replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from handlers.intake.events import parse
    from handlers.pipeline.respond import respond
    from handlers.pipeline.runtime import Runtime
    from handlers.storage import RetryLaterError

    runtime = Runtime.from_settings(Settings.from_env())
    events = list(read_events(args.paths))
    failed = 0
    with Tracker("replaying", err, out, total=len(events)) as tracker:
        for origin, raw in tracker.each(events):
            try:
                line = respond(runtime, parse(raw)).describe()
            except RetryLaterError as exc:
                line, failed = f"in-flight   {exc}", failed + 1
            except Exception as exc:  # one event's failure never stops the batch
                line, failed = f"failed      {type(exc).__name__}: {exc}"[:500], failed + 1
            tracker.echo(f"{line}  <- {origin}")
    return EXIT_FAILED if failed else EXIT_OK


def render_table(rows: Sequence[Mapping[str, Any]], out: TextIO) -> None:
    """The incident table of ``rows`` (incident entities), as ``incidents`` prints it."""
    from handlers.audit.console import incident_table
    from handlers.core.incident import Incident

    incident_table([Incident.from_entity(dict(row)) for row in rows], out)


def _reader_storage() -> Storage:
    """Storage for reading only: unlike the function, it never creates tables, so a
    read-only identity (Storage Table Data Reader) is enough."""
    from handlers.azure.clients import AzureClients
    from handlers.storage import Storage

    settings = Settings.from_env()
    return Storage.from_settings(settings, lambda: AzureClients(settings).credential)


def _query(args: argparse.Namespace) -> IncidentQuery:
    from handlers.audit.query import FILTERS, IncidentQuery

    return IncidentQuery.from_params(
        {name: getattr(args, name) for name in FILTERS}, datetime.now(UTC)
    )


def cmd_incidents(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from handlers.audit import records
    from handlers.audit.console import incident_table
    from handlers.audit.query import select

    query = _query(args)
    incidents = sorted(select(_reader_storage(), query), key=lambda i: i.RowKey)[: args.limit]
    if args.format == "json":
        records.write_json(incidents, out)
    elif args.format == "csv":
        records.write_csv(incidents, out)
    else:
        incident_table(incidents, out, query.explain())
    return EXIT_OK


def cmd_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from handlers.audit.console import incident_detail
    from handlers.audit.records import write_json

    incident = _reader_storage().find_incident(args.id)
    if incident is None:
        err.write(f"backup-responder: no incident {args.id}\n")
        return EXIT_FAILED
    if args.format == "json":
        write_json([incident], out)
    else:
        incident_detail(incident, out)
    return EXIT_OK


def cmd_summary(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from handlers.audit.console import summary_text
    from handlers.audit.query import select
    from handlers.audit.summary import as_json, open_tickets, summarize

    storage, query = _reader_storage(), _query(args)
    summary = summarize(list(select(storage, query)), open_tickets(storage), query)
    if args.format == "json":
        json.dump(as_json(summary), out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        summary_text(summary, out)
    return EXIT_OK


def cmd_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from handlers.audit.query import select
    from handlers.audit.report import report_html
    from handlers.audit.summary import open_tickets

    storage, query = _reader_storage(), _query(args)
    with Tracker("reading incidents", err, out) as tracker:
        incidents = list(tracker.each(select(storage, query)))
    html = report_html(incidents, open_tickets(storage), query, datetime.now(UTC))
    Path(args.html).write_text(html, encoding="utf-8")
    out.write(f"{args.html}: {len(incidents)} incidents\n")
    return EXIT_OK


def cmd_health(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from handlers.audit import health
    from handlers.audit.console import health_text
    from handlers.pipeline.runtime import Runtime

    settings = Settings.from_env()  # wrong settings are a usage error, as for every command
    try:
        runtime = Runtime.from_settings(settings)
        queues = (runtime.retry_queue, runtime.poison_queue)
        report = health.check(
            runtime.storage, runtime.settings, runtime.dead_letters, queues, datetime.now(UTC)
        )
    except Exception as error:  # storage unreachable, login refused: the worst there is
        reason = f"the check itself failed: {type(error).__name__}: {error}"
        err.write(f"backup-responder: health: {health.UNHEALTHY}: {reason}\n")
        if args.format == "json":
            json.dump({"status": health.UNHEALTHY, "error": reason}, out, ensure_ascii=False)
            out.write("\n")
        return EXIT_UNHEALTHY
    if args.format == "json":
        json.dump(report.as_json(), out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        health_text(report, out)
    exits = {health.OK: EXIT_OK, health.DEGRADED: EXIT_FAILED}
    return exits.get(report.status, EXIT_UNHEALTHY)


def _letters(args: argparse.Namespace, store: Any) -> list[Any]:
    """The blobs the command is about: the named ones, else those not replayed yet (or all)."""
    blobs = store.blobs()
    if args.blobs:
        named = set(args.blobs)
        return [b for b in blobs if b.name in named]
    return [b for b in blobs if args.all or not b.replayed_at]


def cmd_deadletter_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from handlers.audit.console import dead_letter_table
    from handlers.pipeline.runtime import Runtime

    store = Runtime.from_settings(Settings.from_env()).dead_letters
    letters = [
        (blob, letter) for blob in _letters(args, store) for letter in store.events(blob.name)
    ]
    if args.format == "json":
        rows = [
            {
                "blob": blob.name,
                "deadLetteredAt": blob.dead_lettered_at.isoformat(),
                "replayedAt": blob.replayed_at,
                "why": letter.why,
                "event": letter.event,
            }
            for blob, letter in letters
        ]
        json.dump(rows, out, ensure_ascii=False, indent=2, default=str)
        out.write("\n")
    else:
        dead_letter_table(letters, out)
    return EXIT_OK


def cmd_deadletter_replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from handlers.intake.deadletters import replay
    from handlers.pipeline.runtime import Runtime

    runtime = Runtime.from_settings(Settings.from_env())
    store = runtime.dead_letters
    blobs = _letters(args, store)
    replayed = failed = 0
    with Tracker("replaying dead letters", err, out) as tracker:
        for done in tracker.each(replay(runtime, store, blobs)):
            origin = f"{done.letter.blob}[{done.letter.index}]"
            if done.error:
                tracker.echo(f"failed: {done.error}  <- {origin} (blob left for the next replay)")
                failed += 1
                continue
            for outcome in done.outcomes:
                tracker.echo(f"{outcome.describe()}  <- {origin}")
            replayed += 1
    out.write(
        f"{replayed} event(s) of {len(blobs)} blob(s) replayed"
        + (f", {failed} blob(s) failed\n" if failed else "\n")
    )
    return EXIT_FAILED if failed else EXIT_OK


def cmd_decide(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``approve`` / ``reject``: the same decision as an approval link, recorded with who."""
    from handlers.actions.approval import decide
    from handlers.pipeline.runtime import Runtime

    runtime = Runtime.from_settings(Settings.from_env())
    incident = runtime.storage.find_incident(args.id)
    if incident is None:
        err.write(f"backup-responder: no incident {args.id}\n")
        return EXIT_FAILED
    decision = decide(
        runtime,
        incident.PartitionKey,
        incident.RowKey,
        args.command,
        by=args.by,
        via="cli",
        now=runtime.clock(),
    )
    (out if decision.done else err).write(decision.message + "\n")
    return EXIT_OK if decision.done else EXIT_FAILED


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _filters() -> argparse.ArgumentParser:
    """The incident filters, shared by ``incidents``, ``summary`` and ``report``."""
    from handlers.core.incident import STATUSES
    from handlers.core.model import Workload

    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("filters (exact values; times in UTC)")
    group.add_argument(
        "--vm", help="VM, database or share name, any case (a single-partition query)"
    )
    group.add_argument("--vault", help="Recovery Services vault name")
    group.add_argument("--rule", help="rule id, e.g. copy-to-vault-timed-out")
    group.add_argument("--category", help="rule category, e.g. transient")
    group.add_argument("--action", help="planned action: retry, ticket, stop_protection, record")
    group.add_argument("--status", choices=STATUSES, help="the incident's status")
    group.add_argument(
        "--workload", choices=Workload.ALL, help="what the item protects: vm, sql, hana, files"
    )
    group.add_argument(
        "--dry-run",
        action=argparse.BooleanOptionalAction,
        help="only incidents recorded in dry run (--no-dry-run: only live ones)",
    )
    group.add_argument("--since", help="failed at or after: 30m, 12h, 7d, 2w or an ISO date/time")
    group.add_argument("--until", help="failed before: same forms as --since")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backup-responder", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    classify = commands.add_parser("classify", help="classify an error code and/or message")
    classify.add_argument("--code", help="error code, string or number")
    classify.add_argument("--message", help="error message text")
    classify.add_argument("--jsonl", action="store_true", help="read JSON lines from stdin")
    classify.add_argument("--language", choices=("en", "ja"), default="en")
    classify.add_argument("--rules", help="a user rule file (default: USER_RULES_PATH)")
    classify.add_argument(
        "--workload",
        default="vm",
        help="the job's workload: vm (default), sql, hana or files (a JSON line's own wins)",
    )
    classify.set_defaults(run=cmd_classify)

    replay = commands.add_parser("replay", help="run events through respond()")
    replay.add_argument("paths", nargs="+", help="event files (one event or an array) or folders")
    replay.set_defaults(run=cmd_replay)

    incidents = commands.add_parser(
        "incidents", parents=[_filters()], help="list incidents, newest first (or: show ID)"
    )
    incidents.add_argument("--format", choices=("table", "json", "csv"), default="table")
    incidents.add_argument("--limit", type=_positive, help="at most this many, the newest")
    incidents.set_defaults(run=cmd_incidents)
    show = incidents.add_subparsers(dest="incidents_command").add_parser(
        "show", help="one incident with its evidence and whole action log"
    )
    show.add_argument("id", help="incident id (the backup job id)")
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(run=cmd_show)

    summary = commands.add_parser(
        "summary", parents=[_filters()], help="counts, retry success, repeat failures, open tickets"
    )
    summary.add_argument("--format", choices=("text", "json"), default="text")
    summary.set_defaults(run=cmd_summary)

    report = commands.add_parser(
        "report", parents=[_filters()], help="a self-contained HTML report with charts"
    )
    report.add_argument("--html", required=True, help="file to write")
    report.set_defaults(run=cmd_report, since="30d")  # a per-day chart needs a window

    health = commands.add_parser(
        "health", help="the responder's own health (exit 0 ok, 1 degraded, 3 unhealthy)"
    )
    health.add_argument("--format", choices=("text", "json"), default="text")
    health.set_defaults(run=cmd_health)

    deadletter = commands.add_parser(
        "deadletter", help="events Event Grid gave up delivering: list, replay"
    ).add_subparsers(dest="deadletter_command", required=True)
    for name, run, what in (
        ("list", cmd_deadletter_list, "list dead-lettered events"),
        ("replay", cmd_deadletter_replay, "deliver them again through respond(), once"),
    ):
        sub = deadletter.add_parser(name, help=what)
        sub.add_argument("blobs", nargs="*", help="blob names (default: those not replayed yet)")
        sub.add_argument("--all", action="store_true", help="also blobs already replayed")
        if name == "list":
            sub.add_argument("--format", choices=("table", "json"), default="table")
        sub.set_defaults(run=run)

    import getpass

    for name, what in (
        ("approve", "approve a stop protection that waits for a person (verified again first)"),
        ("reject", "reject it: protection stays on, the incident goes to a person"),
    ):
        decide = commands.add_parser(name, help=what)
        decide.add_argument("id", help="incident id (the backup job id)")
        decide.add_argument("--by", default=getpass.getuser(), help="who (default: OS user)")
        decide.set_defaults(run=cmd_decide)
    add_commands(commands)
    return parser


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    args = build_parser().parse_args(argv)
    err = err or sys.stderr
    if args.command == "classify" and not args.jsonl and args.code is None and args.message is None:
        err.write("classify: give --code and/or --message, or --jsonl\n")
        return EXIT_USAGE
    from azure.core.exceptions import ResourceNotFoundError

    from handlers.audit.query import QueryError
    from rules import RuleFileError

    try:
        return args.run(args, out or sys.stdout, err)
    except (SettingsError, RuleFileError, QueryError) as exc:
        err.write(f"backup-responder: {exc}\n")
        return EXIT_USAGE
    except ResourceNotFoundError:
        err.write("backup-responder: no incidents table here yet (check TABLE_NAME_PREFIX)\n")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
