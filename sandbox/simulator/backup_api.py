"""Handlers for the Recovery Services Backup routes (jobs, protected items, containers,
operations), for every kind of item (:mod:`sandbox.simulator.kinds`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

from sandbox.simulator import guards
from sandbox.simulator.filters import FilterError, item_filter, job_filter
from sandbox.simulator.kinds import VM, WORKLOAD_BACKUP_TYPES
from sandbox.simulator.paging import paginate
from sandbox.simulator.protocol import BackupError, JsonObject, Request, Response
from sandbox.simulator.records import ItemRecord, Operation, VaultRecord
from sandbox.simulator.state import SIMPLE_RECOVERY_MODEL, SimState

VAULT = (
    "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.RecoveryServices/vaults/{vault}"
)
CONTAINER = VAULT + "/backupFabrics/{fabric}/protectionContainers/{container}"
ITEM = CONTAINER + "/protectedItems/{item}"

Params = Mapping[str, str]
_Predicate = TypeVar("_Predicate")
# A protection change only sets one of these states; "Protected" resumes with a policy.
_STOPPED_STATES = frozenset({"ProtectionStopped", "BackupsSuspended"})
# The CLI's refusal of ad hoc Log, CopyOnlyFull and Incremental backups of a HANA database
# [CLI-WL]; the service's own answer is unverified.
_REFUSED_TYPE = (
    "Backup type cannot be Log, CopyOnlyFull, Incremental for SAPHanaDatabase Adhoc backup."
)
# A log backup of a database in the simple recovery model: the code and message of [SQL-TS]
# ("This SQL database does not support the requested backup type."), there a job error; that the
# trigger itself is refused with it is an assumption.
_UNSUPPORTED_TYPE_CODE = "UserErrorSQLPODoesNotSupportBackupType"


def list_jobs(state: SimState, request: Request, params: Params) -> Response:
    """``GET …/backupJobs``: filtered and paged list entries (shorter than the job details)."""
    jobs = state.find_jobs(_vault(state, params), _predicate(job_filter, request))
    now, shapes = state.clock(), state.renderer
    return paginate(request, jobs, state.page_size, lambda job: shapes.job_summary(job, now))


def get_job(state: SimState, _request: Request, params: Params) -> Response:
    """``GET …/backupJobs/{job}``: the full ``AzureIaaSVMJob``."""
    job = state.find_job(_vault(state, params), params["job"])
    return Response(200, state.renderer.job(job, state.clock()))


def list_items(state: SimState, request: Request, params: Params) -> Response:
    """``GET …/backupProtectedItems``: filtered and paged."""
    items = state.find_items(_vault(state, params), _predicate(item_filter, request))
    return paginate(request, items, state.page_size, state.renderer.item)


def get_item(state: SimState, _request: Request, params: Params) -> Response:
    """``GET …/protectedItems/{item}``."""
    return Response(200, state.renderer.item(_item(state, params)))


def list_recovery_points(state: SimState, request: Request, params: Params) -> Response:
    """``GET …/protectedItems/{item}/recoveryPoints``: one point per completed backup of an
    Azure VM item, newest first, paged (``$filter`` is not simulated: every point).

    :raises BackupError: 400 for a database or share (their points are not simulated).
    """
    item = _item(state, params)
    if item.kind is not VM:
        raise _bad_request("The simulator lists recovery points of Azure VM items only.")
    points = sorted(item.backups, key=lambda run: run.start, reverse=True)
    render = state.renderer.recovery_point
    return paginate(request, points, state.page_size, lambda run: render(item, run))


def get_container(state: SimState, _request: Request, params: Params) -> Response:
    """``GET …/protectionContainers/{container}``: a VM's database container (its
    ``sourceResourceId`` the VM's ARM id) or a storage account's share container."""
    container = state.find_container(_vault(state, params), params["fabric"], params["container"])
    return Response(200, state.renderer.container(container, state.count_items(container)))


def put_item(state: SimState, request: Request, params: Params) -> Response:
    """``PUT …/protectedItems/{item}``: stop (or resume) protection, answered 202.

    :raises BackupError: 400 for a body Azure would reject.
    """
    vault, item = _vault_and_item(state, params)
    properties = _properties(request)
    protection_state, policy_id = _protection_change(item, properties)
    if protection_state in _STOPPED_STATES:
        guards.check_stop(vault, properties)
    op_id = state.start_protection_change(item, protection_state, policy_id)
    return _accepted(state, request, item, op_id)


def list_resource_guard_proxies(state: SimState, request: Request, params: Params) -> Response:
    """``GET …/vaults/{vault}/backupResourceGuardProxies``: the vault's Resource Guard mapping."""
    return Response(200, {"value": guards.proxies(_vault(state, params))})


