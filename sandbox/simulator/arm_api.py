"""Handlers for the plain ARM routes: Recovery Services vault lists, Compute VMs, and
Microsoft.Storage accounts and file shares."""

from __future__ import annotations

from collections.abc import Mapping

from sandbox.simulator import guards, storage
from sandbox.simulator.paging import paginate
from sandbox.simulator.protocol import Request, Response
from sandbox.simulator.state import SimState
from sandbox.simulator.storage import AccountRecord

Params = Mapping[str, str]


def list_vaults(state: SimState, request: Request, params: Params) -> Response:
    """``GET …/providers/Microsoft.RecoveryServices/vaults`` of a subscription or group."""
    vaults = state.list_vaults(params["sub"], params.get("rg"))
    return paginate(request, vaults, state.page_size, state.renderer.vault)


def get_vault(state: SimState, _request: Request, params: Params) -> Response:
    """``GET …/Microsoft.RecoveryServices/vaults/{vault}``: the vault with its
    ``securitySettings`` (Multi-User Authorization on when a Resource Guard is mapped)."""
    vault = state.find_vault(params["sub"], params["rg"], params["vault"])
    body = state.renderer.vault(vault)
    body["properties"]["securitySettings"] = guards.security_settings(vault)
    return Response(200, body)


def get_vm(state: SimState, _request: Request, params: Params) -> Response:
    """``GET …/Microsoft.Compute/virtualMachines/{vm}``: 200, or 404 once deleted/moved."""
    return Response(200, state.find_vm(params["sub"], params["rg"], params["vm"]))


def list_vms(state: SimState, request: Request, params: Params) -> Response:
    """``GET …/providers/Microsoft.Compute/virtualMachines`` of a subscription or group."""
    vms = state.list_vms(params["sub"], params.get("rg"))
    return paginate(request, vms, state.page_size, lambda vm: vm)


def get_storage_account(state: SimState, _request: Request, params: Params) -> Response:
    """``GET …/Microsoft.Storage/storageAccounts/{account}``: 200, or 404 once deleted."""
    return Response(200, storage.account_json(_account(state, params)))


def get_file_share(state: SimState, _request: Request, params: Params) -> Response:
    """``GET …/fileServices/default/shares/{share}``: 200 for a live share, else 404."""
    account = _account(state, params)
    share = state.find_share(account, params["share"])
    return Response(200, storage.share_json(account, share, state.clock()))


def list_file_shares(state: SimState, request: Request, params: Params) -> Response:
    """``GET …/fileServices/default/shares``: the live shares, and the soft-deleted ones still
    restorable with ``$expand=deleted`` (other ``$expand`` values are ignored)."""
    account = _account(state, params)
    expand = {part.strip().lower() for part in (request.param("$expand") or "").split(",")}
    shares = state.list_shares(account, include_deleted="deleted" in expand)
    now = state.clock()
    return paginate(
        request, shares, state.page_size, lambda share: storage.share_json(account, share, now)
    )


def _account(state: SimState, params: Params) -> AccountRecord:
    return state.find_storage_account(params["sub"], params["rg"], params["account"])
