"""The audit commands and the HTTP API over a few hundred seeded incidents in Azurite.

Every expected number is computed here from what the seed wrote (``World.incidents``), never
by the code under test.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.data.tables import TableClient

import function_app
from handlers.actions.desk import TicketDesk
from handlers.audit.query import IncidentQuery, QueryError, failed_at, parse_moment, select
from handlers.audit.records import CSV_COLUMNS
from handlers.cli.main import main
from handlers.core.incident import Incident, IncidentStatus
from handlers.core.settings import Settings
from handlers.pipeline import runtime as runtime_module
from handlers.storage.keys import safe_key
from tests.conftest import EVENTS, indexed_functions
from tests.world import World, fixed_after, p90

Predicate = Callable[[Incident], bool]


@pytest.fixture
def env(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The app settings (CLI and function) pointed at the seeded tables."""
    monkeypatch.setenv("AzureWebJobsStorage", world.settings.storage_connection)
    monkeypatch.setenv("TABLE_NAME_PREFIX", world.settings.table_name_prefix)
    runtime_module.current.cache_clear()
    yield world
    runtime_module.current.cache_clear()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def ids(incidents: Any) -> set[str]:
    return {i.IncidentId for i in incidents}


def failed(incident: Incident) -> datetime:
    """When the seed made the job fail (its end time)."""
    assert incident.JobEndTime is not None
    return incident.JobEndTime


# -- the query ------------------------------------------------------------------------------


def _cases(world: World) -> list[tuple[dict[str, Any], Predicate]]:
    week_ago = world.now - timedelta(days=7)
    fortnight = world.now - timedelta(days=14)
    return [
        ({"vm": "VM-WEB-04"}, lambda i: i.VmName == "vm-web-04"),
        ({"vault": "rsv-corp"}, lambda i: i.VaultName == "rsv-corp"),
        ({"rule": "copy-to-vault-timed-out"}, lambda i: i.Rule == "copy-to-vault-timed-out"),
        ({"category": "vm_agent"}, lambda i: i.Category == "vm_agent"),
        ({"action": "retry"}, lambda i: i.PlannedAction == "retry"),
        ({"status": "escalated"}, lambda i: i.Status == IncidentStatus.ESCALATED),
        ({"dry_run": "true"}, lambda i: i.DryRun),
        ({"dry_run": "false"}, lambda i: not i.DryRun),
        ({"since": "7d"}, lambda i: failed(i) >= week_ago),
        ({"until": "7d"}, lambda i: failed(i) < week_ago),
        (
            {"since": "14d", "until": "7d", "vm": "vm-sql-02", "status": "escalated"},
            lambda i: (
                fortnight <= failed(i) < week_ago
                and i.VmName == "vm-sql-02"
                and i.Status == IncidentStatus.ESCALATED
            ),
        ),
    ]


def test_every_filter_selects_exactly_the_matching_incidents(world: World) -> None:
    storage = world.storage
    for params, wanted in _cases(world):
        query = IncidentQuery.from_params(params, world.now)
        expected = ids(i for i in world.incidents if wanted(i))
        assert expected, f"the seed has no incident for {params}"
        assert ids(select(storage, query)) == expected, params


