"""Every setting the app reads, in one place.

Settings come from the environment (Function App settings in Azure, exported variables
locally). :data:`SPECS` lists each one with its default and meaning; the README's settings
table and ``infra/`` are checked against it by a test, so the three cannot drift apart.

>>> s = Settings.from_env({"DRY_RUN": "false", "TICKET_LANGUAGE": "ja"})
>>> s.dry_run, s.ticket_language
(False, 'ja')
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

AZURITE_CONNECTION_STRING = "UseDevelopmentStorage=true"
PUBLIC_MANAGEMENT_URL = "https://management.azure.com"
#: Azure's hard limit of on-demand backups per item per UTC day (error-codes.md §3.1).
AZURE_ON_DEMAND_DAILY_LIMIT = 9
LANGUAGES = ("en", "ja")
#: An approval waits at most a week (a request older than that is no longer a decision about
#: the same situation).
MAX_APPROVAL_HOURS = 168
#: An approval secret shorter than this is refused (HMAC-SHA256 wants 32 bytes of key).
MIN_APPROVAL_SECRET_CHARS = 32
#: What the orphan sweep's timer does: nothing, list what it finds, or also stop protection.
SWEEP_MODES = ("off", "list", "stop")
#: Retry learning looks back two weeks at most: older nights say little about tonight, and the
#: evidence has to fit in a ticket note.
MAX_LEARN_NIGHTS = 14
#: A resolved ticket is reopened within three months at most (ticket systems close resolved
#: tickets long before: ServiceNow after 7 business days by default).
MAX_REOPEN_DAYS = 90


class SettingsError(ValueError):
    """A setting has a value the app cannot use; the message names the setting."""


def _plain(raw: str, name: str) -> str:
    return raw


def _flag(raw: str, name: str) -> bool:
    value = raw.lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r}: expected true or false")


def _count(raw: str, name: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a whole number") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r}: must not be negative")
    return value


def _positive(raw: str, name: str) -> int:
    value = _count(raw, name)
    if value < 1:
        raise SettingsError(f"{name}={raw!r}: must be at least 1")
    return value


def _language(raw: str, name: str) -> str:
    if raw.lower() not in LANGUAGES:
        raise SettingsError(f"{name}={raw!r}: expected one of {', '.join(LANGUAGES)}")
    return raw.lower()


def _table_prefix(raw: str, name: str) -> str:
    if raw and not (raw.isascii() and raw.isalnum() and raw[0].isalpha()):
        raise SettingsError(f"{name}={raw!r}: letters and digits only, starting with a letter")
    return raw


def _ids(raw: str, name: str) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in raw.split(",") if part.strip())


def _url(raw: str, name: str) -> str:
    if raw and not raw.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise SettingsError(f"{name}: must be an https:// URL")
    return raw.rstrip("/")


def _scale(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number") from None
    if not 0 <= value <= 1:
        raise SettingsError(f"{name}={raw!r}: must be between 0 and 1")
    return value


def _rate(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number") from None
    if not 0 < value <= 1000:
        raise SettingsError(f"{name}={raw!r}: must be above 0 and at most 1000")
    return value


def _sweep_mode(raw: str, name: str) -> str:
    if raw.lower() not in SWEEP_MODES:
        raise SettingsError(f"{name}={raw!r}: expected one of {', '.join(SWEEP_MODES)}")
    return raw.lower()


def _between(low: int, high: int) -> Callable[[str, str], int]:
    """A parser of whole numbers from ``low`` to ``high``."""

    def parse(raw: str, name: str) -> int:
        value = _count(raw, name)
        if not low <= value <= high:
            raise SettingsError(f"{name}={raw!r}: must be {low} to {high}")
        return value

    return parse


@dataclass(frozen=True)
class Spec:
    """One setting: environment name, Settings field, parser, default (as text), meaning.

    ``secret`` values are kept out of logs; ``local_only`` settings serve the sandbox and
    tests and are never set by ``infra/``.
    """

    env: str
    field: str
    parse: Callable[[str, str], Any]
    default: str
    doc: str
    secret: bool = False
    local_only: bool = False


SPECS: tuple[Spec, ...] = (
    # Storage
    Spec("AzureWebJobsStorage", "storage_connection", _plain, "",
         "connection string of the storage account (tables, queues); `UseDevelopmentStorage=true` "
         "is Azurite; leave empty in Azure, where the identity-based URIs below are used",
         secret=True, local_only=True),
    Spec("AzureWebJobsStorage__tableServiceUri", "table_service_uri", _url, "",
         "Table service URI when storage is reached with the managed identity"),
    Spec("AzureWebJobsStorage__queueServiceUri", "queue_service_uri", _url, "",
         "Queue service URI when storage is reached with the managed identity"),
    Spec("AzureWebJobsStorage__blobServiceUri", "blob_service_uri", _url, "",
         "Blob service URI when storage is reached with the managed identity (the Functions "
         "host's, and the dead-letter container's)"),
    Spec("DEADLETTER_CONTAINER", "deadletter_container", _plain, "eventgrid-deadletter",
         "blob container where Event Grid dead-letters the events it could not deliver"),
    Spec("AZURE_CLIENT_ID", "managed_identity_client_id", _plain, "",
         "client id of the user-assigned managed identity the app runs as"),
    Spec("TABLE_NAME_PREFIX", "table_name_prefix", _table_prefix, "",
         "prefix for every table name (letters and digits)"),
    # Behaviour
    Spec("DRY_RUN", "dry_run", _flag, "true",
         "plan and record every action, change nothing in Azure"),
    Spec("USER_RULES_PATH", "user_rules_path", _plain, "",
         "YAML file of your own rules; they take precedence over the built-in ones"),
    Spec("SUBSCRIPTION_IDS", "subscription_ids", _ids, "",
         "comma-separated subscriptions this deployment answers for; others are rejected "
         "(empty: any)"),
    Spec("CLAIM_LEASE_SECONDS", "claim_lease_seconds", _count, "300",
         "how long a delivery owns a job before a redelivery may take it over; keep it at or "
         "above the function timeout (`host.json` `functionTimeout`, a test holds them together)"),
    Spec("CLAIM_RETENTION_DAYS", "claim_retention_days", _positive, "30",
         "how long a handled job is remembered: a redelivery within it (any source) only counts "
         "as an occurrence; older claims are removed hourly"),
    # Azure management APIs
    Spec("AZURE_MANAGEMENT_URL", "management_url", _url, PUBLIC_MANAGEMENT_URL,
         "Azure Resource Manager endpoint (the local simulator's URL in the sandbox)"),
    Spec("AZURE_POLL_SECONDS", "azure_poll_seconds", _count, "10",
         "seconds between polls of a long-running Azure operation whose answer names no "
         "`Retry-After` (Azure's backup and stop-protection 202s name none)"),
    Spec("ARM_READS_PER_SECOND", "arm_reads_per_second", _rate, "24",
         "reads a second each instance of the app sends to Azure Resource Manager per "
         "subscription (ARM refills its read bucket at about 25 a second per principal and "
         "subscription); the watcher, one timer run at a time, sends nearly all of them, event "
         "handlers on other instances about one per event on top; a 429's `Retry-After` holds "
         "every read of that subscription in the instance until it has passed"),
    Spec("ARM_READ_BURST", "arm_read_burst", _positive, "50",
         "reads the app may send at once above that rate after a quiet spell (ARM's bucket "
         "holds 250; the rest is left to other instances of the app)"),
    Spec("AZURE_CA_BUNDLE", "ca_bundle", _plain, "",
         "CA certificate file to trust for the management endpoint (sandbox only)",
         local_only=True),
    Spec("AZURE_STATIC_TOKEN", "static_token", _plain, "",
         "bearer token for the management endpoint instead of the managed identity "
         "(sandbox only)", secret=True, local_only=True),
    # Retries
    Spec("RETRY_QUEUE", "retry_queue", _plain, "backup-retries",
         "Storage queue of delayed retries and follow-up checks"),
    Spec("RETRY_DAILY_CAP", "retry_daily_cap", _between(1, AZURE_ON_DEMAND_DAILY_LIMIT), "3",
         "most on-demand backups the app starts per item per UTC day, whatever a rule allows "
         f"(1-{AZURE_ON_DEMAND_DAILY_LIMIT}, Azure's limit)"),
    Spec("RETRY_STAGGER_LIMIT", "retry_stagger_limit", _count, "5",
         "most retries started per vault within one stagger window; the rest wait"),
    Spec("RETRY_STAGGER_MINUTES", "retry_stagger_minutes", _count, "15",
         "length of the stagger window, minutes"),
    Spec("RECOVERY_POINT_EXPIRY_DAYS", "recovery_point_expiry_days", _count, "30",
         "retention of recovery points made by retries, days"),
    Spec("FOLLOW_UP_MINUTES", "follow_up_minutes", _count, "60",
         "when to check on the backup job a retry started, minutes"),
    Spec("RETRY_LEARN_FAILED_NIGHTS", "retry_learn_failed_nights",
         _between(0, MAX_LEARN_NIGHTS), "3",
         "a retry is withheld, and the incident escalated with the evidence, when retries of the "
         "same item and rule did not help on this many of the last `RETRY_LEARN_WINDOW_NIGHTS` "
         "nights (noon to noon UTC); checked when the retry is planned and again when it runs; "
         f"0 switches it off (0-{MAX_LEARN_NIGHTS})"),
    Spec("RETRY_LEARN_WINDOW_NIGHTS", "retry_learn_window_nights",
         _between(1, MAX_LEARN_NIGHTS), "4",
         "how many nights before a failure's own night retry learning looks at "
         f"(1-{MAX_LEARN_NIGHTS}, at least `RETRY_LEARN_FAILED_NIGHTS`)"),
    Spec("QUEUE_DELAY_SCALE", "queue_delay_scale", _scale, "1",
         "factor on every queue delay; 0 makes delayed retries visible at once (the incident "
         "log still says the delay the rule asked for)", local_only=True),
    # Tickets
    Spec("TICKET_LANGUAGE", "ticket_language", _language, "en",
         "language of remediation text in tickets and notifications: `en` or `ja`"),
    Spec("TICKET_WEBHOOK_URL", "ticket_webhook_url", _url, "",
         "generic JSON webhook that receives tickets", secret=True),
    Spec("TICKET_REOPEN_DAYS", "ticket_reopen_days", _between(0, MAX_REOPEN_DAYS), "7",
         "a failure of an item and rule whose ticket was resolved within this many days reopens "
         "that ticket (ServiceNow back to In Progress, Azure DevOps back to an active state, "
         "webhook `ticket.reopened`) instead of opening a new one; keep it below ServiceNow's "
         "auto-close (7 business days by default: a Closed incident cannot be reopened); 0 "
         f"always opens a new ticket (0-{MAX_REOPEN_DAYS})"),
    Spec("SERVICENOW_INSTANCE_URL", "servicenow_url", _url, "",
         "ServiceNow instance, e.g. https://contoso.service-now.com"),
    Spec("SERVICENOW_USERNAME", "servicenow_username", _plain, "", "ServiceNow user"),
    Spec("SERVICENOW_PASSWORD", "servicenow_password", _plain, "",
         "ServiceNow password (a Key Vault reference in Azure)", secret=True),
    Spec("AZURE_DEVOPS_ORG_URL", "devops_org_url", _url, "",
         "Azure DevOps organization, e.g. https://dev.azure.com/contoso"),
    Spec("AZURE_DEVOPS_PROJECT", "devops_project", _plain, "", "Azure DevOps project"),
    Spec("AZURE_DEVOPS_WORK_ITEM_TYPE", "devops_work_item_type", _plain, "Issue",
         "work item type of tickets"),
    Spec("AZURE_DEVOPS_PAT", "devops_pat", _plain, "",
         "Azure DevOps personal access token (a Key Vault reference in Azure)", secret=True),
    # Notifications
    Spec("TEAMS_WEBHOOK_URL", "teams_webhook_url", _url, "",
         "Teams Workflows webhook for notifications", secret=True),
    Spec("SLACK_WEBHOOK_URL", "slack_webhook_url", _url, "",
         "Slack incoming webhook for notifications", secret=True),
    Spec("NOTIFY_WEBHOOK_URL", "notify_webhook_url", _url, "",
         "generic JSON webhook for notifications", secret=True),
    Spec("NOTIFY_FILTER", "notify_filter", _plain, "",
         "what to announce, e.g. `outcome=retry_exhausted,protection_stopped;category=vm_missing` "
         "(empty: everything)"),
    # Approvals (stop protection waits for a person)
    Spec("APPROVAL_REQUIRED", "approval_required", _flag, "false",
         "a verified stop protection waits for a person's approval (Approve / Reject links in "
         "Teams, Slack and the ticket, or `backup-responder approve ID`) instead of running"),
    Spec("APPROVAL_TIMEOUT_HOURS", "approval_timeout_hours", _between(1, MAX_APPROVAL_HOURS), "24",
         f"an approval not answered within this many hours (1-{MAX_APPROVAL_HOURS}) becomes an "
         "escalated ticket; the links expire then"),
    Spec("APPROVAL_SECRET", "approval_secret", _plain, "",
         f"key that signs the approval links (at least {MIN_APPROVAL_SECRET_CHARS} characters; a "
         "Key Vault reference in Azure); required when `APPROVAL_REQUIRED` is true", secret=True),
    Spec("APPROVAL_BASE_URL", "approval_base_url", _url, "",
         "where the approval links point (the app's public URL); empty: `https://` and the "
         "platform's `WEBSITE_HOSTNAME`"),
    # Watcher
    Spec("WATCH_SCHEDULE", "watch_schedule", _plain, "0 */2 * * * *",
         "NCRONTAB schedule of the job watcher (read by the Functions host); every 2 minutes "
         "finds a failure in about a minute and a half and, for 1,000 vaults, lists each vault "
         "at about 8 reads a second, a third of ARM's refill"),
    Spec("WATCH_LOOKBACK_HOURS", "watch_lookback_hours", _count, "24",
         "how long before a vault's checkpoint (its latest published job end; the run's "
         "start for a vault without one) the watcher lists jobs from, hours: Azure lists jobs "
         "by start time, so a job that started more than this before the checkpoint and failed "
         "after it is not found by the watcher (a Backup Failure alert still can bring it)"),
    Spec("WATCH_TIME_BUDGET_SECONDS", "watch_time_budget_seconds", _positive, "240",
         "how long one watcher run reads and publishes before it stops and leaves the rest to "
         "the next run (which starts at once when a run overran its schedule); below the "
         "function timeout (`host.json` `functionTimeout`, 300 s) by the time the last chunk, "
         "throttled reads and the run record may take"),
    Spec("EVENTGRID_TOPIC_ENDPOINT", "eventgrid_endpoint", _url, "",
         "endpoint of our Event Grid topic, where the watcher publishes"),
    Spec("EVENTGRID_TOPIC_KEY", "eventgrid_key", _plain, "",
         "access key of the topic (local testing only; Azure uses the managed identity)",
         secret=True, local_only=True),
    # Orphan sweep
    Spec("SWEEP_SCHEDULE", "sweep_schedule", _plain, "0 0 5 * * 1",
         "NCRONTAB schedule of the orphan sweep (read by the Functions host): weekly, Mondays "
         "05:00 UTC"),
    Spec("SWEEP_MODE", "sweep_mode", _sweep_mode, "off",
         "what the sweep's timer does: `off` nothing; `list` finds protected VM items whose VM is "
         "gone (ARM 404, not moved) and records them; `stop` also stops their protection, data "
         "kept, through the `stop_protection` action (only with `DRY_RUN=false`)"),
    Spec("SWEEP_MAX_ARM_CALLS", "sweep_max_arm_calls", _positive, "500",
         "most ARM requests one sweep sends (retries and polls count); what is left is reported "
         "and waits for the next run"),
    Spec("SWEEP_TIME_BUDGET_SECONDS", "sweep_time_budget_seconds", _positive, "240",
         "how long one sweep starts new steps (a stop only when its polls fit too); what is left "
         "is reported and waits for the next run; below the function timeout (`host.json` "
         "`functionTimeout`, 300 s) by the time a stop under way and the run's record may take"),
    # Morning digest
    Spec("DIGEST_SCHEDULE", "digest_schedule", _plain, "0 0 7 * * *",
         "NCRONTAB schedule of the morning digest (read by the Functions host): daily 07:00 UTC; "
         "at most one digest per UTC day"),
    Spec("DIGEST_ENABLED", "digest_enabled", _flag, "true",
         "send the daily digest to every configured chat channel and keep it in the `digests` "
         "table"),
    # Telemetry
    Spec("APPLICATIONINSIGHTS_CONNECTION_STRING", "appinsights_connection", _plain, "",
         "Application Insights; when empty, no telemetry is exported", secret=True),
)  # fmt: skip

NAMES = tuple(spec.env for spec in SPECS)


@dataclass(frozen=True)
class Settings:
    """The app's configuration, validated once. Field meanings: see :data:`SPECS`."""

    storage_connection: str = ""
    table_service_uri: str = ""
    queue_service_uri: str = ""
    blob_service_uri: str = ""
    deadletter_container: str = "eventgrid-deadletter"
    managed_identity_client_id: str = ""
    table_name_prefix: str = ""
    dry_run: bool = True
    user_rules_path: str = ""
    subscription_ids: frozenset[str] = frozenset()
    claim_lease_seconds: int = 300
    claim_retention_days: int = 30
    management_url: str = PUBLIC_MANAGEMENT_URL
    azure_poll_seconds: int = 10
    arm_reads_per_second: float = 24.0
    arm_read_burst: int = 50
    ca_bundle: str = ""
    static_token: str = ""
    retry_queue: str = "backup-retries"
    retry_daily_cap: int = 3
    retry_stagger_limit: int = 5
    retry_stagger_minutes: int = 15
    recovery_point_expiry_days: int = 30
    follow_up_minutes: int = 60
    retry_learn_failed_nights: int = 3
    retry_learn_window_nights: int = 4
    queue_delay_scale: float = 1.0
    ticket_language: str = "en"
    ticket_reopen_days: int = 7
    ticket_webhook_url: str = ""
    servicenow_url: str = ""
    servicenow_username: str = ""
    servicenow_password: str = ""
    devops_org_url: str = ""
    devops_project: str = ""
    devops_work_item_type: str = "Issue"
    devops_pat: str = ""
    teams_webhook_url: str = ""
    slack_webhook_url: str = ""
    notify_webhook_url: str = ""
    notify_filter: str = ""
    approval_required: bool = False
    approval_timeout_hours: int = 24
    approval_secret: str = ""
    approval_base_url: str = ""
    watch_schedule: str = "0 */2 * * * *"
    watch_lookback_hours: int = 24
    watch_time_budget_seconds: int = 240
    eventgrid_endpoint: str = ""
    eventgrid_key: str = ""
    sweep_schedule: str = "0 0 5 * * 1"
    sweep_mode: str = "off"
    sweep_max_arm_calls: int = 500
    sweep_time_budget_seconds: int = 240
    digest_schedule: str = "0 0 7 * * *"
    digest_enabled: bool = True
    appinsights_connection: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings from ``env`` (default: ``os.environ``).

        :raises SettingsError: a value is unusable; the message names the setting.
        """
        env = os.environ if env is None else env
        values = {}
        for spec in SPECS:
            raw = env.get(spec.env, "").strip() or spec.default
            values[spec.field] = spec.parse(raw, spec.env)
        if not (values["storage_connection"] or values["table_service_uri"]):
            values["storage_connection"] = AZURITE_CONNECTION_STRING
        values["approval_base_url"] = _approval_base_url(values["approval_base_url"], env)
        _check_approval_secret(values)
        _check_learning(values)
        return cls(**values)

    def in_scope(self, subscription_id: str) -> bool:
        """Whether this deployment answers for ``subscription_id``."""
        return not self.subscription_ids or subscription_id.lower() in self.subscription_ids

    def secrets(self) -> list[str]:
        """Values that must never appear in a log line."""
        return [getattr(self, s.field) for s in SPECS if s.secret and getattr(self, s.field)]


def _approval_base_url(given: str, env: Mapping[str, str]) -> str:
    """The links' base: the setting, else the host name the platform gives every app."""
    host = env.get("WEBSITE_HOSTNAME", "").strip()
    return given or (f"https://{host}" if host else "")


def _check_approval_secret(values: dict[str, Any]) -> None:
    secret = values["approval_secret"]
    if secret and len(secret) < MIN_APPROVAL_SECRET_CHARS:
        raise SettingsError(f"APPROVAL_SECRET: at least {MIN_APPROVAL_SECRET_CHARS} characters")
    if values["approval_required"] and not secret:
        raise SettingsError("APPROVAL_SECRET is required when APPROVAL_REQUIRED=true")


def _check_learning(values: dict[str, Any]) -> None:
    failed, window = values["retry_learn_failed_nights"], values["retry_learn_window_nights"]
    if failed > window:
        raise SettingsError(
            f"RETRY_LEARN_FAILED_NIGHTS={failed} is more than RETRY_LEARN_WINDOW_NIGHTS={window}"
        )


def markdown_table() -> str:
    """The README's settings table, generated from :data:`SPECS`."""
    lines = ["| setting | default | meaning |", "|---|---|---|"]
    for spec in SPECS:
        default = f"`{spec.default}`" if spec.default else "—"
        where = " (local only)" if spec.local_only else ""
        lines.append(f"| `{spec.env}` | {default} | {spec.doc}{where} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
