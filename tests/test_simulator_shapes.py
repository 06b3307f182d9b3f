"""The simulator's ``azure`` shapes hold against Azure's own payloads (``azure_payloads/``).

Each test reads what the simulator serves through the real SDK clients or plain ``requests`` and
compares it with the payload file it was taken from: the same keys at every level with the same
value types (:func:`structure`), and the same forms (7-digit times, TimeSpan and ISO durations,
numeric ``actionsInfo``, lower-case header names, the polling URLs' api-version).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.polling import LROPoller
from azure.mgmt.core.polling.arm_polling import ARMPolling
from azure.mgmt.recoveryservices import RecoveryServicesClient
from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient, models

from sandbox.simulator import (
    CANONICAL,
    DEFAULT_HEADER_CASE,
    DEFAULT_SHAPES,
    HEADER_CASE_ENV,
    LRO_URL_API_VERSIONS,
    SHAPES_ENV,
    AzureSimulator,
    StaticCredential,
    failed_job_json,
)
from sandbox.simulator import azure as shapes
from sandbox.simulator.payloads import load
from tests.world import BACKUP_VERSION, raw_json, sim_get, sim_send

SUB = "11111111-2222-3333-4444-555555555555"
VAULT_RG = "rg-backup"
VAULT = "vault1"
# Mixed case on purpose: Azure lower-cases them in container and item names.
VM_RG = "RG-Web"
VM = "VM-Web-01"
FABRIC = "Azure"
CONTAINER = f"IaasVMContainer;iaasvmcontainerv2;{VM_RG};{VM}"
ITEM = f"VM;iaasvmcontainerv2;{VM_RG};{VM}"
LOWER_CONTAINER = f"iaasvmcontainerv2;{VM_RG};{VM}".lower()
EXPIRY = datetime(2030, 1, 1, tzinfo=UTC)

TIME_7 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
# XmlConvert's ISO 8601 durations: trailing zeros of the fraction are dropped.
ISO_DURATION = re.compile(r"^P(\d+D)?T(\d+H)?(\d+M)?(\d+(\.\d{1,7})?S)?$")
TIMESPAN = re.compile(r"^(\d+\.)?\d\d:\d\d:\d\d(\.\d{7})?$")
# Headers the recordings do not show but the simulator sends (the recorder keeps only some).
UNRECORDED_HEADERS = {"server", "date", "x-ms-request-id", "x-ms-correlation-request-id"}


@pytest.fixture
def backup(azsim: AzureSimulator) -> RecoveryServicesBackupClient:
    return RecoveryServicesBackupClient(StaticCredential(), SUB, **_client_options(azsim))


@pytest.fixture
def vaults(azsim: AzureSimulator) -> RecoveryServicesClient:
    return RecoveryServicesClient(StaticCredential(), SUB, **_client_options(azsim))


@pytest.fixture
def seeded(azsim: AzureSimulator) -> dict[str, Any]:
    """A vault protecting one VM (last backup a day ago)."""
    vault = azsim.add_vault(SUB, VAULT_RG, VAULT)
    vm = azsim.add_vm(SUB, VM_RG, VM)
    return {"vault": vault, "vm": vm, "item": azsim.protect_vm(vault, vm["id"])}


def _client_options(azsim: AzureSimulator) -> dict[str, Any]:
    return {
        "base_url": azsim.base_url,
        "connection_verify": azsim.ca_pem_path,
        "polling_interval": 0,
        "retry_total": 0,
    }


def structure(value: Any) -> Any:
    """The keys at every level, with each leaf's type name; a list by its first element."""
    if isinstance(value, dict):
        return {key: structure(entry) for key, entry in value.items()}
    if isinstance(value, list):
        return [structure(value[0])] if value else []
    return type(value).__name__


def without(document: dict[str, Any], *paths: str) -> dict[str, Any]:
    """A copy of a payload without the dotted ``paths`` (keys our seed does not produce)."""
    copied = structure(document)
    for path in paths:
        *parents, last = path.split(".")
        node = copied
        for parent in parents:
            node = node[parent]
        del node[last]
    return copied


def _header_names(response: requests.Response) -> list[str]:
    return list(response.raw.headers.keys())


