"""The morning digest: one message a day per chat channel, and its row in the ``digests`` table.

What failed since the last digest (by workload and rule), what was fixed automatically
(retries that succeeded, protection stopped), what waits for a person (open tickets, incidents
whose log says they wait, orphans the last sweep listed), what fails night after night, the
retry success rate and the time to resolution per rule. A quiet night says so in one line.
The per-event notifications (``NOTIFY_FILTER``) are unchanged.

Reads incidents, tickets and sweeps through ``handlers.storage``, counts retries and times to
resolution as the audit does (``handlers.core.results``) and sends through
``handlers.outbound``'s notifier: may import ``handlers.audit``, ``handlers.storage``,
``handlers.outbound`` and ``handlers.core``.

- :mod:`~handlers.digest.content`: the digest of a window, from stored rows (no I/O).
- :mod:`~handlers.digest.render`: its text, Teams card, Slack message and webhook body.
- :mod:`~handlers.digest.daily`: the window since the last digest, once per UTC day.
"""
