"""What ``respond()`` did with one input: the :class:`Outcome` and its :class:`OutcomeKind`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handlers.core.incident import Incident


class OutcomeKind:
    """How one input was handled (the ``outcome`` of its log line)."""

    #: First delivery of a job: an incident was recorded (and acted on).
    NEW = "new"
    #: A delivery that took over a job whose earlier delivery died (its lease ran out).
    RESUMED = "resumed"
    #: A later delivery of a job already handled: only counted on its incident.
    DUPLICATE = "duplicate"
    #: An input that could not be handled: kept in the rejected-inputs table with its reason.
    REJECTED = "rejected"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What ``respond()`` did with one input, for logs, the CLI and tests.

    >>> Outcome(kind=OutcomeKind.REJECTED, reason="not JSON").describe()
    'rejected    not JSON'
    """

    kind: str
    job_id: str = ""
    vm_name: str = ""
    rule: str = ""
    category: str = ""
    action: str = ""
    status: str = ""
    reason: str = ""
    occurrences: int = 0

    @classmethod
    def about(cls, incident: Incident, kind: str, occurrences: int = 0) -> Outcome:
        """The outcome of an input that was handled as ``kind``, from its incident."""
        return cls(
            kind=kind,
            job_id=incident.JobId,
            vm_name=incident.resource_name,
            rule=incident.Rule,
            category=incident.Category,
            action=incident.PlannedAction,
            status=incident.Status,
            occurrences=occurrences,
        )

    def describe(self) -> str:
        """One line for a person."""
        if self.kind == OutcomeKind.REJECTED:
            return f"rejected    {self.reason}"
        what = f"{self.job_id} vm={self.vm_name or '?'} rule={self.rule} action={self.action}"
        if self.kind == OutcomeKind.DUPLICATE:
            return f"duplicate   {what} (seen {self.occurrences} times)"
        return f"{self.kind:<11} {what} status={self.status}"