def delete_item(state: SimState, request: Request, _params: Params) -> Response:
    """``DELETE …/protectedItems/{item}`` deletes backup data: recorded as a violation, refused.

    :raises BackupError: always, 409.
    """
    state.record_violation(f"DELETE {request.path}")
    # Simulator-specific code: nothing in this project may ever delete backup data.
    raise BackupError(
        409,
        "DeleteBackupDataRefused",
        "The simulator refuses to delete backup data; stop protection and retain data instead.",
    )


def trigger_backup(state: SimState, request: Request, params: Params) -> Response:
    """``POST …/protectedItems/{item}/backup``: on-demand backup, answered 202.

    The body's ``objectType`` must be the item's kind's (``IaasVMBackupRequest``,
    ``AzureWorkloadBackupRequest``, ``AzureFileShareBackupRequest``); a database's names a
    ``backupType``.

    :raises BackupError: 400 for a bad body, a refused backup type, a running job or the daily
        limit.
    """
    item = _item(state, params)
    properties = _properties(request)
    request_type = item.kind.request_type
    if properties.get("objectType") != request_type:
        raise _bad_request(f"properties.objectType must be '{request_type}'.")
    expiry = _time(properties.get("recoveryPointExpiryTimeInUTC"), "recoveryPointExpiryTimeInUTC")
    backup_type = _backup_type(item, properties) if item.kind.takes_backup_type else None
    return _accepted(state, request, item, state.start_backup(item, expiry, backup_type))


def item_operation_status(state: SimState, _request: Request, params: Params) -> Response:
    """``GET …/protectedItems/{item}/operationsStatus/{op}``."""
    vault, item = _vault_and_item(state, params)
    return _status(state, state.find_operation(params["op"], vault, item))


def backup_operation_status(state: SimState, _request: Request, params: Params) -> Response:
    """``GET …/vaults/{vault}/backupOperations/{op}``."""
    return _status(state, state.find_operation(params["op"], _vault(state, params), None))


def item_operation_result(state: SimState, request: Request, params: Params) -> Response:
    """``GET …/protectedItems/{item}/operationResults/{op}``.

    202 while running; then 200 with the item for a protection change, 204 for a backup.
    """
    vault, item = _vault_and_item(state, params)
    operation = state.find_operation(params["op"], vault, item)
    state.poll(operation)
    if operation.ended is None:
        location, async_operation = _polling_urls(state, request, item, operation.op_id)
        headers = state.renderer.pending_result_headers(
            location, async_operation, state.lro_retry_after
        )
        return Response(202, None, headers)
    if operation.is_backup:
        return Response(204)
    return Response(200, state.renderer.item(item))


def _status(state: SimState, operation: Operation) -> Response:
    state.poll(operation)
    return Response(200, state.renderer.operation_status(operation))


def _vault(state: SimState, params: Params) -> VaultRecord:
    return state.find_vault(params["sub"], params["rg"], params["vault"])


def _vault_and_item(state: SimState, params: Params) -> tuple[VaultRecord, ItemRecord]:
    vault = _vault(state, params)
    return vault, state.find_item(vault, params["fabric"], params["container"], params["item"])


def _item(state: SimState, params: Params) -> ItemRecord:
    return _vault_and_item(state, params)[1]


def _bad_request(message: str) -> BackupError:
    return BackupError(400, "BadRequest", message)


