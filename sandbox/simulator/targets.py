"""What each kind of protected item protects, named as Azure names it (:class:`Target`).

Container and item names follow ``workloads.md`` §1.5: ``VMAppContainer;Compute;{rg};{vm}`` with
``SQLDataBase;{instance};{db}`` or ``SAPHanaDatabase;{sid};{db}`` (instance, SID and database in
lower case, as the docs example and the recorded CLI traffic show them), and
``StorageContainer;Storage;{rg};{account}`` with ``AzureFileShare;{share}``.
"""

from __future__ import annotations

from sandbox.simulator import resources as res
from sandbox.simulator.kinds import FILES, HANA, SQL, VM, Kind
from sandbox.simulator.records import Target


def vm_target(vm_id: str) -> Target:
    """The target of an Azure VM's protected item (``vm_id`` is the VM's ARM id)."""
    return vm_target_of(*res.split_vm_id(vm_id))


def vm_target_of(subscription_id: str, resource_group: str, name: str) -> Target:
    """The target of the VM ``name`` of ``resource_group``, names taken as they are (a job may
    name a VM whose names no ARM id could hold)."""
    container, item = res.vm_names(resource_group, name)
    vm_id = res.vm_id(subscription_id, resource_group, name)
    return Target(
        kind=VM,
        container=container,
        name=item,
        friendly_name=name,
        host_id=vm_id,
        host_group=resource_group,
        host_name=name,
        source_id=vm_id,
    )


def sql_target(
    vm_id: str, database: str, instance: str, server_name: str | None, model: str
) -> Target:
    """A SQL Server database in the VM ``vm_id``.

    :param server_name: its ``serverName``; the VM name when ``None``.
    :param model: the database's recovery model (``extendedInfo.recoveryModel``).
    """
    name = f"SQLDataBase;{instance.lower()};{database.lower()}"
    return _database_target(
        SQL, name, vm_id, database, parent=instance, server=server_name, recovery_model=model
    )


def hana_target(vm_id: str, database: str, sid: str) -> Target:
    """An SAP HANA database of system ``sid`` in the VM ``vm_id`` (``serverName`` the VM's)."""
    name = f"SAPHanaDatabase;{sid.lower()};{database.lower()}"
    return _database_target(HANA, name, vm_id, database, parent=sid, server=None, recovery_model="")


def share_target(account_id: str, share: str) -> Target:
    """The Azure file share ``share`` of the storage account ``account_id``.

    Its ``sourceResourceId`` is the account's id spelt ``Microsoft.storage``, as the recorded item
    spells it (afs_item_list_irpending.json).
    """
    subscription, group, account = res.split_resource_id(account_id, res.STORAGE_ACCOUNT_TYPE)
    source = res.storage_account_id(subscription, group, account).replace(
        "/Microsoft.Storage/", "/Microsoft.storage/", 1
    )
    return Target(
        kind=FILES,
        container=res.storage_container(group, account),
        name=f"AzureFileShare;{share}",
        friendly_name=share,
        host_id=account_id,
        host_group=group,
        host_name=account,
        source_id=source,
    )


def _database_target(
    kind: Kind,
    name: str,
    vm_id: str,
    database: str,
    *,
    parent: str,
    server: str | None,
    recovery_model: str,
) -> Target:
    """A database in a VM. Its ``sourceResourceId`` has the form of the docs example
    (``…/providers/VMAppContainer/{vm}``); the recorded CLI traffic of 2022 showed the VM's ARM
    id there instead (wl_sql_item_protected.json)."""
    subscription, group, vm = res.split_vm_id(vm_id)
    return Target(
        kind=kind,
        container=res.workload_container(group, vm),
        name=name,
        friendly_name=database,
        host_id=vm_id,
        host_group=group,
        host_name=vm,
        source_id=(
            f"/subscriptions/{subscription}/resourceGroups/{group}/providers/VMAppContainer/{vm}"
        ),
        parent_name=parent,
        server_name=server or vm,
        recovery_model=recovery_model,
    )
