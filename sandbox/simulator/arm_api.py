"""Handlers for the plain ARM routes: Recovery Services vault lists and Compute VMs."""

from __future__ import annotations

from collections.abc import Mapping

from sandbox.simulator.paging import paginate
from sandbox.simulator.protocol import Request, Response
from sandbox.simulator.state import SimState

Params = Mapping[str, str]


def list_vaults(state: SimState, request: Request, params: Params) -> Response:
    """``GET …/providers/Microsoft.RecoveryServices/vaults`` of a subscription or group."""
    vaults = state.list_vaults(params["sub"], params.get("rg"))
    return paginate(request, vaults, state.page_size, state.renderer.vault)


def get_vm(state: SimState, _request: Request, params: Params) -> Response:
    """``GET …/Microsoft.Compute/virtualMachines/{vm}``: 200, or 404 once deleted/moved."""
    return Response(200, state.find_vm(params["sub"], params["rg"], params["vm"]))


def list_vms(state: SimState, request: Request, params: Params) -> Response:
    """``GET …/providers/Microsoft.Compute/virtualMachines`` of a subscription or group."""
    vms = state.list_vms(params["sub"], params.get("rg"))
    return paginate(request, vms, state.page_size, lambda vm: vm)
