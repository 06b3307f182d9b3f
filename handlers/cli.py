"""``backup-responder``: the command line for the local loop and for operators.

Commands::

    backup-responder classify --code 400094 --message "..."   # one JSON object
    backup-responder classify --jsonl < cases.jsonl           # one JSON object per line
    backup-responder replay tests/events/                     # events through respond()
    backup-responder incidents [--format table|json]          # newest first

``replay`` and ``incidents`` use the same settings as the function (``AzureWebJobsStorage``
and friends, see the README).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from handlers.settings import Settings, SettingsError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _classify_line(rules: Any, line: str, language: str) -> dict[str, Any]:
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
    decision = rules.classify(codes, text, operation)
    out = decision.as_dict()
    out["remediation"] = decision.remediation_in(language)
    if error:
        out["error"] = error
    return out


def cmd_classify(args: argparse.Namespace, out: TextIO) -> int:
    from rules import default_rule_set

    rules = default_rule_set(args.rules or Settings.from_env().user_rules_path)
    if args.jsonl:
        for line in sys.stdin:
            out.write(json.dumps(_classify_line(rules, line, args.language), ensure_ascii=False))
            out.write("\n")
        return EXIT_OK
    case = json.dumps({"code": args.code, "message": args.message})
    out.write(json.dumps(_classify_line(rules, case, args.language), ensure_ascii=False) + "\n")
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


def cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    from handlers.events import parse
    from handlers.respond import respond
    from handlers.runtime import Runtime
    from handlers.store import DeliveryInFlightError

    runtime = Runtime.from_settings(Settings.from_env())
    failed = 0
    for origin, raw in read_events(args.paths):
        try:
            line = respond(parse(raw), runtime).describe()
        except DeliveryInFlightError as exc:
            line, failed = f"in-flight   {exc}", failed + 1
        out.write(f"{line}  <- {origin}\n")
    return EXIT_FAILED if failed else EXIT_OK


_COLUMNS = (
    ("FirstSeen", 19),
    ("VmName", 16),
    ("VaultName", 18),
    ("Rule", 28),
    ("PlannedAction", 15),
    ("Status", 11),
    ("Occurrences", 3),
)


def _cell(value: Any, width: int) -> str:
    text = value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(rows: Sequence[dict[str, Any]], out: TextIO) -> None:
    header = "  ".join(name.ljust(width) for name, width in _COLUMNS)
    out.write(header.rstrip() + "\n")
    for row in rows:
        cells = (_cell(row.get(name, ""), width).ljust(width) for name, width in _COLUMNS)
        out.write("  ".join(cells).rstrip() + "\n")
    out.write(f"({len(rows)} incident{'s' if len(rows) != 1 else ''})\n")


def cmd_incidents(args: argparse.Namespace, out: TextIO) -> int:
    from handlers.runtime import Runtime

    runtime = Runtime.from_settings(Settings.from_env())
    incidents = sorted(runtime.store.incidents(), key=lambda i: i.FirstSeen, reverse=True)
    rows = [i.to_entity() for i in incidents]
    if args.format == "json":
        json.dump(rows, out, default=str, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        render_table(rows, out)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backup-responder", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    classify = commands.add_parser("classify", help="classify an error code and/or message")
    classify.add_argument("--code", help="error code, string or number")
    classify.add_argument("--message", help="error message text")
    classify.add_argument("--jsonl", action="store_true", help="read JSON lines from stdin")
    classify.add_argument("--language", choices=("en", "ja"), default="en")
    classify.add_argument("--rules", help="a user rule file (default: USER_RULES_PATH)")
    classify.set_defaults(run=cmd_classify)

    replay = commands.add_parser("replay", help="run events through respond()")
    replay.add_argument("paths", nargs="+", help="event files (one event or an array) or folders")
    replay.set_defaults(run=cmd_replay)

    incidents = commands.add_parser("incidents", help="list incidents, newest first")
    incidents.add_argument("--format", choices=("table", "json"), default="table")
    incidents.set_defaults(run=cmd_incidents)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "classify" and not args.jsonl and args.code is None and args.message is None:
        sys.stderr.write("classify: give --code and/or --message, or --jsonl\n")
        return EXIT_USAGE
    from rules import RuleFileError

    try:
        return args.run(args, out or sys.stdout)
    except (SettingsError, RuleFileError) as exc:
        sys.stderr.write(f"backup-responder: {exc}\n")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
