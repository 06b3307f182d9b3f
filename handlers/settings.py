"""Every setting the app reads, in one place.

Settings come from the environment (Function App settings in Azure, ``local.settings``
style variables locally). Each one is documented in the README's "Settings" table and set
in ``infra/``; a test keeps the three lists in step.

>>> s = Settings.from_env({"DRY_RUN": "false", "TICKET_LANGUAGE": "ja"})
>>> s.dry_run, s.ticket_language
(False, 'ja')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

AZURITE_CONNECTION_STRING = "UseDevelopmentStorage=true"

#: Names of the environment variables, so code, README and Bicep can be checked for drift.
STORAGE = "AzureWebJobsStorage"
DRY_RUN = "DRY_RUN"
USER_RULES_PATH = "USER_RULES_PATH"
TICKET_LANGUAGE = "TICKET_LANGUAGE"
TABLE_NAME_PREFIX = "TABLE_NAME_PREFIX"
CLAIM_LEASE_SECONDS = "CLAIM_LEASE_SECONDS"
SUBSCRIPTION_IDS = "SUBSCRIPTION_IDS"

LANGUAGES = ("en", "ja")


class SettingsError(ValueError):
    """A setting has a value the app cannot use; the message names the setting."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r}: expected true or false")


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a whole number") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r}: must not be negative")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise SettingsError(f"{name}={raw!r}: expected one of {', '.join(choices)}")
    return raw


def _id_list(env: Mapping[str, str], name: str) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in env.get(name, "").split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """The app's configuration, validated once.

    :ivar storage_connection: connection string of the storage account holding the tables
        and queues (``UseDevelopmentStorage=true`` means Azurite on its default ports).
    :ivar dry_run: plan and record every action, change nothing in Azure.
    :ivar user_rules_path: optional YAML rule file whose rules take precedence.
    :ivar ticket_language: language of remediation text in tickets (``en`` or ``ja``).
    :ivar table_name_prefix: prefix of every table name (lets several deployments or test
        runs share one storage account).
    :ivar claim_lease_seconds: how long a delivery may hold a job before a redelivery may
        take it over; match it to the function timeout.
    :ivar subscription_ids: subscriptions this deployment answers for; empty means any.
    """

    storage_connection: str = AZURITE_CONNECTION_STRING
    dry_run: bool = True
    user_rules_path: str = ""
    ticket_language: str = "en"
    table_name_prefix: str = ""
    claim_lease_seconds: int = 300
    subscription_ids: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings from ``env`` (default: ``os.environ``)."""
        env = os.environ if env is None else env
        prefix = env.get(TABLE_NAME_PREFIX, "").strip()
        if prefix and not (prefix.isascii() and prefix.isalnum() and prefix[0].isalpha()):
            raise SettingsError(f"{TABLE_NAME_PREFIX}={prefix!r}: letters and digits only")
        return cls(
            storage_connection=env.get(STORAGE, "").strip() or AZURITE_CONNECTION_STRING,
            dry_run=_flag(env, DRY_RUN, default=True),
            user_rules_path=env.get(USER_RULES_PATH, "").strip(),
            ticket_language=_choice(env, TICKET_LANGUAGE, LANGUAGES),
            table_name_prefix=prefix,
            claim_lease_seconds=_positive_int(env, CLAIM_LEASE_SECONDS, 300),
            subscription_ids=_id_list(env, SUBSCRIPTION_IDS),
        )

    def in_scope(self, subscription_id: str) -> bool:
        """Whether this deployment answers for ``subscription_id``."""
        return not self.subscription_ids or subscription_id.lower() in self.subscription_ids
