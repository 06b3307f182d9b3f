"""The incident: one per backup job, the audit trail of what was decided and done.

Lifecycle (``Incident.status``)::

    open ──► remediating ──► resolved
      │           │
      │           └────────► escalated   (retries exhausted, action failed, needs a person)
      ├────────────────────► resolved    (``record`` rules: nothing to do)
      ├────────────────────► escalated   (``ticket`` rules: a person owns it now)
      ├──► awaiting_approval ──► (approved: as stop protection goes; rejected or unanswered:
      │                           escalated)
      └────────────────────► rejected    (the Backup API does not confirm the failure)

An incident is keyed for the questions operators ask: PartitionKey is the VM name, so "what
happened to this VM" is one partition query; RowKey starts with an inverted time, so a
partition reads newest first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from handlers.core.model import BackupFailure, ProtectedItemRef, Workload
from handlers.core.tokens import without_tokens

if TYPE_CHECKING:
    from rules.engine import Decision


class IncidentStatus:
    """An incident's status (see the lifecycle above)."""

    OPEN = "open"
    REMEDIATING = "remediating"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    #: The Backup API does not report the job as failed: a stale or forged event.
    REJECTED = "rejected"
    #: A verified stop protection waits for a person's decision (``APPROVAL_REQUIRED``).
    AWAITING_APPROVAL = "awaiting_approval"
    #: Nothing more will happen to an incident in one of these.
    FINAL = (RESOLVED, ESCALATED, REJECTED)


STATUSES = (
    IncidentStatus.OPEN,
    IncidentStatus.REMEDIATING,
    IncidentStatus.RESOLVED,
    IncidentStatus.ESCALATED,
    IncidentStatus.REJECTED,
    IncidentStatus.AWAITING_APPROVAL,
)

#: Longest error text kept on an incident (the Table service caps a string at 64 KiB).
MAX_STORED_TEXT = 8_000
#: The action log keeps its first and latest entries within the same cap.
LOG_HEAD, LOG_TAIL, MAX_DETAIL = 10, 60, 300


@dataclass
class ActionEntry:
    """One line of an incident's action log."""

    at: str
    action: str
    state: str
    detail: str = ""
    attempt: int = 0
    ref: str = ""


