"""The storage layer on Azurite: the one ETag helper under contention, claim expiry, and the
settings that must agree with ``host.json``."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handlers.actions.desk import TicketDesk
from handlers.actions.retry import POISON_AFTER
from handlers.core.incident import Incident, new_incident
from handlers.core.model import BackupFailure, ErrorDetail, Source
from handlers.core.outcome import OutcomeKind
from handlers.core.settings import Settings
from handlers.pipeline.runtime import Runtime
from handlers.storage import ContentionError
from handlers.storage.keys import incident_keys
from rules import default_rule_set
from sandbox.simulator import AzureSimulator
from tests.world import STORAGE_TIMEOUT, deliver, scene

ROOT = Path(__file__).resolve().parent.parent
HOST = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))


def _incident(job: int, failed: datetime) -> Incident:
    failure = BackupFailure(
        job_id=f"00000000-0000-4000-8000-{job:012d}",
        subscription_id="6f0c3a52-8d1e-4b7a-9c55-2f1d8e4a7b10",
        vault_resource_group="rg-backup",
        vault_name="rsv-prod",
        vm_name="vm-web-01",
        vm_resource_group="rg-web",
        operation="Backup",
        status="Failed",
        errors=(ErrorDetail("UserErrorGuestAgentStatusUnavailable", "agent"),),
        source=Source.CLOUD_EVENT,
        end_time=failed,
    )
    decision = default_rule_set().classify(failure.codes, failure.message)
    keys = incident_keys(failure, failed)
    return new_incident(failure, decision, keys, dry_run=False, now=failed)


def test_a_conflict_storm_on_a_ticket_records_every_occurrence_or_raises(runtime: Runtime) -> None:
    desk = TicketDesk(runtime.storage.tickets, [], "en")
    now = datetime.now(UTC)
    opener = desk.open_or_append(_incident(0, now), "first")
    repeats = [_incident(n, now + timedelta(minutes=n)) for n in range(1, 21)]
    start = threading.Barrier(len(repeats))
    raised: list[Incident] = []
    appended: list[str] = []

    def append(incident: Incident) -> None:
        start.wait()
        try:
            result = desk.open_or_append(incident, "again")
            appended.append(incident.IncidentId)
            assert (result.ticket_id, result.created) == (opener.ticket_id, False)
        except ContentionError:
            raised.append(incident)  # the platform would redeliver it

    threads = [threading.Thread(target=append, args=(i,)) for i in repeats]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (row,) = desk.tickets()
    assert set(appended) <= set(json.loads(row["Incidents"])), "an append said done, not stored"
    for incident in raised:  # redelivered one by one: nothing is lost
        desk.open_or_append(incident, "again")
    (row,) = desk.tickets()
    assert sorted(json.loads(row["Incidents"])) == sorted(
        [opener.ticket_id] + [i.IncidentId for i in repeats]
    )
    assert row["Occurrences"] == 21


def test_a_redelivered_append_is_not_counted_twice(runtime: Runtime) -> None:
    desk = TicketDesk(runtime.storage.tickets, [], "en")
    now = datetime.now(UTC)
    desk.open_or_append(_incident(0, now), "first")
    again = _incident(1, now)
    desk.open_or_append(again, "again")
    desk.open_or_append(again, "again")
    (row,) = desk.tickets()
    assert row["Occurrences"] == 2


def test_handled_claims_expire_in_bounded_batches(runtime: Runtime) -> None:
    claims = runtime.storage.claims
    then = datetime.now(UTC) - timedelta(days=40)
    lease = timedelta(minutes=5)
    for n in range(5):
        claim = claims.claim(f"old-{n}", ("vm", f"row-{n}"), then, lease)
        claims.complete(claim)
    claims.claim("old-running", ("vm", "row-x"), then, lease)  # never finished: kept
    claims.complete(claims.claim("recent", ("vm", "row-r"), datetime.now(UTC), lease))
    assert claims.expire(datetime.now(UTC), limit=3) == 3
    assert claims.expire(datetime.now(UTC), limit=3) == 2
    assert claims.expire(datetime.now(UTC), limit=3) == 0
    assert sorted(claims.states()) == ["old-running", "recent"]


def test_retention_is_a_setting() -> None:
    assert Settings.from_env({"CLAIM_RETENTION_DAYS": "7"}).claim_retention_days == 7
    assert Settings.from_env({}).claim_retention_days == 30


def _seconds(timespan: str) -> int:
    hours, minutes, seconds = (int(part) for part in timespan.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def test_the_claim_lease_covers_the_function_timeout() -> None:
    assert Settings.from_env({}).claim_lease_seconds >= _seconds(HOST["functionTimeout"])


def test_a_poison_message_becomes_a_ticket_before_the_host_parks_it() -> None:
    max_dequeue = HOST["extensions"]["queues"]["maxDequeueCount"]
    assert max_dequeue - 1 == POISON_AFTER


@pytest.mark.parametrize("days", ["0", "-1", "x"])
def test_a_bad_retention_is_refused(days: str) -> None:
    from handlers.core.settings import SettingsError

    with pytest.raises(SettingsError):
        Settings.from_env({"CLAIM_RETENTION_DAYS": days})


def test_a_warm_instance_recreates_lost_tables_and_queue_once_with_a_warning(
    live: Runtime, sim: AzureSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueClient

    first = scene(sim, STORAGE_TIMEOUT, vm_name="vm-before")
    deliver(live, first.event())  # tables and queue exist and are in use
    service = TableServiceClient.from_connection_string(live.settings.storage_connection)
    for table in service.list_tables():
        if table.name.startswith(live.settings.table_name_prefix):
            service.delete_table(table.name)
    QueueClient.from_connection_string(
        live.settings.storage_connection, live.settings.retry_queue
    ).delete_queue()
    caplog.set_level(logging.WARNING, logger="backup_responder.storage")
    for n in range(2):
        s = scene(sim, STORAGE_TIMEOUT, vm_name=f"vm-after-{n}")
        assert deliver(live, s.event()).kind == OutcomeKind.NEW
    assert live.storage.find_incident(s.job_id) is not None
    assert len(live.retry_queue.peek()) == 2  # each retry was scheduled on the new queue
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == len(set(warnings)) >= 3  # claims, incidents, queue: once each
    assert any("queue" in w for w in warnings) and any("jobs" in w for w in warnings)


def test_a_counter_limit_holds_under_concurrent_takers(runtime: Runtime) -> None:
    """Twenty workers race for five places: exactly five get one, and the count says five."""
    start = threading.Barrier(20)
    results: list[bool] = []

    def take() -> None:
        start.wait()
        results.append(runtime.storage.counters.take("vault|v1", "202612061100", 5))

    threads = [threading.Thread(target=take) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 5
    assert runtime.storage.counters.counts() == [5]
