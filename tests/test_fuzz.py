"""Fuzzing the edges: generated and mutated Event Grid events, CloudEvents, bare jobs and
Backup Failure alerts, with oversized and hostile fields.

Whatever arrives, the app never raises out of the parser, and what it records fits Table
Storage (a string property holds at most 32,768 UTF-16 code units, an entity at most 1 MiB):
an input the Table service refused would fail every redelivery for good. Each input is
either handled or rejected with a reason; a 1 MB message costs bounded memory.
"""

from __future__ import annotations

import copy
import json
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.core.incident import new_incident
from handlers.core.model import BackupFailure, Rejection
from handlers.core.outcome import OutcomeKind
from handlers.core.text import excerpt
from handlers.intake.alerts import FiredAlert, handle_alert, read_alert
from handlers.intake.eventgrid import handle_failure_event
from handlers.intake.events import PayloadError, parse
from handlers.pipeline.runtime import Runtime
from handlers.storage.keys import incident_keys
from rules import default_rule_set
from tests.conftest import load_event
from tests.world import as_trigger_input

#: The Table service's limits (UTF-16 code units per string property; bytes per entity).
MAX_PROPERTY_UNITS = 32_768
MAX_ENTITY_BYTES = 1024 * 1024
#: Longest reason we accept: a sentence, not a copy of the payload.
MAX_REASON = 1_000

EVENT_FIXTURES = [
    "eventgrid-storage-timeout",
    "eventgrid-agent-ja",
    "eventgrid-numeric-actions",
    "eventgrid-unknown-error",
    "cloudevent-vm-not-found",
    "cloudevent-job-cancel",
    "job-restore-cloud-internal",
]
ALERT_FIXTURES = ["alert-backup-failure-fired", "alert-backup-failure-resolved"]

PURE = settings(max_examples=1_000, deadline=None, database=None)
WITH_STORAGE = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- strategies ------------------------------------------------------------------------------

HOSTILE_TEXT = st.sampled_from(
    [
        "\ud800",  # a lone surrogate: legal in JSON, not in UTF-8
        "\x00\x01\x1f\x7f",
        "/\\#?%~",
        "名前付き仮想マシン🙂",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "&2;",
        "\u202e\u200b",
    ]
)
TEXT = st.one_of(st.text(max_size=40), HOSTILE_TEXT)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
#: Big enough to break any unbounded field, small enough for thousands of examples.
OVERSIZED = st.sampled_from(
    [
        "x" * 40_000,
        "\ud800" * 6_000,  # 6,000 characters that become 36,000 once escaped
        "🙂" * 17_000,  # 34,000 UTF-16 code units
        "バ" * 33_000,
    ]
)


