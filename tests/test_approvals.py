"""The approval gate of stop protection (APPROVAL_REQUIRED) and Multi-User Authorization (a
Resource Guard on the vault), against the simulator, Azurite and the local receivers."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
import pytest

import function_app
from handlers.actions import act
from handlers.actions.approval import sweep
from handlers.cli.main import main
from handlers.core.incident import ApprovalState, Incident, IncidentStatus
from handlers.core.tokens import APPROVE, REJECT, Claims, read, sign
from handlers.intake.approvals import answer, expire_approvals, show
from handlers.intake.vm_deleted import handle_vm_deleted
from handlers.pipeline.runtime import Runtime
from sandbox.receivers import Receivers
from sandbox.simulator import AzureSimulator
from tests.conftest import FAST_CLIENTS, load_event
from tests.world import (
    SUB,
    VM_GONE,
    Scene,
    as_trigger_input,
    deliver,
    drain,
    incident_of,
    log_of,
    scene,
    workload_scene,
)

SECRET = "an-approval-secret-of-32-chars-x"
BASE = "https://responder.example.net"
GUARD = (
    f"/subscriptions/{SUB}/resourceGroups/rg-security/providers/Microsoft.DataProtection/"
    "resourceGuards/guard-backup"
)
STOP_OPERATION = (
    "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/write"
    "#stopProtectionWithRetainData"
)


@pytest.fixture
def approving(live: Runtime) -> Runtime:
    """Acting for real, with every stop waiting for a person."""
    settings = dataclasses.replace(
        live.settings,
        approval_required=True,
        approval_secret=SECRET,
        approval_base_url=BASE,
    )
    return Runtime.from_settings(settings, FAST_CLIENTS)


def _gone(sim: AzureSimulator, **names: Any) -> Scene:
    s = scene(sim, VM_GONE, **names)
    sim.delete_vm(s.vm_id)
    return s


def _protection(sim: AzureSimulator, s: Scene) -> str:
    item = sim.get_protected_item(s.vault["id"], s.vm_name, s.vm_group)
    return str(item["properties"]["protectionState"])


def _links(receivers: Receivers) -> dict[str, str]:
    """The Approve and Reject links of the last approval request Slack got."""
    (message,) = [r.body for r in receivers.received("slack") if "actions" in json.dumps(r.body)]
    buttons = next(b for b in message["blocks"] if b["type"] == "actions")["elements"]
    return {b["text"]["text"]: b["url"] for b in buttons}


def _token(link: str) -> str:
    assert link.startswith(f"{BASE}/api/approvals?")
    return parse_qs(urlsplit(link).query)["token"][0]


def _requested(runtime: Runtime, sim: AzureSimulator, s: Scene) -> Incident:
    outcome = deliver(runtime, s.event())
    assert (outcome.action, outcome.status) == ("stop_protection", IncidentStatus.AWAITING_APPROVAL)
    assert sim.calls_to(route="item_put") == []  # waits for a person
    return incident_of(runtime, s.job_id)


# -- the gate ----------------------------------------------------------------------------------


def test_a_verified_stop_waits_and_runs_once_approved_through_the_link(
    approving: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = _gone(sim)
    incident = _requested(approving, sim, s)
    steps = [step for step in log_of(incident) if step != ("ticket", "sent")]  # one per sink
    assert steps[-3:] == [
        ("stop_protection", "awaiting_approval"),
        ("ticket", "opened"),
        ("approval", "requested"),
    ]
    approval = incident.approval
    assert approval is not None and approval.state == ApprovalState.PENDING
    links = _links(receivers)
    assert set(links) == {"Approve", "Reject"}
    card = next(r.body for r in receivers.received("teams") if "Approve" in json.dumps(r.body))
    actions = card["attachments"][0]["content"]["actions"]
    assert [a["url"] for a in actions[:2]] == [links["Approve"], links["Reject"]]
    (ticket,) = [r for r in receivers.received("servicenow") if r.method == "POST"]
    assert links["Approve"] in ticket.body["description"]  # the ticket says the same
    assert "code=" not in json.dumps([r.body for r in receivers.received()])  # no function key
    claims = read(_token(links["Approve"]), SECRET.encode())
    assert (claims.incident_id, claims.decision, claims.request_id) == (
        s.job_id,
        APPROVE,
        approval.request_id,
    )
    assert claims.expires == int(approval.deadline_time.timestamp())
    # A token works like a password until it is used: the log and the tables never keep one.
    tokens = [_token(link) for link in links.values()]
    stored = incident.ActionLog + json.dumps(approving.tickets.tickets(), default=str)
    assert "token=(withheld)" in stored and not any(t in stored for t in tokens)
    assert [r["IncidentId"] for r in approving.storage.approvals.open(10)] == [s.job_id]

    page = show(approving, _token(links["Approve"]))  # opening the link changes nothing
    assert page.status == 200 and 'method="post"' in page.html and s.vm_name in page.html
    assert sim.calls_to(route="item_put") == []

    done = answer(approving, _token(links["Approve"]), by="Ana (backup on-call)")
    assert done.status == 200, done.html
    (put,) = sim.calls_to(route="item_put")
    assert put.body["properties"]["protectionState"] == "ProtectionStopped"
    assert _protection(sim, s) == "ProtectionStopped"
    incident = incident_of(approving, s.job_id)
    assert incident.Status == IncidentStatus.RESOLVED
    decided = next(a for a in incident.actions if (a.action, a.state) == ("approval", "approved"))
    assert decided.detail == "by Ana (backup on-call) via link"
    after = log_of(incident)[log_of(incident).index(("approval", "approved")) :]
    assert after[:3] == [
        ("approval", "approved"),
        ("stop_protection", "started"),
        ("stop_protection", "succeeded"),
    ]
    assert approving.storage.approvals.open(10) == []
    assert incident.approval is not None and incident.approval.done


def test_verification_runs_again_at_approval_time(
    approving: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = _gone(sim)
    _requested(approving, sim, s)
    calls_before = len(sim.calls)
    answer(approving, _token(_links(receivers)["Approve"]), by="Ana")
    routes = [c.route for c in sim.calls[calls_before:] if c.method == "GET"]
    assert routes[:2] == ["job_get", "vm_get"]  # the job re-read, ARM asked again
    assert "vm_list" in routes  # and no VM of that name elsewhere (a move)


def test_an_approval_after_the_vm_reappeared_changes_nothing_and_says_why(
    approving: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = _gone(sim)
    _requested(approving, sim, s)
    sim.add_vm(SUB, s.vm_group, s.vm_name)  # restored under the same name meanwhile
    page = answer(approving, _token(_links(receivers)["Approve"]), by="Ana")
    assert page.status == 200 and "still has the VM" in page.html
    assert sim.calls_to(route="item_put") == []
    assert _protection(sim, s) == "Protected"
    incident = incident_of(approving, s.job_id)
    (skipped,) = [a for a in incident.actions if a.state == "skipped"]
    assert skipped.detail.startswith("approved by Ana, but Azure Resource Manager still has the VM")
    assert incident.Status == IncidentStatus.ESCALATED


def test_a_rejection_leaves_protection_on_and_hands_it_to_a_person(
    approving: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = _gone(sim)
    _requested(approving, sim, s)
    page = answer(approving, _token(_links(receivers)["Reject"]), by="Bo")
    assert page.status == 200
    assert sim.calls_to(route="item_put") == [] and _protection(sim, s) == "Protected"
    incident = incident_of(approving, s.job_id)
    assert incident.Status == IncidentStatus.ESCALATED
    assert ("approval", "rejected") in log_of(incident)
    notes = [r for r in receivers.received("servicenow") if r.method == "PATCH"]
    assert any("rejected by Bo" in r.body["work_notes"] for r in notes)
    assert approving.storage.approvals.open(10) == []
    deliver(approving, s.event())  # a redelivery of the job only counts
    assert sim.calls_to(route="item_put") == []


def test_an_unanswered_approval_becomes_an_escalated_ticket_at_its_deadline(
    approving: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = _gone(sim)
    approval = _requested(approving, sim, s).approval
    assert approval is not None
    deadline = approval.deadline_time
    assert deadline - datetime.fromisoformat(approval.requested_at) == timedelta(hours=24)
    assert expire_approvals(approving, deadline - timedelta(seconds=1)) == 0  # not yet
    assert incident_of(approving, s.job_id).Status == IncidentStatus.AWAITING_APPROVAL
    assert expire_approvals(approving, deadline) == 1
    incident = incident_of(approving, s.job_id)
    assert incident.Status == IncidentStatus.ESCALATED
    assert ("approval", "expired") in log_of(incident)
    notes = [r for r in receivers.received("servicenow") if r.method == "PATCH"]
    assert any("not answered within 24 h" in r.body["work_notes"] for r in notes)
    assert approving.storage.approvals.open(10) == []
    assert expire_approvals(approving, deadline + timedelta(hours=1)) == 0  # once
    late = answer(approving, _token(_links(receivers)["Approve"]), by="Ana")
    assert late.status == 409 and sim.calls_to(route="item_put") == []
    refused = [a for a in incident_of(approving, s.job_id).actions if a.state == "refused"]
    assert "expired" in refused[-1].detail


def test_no_log_record_carries_a_working_token(
    approving: Runtime, sim: AzureSimulator, receivers: Receivers, caplog: Any
) -> None:
    caplog.set_level("DEBUG")
    _requested(approving, sim, _gone(sim))
    tokens = [_token(link) for link in _links(receivers).values()]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "token=(withheld)" in logged and not any(t in logged for t in tokens)


def test_a_decision_taken_once_dry_run_is_on_again_changes_nothing_in_azure(
    approving: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = _gone(sim)
    _requested(approving, sim, s)
    dry = Runtime.from_settings(dataclasses.replace(approving.settings, dry_run=True), FAST_CLIENTS)
    page = answer(dry, _token(_links(receivers)["Approve"]), by="Ana")
    assert page.status == 200 and "dry run" in page.html
    assert sim.calls_to(route="item_put") == [] and _protection(sim, s) == "Protected"
    incident = incident_of(dry, s.job_id)
    assert log_of(incident)[-1] == ("stop_protection", "planned")
    assert incident.Status == IncidentStatus.OPEN and dry.storage.approvals.open(10) == []


def test_an_approval_that_cannot_be_finished_keeps_no_other_waiting(
    approving: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    first = _gone(sim, vm_name="vm-a")
    _requested(approving, sim, first)
    approve_first = _token(_links(receivers)["Approve"])
    second = _gone(sim, vm_name="vm-b")
    approval = _requested(approving, sim, second).approval
    assert approval is not None
    sim.faults.add("vm_get", "500", times=1_000)  # ARM fails: the approved stop cannot be verified
    assert answer(approving, approve_first, by="Ana").status == 200  # recorded, deferred
    later = approval.deadline_time + timedelta(seconds=approving.settings.claim_lease_seconds)

    assert expire_approvals(approving, later) == 1  # the second, though the first failed again
    assert incident_of(approving, second.job_id).Status == IncidentStatus.ESCALATED
    stuck = incident_of(approving, first.job_id)
    assert stuck.approval is not None and stuck.approval.state == ApprovalState.APPROVED
    assert [r["IncidentId"] for r in approving.storage.approvals.open(10)] == [first.job_id]
    sim.faults.clear()
    assert expire_approvals(approving, later + timedelta(minutes=5)) == 1  # finished now
    assert len(sim.calls_to(route="item_put")) == 1 and _protection(sim, first) != "Protected"


def test_the_timer_reads_the_approvals_that_are_due_however_many_wait(
    approving: Runtime, sim: AzureSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _gone(sim)
    approval = _requested(approving, sim, s).approval
    assert approval is not None
    later = approval.deadline_time + timedelta(days=1)
    for n in range(3):  # requests of other incidents, not due for another day
        approving.storage.approvals.add(f"0-waiting-{n}", "pk", f"rk{n}", later)  # listed first
    monkeypatch.setattr("handlers.actions.approval.SWEEP_BATCH", 2)  # fewer than wait
    assert expire_approvals(approving, approval.deadline_time) == 1
    assert incident_of(approving, s.job_id).Status == IncidentStatus.ESCALATED


# -- tokens that cannot be used -------------------------------------------------------------


def test_a_link_works_once(approving: Runtime, sim: AzureSimulator, receivers: Receivers) -> None:
    s = _gone(sim)
    _requested(approving, sim, s)
    links = _links(receivers)
    assert answer(approving, _token(links["Approve"]), by="Ana").status == 200
    again = answer(approving, _token(links["Approve"]), by="Mallory")  # replayed
    other = answer(approving, _token(links["Reject"]), by="Mallory")  # the request's other link
    assert (again.status, other.status) == (409, 409)
    for _ in range(3):  # a link scanner, a person clicking again: told, not logged again
        assert answer(approving, _token(links["Approve"]), by="Mallory").status == 409
    assert len(sim.calls_to(route="item_put")) == 1
    incident = incident_of(approving, s.job_id)
    refused = [a.detail for a in incident.actions if (a.action, a.state) == ("approval", "refused")]
    assert len(refused) == 2
    assert all("approved by Ana" in d and "single-use" in d for d in refused)
    assert incident.approval is not None and incident.approval.by == "Ana"


def test_forged_and_foreign_tokens_change_nothing_and_strangers_write_nothing(
    approving: Runtime, sim: AzureSimulator, receivers: Receivers, caplog: Any
) -> None:
    s = _gone(sim)
    approval = _requested(approving, sim, s).approval
    assert approval is not None
    expires = int(approval.deadline_time.timestamp())
    real = Claims(s.job_id, APPROVE, approval.request_id, expires)
    forged = sign(real, b"not-our-secret-not-our-secret-xx")  # names a real incident
    foreign = sign(dataclasses.replace(real, request_id="another-request"), SECRET.encode())
    nobody = sign(dataclasses.replace(real, incident_id="no-such-job"), SECRET.encode())
    tampered = _token(_links(receivers)["Reject"]).replace(".", "x.", 1)
    assert answer(approving, forged, by="Mallory").status == 403
    assert answer(approving, foreign, by="Mallory").status == 409
    assert answer(approving, nobody, by="Mallory").status == 404
    assert answer(approving, tampered, by="Mallory").status == 403
    assert answer(approving, "garbage").status == 403
    not_ascii = tampered.rsplit(".", 1)[0] + ".é" * 22  # once answered 500
    assert answer(approving, not_ascii, by="Mallory").status == 403
    assert show(approving, forged).status == 400  # the page says so too
    assert sim.calls_to(route="item_put") == []
    incident = incident_of(approving, s.job_id)
    assert incident.approval is not None and incident.approval.state == ApprovalState.PENDING
    refused = [a.detail for a in incident.actions if (a.action, a.state) == ("approval", "refused")]
    assert len(refused) == 1 and "another approval request" in refused[0]  # signed by us
    assert list(approving.storage.rejections.all()) == []  # an anonymous route writes no more
    warned = [r.getMessage() for r in caplog.records if r.name == "backup_responder.approvals"]
    assert any("signature does not match" in w and s.job_id in w for w in warned)
    assert any("no incident (no-such-job)" in w for w in warned)
    assert sum("not an approval token" in w for w in warned) >= 2  # garbage, tampered


def test_no_link_works_without_an_approval_secret(
    approving: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = _gone(sim)
    _requested(approving, sim, s)
    empty_key = sign(Claims(s.job_id, APPROVE, "any", 2_000_000_000), b"")
    gate_off = dataclasses.replace(approving.settings, approval_required=False, approval_secret="")
    unset = Runtime.from_settings(gate_off, FAST_CLIENTS)
    assert answer(unset, empty_key, by="Mallory").status == 403
    assert answer(unset, _token(_links(receivers)["Approve"]), by="Ana").status == 403
    assert sim.calls_to(route="item_put") == []


# -- the other ways in --------------------------------------------------------------------------


def test_the_cli_approves_and_rejects_with_who(
    approving: Runtime, sim: AzureSimulator, as_app_settings: Any
) -> None:
    first, second = _gone(sim, vm_name="vm-a"), _gone(sim, vm_name="vm-b")
    runtime = as_app_settings(approving.settings)
    for s in (first, second):
        _requested(runtime, sim, s) if s is first else deliver(runtime, s.event())
    out, err = io.StringIO(), io.StringIO()
    assert main(["approve", first.job_id, "--by", "ops-lead"], out, err) == 0, err.getvalue()
    assert "stop_protection succeeded" in out.getvalue()
    assert main(["reject", second.job_id], out, err) == 0
    assert main(["approve", second.job_id], out, err) == 1  # decided already
    assert "single-use" in err.getvalue()
    assert [c.path.lower() for c in sim.calls_to(route="item_put")] == [
        next(c.path.lower() for c in sim.calls_to(route="item_put") if "vm-a" in c.path.lower())
    ]
    approved = incident_of(runtime, first.job_id).approval
    assert approved is not None and (approved.by, approved.via) == ("ops-lead", "cli")
    rejected = incident_of(runtime, second.job_id).approval
    assert rejected is not None and rejected.via == "cli" and rejected.by  # the OS user


def test_the_http_function_shows_then_decides_without_a_function_key(
    approving: Runtime, sim: AzureSimulator, receivers: Receivers, as_app_settings: Any
) -> None:
    from tests.conftest import indexed_functions

    binding = json.loads(indexed_functions()["approvals"].get_function_json())["bindings"][0]
    assert (binding["authLevel"], sorted(binding["methods"])) == ("ANONYMOUS", ["GET", "POST"])
    runtime = as_app_settings(approving.settings)
    s = _gone(sim)
    _requested(runtime, sim, s)
    link = _links(receivers)["Approve"]
    token = _token(link)
    shown = function_app.approvals(func.HttpRequest("GET", link, body=b"", params={"token": token}))
    assert shown.status_code == 200 and shown.headers["Referrer-Policy"] == "no-referrer"
    assert sim.calls_to(route="item_put") == []
    form = f"token={token}&by=Ana".encode()
    posted = function_app.approvals(
        func.HttpRequest(
            "POST",
            f"{BASE}/api/approvals",
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    )
    assert posted.status_code == 200, posted.get_body()
    assert _protection(sim, s) == "ProtectionStopped"


def test_a_deleted_vm_goes_through_the_same_gate(
    approving: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = _gone(sim)
    raw = copy.deepcopy(load_event("resource-delete-vm"))
    raw["subject"] = raw["data"]["resourceUri"] = s.vm_id
    (outcome,) = handle_vm_deleted(approving, as_trigger_input(raw))
    assert outcome.status == IncidentStatus.AWAITING_APPROVAL
    assert sim.calls_to(route="item_put") == []
    answer(approving, _token(_links(receivers)["Approve"]), by="Ana")
    assert _protection(sim, s) == "ProtectionStopped"
    (again,) = handle_vm_deleted(approving, as_trigger_input(raw))  # redelivered: only counted
    assert again.occurrences == 2 and len(sim.calls_to(route="item_put")) == 1


def test_a_file_share_gone_for_good_waits_too_and_a_restored_one_is_left_alone(
    approving: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    ws = workload_scene(sim, "files", error_string="The Azure file share was not found")
    sim.delete_file_share(ws.host_id, "finance", soft=False)
    outcome = deliver(approving, ws.event())
    assert outcome.status == IncidentStatus.AWAITING_APPROVAL
    sim.add_file_share(ws.host_id, "finance")  # re-created before anyone answered
    answer(approving, _token(_links(receivers)["Approve"]), by="Ana")
    assert sim.calls_to(route="item_put") == []
    incident = incident_of(approving, ws.job_id)
    assert any("the share finance exists" in a.detail for a in incident.actions)


def test_a_decision_that_could_not_be_carried_out_is_finished_by_the_timer(
    approving: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = _gone(sim)
    _requested(approving, sim, s)
    sim.faults.add("item_put", "500", times=20)  # Azure down when the person approves
    page = answer(approving, _token(_links(receivers)["Approve"]), by="Ana")
    assert page.status == 200 and "recorded" in page.html
    assert _protection(sim, s) == "Protected"
    sim.faults.clear()
    approval = incident_of(approving, s.job_id).approval
    assert approval is not None and approval.state == ApprovalState.APPROVED and not approval.done
    decided = datetime.fromisoformat(approval.decided_at)
    lease = timedelta(seconds=approving.settings.claim_lease_seconds)
    assert sweep(approving, decided + lease / 2, lease) == 0  # it may still be under way
    assert sweep(approving, decided + lease, lease) == 1
    assert _protection(sim, s) == "ProtectionStopped"
    assert incident_of(approving, s.job_id).Status == IncidentStatus.RESOLVED
    assert approving.storage.approvals.open(10) == []


def test_without_the_setting_nothing_waits(live: Runtime, sim: AzureSimulator) -> None:
    s = _gone(sim)
    assert deliver(live, s.event()).status == IncidentStatus.RESOLVED
    assert incident_of(live, s.job_id).approval is None
    assert live.storage.approvals.open(10) == []


# -- Multi-User Authorization ---------------------------------------------------------------


def _guard_ticket(receivers: Receivers) -> str:
    (ticket,) = [r for r in receivers.received("servicenow") if r.method == "POST"]
    return str(ticket.body["description"])


@pytest.mark.parametrize("approval", [False, True], ids=["no-approval", "approval"])
def test_a_resource_guard_seen_up_front_makes_a_ticket_that_says_what_to_request(
    live: Runtime,
    approving: Runtime,
    sim: AzureSimulator,
    receivers: Receivers,
    approval: bool,
) -> None:
    runtime = approving if approval else live
    s = _gone(sim)
    sim.guard_vault(s.vault["id"], GUARD)
    outcome = deliver(runtime, s.event())
    assert outcome.status == IncidentStatus.ESCALATED
    assert sim.calls_to(route="item_put") == []  # never tried
    incident = incident_of(runtime, s.job_id)
    assert ("stop_protection", "blocked") in log_of(incident)
    assert incident.approval is None  # nobody is asked to approve what the guard blocks
    text = _guard_ticket(receivers)
    for needed in (GUARD, STOP_OPERATION, s.vault["id"], f"{GUARD}/"):
        assert needed.lower() in text.lower(), needed
    assert "will not try again" in text
    drain(runtime)
    deliver(runtime, s.event())
    assert sim.calls_to(route="item_put") == []


def test_a_guard_that_does_not_protect_the_stop_is_no_obstacle(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = _gone(sim)
    sim.guard_vault(s.vault["id"], GUARD, protects_stop=False)
    assert deliver(live, s.event()).status == IncidentStatus.RESOLVED
    assert [c.route for c in sim.calls if c.route in ("vault_get", "resource_guard_proxies")] == [
        "vault_get",
        "resource_guard_proxies",
    ]


def test_a_vault_without_mua_is_not_asked_for_its_guards(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = _gone(sim)
    deliver(live, s.event())
    assert sim.calls_to(route="vault_get") and not sim.calls_to(route="resource_guard_proxies")


def test_a_put_refused_by_a_resource_guard_makes_the_ticket_and_is_never_retried(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = _gone(sim)
    sim.guard_vault(s.vault["id"], GUARD)
    sim.faults.add("resource_guard_proxies", "403", times=1)  # the mapping cannot be read first
    outcome = deliver(live, s.event())
    assert outcome.status == IncidentStatus.ESCALATED
    (put,) = sim.calls_to(route="item_put")
    assert put.status == 400  # the Resource Guard's refusal
    incident = incident_of(live, s.job_id)
    stops = [step for step in log_of(incident) if step[0] == "stop_protection"]
    assert stops[-2:] == [("stop_protection", "started"), ("stop_protection", "blocked")]
    blocked = next(a for a in incident.actions if a.state == "blocked")
    assert "ResourceGuard Operation requestid is either null or empty" in blocked.detail
    text = _guard_ticket(receivers)
    assert GUARD.lower() in text.lower() and STOP_OPERATION in text  # read after the refusal
    deliver(live, s.event())
    drain(live)
    sim.faults.add("resource_guard_proxies", "403", times=1)  # no up-front check to stop it
    act(live, incident.PartitionKey, incident.RowKey, "stop_protection")  # run once more
    assert len(sim.calls_to(route="item_put")) == 1  # no retry of the PUT


def test_the_linked_check_refusal_is_a_resource_guard_refusal_too(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = _gone(sim)
    sim.faults.add("item_put", "mua_403", times=1)
    deliver(live, s.event())
    incident = incident_of(live, s.job_id)
    assert ("stop_protection", "blocked") in log_of(incident)
    assert len(sim.calls_to(route="item_put")) == 1
    assert "(see the vault's Multi-User Authorization)" in _guard_ticket(receivers)


def test_tokens_of_each_decision_differ_and_expire_with_the_request() -> None:
    claims = Claims("job", APPROVE, "req", int(datetime(2030, 1, 1, tzinfo=UTC).timestamp()))
    approve = sign(claims, SECRET.encode())
    reject = sign(dataclasses.replace(claims, decision=REJECT), SECRET.encode())
    assert approve != reject and read(reject, SECRET.encode()).decision == REJECT
