"""Simulated Microsoft.Storage: storage accounts and their Azure file shares, live or soft-deleted.

Only what the responder reads to tell whether a protected share is gone: the account GET, the
share GET and the share list with ``$expand=deleted``. Documents take their keys from the
recorded account GET (``recorded/storage_account_get_200.json``) and the published
``FileSharesGet`` and ``DeletedFileSharesList`` examples (see ``azure_payloads/SOURCES.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sandbox.simulator import payloads
from sandbox.simulator import resources as res
from sandbox.simulator.azure_forms import format_time, whole_seconds
from sandbox.simulator.protocol import ArmError, JsonObject

SHARE_TYPE = "Microsoft.Storage/storageAccounts/fileServices/shares"
# How long a soft-deleted share stays restorable. Configuring Azure Files backup turns share soft
# delete on [STG-SD]; the number of days it then keeps is unverified (the published example
# shows 30 remaining days of an unknown retention).
SHARE_RETENTION_DAYS = 14
# shareQuota of every share (both published examples show 1024).
_SHARE_QUOTA = 1024
_ACCOUNT_GET = "recorded/storage_account_get_200.json"
_SHARE_GET = "published/stg-2025-01-01-FileSharesGet.json"
_DOTNET_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


@dataclass
class ShareRecord:
    """One file share (a version of it, once deleted).

    :ivar name: the share name.
    :ivar modified: its ``lastModifiedTime``.
    :ivar deleted: when it was soft-deleted; ``None`` while it is live.
    """

    name: str
    modified: datetime
    deleted: datetime | None = None

    @property
    def version(self) -> str:
        """The ``version`` of a deleted share: ten digits as in the published example (the
        form of real versions is unverified); the deletion time in seconds."""
        moment = self.deleted or self.modified
        return f"{int(moment.timestamp()) % 10**10:010d}"


@dataclass
class AccountRecord:
    """A storage account with its live and soft-deleted shares.

    :ivar shares: live shares by lower-cased name.
    :ivar deleted_shares: soft-deleted share versions, oldest first.
    """

    subscription_id: str
    resource_group: str
    name: str
    location: str
    created: datetime
    shares: dict[str, ShareRecord] = field(default_factory=dict)
    deleted_shares: list[ShareRecord] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The canonical ARM id."""
        return res.storage_account_id(self.subscription_id, self.resource_group, self.name)

    @property
    def key(self) -> str:
        """The lower-cased id."""
        return self.id.lower()

    def share(self, name: str) -> ShareRecord:
        """A live share, or ``KeyError``."""
        return self.shares[name.lower()]

    def delete_share(self, name: str, now: datetime, soft: bool) -> None:
        """Delete a share: soft (restorable, listed as deleted) or for good.

        Deleting for good a share that is already soft-deleted purges its deleted versions.

        :raises KeyError: if there is no such share, live or soft-deleted.
        """
        live = self.shares.pop(name.lower(), None)
        if live is not None and soft:
            live.deleted = now
            self.deleted_shares.append(live)
            return
        versions = [share for share in self.deleted_shares if share.name.lower() == name.lower()]
        if live is None and (soft or not versions):
            raise KeyError(f"no share {name!r} in {self.name}")
        for version in versions:
            self.deleted_shares.remove(version)

    def restorable(self, now: datetime) -> list[ShareRecord]:
        """Soft-deleted shares still within their retention."""
        return [share for share in self.deleted_shares if _remaining_days(share, now) > 0]


def account_json(account: AccountRecord) -> JsonObject:
    """The account as ``GET …/storageAccounts/{name}`` returns it: the recorded answer's keys and
    settings, with this account's names, location and times."""
    body = payloads.load(_ACCOUNT_GET)
    created = format_time(account.created)
    body |= {"id": account.id, "name": account.name, "location": account.location}
    properties = body["properties"]
    properties["keyCreationTime"] = {"key1": created, "key2": created}
    for service in properties["encryption"]["services"].values():
        service["lastEnabledTime"] = created
    endpoints = properties["primaryEndpoints"]
    for service in endpoints:
        endpoints[service] = f"https://{account.name}.{service}.core.windows.net/"
    properties |= {"creationTime": created, "primaryLocation": account.location}
    return body


def share_json(account: AccountRecord, share: ShareRecord, now: datetime) -> JsonObject:
    """A share as the share GET and list return it; a soft-deleted one as the published
    ``DeletedFileSharesList`` shows it (``version``, ``deleted``, ``deletedTime``,
    ``remainingRetentionDays``, the version appended to its ``id``)."""
    body = payloads.load(_SHARE_GET)["responses"]["200"]["body"]
    path = f"{account.id}/fileServices/default/shares/{share.name}"
    body |= {"id": path, "name": share.name, "etag": _etag(share.modified)}
    body["properties"] = {
        "lastModifiedTime": whole_seconds(share.modified),
        "shareQuota": _SHARE_QUOTA,
    }
    if share.deleted is not None:
        body["id"] = f"{path}_{share.version}"
        body["properties"] |= {
            "version": share.version,
            "deleted": True,
            "deletedTime": whole_seconds(share.deleted),
            "remainingRetentionDays": _remaining_days(share, now),
        }
    return body


def account_not_found(name: str, resource_group: str) -> ArmError:
    """ARM's gateway 404 for an account, in the form the recorded vault 404 has (assumed the same
    for storage accounts, as for VMs)."""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{res.STORAGE_ACCOUNT_TYPE}/{name}' under resource group "
        f"'{resource_group}' was not found. For more details please go to "
        "https://aka.ms/ARMResourceNotFoundFix",
        failure_cause="gateway",
    )


def share_not_found() -> ArmError:
    """The Storage provider's 404 for a share. Its code and message are the file service's
    (``ShareNotFound``, "The specified share does not exist."); the management API's own body is
    unverified."""
    return ArmError(404, "ShareNotFound", "The specified share does not exist.")


def _remaining_days(share: ShareRecord, now: datetime) -> int:
    if share.deleted is None:
        return SHARE_RETENTION_DAYS
    return max(SHARE_RETENTION_DAYS - (now - share.deleted).days, 0)


def _etag(moment: datetime) -> str:
    """``"0x8D589847D51C7DE"``: the examples' etag form, here .NET ticks of the time in hex."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f'"0x{(moment - _DOTNET_EPOCH) // timedelta(microseconds=1) * 10:X}"'