class ApprovalState:
    """Where an approval stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    #: Nobody answered before the deadline.
    EXPIRED = "expired"
    DECIDED = (APPROVED, REJECTED, EXPIRED)


@dataclass
class Approval:
    """A stop protection waiting for (or decided by) a person.

    :ivar request_id: random; the links carry it, so a link of another request is refused.
    :ivar deadline: ISO time after which the links are refused and the request escalates.
    :ivar by: who decided (``--by`` or the OS user on the CLI, the name typed on the page).
    :ivar via: ``link`` or ``cli``.
    :ivar done: what follows the decision has been done (the stop, or the ticket), so a
        crash between the decision and that is finished by the ``expire_approvals`` timer.
    """

    request_id: str
    deadline: str
    state: str = ApprovalState.PENDING
    requested_at: str = ""
    by: str = ""
    via: str = ""
    decided_at: str = ""
    done: bool = False

    @property
    def deadline_time(self) -> datetime:
        return datetime.fromisoformat(self.deadline)


@dataclass
class Incident:
    """An incident as stored in the ``incidents`` table (field names are entity properties)."""

    PartitionKey: str
    RowKey: str
    IncidentId: str
    JobId: str
    JobResourceId: str
    SubscriptionId: str
    VaultName: str
    VaultId: str
    VmName: str
    VmResourceGroup: str
    VmId: str
    ProtectedItem: str
    Operation: str
    ErrorCodes: str
    ErrorMessage: str
    Rule: str
    RuleTitle: str
    Category: str
    MatchedBy: str
    PlannedAction: str
    Remediation: str
    RemediationJa: str
    Doc: str
    DryRun: bool
    Status: str
    Source: str
    FirstSeen: datetime
    LastSeen: datetime
    Occurrences: int = 1
    JobStartTime: datetime | None = None
    JobEndTime: datetime | None = None
    ActionLog: str = "[]"
    #: The rule's parameters for its action (JSON), e.g. a retry's delay and attempts.
    ActionParams: str = "{}"
    #: What the item protects (``vm``, ``sql``, ``hana``, ``files``) and, for the workloads, the
    #: job's name for it, the backup type, the file share's storage account, and the item's
    #: ARM id once known (named by an alert, or found in the vault).
    Workload: str = "vm"
    Entity: str = ""
    BackupType: str = ""
    StorageAccount: str = ""
    ItemId: str = ""
    #: Retry-queue messages sent for this incident (JSON): message id → the queue message that
    #: took it ("" while none has), so a second copy of a message is never acted on.
    RetryMessages: str = "{}"
    #: The approval a stop protection waits for, or waited for (JSON, see :class:`Approval`).
    Approval: str = ""
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_entity(self) -> dict[str, Any]:
        entity = {k: v for k, v in asdict(self).items() if k != "extra" and v is not None}
        entity.update(self.extra)
        return entity

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> Incident:
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: v for k, v in entity.items() if k in names}
        extra = {k: v for k, v in entity.items() if k not in names}
        return cls(**known, extra=extra)

    @property
    def failed_at(self) -> datetime:
        """When the job failed: its end, else its start, else when the responder first saw it
        (the time its RowKey records)."""
        return self.JobEndTime or self.JobStartTime or self.FirstSeen

    @property
    def item(self) -> ProtectedItemRef:
        return ProtectedItemRef.from_vault_id(self.VaultId, self.VmResourceGroup, self.VmName)

    @property
    def resource_name(self) -> str:
        """The name of what failed to be backed up: the VM, the database, the share."""
        return self.VmName if self.Workload == Workload.VM else self.Entity

    @property
    def resource_label(self) -> str:
        """What the item protects, as a person would say it (``Azure VM``, ``SQL database``…)."""
        return Workload.LABELS.get(self.Workload, self.Workload)

    @property
    def resource_id(self) -> str:
        """The fullest name known of what failed to be backed up: the VM's ARM id, the item's."""
        if self.Workload == Workload.VM:
            return self.VmId or self.VmName
        return self.ItemId or self.Entity

    @property
    def item_key(self) -> str:
        """One string naming the protected item, for table keys (tickets, retry counters)."""
        if self.Workload == Workload.VM:
            return self.item.key
        where = f"|{self.StorageAccount.lower()}" if self.StorageAccount else ""
        return f"{self.VaultId}|{self.Workload}{where}|{self.Entity.lower()}"

    @property
    def action_params(self) -> dict[str, Any]:
        """The rule's parameters for the planned action."""
        return dict(json.loads(self.ActionParams or "{}"))

    @property
    def retry_messages(self) -> dict[str, str]:
        """Retry-queue messages sent for this incident and who took them."""
        return dict(json.loads(self.RetryMessages or "{}"))

    @property
    def approval(self) -> Approval | None:
        """The approval requested for this incident's stop protection, if any."""
        return Approval(**json.loads(self.Approval)) if self.Approval else None

    @approval.setter
    def approval(self, value: Approval) -> None:
        self.Approval = json.dumps(asdict(value))

    @property
    def actions(self) -> list[ActionEntry]:
        return [ActionEntry(**entry) for entry in json.loads(self.ActionLog or "[]")]

    def log(
        self, action: str, state: str, detail: str = "", *, attempt: int = 0, ref: str = ""
    ) -> None:
        """Append to the action log (the caller saves the incident); an approval link's token
        in ``detail`` is withheld."""
        entries = json.loads(self.ActionLog or "[]")
        at = datetime.now(UTC).isoformat(timespec="seconds")
        detail = logged_detail(detail)
        entries.append(asdict(ActionEntry(at, action, state, detail, attempt, ref)))
        if len(entries) > LOG_HEAD + LOG_TAIL + 1:
            dropped = len(entries) - LOG_HEAD - LOG_TAIL
            gap = ActionEntry(at, "log", "trimmed", f"{dropped} older entries omitted")
            entries = [*entries[:LOG_HEAD], asdict(gap), *entries[-LOG_TAIL:]]
        self.ActionLog = json.dumps(entries, ensure_ascii=False)


def logged_detail(detail: str) -> str:
    """``detail`` as the action log keeps it: bounded, without approval tokens."""
    return without_tokens(detail)[:MAX_DETAIL]


def new_incident(
    failure: BackupFailure,
    decision: Decision,
    keys: tuple[str, str],
    *,
    dry_run: bool,
    now: datetime,
) -> Incident:
    """Build the incident for a failure seen for the first time."""
    return Incident(
        PartitionKey=keys[0],
        RowKey=keys[1],
        IncidentId=failure.job_id,
        JobId=failure.job_id,
        JobResourceId=failure.job_resource_id,
        SubscriptionId=failure.subscription_id,
        VaultName=failure.vault_name,
        VaultId=failure.vault_id,
        VmName=failure.vm_name,
        VmResourceGroup=failure.vm_resource_group,
        VmId=failure.vm_id,
        ProtectedItem=failure.protected_item_name,
        Operation=failure.operation,
        ErrorCodes=",".join(failure.codes),
        ErrorMessage=failure.message[:MAX_STORED_TEXT],
        Rule=decision.rule,
        RuleTitle=decision.title,
        Category=decision.category,
        MatchedBy=decision.matched_by,
        PlannedAction=decision.action,
        Remediation=decision.remediation,
        RemediationJa=decision.remediation_ja,
        Doc=decision.doc,
        DryRun=dry_run,
        Status=IncidentStatus.OPEN,
        Source=str(failure.source),
        FirstSeen=now,
        LastSeen=now,
        JobStartTime=failure.start_time,
        JobEndTime=failure.end_time,
        ActionParams=json.dumps(decision.params, sort_keys=True),
        Workload=failure.workload,
        Entity=failure.entity,
        BackupType=failure.backup_type,
        StorageAccount=failure.storage_account,
        ItemId=failure.item_id,
    )