def _paths(doc: Any, here: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``doc`` (dict keys and list indexes)."""
    found = [here]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*here, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*here, index))
    return found


def _set(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return doc


def _delete(doc: Any, path: tuple) -> Any:
    if not path:
        return {}
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return doc


@st.composite
def mutated(draw: st.DrawFn, names: list[str], under: tuple = ()) -> Any:
    """A fixture with one to four mutations (of the part at ``under``): values replaced by
    arbitrary JSON, oversized or hostile text, or a list of many copies; keys deleted; types
    changed."""
    doc = copy.deepcopy(load_event(draw(st.sampled_from(names))))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p[: len(under)] == under and p != under]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        kind = draw(
            st.sampled_from(["json", "oversized", "hostile", "delete", "many", "str", "int"])
        )
        here: Any = doc
        for step in path:
            here = here[step]
        if kind == "json":
            doc = _set(doc, path, draw(JSON))
        elif kind == "oversized":
            doc = _set(doc, path, draw(OVERSIZED))
        elif kind == "hostile":
            doc = _set(doc, path, f"{here}{draw(HOSTILE_TEXT)}" if isinstance(here, str) else here)
        elif kind == "delete":
            doc = _delete(doc, path)
        elif kind == "many":
            doc = _set(doc, path, [copy.deepcopy(here)] * draw(st.integers(2, 300)))
        elif kind == "str":
            doc = _set(doc, path, json.dumps(here))
        else:
            doc = _set(doc, path, draw(st.integers(-(2**40), 2**40)))
    return doc


def _generated_event() -> st.SearchStrategy[Any]:
    """Events built from scratch: the right envelope keys with arbitrary values."""
    envelope = st.fixed_dictionaries(
        {},
        optional={
            "specversion": st.one_of(st.just("1.0"), JSON, st.lists(OVERSIZED, max_size=1)),
            "eventType": st.one_of(st.just("BackupResponder.BackupJobFailed"), JSON, OVERSIZED),
            "type": st.one_of(st.just("BackupResponder.BackupJobFailed"), JSON, OVERSIZED),
            "id": st.one_of(JSON, OVERSIZED),
            "source": JSON,
            "subject": st.one_of(JSON, OVERSIZED),
            "data": st.one_of(JSON, st.fixed_dictionaries({}, optional={"properties": JSON})),
        },
    )
    return st.one_of(envelope, JSON)


# -- what "bounded and storable" means -------------------------------------------------------


def _units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _assert_storable(entity: dict[str, Any]) -> None:
    size = 0
    for name, value in entity.items():
        if isinstance(value, str):
            assert _units(value) <= MAX_PROPERTY_UNITS, f"{name}: {_units(value)} UTF-16 units"
            value.encode("utf-8")  # no lone surrogate reaches the service
            size += 2 * _units(value)
        else:
            size += 16
        size += 2 * len(name)
    assert size < MAX_ENTITY_BYTES


def _assert_handled_or_rejected(result: Any) -> None:
    if isinstance(result, Rejection):
        assert result.reason and len(result.reason) <= MAX_REASON, result.reason[:200]
        _assert_storable(
            {
                "Reason": result.reason,
                "Source": result.source,
                "EventId": result.event_id,
                "Payload": result.payload,
            }
        )
        return
    assert isinstance(result, BackupFailure)
    now = datetime.now(UTC)
    decision = default_rule_set().classify(result.codes, result.message, result.operation)
    incident = new_incident(result, decision, incident_keys(result, now), dry_run=True, now=now)
    _assert_storable(incident.to_entity())


# -- the parser, thousands of inputs ---------------------------------------------------------


@PURE
@given(mutated(EVENT_FIXTURES))
def test_mutated_events_are_parsed_or_rejected_with_a_reason(raw: Any) -> None:
    _assert_handled_or_rejected(parse(raw))


@PURE
@given(_generated_event())
def test_generated_events_are_parsed_or_rejected_with_a_reason(raw: Any) -> None:
    _assert_handled_or_rejected(parse(raw))


@PURE
@given(mutated(ALERT_FIXTURES))
def test_mutated_alerts_are_read_or_refused_with_a_reason(raw: Any) -> None:
    try:
        alert = read_alert(raw)
    except PayloadError as error:  # kept as handle_alert keeps it
        _assert_handled_or_rejected(
            Rejection(f"not a Backup Failure alert: {error}", "alert", excerpt(raw))
        )
        return
    assert alert == "resolved" or isinstance(alert, FiredAlert)


def test_the_mutations_reach_both_outcomes() -> None:
    """The strategies are not vacuous: they produce accepted and rejected events alike."""
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, database=None)
    @given(mutated(EVENT_FIXTURES))
    def collect(raw: Any) -> None:
        seen.add(type(parse(raw)).__name__)

    collect()
    assert seen == {"BackupFailure", "Rejection"}


# -- end to end, through Azurite -------------------------------------------------------------


def _as_trigger_input(raw: Any) -> Any:
    return as_trigger_input(raw)


@WITH_STORAGE
@given(raw=mutated([n for n in EVENT_FIXTURES if not n.startswith("job-")], under=("data",)))
def test_mutated_events_are_recorded_or_rejected_in_storage(runtime: Runtime, raw: Any) -> None:
    """Through the Functions worker's decoding (so the envelope stays one it accepts) and the
    trigger's handler, into Azurite."""
    outcome = handle_failure_event(runtime, _as_trigger_input(raw))
    if outcome.kind == OutcomeKind.REJECTED:
        assert outcome.reason
    else:
        assert runtime.storage.find_incident(outcome.job_id) is not None


@WITH_STORAGE
@given(payload=st.one_of(mutated(ALERT_FIXTURES), JSON))
def test_mutated_alerts_are_answered_and_recorded(live: Runtime, payload: Any) -> None:
    answer = handle_alert(live, payload)
    assert answer.status in (200, 400)
    if answer.status == 400:
        assert answer.body["reason"]


# -- a 1 MB message --------------------------------------------------------------------------


def _one_megabyte(kind: str) -> dict[str, Any]:
    event = load_event("cloudevent-vm-not-found")
    props = event["data"]["properties"]
    if kind == "message":
        props["errorDetails"][0]["errorString"] = "The virtual machine doesn't exist. " * 30_000
    elif kind == "errors":
        props["errorDetails"] = props["errorDetails"] * 4_000
    else:  # rejected: a payload that is not a job at all
        event["data"]["id"] = "not a job id"
        event["data"]["padding"] = ["x" * 1_000] * 1_000
    return event


@pytest.mark.parametrize("kind", ["message", "errors", "rejected"])
def test_a_1_mb_message_costs_bounded_memory(runtime: Runtime, kind: str) -> None:
    raw = _one_megabyte(kind)
    size = len(json.dumps(raw))
    assert size > 1_000_000
    event = _as_trigger_input(raw)
    handle_failure_event(runtime, _as_trigger_input(load_event("eventgrid-storage-timeout")))
    tracemalloc.start()
    try:
        outcome = handle_failure_event(runtime, event)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * size, f"{peak:,} bytes at peak for a {size:,}-byte message"
    if kind == "rejected":
        assert outcome.kind == OutcomeKind.REJECTED
        (row,) = [r for r in runtime.storage.rejections.all() if r["Reason"] == outcome.reason]
        assert len(row["Payload"]) < 17_000
    else:
        incident = runtime.storage.find_incident(outcome.job_id)
        assert incident is not None and len(incident.ErrorMessage) <= 8_000