def _trigger_body() -> dict[str, Any]:
    return {
        "properties": {
            "objectType": "IaasVMBackupRequest",
            "recoveryPointExpiryTimeInUTC": "2030-01-01T00:00:00Z",
        }
    }


def _stop_body(vm_id: str) -> dict[str, Any]:
    return {
        "properties": {
            "protectedItemType": "Microsoft.Compute/virtualMachines",
            "sourceResourceId": vm_id,
            "policyId": "",
            "protectionState": "ProtectionStopped",
        }
    }


def _trigger(backup: RecoveryServicesBackupClient) -> Any:
    """Trigger an on-demand backup through the SDK; returns the pipeline response."""
    request = models.BackupRequestResource(
        properties=models.IaasVMBackupRequest(recovery_point_expiry_time_in_utc=EXPIRY)
    )
    return backup.backups.trigger(
        VAULT, VAULT_RG, FABRIC, CONTAINER, ITEM, request, cls=lambda response, *_: response
    )


def _triggered_job(azsim: AzureSimulator, backup: RecoveryServicesBackupClient) -> str:
    """Trigger a backup and poll its operation to success; returns the job name."""
    status_url = _trigger(backup).http_response.headers["Azure-AsyncOperation"]
    sim_get(azsim, status_url)
    return sim_get(azsim, status_url).json()["properties"]["jobId"]


def _job_details(backup: RecoveryServicesBackupClient, name: str) -> dict[str, Any]:
    return backup.job_details.get(VAULT, VAULT_RG, name, cls=raw_json)


def _jobs_by_name(azsim: AzureSimulator) -> dict[str, dict[str, Any]]:
    vault = f"/subscriptions/{SUB}/resourceGroups/{VAULT_RG}/providers/Microsoft.RecoveryServices"
    page = sim_get(azsim, f"{vault}/vaults/{VAULT}/backupJobs", **BACKUP_VERSION).json()
    return {job["name"]: job for job in page["value"]}


def _item_list(azsim: AzureSimulator) -> list[dict[str, Any]]:
    vault = f"/subscriptions/{SUB}/resourceGroups/{VAULT_RG}/providers/Microsoft.RecoveryServices"
    return sim_get(azsim, f"{vault}/vaults/{VAULT}/backupProtectedItems", **BACKUP_VERSION).json()[
        "value"
    ]


def _assert_azure_job_forms(properties: dict[str, Any], duration: re.Pattern[str]) -> None:
    assert all(
        TIME_7.match(properties[key]) for key in ("startTime", "endTime") if key in properties
    )
    assert duration.match(properties["duration"])
    assert properties.get("actionsInfo", [1]) == [1]
    assert "isUserTriggered" not in properties


# -- the switches ------------------------------------------------------------------------------


def test_switch_defaults_come_from_the_environment_and_reset_restores_them(
    simulator: AzureSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SHAPES_ENV, raising=False)
    monkeypatch.delenv(HEADER_CASE_ENV, raising=False)
    simulator.reset()
    assert (simulator.shapes, simulator.header_case) == (DEFAULT_SHAPES, DEFAULT_HEADER_CASE)

    monkeypatch.setenv(SHAPES_ENV, "azure")
    monkeypatch.setenv(HEADER_CASE_ENV, "lower")
    simulator.reset()
    assert (simulator.shapes, simulator.header_case) == ("azure", "lower")
    simulator.shapes, simulator.header_case, simulator.details_duration = "ideal", CANONICAL, "iso"
    simulator.reset()
    assert (simulator.shapes, simulator.header_case, simulator.details_duration) == (
        "azure",
        "lower",
        "timespan",
    )

    with pytest.raises(ValueError, match="shapes"):
        simulator.shapes = "real"
    with pytest.raises(ValueError, match="header_case"):
        simulator.header_case = "upper"
    monkeypatch.setenv(SHAPES_ENV, "real")
    with pytest.raises(ValueError, match=SHAPES_ENV):
        simulator.reset()
    monkeypatch.delenv(SHAPES_ENV)
    simulator.reset()


