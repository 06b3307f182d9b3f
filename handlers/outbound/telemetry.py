"""Telemetry: structured log lines about incidents, secrets kept out of every log record,
OpenTelemetry counters, and export to Application Insights when it is configured.

- Every line about an incident carries ``incident_id``, ``job_id``, ``rule`` and ``action``
  as record attributes (:func:`about`); :class:`JsonFormatter` prints them as one JSON
  object per line, and Azure Monitor exports them as custom dimensions.
- :func:`configure` (once per process, from :mod:`handlers.pipeline.runtime`): secret values of the
  settings are replaced by ``***`` in every log record made from then on, whichever logger
  and handler; with ``APPLICATIONINSIGHTS_CONNECTION_STRING`` set, ``azure-monitor-opentelemetry``
  exports logs of the ``backup_responder`` logger, traces and metrics. Without it nothing is
  exported and nothing heavy is imported.
- Counters (:func:`counters`): ``incidents`` (by ``category``), ``actions`` (by ``action``
  and ``outcome``), ``rejected_events`` (by ``source``). Until a meter provider is set they
  are no-ops.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from handlers.core.tokens import without_tokens

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Meter

    from handlers.core.incident import Incident
    from handlers.core.outcome import Outcome
    from handlers.core.settings import Settings

LOGGER = "backup_responder"
METER = "backup_responder"
#: What every log line about an incident carries.
INCIDENT_FIELDS = ("incident_id", "job_id", "rule", "action")
REDACTED = "***"
#: Shorter "secrets" (a test value such as "x") would blank out ordinary words.
MIN_SECRET = 4

log = logging.getLogger(LOGGER)
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class IncidentLog(logging.LoggerAdapter):
    """A logger whose records all carry the incident's fields (call-site ``extra`` adds to
    them)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def about(incident: Incident, action: str = "", **fields: Any) -> IncidentLog:
    """Log lines about ``incident`` (``action`` defaults to its planned action)."""
    context = {
        "incident_id": incident.IncidentId,
        "job_id": incident.JobId,
        "rule": incident.Rule,
        "action": action or incident.PlannedAction,
        **fields,
    }
    return IncidentLog(log, context)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
        if record.exc_info or record.exc_text:
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class SecretRedactor(logging.Filter):
    """Replaces known secret values in a record's message, arguments, exception and string
    attributes with ``***``, and withholds the tokens of approval links
    (:func:`~handlers.core.tokens.without_tokens`).

    Installed as the log record factory's last step (:meth:`install`), it covers records of
    every logger, whatever handlers (the Functions worker's, pytest's, Azure Monitor's) see
    them later.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._installed = False

    def add(self, secrets: Iterable[str]) -> None:
        """Redact ``secrets`` from now on, in every spelling a client may log them in."""
        for secret in secrets:
            self.secrets.update(s for s in _spellings(secret) if len(s) >= MIN_SECRET)
        ordered = sorted(self.secrets, key=len, reverse=True)
        # Case-insensitive: a percent-escape may come as %7e or %7E; redacting more is safe.
        self._pattern = re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE)

    def scrub(self, text: str) -> str:
        text = without_tokens(text)
        return self._pattern.sub(REDACTED, text) if self._pattern else text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: logging reports it when it emits
            return True
        if not self.secrets and "token=" not in message:
            return True  # nothing to withhold: the usual record costs one substring test
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for name, value in vars(record).items():
            if isinstance(value, str) and name not in ("msg", "name", "levelname"):
                setattr(record, name, self.scrub(value))
        return True

    def install(self) -> None:
        """Run on every log record created from now on (idempotent)."""
        if self._installed:
            return
        make = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(*args, **kwargs)
            self.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        self._installed = True


def _spellings(secret: str) -> set[str]:
    """``secret`` as given and as HTTP clients may log it: ``requests`` re-quotes a URL
    (``%7E`` becomes ``~``), and urllib3 logs only the request target, without the host
    (``"POST /services/T0/B0/XYZ HTTP/1.1" 200``), which for a webhook is the secret part."""
    from requests.utils import requote_uri

    forms = {secret, unquote(secret)}
    if secret.startswith(("https://", "http://")):
        forms.add(requote_uri(secret))
    return forms | {target for form in set(forms) if (target := _request_target(form))}


def _request_target(value: str) -> str:
    """The path and query of an http(s) URL, or ``""``."""
    if not value.startswith(("https://", "http://")):
        return ""
    url = urlsplit(value)
    target = url.path + (f"?{url.query}" if url.query else "")
    return target if target.strip("/") else ""


REDACTOR = SecretRedactor()


@dataclass(frozen=True)
class Counters:
    """The app's metrics."""

    incidents: Counter
    actions: Counter
    rejected_events: Counter

    @classmethod
    def from_meter(cls, meter: Meter) -> Counters:
        return cls(
            incidents=meter.create_counter(
                "incidents", unit="{incident}", description="new incidents, by category"
            ),
            actions=meter.create_counter(
                "actions", unit="{step}", description="action steps, by action and outcome"
            ),
            rejected_events=meter.create_counter(
                "rejected_events", unit="{event}", description="inputs that could not be handled"
            ),
        )


@dataclass
class _State:
    """What this process has set up."""

    exporting: bool = False
    counters: Counters | None = None


_state = _State()


def configure(settings: Settings) -> None:
    """Redact the settings' secrets from logs; export to Application Insights when its
    connection string is set (the first time only: the exporters are process-wide)."""
    REDACTOR.add(settings.secrets())
    REDACTOR.install()
    if settings.appinsights_connection and not _state.exporting:
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_azure_monitor(
            connection_string=settings.appinsights_connection,
            logger_name=LOGGER,
            enable_live_metrics=False,
        )
        _state.exporting = True


def counters() -> Counters:
    """The counters, from the global meter provider (a no-op one unless Azure Monitor, or a
    test, set another)."""
    if _state.counters is None:
        from opentelemetry import metrics

        _state.counters = Counters.from_meter(metrics.get_meter(METER))
    return _state.counters


def incident_recorded(incident: Incident) -> None:
    """A new incident: count it by category, and the step it starts with (``planned``, or
    ``done`` for ``record`` rules)."""
    counters().incidents.add(1, {"category": incident.Category})
    first = incident.actions[-1]
    action_step(incident, first.action, first.state, first.detail)


def action_step(incident: Incident, action: str, state: str, detail: str = "") -> None:
    """One step of an action (``retry`` ``triggered``, ``ticket`` ``opened``…): count and log it."""
    counters().actions.add(1, {"action": action, "outcome": state})
    about(incident, action).info(
        "%s %s%s", action, state, f": {detail}" if detail else "", extra={"state": state}
    )


def rejected(source: str) -> None:
    """An input that could not be handled (:func:`handled` logs why)."""
    counters().rejected_events.add(1, {"source": source or "unknown"})


def handled(outcome: Outcome) -> None:
    """The one line per input that ``respond()`` writes; its ``outcome`` is what was done
    (``new``, ``resumed``, ``duplicate``, ``rejected``)."""
    fields = {
        "outcome": outcome.kind,
        "incident_id": outcome.job_id,
        "job_id": outcome.job_id,
        "rule": outcome.rule,
        "action": outcome.action,
        "category": outcome.category,
        "status": outcome.status,
    }
    level = logging.WARNING if outcome.reason else logging.INFO
    log.log(level, "%s", outcome.describe(), extra=fields)