def test_time_bounds_are_exact_since_inclusive_until_exclusive(world: World) -> None:
    storage = world.storage
    pivot = sorted(world.incidents, key=failed)[len(world.incidents) // 2]
    moment = failed(pivot).isoformat()
    since = ids(select(storage, IncidentQuery.from_params({"since": moment}, world.now)))
    until = ids(select(storage, IncidentQuery.from_params({"until": moment}, world.now)))
    assert pivot.IncidentId in since and pivot.IncidentId not in until
    assert since | until == ids(world.incidents) and not since & until


def test_failed_at_reads_the_time_back_from_the_row_key(world: World) -> None:
    for incident in world.incidents[:50]:
        assert abs(failed_at(incident) - failed(incident)) < timedelta(microseconds=1)


def test_a_vm_is_a_partition_query_and_a_time_range_a_row_key_range(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    real = TableClient.query_entities

    def spy(self: TableClient, query_filter: str, **kwargs: Any) -> Any:
        sent.append((query_filter, kwargs.get("parameters", {})))
        return real(self, query_filter, **kwargs)

    monkeypatch.setattr(TableClient, "query_entities", spy)
    query = IncidentQuery.from_params({"vm": "VM-Web-04", "since": "7d"}, world.now)
    found = list(select(world.storage, query))
    ((text, values),) = sent
    assert text.startswith("PartitionKey eq @vm") and values["vm"] == safe_key("vm-web-04")
    assert "RowKey lt @since" in text
    assert found and all(i.PartitionKey == "vm-web-04" for i in found)
    assert query.explain().startswith("partition query")
    assert not IncidentQuery(vault="rsv-corp").is_partition_query
    assert IncidentQuery(vault="rsv-corp").explain() == "table scan filtered by the service"


def test_times_and_bad_values() -> None:
    now = datetime(2024, 5, 31, 12, tzinfo=UTC)
    assert parse_moment("90m", now) == now - timedelta(minutes=90)
    assert parse_moment("12h", now) == now - timedelta(hours=12)
    assert parse_moment("2w", now) == now - timedelta(weeks=2)
    assert parse_moment("2024-05-01T10:00:00+02:00", now) == datetime(2024, 5, 1, 8, tzinfo=UTC)
    for params in (
        {"since": "last tuesday"},
        {"status": "closed"},
        {"dry_run": "maybe"},
        {"since": "1d", "until": "2d"},
    ):
        with pytest.raises(QueryError):
            IncidentQuery.from_params(params, now)


# -- the incidents command --------------------------------------------------------------------


def test_incidents_table_lists_the_vm_newest_first_and_says_how_it_queried(env: World) -> None:
    code, out, _ = run("incidents", "--vm", "vm-sql-02", "--since", "10d")
    expected = sorted(
        (
            i
            for i in env.incidents
            if i.VmName == "vm-sql-02" and failed(i) >= env.now - timedelta(days=10)
        ),
        key=failed,
        reverse=True,
    )
    assert code == 0
    assert f"({len(expected)} incidents; partition query (PartitionKey 'vm-sql-02')" in out
    positions = [out.index(i.IncidentId) for i in expected]
    assert positions == sorted(positions)


def test_incidents_json_is_every_field_and_the_action_log(env: World) -> None:
    code, out, _ = run("incidents", "--rule", "vm-not-found", "--format", "json")
    rows = json.loads(out)
    expected = {i.IncidentId: i for i in env.incidents if i.Rule == "vm-not-found"}
    assert code == 0 and {r["IncidentId"] for r in rows} == set(expected)
    for row in rows:
        incident = expected[row["IncidentId"]]
        assert row["VaultName"] == incident.VaultName and row["Status"] == incident.Status
        assert [a["state"] for a in row["Actions"]] == [a.state for a in incident.actions]
        assert datetime.fromisoformat(row["FailedAt"]) == failed(incident)
        took = fixed_after(incident)
        assert row["ResolvedAfterSeconds"] == (None if took is None else pytest.approx(took))
    assert [r["FailedAt"] for r in rows] == sorted((r["FailedAt"] for r in rows), reverse=True)


def test_incidents_csv_has_a_header_and_one_row_each(env: World) -> None:
    code, out, _ = run("incidents", "--category", "transient", "--no-dry-run", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    expected = {
        i.IncidentId: i for i in env.incidents if i.Category == "transient" and not i.DryRun
    }
    assert code == 0 and tuple(rows[0]) == CSV_COLUMNS
    assert {r["IncidentId"] for r in rows} == set(expected)
    for row in rows:
        assert row["Rule"] == expected[row["IncidentId"]].Rule
        assert row["DryRun"] == "False"


def test_incidents_limit_keeps_the_newest(env: World) -> None:
    code, out, _ = run("incidents", "--format", "json", "--limit", "5")
    newest = sorted(env.incidents, key=failed, reverse=True)[:5]
    assert code == 0 and [r["IncidentId"] for r in json.loads(out)] == [
        i.IncidentId for i in newest
    ]


def test_show_prints_the_evidence_and_the_whole_action_log(env: World) -> None:
    incident = max(env.incidents, key=lambda i: len(i.actions))
    code, out, _ = run("incidents", "show", incident.IncidentId)
    assert code == 0
    for text in (incident.ErrorCodes, incident.ErrorMessage, incident.VaultId, incident.Doc[:60]):
        assert text in out
    for entry in incident.actions:
        assert entry.at in out and entry.detail in out
    code, out, _ = run("incidents", "show", incident.IncidentId, "--format", "json")
    (record,) = json.loads(out)
    assert code == 0 and len(record["Actions"]) == len(incident.actions)


def test_show_of_an_unknown_incident_fails(env: World) -> None:
    code, out, err = run("incidents", "show", "00000000-0000-0000-0000-000000000000")
    assert code == 1 and out == "" and "no incident" in err


def test_bad_filter_is_a_usage_error(env: World) -> None:
    code, _, err = run("incidents", "--since", "yesterday-ish")
    assert code == 2 and "--since" not in err and "yesterday-ish" in err


# -- summary ------------------------------------------------------------------------------


def _retry_truth(incidents: list[Incident]) -> Counter[str]:
    results: Counter[str] = Counter()
    for incident in incidents:
        if incident.PlannedAction != "retry":
            continue
        states = [a.state for a in incident.actions if a.action == "retry"]
        if states[-1] == "succeeded":
            results["succeeded"] += 1
        elif states[-1] == "exhausted":
            results["failed"] += 1
        else:
            results["pending"] += 1
    return results


def test_summary_numbers(env: World) -> None:
    code, out, _ = run("summary", "--since", "20d", "--format", "json")
    summary = json.loads(out)
    chosen = [i for i in env.incidents if failed(i) >= env.now - timedelta(days=20)]
    assert code == 0 and summary["incidents"] == len(chosen)
    assert summary["vms"] == len({i.VmName for i in chosen})
    assert summary["dry_run"] == sum(i.DryRun for i in chosen)
    assert summary["by_category"] == dict(Counter(i.Category for i in chosen))
    assert summary["by_rule"] == dict(Counter(i.Rule for i in chosen))
    assert summary["by_vault"] == dict(Counter(i.VaultName for i in chosen))
    last_state = Counter(
        f"{i.PlannedAction}: {[a.state for a in i.actions if a.action == i.PlannedAction][-1]}"
        for i in chosen
    )
    assert summary["by_outcome"] == dict(last_state)
    retry = _retry_truth(chosen)
    assert {k: summary["retry"][k] for k in ("succeeded", "failed", "pending")} == {
        k: retry[k] for k in ("succeeded", "failed", "pending")
    }
    assert summary["retry"]["success_rate"] == pytest.approx(
        retry["succeeded"] / (retry["succeeded"] + retry["failed"])
    )
    per_item = Counter((i.VaultName, i.VmName) for i in chosen)
    repeated = {(r["vault"], r["vm"]): r["failures"] for r in summary["repeated"]}
    assert repeated == {item: n for item, n in per_item.items() if n >= 2}
    chosen_ids = ids(chosen)
    open_tickets = [
        t
        for t in TicketDesk(env.storage.tickets, [], "en").tickets()
        if t["Status"] == "open" and chosen_ids & set(json.loads(t["Incidents"]))
    ]
    assert {t["ticket_id"] for t in summary["open_tickets"]} == {
        t["TicketId"] for t in open_tickets
    }


def test_summary_gives_retry_success_and_time_to_resolution_per_rule(env: World) -> None:
    code, out, _ = run("summary", "--since", "20d", "--format", "json")
    summary = json.loads(out)
    chosen = [i for i in env.incidents if failed(i) >= env.now - timedelta(days=20)]
    retries: dict[str, Counter[str]] = {}
    for incident in chosen:
        if incident.PlannedAction == "retry":
            retries.setdefault(incident.Rule, Counter()).update(_retry_truth([incident]))
    expected_rates = {
        rule: {"succeeded": c["succeeded"], "failed": c["failed"]}
        for rule, c in retries.items()
        if c["succeeded"] + c["failed"]
    }
    assert code == 0 and expected_rates
    assert {
        r: {k: v[k] for k in ("succeeded", "failed")} for r, v in summary["retry_by_rule"].items()
    } == expected_rates
    for rate in summary["retry_by_rule"].values():
        assert rate["success_rate"] == pytest.approx(
            rate["succeeded"] / (rate["succeeded"] + rate["failed"])
        )
    times: dict[str, list[float]] = {}
    for incident in chosen:
        took = fixed_after(incident)
        if took is not None:
            times.setdefault(incident.Rule, []).append(took)
    assert times, "the seeded world has retries and stops that fixed their incidents"
    got = summary["time_to_resolution"]
    assert set(got) == set(times)
    for rule, seconds in times.items():
        assert got[rule]["resolved"] == len(seconds)
        assert got[rule]["median_seconds"] == pytest.approx(statistics.median(seconds))
        assert got[rule]["p90_seconds"] == pytest.approx(p90(seconds))


def test_summary_text_says_the_same(env: World) -> None:
    code, out, _ = run("summary")
    retry = _retry_truth(env.incidents)
    rate = retry["succeeded"] / (retry["succeeded"] + retry["failed"])
    assert code == 0
    assert f"{len(env.incidents)} incidents on {len({i.VmName for i in env.incidents})} VMs" in out
    assert (
        f"retry success {rate:.0%}: {retry['succeeded']} succeeded, {retry['failed']} failed" in out
    )
    assert "retry success per rule" in out and "time to resolution per rule" in out
    assert "copy-to-vault-timed-out" in out.split("time to resolution per rule")[1]


# -- the HTTP API ---------------------------------------------------------------------------


def _get(params: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = func.HttpRequest(
        method="GET", url="https://app.example/api/incidents", params=params, body=b""
    )
    response = function_app.incidents_api(request)
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())


def test_api_pages_through_every_match_once(env: World) -> None:
    params = {"vault": "rsv-prod-neu", "top": "25", "code": "function-key"}
    expected = ids(i for i in env.incidents if i.VaultName == "rsv-prod-neu")
    seen: list[str] = []
    pages = 0
    while True:
        status, body = _get(params)
        assert status == 200 and body["count"] == len(body["value"]) <= 25
        seen += [item["IncidentId"] for item in body["value"]]
        pages += 1
        if "continuation" not in body:
            break
        assert "code=function-key" in body["nextLink"] and "vault=rsv-prod-neu" in body["nextLink"]
        params = {**params, "continuation": body["continuation"]}
    assert len(seen) == len(set(seen)) and set(seen) == expected
    assert pages >= len(expected) // 25


def test_api_filters_like_the_cli(env: World) -> None:
    status, body = _get({"vm": "vm-web-04", "since": "7d", "status": "escalated", "top": "1000"})
    expected = ids(
        i
        for i in env.incidents
        if i.VmName == "vm-web-04"
        and failed(i) >= env.now - timedelta(days=7)
        and i.Status == IncidentStatus.ESCALATED
    )
    assert status == 200 and {i["IncidentId"] for i in body["value"]} == expected
    assert "continuation" not in body
    assert all(isinstance(i["Actions"], list) and i["Outcome"] for i in body["value"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"vmname": "x"}, "unknown parameter vmname"),
        ({"top": "0"}, "top="),
        ({"top": "many"}, "top="),
        ({"continuation": "not-a-token"}, "continuation"),
        ({"status": "closed"}, "status="),
        ({"since": "soon"}, "soon"),
    ],
)
def test_api_rejects_bad_parameters(env: World, params: dict[str, str], message: str) -> None:
    status, body = _get(params)
    assert status == 400 and message in body["error"]


def test_api_is_a_get_route_with_a_function_key() -> None:
    function = indexed_functions()["incidents_api"]
    trigger = json.loads(function.get_function_json())["bindings"][0]
    assert trigger["type"] == "httpTrigger" and trigger["route"] == "incidents"
    assert trigger["methods"] == ["GET"] and trigger["authLevel"] == "FUNCTION"


# -- progress bars ---------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def empty_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("AzureWebJobsStorage", settings.storage_connection)
    monkeypatch.setenv("TABLE_NAME_PREFIX", settings.table_name_prefix)
    return settings


def test_replay_shows_progress_on_a_terminal_only(empty_env: Settings) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["replay", str(EVENTS)], out, err) in (0, 1)
    assert err.getvalue() == "" and out.getvalue().count("<- ") == len(
        [line for line in out.getvalue().splitlines() if line]
    )
    terminal = Terminal()
    main(["replay", str(EVENTS)], io.StringIO(), terminal)
    assert "replaying" in terminal.getvalue()


def test_report_shows_progress_on_a_terminal_only(env: World, tmp_path: Any) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["report", "--html", str(tmp_path / "r.html")], out, err) == 0
    assert err.getvalue() == "" and f"{len(env.incidents)} incidents" in out.getvalue()
    terminal = Terminal()
    assert main(["report", "--html", str(tmp_path / "r2.html")], io.StringIO(), terminal) == 0
    assert "reading incidents" in terminal.getvalue()