def _predicate(build: Callable[[str | None], _Predicate], request: Request) -> _Predicate:
    try:
        return build(request.param("$filter"))
    except FilterError as exc:
        raise _bad_request(str(exc)) from exc


def _properties(request: Request) -> JsonObject:
    properties = (request.body or {}).get("properties")
    if not isinstance(properties, dict):
        raise _bad_request("The request body must contain a 'properties' object.")
    return properties


def _backup_type(item: ItemRecord, properties: JsonObject) -> str:
    """The ``backupType`` of a database's request, if the database may take it.

    :raises BackupError: 400 for an unknown type, one refused for HANA, or a log backup of a
        database in the simple recovery model.
    """
    backup_type = properties.get("backupType")
    if backup_type not in WORKLOAD_BACKUP_TYPES:
        allowed = ", ".join(sorted(WORKLOAD_BACKUP_TYPES))
        raise _bad_request(f"properties.backupType must be one of {allowed}.")
    if backup_type in item.kind.refused_backup_types:
        raise _bad_request(_REFUSED_TYPE)
    if backup_type == "Log" and item.target.recovery_model == SIMPLE_RECOVERY_MODEL:
        raise BackupError(
            400,
            _UNSUPPORTED_TYPE_CODE,
            "This SQL database does not support the requested backup type.",
        )
    return str(backup_type)


def _protection_change(item: ItemRecord, properties: JsonObject) -> tuple[str, str]:
    """Validate a protected-item PUT like Azure and return ``(protectionState, policyId)``."""
    item_type = str(properties.get("protectedItemType", ""))
    expected = item.kind.protected_item_type
    if item_type.lower() != expected.lower():
        raise _bad_request(
            f"protectedItemType '{item_type}' is invalid for this item; expected '{expected}'."
        )
    _check_source(item, properties.get("sourceResourceId"))
    protection_state = properties.get("protectionState")
    policy_id = properties.get("policyId") or ""
    if protection_state in _STOPPED_STATES:
        return protection_state, ""
    if protection_state == "Protected" and policy_id:
        return protection_state, policy_id
    raise _bad_request(
        f"protectionState '{protection_state}' is not supported here; use ProtectionStopped, "
        "BackupsSuspended, or Protected with a policyId."
    )


def _check_source(item: ItemRecord, source: object) -> None:
    """A PUT's ``sourceResourceId`` must name the item's: its served one or its host's ARM id.

    A VM's PUT must name it. A database's or share's may leave it out: the CLI's recorded SQL
    stop-protection body has none (wl_sql_stop_protection_put_request.json); Microsoft's REST
    article sends the VM's id [SQL-MGMT-REST]; the share body the account's [AFS-MGMT-REST].

    :raises BackupError: 400 when it is missing for a VM or names something else.
    """
    if not source:
        if item.kind.source_required_on_stop:
            raise _bad_request("sourceResourceId is required.")
        return
    known = {item.target.source_id.lower(), item.target.host_id.lower()}
    if str(source).lower() not in known:
        raise _bad_request("sourceResourceId does not match the protected item.")


def _time(text: object, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(str(text))
    except ValueError as exc:
        raise _bad_request(f"{name} is not a valid ISO 8601 time.") from exc


def _accepted(state: SimState, request: Request, item: ItemRecord, op_id: str) -> Response:
    """The 202 of an asynchronous item operation, with the shapes' polling headers."""
    location, async_operation = _polling_urls(state, request, item, op_id)
    headers = state.renderer.accepted_headers(
        location, async_operation, state.lro_retry_after, state.count_write()
    )
    return Response(202, None, headers)


def _polling_urls(
    state: SimState, request: Request, item: ItemRecord, op_id: str
) -> tuple[str, str]:
    """``(Location, Azure-AsyncOperation)`` of an item operation: operationResults and
    operationsStatus URLs, spelt and versioned as the shapes say."""
    shapes = state.renderer
    base = f"{request.base_url}{shapes.lro_resource_id(item)}"
    version = f"?api-version={shapes.lro_api_version(request.api_version or '')}"
    return (
        f"{base}/operationResults/{op_id}{version}",
        f"{base}/operationsStatus/{op_id}{version}",
    )