def test_idealised_serves_the_ideal_shapes_inside_the_block_only(
    azsim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    job = azsim.add_job(seeded["vault"], vm_name=VM, vm_resource_group=VM_RG)

    with azsim.idealised("this check compares the two shapes"):
        ideal = _job_details(backup, job["name"])["properties"]
    azure = _job_details(backup, job["name"])["properties"]

    assert (ideal["actionsInfo"], ideal["isUserTriggered"]) == (["Retriable"], False)
    assert ideal["containerName"] == f"iaasvmcontainerv2;{VM_RG};{VM}"
    assert (azure["actionsInfo"], azsim.shapes) == ([1], "azure")
    assert "containerName" not in azure
    with pytest.raises(ValueError, match="why"):
        azsim.idealised("  ").__enter__()


# -- forms -------------------------------------------------------------------------------------


def test_time_and_duration_forms_are_the_payloads_forms() -> None:
    moment = datetime(2022, 5, 16, 14, 28, 23, 552323, tzinfo=UTC)
    served = shapes.format_time(moment)
    assert TIME_7.match(served)
    assert served.startswith("2022-05-16T14:28:23.552323")
    assert datetime.fromisoformat(served) == moment  # reads back as the same microsecond
    tick = 10_000_000
    # The payloads' own values: docs capture, go#5339, job_list_nofilter, scenario_job_*.
    assert shapes.timespan(20 * 60 * tick + 23 * tick + 896697) == "00:20:23.0896697"
    assert shapes.iso_duration(69 * 60 * tick + 58 * tick + 9495507) == "PT1H9M58.9495507S"
    assert shapes.iso_duration(41 * 60 * tick + 12 * tick + 6848560) == "PT41M12.684856S"
    assert (shapes.iso_duration(0), shapes.timespan(0)) == ("PT0S", "00:00:00")
    assert shapes.timespan(26 * 3600 * tick) == "1.02:00:00"
    assert shapes.iso_duration(26 * 3600 * tick) == "P1DT2H"


# -- job details -------------------------------------------------------------------------------


def test_job_details_match_the_docs_capture_with_a_timespan_duration(
    azsim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    job = azsim.add_job(seeded["vault"], vm_name=VM, vm_resource_group=VM_RG, status="Completed")

    served = _job_details(backup, job["name"])

    docs = load("published/docs-managejobs-JobDetails_Get-response.json")
    recorded = load("recorded/scenario_job_backup_completed.json")
    # The recorded traffic (2022) also carries internalPropertyBag; the docs capture does not.
    docs["properties"]["extendedInfo"]["internalPropertyBag"] = recorded["properties"][
        "extendedInfo"
    ]["internalPropertyBag"]
    assert structure(served) == structure(docs)
    properties = served["properties"]
    _assert_azure_job_forms(properties, TIMESPAN)
    assert {task["duration"] for task in properties["extendedInfo"]["tasksList"]} == {"00:00:00"}
    assert properties["duration"] == "00:03:00"
    assert served["id"].startswith("/Subscriptions/")
    model = backup.job_details.get(VAULT, VAULT_RG, job["name"]).properties
    assert isinstance(model, models.AzureIaaSVMJob)
    assert (model.container_name, model.actions_info) == (None, [1])


def test_triggered_job_details_match_the_recorded_backup_job(
    azsim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    azsim.details_duration = "iso"
    name = _triggered_job(azsim, backup)

    running = _job_details(backup, name)
    azsim.complete_job(seeded["vault"], name)
    done = _job_details(backup, name)

    # Jobs are served without containerName unless seeded with it (published examples).
    assert structure(running) == without(
        load("recorded/scenario_job_backup_inprogress.json"), "properties.containerName"
    )
    assert structure(done) == without(
        load("recorded/scenario_job_backup_completed.json"), "properties.containerName"
    )
    for served in (running, done):
        _assert_azure_job_forms(served["properties"], ISO_DURATION)
        bag = served["properties"]["extendedInfo"]["propertyBag"]
        assert bag["Recovery Point Expiry Time in UTC"] == "1/1/2030 12:00:00 AM"
    assert "endTime" not in running["properties"]


def test_protection_change_jobs_match_the_recorded_ones(
    azsim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    azsim.details_duration = "iso"
    item_path = seeded["item"]["id"]
    assert sim_send(azsim, "PUT", item_path, _stop_body(seeded["vm"]["id"])).status_code == 202
    resume = {"properties": {**_stop_body(seeded["vm"]["id"])["properties"]}}
    resume["properties"] |= {
        "protectionState": "Protected",
        "policyId": f"{seeded['vault']['id']}/backupPolicies/DefaultPolicy",
    }
    assert sim_send(azsim, "PUT", item_path, resume).status_code == 202

    by_operation = {
        job["properties"]["operation"]: _job_details(backup, name)
        for name, job in _jobs_by_name(azsim).items()
    }

    for operation, recording, policy in [
        ("DisableBackup", "scenario_job_disablebackup_completed.json", ""),
        ("ConfigureBackup", "scenario_job_configurebackup_completed.json", "DefaultPolicy"),
    ]:
        served = by_operation[operation]
        assert structure(served) == without(
            load(f"recorded/{recording}"), "properties.containerName"
        )
        _assert_azure_job_forms(served["properties"], ISO_DURATION)
        assert "actionsInfo" not in served["properties"]
        assert served["properties"]["extendedInfo"]["propertyBag"]["Policy Name"] == policy


def test_restore_job_details_show_only_recorded_keys(
    azsim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    azsim.details_duration = "iso"
    job = azsim.add_job(
        seeded["vault"],
        vm_name=VM,
        vm_resource_group=VM_RG,
        status="InProgress",
        operation="Restore",
        container_in_details=True,
    )

    served = _job_details(backup, job["name"])["properties"]

    recorded = load("recorded/scenario_job_restore_inprogress.json")["properties"]
    assert served.keys() == recorded.keys()
    for key in ("propertyBag", "internalPropertyBag"):
        assert served["extendedInfo"][key].items() <= recorded["extendedInfo"][key].items()
    [task] = served["extendedInfo"]["tasksList"]
    assert task.keys() <= recorded["extendedInfo"]["tasksList"][0].keys()
    assert served["containerName"] == LOWER_CONTAINER


def test_failed_job_details_carry_the_spec_error_details(
    azsim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    job = azsim.add_job(seeded["vault"], vm_name=VM, vm_resource_group=VM_RG)

    served = _job_details(backup, job["name"])["properties"]
    built = failed_job_json(
        seeded["vault"]["id"], VM, VM_RG, (400094, "gone"), datetime.now(UTC), shapes="azure"
    )

    spec = load("published/spec-2026-10-01-bms-job-definitions.json")
    [error] = served["errorDetails"]
    assert error.keys() == spec["AzureIaaSVMErrorInfo"]["properties"].keys()
    assert set(served) <= set(spec["AzureIaaSVMJob"]["properties"]) | set(spec["Job"]["properties"])
    _assert_azure_job_forms(served, TIMESPAN)
    assert served["actionsInfo"] == [1]
    assert built["properties"].keys() == served.keys()
    assert built["properties"]["errorDetails"][0].keys() == error.keys()


# -- job lists ---------------------------------------------------------------------------------


def test_job_list_entries_are_trimmed_as_azure_trims_them(
    azsim: AzureSimulator, seeded: dict[str, Any]
) -> None:
    seed = {"vault": seeded["vault"], "vm_name": VM, "vm_resource_group": VM_RG}
    completed = azsim.add_job(**seed, status="Completed")["name"]
    failed = azsim.add_job(**seed, status="Failed")["name"]
    running = azsim.add_job(**seed, status="InProgress", operation="Restore")["name"]
    configured = azsim.add_job(**seed, status="Completed", operation="ConfigureBackup")["name"]
    with_container = azsim.add_job(**seed, status="Completed", container_in_details=True)["name"]

    listed = _jobs_by_name(azsim)

    observed = structure(load("published/observed-go5339-BackupJobs_List-item.json"))
    recorded = load("recorded/job_list_nofilter.json")["value"]
    assert structure(listed[completed]) == observed
    assert structure(listed[failed]) == observed  # no errorDetails in lists
    assert structure(listed[running]) == without(recorded[0], "properties.containerName")
    assert structure(listed[configured]) == without(recorded[2], "properties.containerName")
    assert structure(listed[with_container]) == structure(recorded[1])
    assert listed[with_container]["properties"]["containerName"] == LOWER_CONTAINER
    for job in listed.values():
        _assert_azure_job_forms(job["properties"], ISO_DURATION)


def test_job_list_filters_still_apply(azsim: AzureSimulator, seeded: dict[str, Any]) -> None:
    seed = {"vault": seeded["vault"], "vm_name": VM, "vm_resource_group": VM_RG}
    azsim.add_job(**seed, status="InProgress", operation="Restore")
    azsim.add_job(**seed, status="Completed")
    path = f"{seeded['vault']['id']}/backupJobs"

    page = sim_get(azsim, path, **BACKUP_VERSION, **{"$filter": "status eq 'InProgress'"}).json()

    recorded = load("recorded/job_list_filter_status_inprogress.json")["value"]
    [job] = page["value"]
    assert structure(job) == without(recorded[0], "properties.containerName")


# -- vaults ------------------------------------------------------------------------------------


def test_vault_list_entries_have_the_recorded_keys_and_spellings(
    azsim: AzureSimulator, vaults: RecoveryServicesClient, backup: RecoveryServicesBackupClient
) -> None:
    azsim.add_vault(SUB, VAULT_RG, VAULT)
    upper = "Microsoft.RecoveryServices/Vaults"
    azsim.add_vault(SUB, VAULT_RG, "moved", type_spelling=upper, id_type_spelling=upper)
    azsim.add_vault(SUB, VAULT_RG, "lowtype", type_spelling="microsoft.recoveryservices/vaults")

    served = {
        vault["name"]: vault
        for vault in sim_get(
            azsim,
            f"/subscriptions/{SUB}/providers/Microsoft.RecoveryServices/vaults",
            **{"api-version": "2026-11-01"},
        ).json()["value"]
    }

    recorded = load("recorded/vault_list_subscription_excerpt.json")["value"]
    assert all(structure(vault) == structure(recorded[0]) for vault in served.values())
    assert "/providers/Microsoft.RecoveryServices/Vaults/moved" in served["moved"]["id"]
    assert served["moved"]["type"] == upper
    assert served["lowtype"]["type"] == "microsoft.recoveryservices/vaults"
    assert re.fullmatch(
        r"W/\"datetime'\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\d\.\d{7}Z'\"", served[VAULT]["etag"]
    )
    assert sorted(v.name for v in vaults.vaults.list_by_subscription_id()) == sorted(served)
    assert list(backup.backup_jobs.list("moved", VAULT_RG)) == []


# -- protected items ---------------------------------------------------------------------------


def test_new_protection_is_ir_pending_until_the_first_backup_completes(
    azsim: AzureSimulator, backup: RecoveryServicesBackupClient
) -> None:
    vault = azsim.add_vault(SUB, VAULT_RG, VAULT)
    vm = azsim.add_vm(SUB, VM_RG, VM)
    azsim.protect_vm(vault, vm, initial_backup_pending=True)

    [pending] = _item_list(azsim)
    job = azsim.add_job(vault, vm_name=VM, vm_resource_group=VM_RG, status="Completed")
    [protected] = _item_list(azsim)

    assert structure(pending) == structure(
        load("recorded/scenario_protected_items_list_irpending.json")["value"][0]
    )
    assert pending["properties"]["protectionState"] == "IRPending"
    assert (pending["properties"]["lastBackupStatus"], pending["properties"]["lastBackupTime"]) == (
        "",
        "2001-01-01T00:00:00Z",
    )
    assert structure(protected) == structure(
        load("recorded/scenario_protected_items_list_protected_before_stop.json")["value"][0]
    )
    properties = protected["properties"]
    assert properties["protectionState"] == "Protected"
    # Azure's lastBackupTime is the backup job's start (the recordings agree to the tick).
    assert properties["lastBackupTime"] == job["properties"]["startTime"]
    assert TIME_7.match(properties["lastRecoveryPoint"])
    item = backup.protected_items.get(VAULT, VAULT_RG, FABRIC, CONTAINER, ITEM).properties
    assert item["protectionState"] == "Protected"


def test_protected_item_names_are_lower_case_and_keep_the_recorded_keys_when_stopped(
    azsim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    poller = backup.protected_items.begin_create_or_update(
        VAULT,
        VAULT_RG,
        FABRIC,
        CONTAINER,
        ITEM,
        models.ProtectedItemResource(_stop_body(seeded["vm"]["id"])),
    )
    stopped = poller.result()

    served = _item_list(azsim)[0]
    assert structure(served) == structure(
        load("recorded/scenario_protected_items_list_after_stop_retain_data.json")["value"][0]
    )
    assert (served["properties"]["policyId"], served["properties"]["policyName"]) == ("", "")
    assert served["name"] == f"VM;{LOWER_CONTAINER}"
    assert served["id"].endswith(
        f"/IaasVMContainer;{LOWER_CONTAINER}/protectedItems/VM;{LOWER_CONTAINER}"
    )
    assert served["properties"]["containerName"] == LOWER_CONTAINER
    assert served["properties"]["friendlyName"] == VM
    assert stopped.properties["protectionState"] == "ProtectionStopped"
    published = load("published/rsb-2026-10-01-ProtectedItemOperationResults.json")
    assert set(published["responses"]["200"]["body"]["properties"]) <= set(served["properties"])


def test_recovery_points_keep_the_published_keys_newest_first(
    azsim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    """One point per completed backup of the VM, with the keys of the published
    ``RecoveryPoints_List``'s first entry; the newest is the item's ``lastRecoveryPoint``, and
    the SDK reads every point as an ``IaasVMRecoveryPoint``."""
    azsim.add_job(seeded["vault"], vm_name=VM, vm_resource_group=VM_RG, status="Completed")
    item = _item_list(azsim)[0]

    points = sim_get(azsim, item["id"] + "/recoveryPoints", **BACKUP_VERSION).json()["value"]
    read = list(backup.recovery_points.list(VAULT, VAULT_RG, FABRIC, CONTAINER, ITEM))

    published = load("published/rsb-2026-10-01-RecoveryPoints_List.json")
    first = published["responses"]["200"]["body"]["value"][0]
    assert len(points) == 2
    assert all(structure(point) == structure(first) for point in points)
    times = [point["properties"]["recoveryPointTime"] for point in points]
    assert times == sorted(times, reverse=True)
    assert times[0] == item["properties"]["lastRecoveryPoint"]
    assert all(point["id"] == f"{item['id']}/recoveryPoints/{point['name']}" for point in points)
    assert [type(r.properties).__name__ for r in read] == ["IaasVMRecoveryPoint"] * 2
    with azsim.idealised("the idealised shapes list recovery points too"):
        ideal = sim_get(azsim, item["id"] + "/recoveryPoints", **BACKUP_VERSION).json()["value"]
    assert {p["properties"]["objectType"] for p in ideal} == {"IaasVMRecoveryPoint"}


# -- long-running operations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "recording"),
    [
        ("POST", "/backup", "scenario_backup_trigger_response_202.json"),
        ("PUT", "", "scenario_stop_protection_put_response_202.json"),
    ],
    ids=["backup-trigger", "stop-protection"],
)
def test_202_carries_the_recorded_headers_and_the_published_polling_urls(
    azsim: AzureSimulator, seeded: dict[str, Any], method: str, suffix: str, recording: str
) -> None:
    azsim.header_case = "lower"
    body = _trigger_body() if method == "POST" else _stop_body(seeded["vm"]["id"])

    response = sim_send(azsim, method, seeded["item"]["id"] + suffix, body)

    assert response.status_code == 202
    names = set(_header_names(response))
    recorded = set(load(f"recorded/{recording}")["headers"])
    assert recorded <= names <= recorded | UNRECORDED_HEADERS
    assert "retry-after" not in names
    for name, kind in (
        ("location", "operationResults"),
        ("azure-asyncoperation", "operationsStatus"),
    ):
        url = urlsplit(response.headers[name])
        assert parse_qs(url.query) == {"api-version": ["2016-12-01"]}
        assert url.path.startswith(f"/Subscriptions/{SUB}/resourceGroups/{VAULT_RG}/")
        assert f"/protectedItems/VM;{LOWER_CONTAINER}/{kind}/" in url.path


def test_operation_status_and_results_match_the_recorded_and_published_shapes(
    azsim: AzureSimulator, seeded: dict[str, Any]
) -> None:
    azsim.header_case = "lower"
    accepted = sim_send(azsim, "PUT", seeded["item"]["id"], _stop_body(seeded["vm"]["id"]))

    pending = sim_get(azsim, accepted.headers["location"])
    running = sim_get(azsim, accepted.headers["azure-asyncoperation"])
    result = sim_get(azsim, accepted.headers["location"])

    assert pending.status_code == 202
    published = load("published/rsb-2026-10-01-ProtectedItemOperationResults.json")["responses"]
    assert set(_header_names(pending)) >= {name.lower() for name in published["202"]["headers"]}
    assert parse_qs(urlsplit(pending.headers["location"]).query)["api-version"] == ["2016-12-01"]
    succeeded = running.json()
    assert structure(succeeded) == structure(
        load("recorded/scenario_stop_protection_operation_status_succeeded.json")
    )
    assert structure(succeeded) == structure(
        load("published/rsb-2026-10-01-ProtectedItemOperationStatus.json")["responses"]["200"][
            "body"
        ]
    )
    assert all(TIME_7.match(succeeded[key]) for key in ("startTime", "endTime"))
    assert result.status_code == 200
    assert result.json()["properties"]["protectionState"] == "ProtectionStopped"


def test_in_progress_backup_operation_ends_in_0001_as_recorded(
    azsim: AzureSimulator, seeded: dict[str, Any]
) -> None:
    accepted = sim_send(azsim, "POST", seeded["item"]["id"] + "/backup", _trigger_body())
    op_id = urlsplit(accepted.headers["Azure-AsyncOperation"]).path.rsplit("/", 1)[1]
    vault_level = f"{seeded['vault']['id']}/backupOperations/{op_id}"

    running = sim_get(azsim, vault_level, **{"api-version": "2016-12-01"}).json()
    done = sim_get(azsim, vault_level, **{"api-version": "2019-05-13-preview"}).json()

    assert structure(running) == structure(
        load("recorded/scenario_backup_operation_status_inprogress.json")
    )
    assert running["endTime"] == "0001-01-01T00:00:00"
    assert structure(done) == structure(
        load("recorded/scenario_backup_operation_status_succeeded.json")
    )
    assert sim_get(azsim, accepted.headers["Location"]).status_code == 204


@pytest.mark.parametrize("shape", ["ideal", "azure"])
@pytest.mark.parametrize("version", sorted(LRO_URL_API_VERSIONS))
def test_polling_routes_accept_the_api_versions_of_azures_polling_urls(
    azsim: AzureSimulator, seeded: dict[str, Any], shape: str, version: str
) -> None:
    azsim.shapes = shape
    accepted = sim_send(azsim, "POST", seeded["item"]["id"] + "/backup", _trigger_body())
    op_id = urlsplit(accepted.headers["Azure-AsyncOperation"]).path.rsplit("/", 1)[1]
    item = seeded["item"]["id"]

    for path in (
        f"{item}/operationsStatus/{op_id}",
        f"{item}/operationResults/{op_id}",
        f"{seeded['vault']['id']}/backupOperations/{op_id}",
    ):
        assert sim_get(azsim, path, **{"api-version": version}).status_code in (200, 204)
    refused = sim_get(azsim, f"{seeded['vault']['id']}/backupJobs", **{"api-version": version})
    assert refused.status_code == 400


def test_sdk_poller_follows_azures_polling_urls_to_completion(
    azsim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    azsim.header_case = "lower"

    item = backup.protected_items.begin_create_or_update(
        VAULT,
        VAULT_RG,
        FABRIC,
        CONTAINER,
        ITEM,
        models.ProtectedItemResource(_stop_body(seeded["vm"]["id"])),
    ).result()

    assert item.properties["protectionState"] == "ProtectionStopped"
    polls = azsim.calls_to("item_operation_status")
    assert [(call.status, call.api_version) for call in polls] == [(200, "2016-12-01")] * 2
    assert azsim.calls[-1].route == "item_get"


def test_on_demand_trigger_is_followed_to_completion_with_arm_polling(
    azsim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    azsim.header_case = "lower"

    initial = _trigger(backup)
    LROPoller(backup._client, initial, lambda _response: None, ARMPolling(0)).result()

    routes = [(call.route, call.status, call.api_version) for call in azsim.calls]
    assert routes == [
        ("backup_trigger", 202, "2026-10-01"),
        ("item_operation_status", 200, "2016-12-01"),
        ("item_operation_status", 200, "2016-12-01"),
        ("item_operation_result", 204, "2016-12-01"),
    ]


# -- errors and headers ------------------------------------------------------------------------


def test_gateway_404_has_the_recorded_body_and_failure_cause(
    azsim: AzureSimulator, backup: RecoveryServicesBackupClient
) -> None:
    azsim.header_case = "lower"
    path = f"/subscriptions/{SUB}/resourceGroups/{VAULT_RG}/providers"
    response = sim_get(
        azsim, f"{path}/Microsoft.RecoveryServices/vaults/nope/backupJobs", **BACKUP_VERSION
    )

    recorded = load("recorded/error_vault_get_404.json")
    assert response.status_code == 404
    assert structure(response.json()) == structure(recorded["body"])
    assert set(recorded["headers"]) <= set(_header_names(response))
    assert response.headers["x-ms-failure-cause"] == "gateway"
    with pytest.raises(ResourceNotFoundError) as caught:
        list(backup.backup_jobs.list("nope", VAULT_RG))
    assert caught.value.error.code == "ResourceNotFound"


def test_backup_provider_errors_have_the_quoted_error_body(
    azsim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    body = {"properties": {"objectType": "NotARequest"}}
    response = sim_send(azsim, "POST", seeded["item"]["id"] + "/backup", body)

    error = response.json()["error"]
    quoted = load("recorded/supplementary_error_bms_invalid_input_400.json")["body"]
    spec = load("published/spec-2026-10-01-bms-job-definitions.json")
    assert response.status_code == 400
    assert structure(response.json()) == structure(quoted)
    assert error.keys() <= spec["common-types/v3 ErrorDetail"]["properties"].keys()
    with pytest.raises(HttpResponseError) as caught:
        backup.protected_items.get(VAULT, VAULT_RG, FABRIC, CONTAINER, "VM;iaasvmcontainerv2;x;y")
    # The SDK parses the body: its error is there, with the provider's code.
    assert caught.value.error.code == "BMSUserErrorDataSourceObjectNotFound"


def test_lower_header_case_lower_cases_every_response_header(
    azsim: AzureSimulator, seeded: dict[str, Any], backup: RecoveryServicesBackupClient
) -> None:
    azsim.header_case = "lower"
    azsim.faults.add("job_list", "429", retry_after=3)
    jobs = f"{seeded['vault']['id']}/backupJobs"

    responses = [
        sim_get(azsim, jobs, **BACKUP_VERSION),
        sim_get(azsim, jobs, **BACKUP_VERSION),
        sim_get(azsim, f"{jobs}/nope", **BACKUP_VERSION),
        sim_send(azsim, "POST", seeded["item"]["id"] + "/backup", _trigger_body()),
    ]

    assert [response.status_code for response in responses] == [429, 200, 404, 202]
    for response in responses:
        names = _header_names(response)
        assert names == [name.lower() for name in names]
    assert responses[0].headers["retry-after"] == "3"
    assert {"content-length", "content-type", "date"} <= set(_header_names(responses[1]))
    assert "location" in _header_names(responses[3])
    # The SDK reads headers case-insensitively, so its own calls are unaffected.
    azsim.add_job(seeded["vault"], vm_name=VM, vm_resource_group=VM_RG)
    assert len(list(backup.backup_jobs.list(VAULT, VAULT_RG))) == 2


def test_canonical_header_case_keeps_the_written_names(
    azsim: AzureSimulator, seeded: dict[str, Any]
) -> None:
    azsim.header_case = "canonical"
    response = sim_send(azsim, "POST", seeded["item"]["id"] + "/backup", _trigger_body())

    assert {"Azure-AsyncOperation", "Location", "Content-Length"} <= set(_header_names(response))


def test_ideal_202_keeps_retry_after_and_the_request_version(
    azsim: AzureSimulator, seeded: dict[str, Any]
) -> None:
    azsim.shapes = "ideal"

    response = sim_send(azsim, "POST", seeded["item"]["id"] + "/backup", _trigger_body())

    assert response.headers["Retry-After"] == "0"
    assert parse_qs(urlsplit(response.headers["Location"]).query)["api-version"] == ["2026-10-01"]


def test_seeded_times_read_back_unchanged(azsim: AzureSimulator, seeded: dict[str, Any]) -> None:
    start = datetime(2026, 11, 24, 2, 1, 7, 123456, tzinfo=UTC)
    job = azsim.add_job(
        seeded["vault"],
        vm_name=VM,
        vm_resource_group=VM_RG,
        start_time=start,
        end_time=start + timedelta(minutes=2, seconds=12),
    )

    properties = job["properties"]
    assert datetime.fromisoformat(properties["startTime"]) == start
    assert properties["duration"] == "00:02:12"
