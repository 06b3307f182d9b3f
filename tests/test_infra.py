"""infra/ (Bicep) and azure.yaml against the code: settings, roles, secrets, azd layout.

No Bicep compiler is available offline, so these tests read the Bicep text: comments are
stripped with a string-aware scanner, and blocks are cut out by bracket balancing. They
check what a compile would not: that infra/ sets exactly the settings the app reads
(``handlers/settings.py`` ``SPECS``), that the app's identity can never delete backup data,
and that secrets only travel as ``@secure()`` parameters and Key Vault references.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from handlers.core.settings import SPECS

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
FUNCTION_APP = INFRA / "modules" / "functionapp.bicep"
BACKUP_ROLE = INFRA / "modules" / "backup-role.bicep"

#: App settings the Bicep may set although the app's code does not read them: the Functions
#: host's identity-based ``AzureWebJobsStorage`` connection. Each names who reads it.
HOST_SETTINGS = {
    # Functions host: storage account of the host's blobs/queues (identity-based connection).
    "AzureWebJobsStorage__accountName": "Functions host",
    # Functions host and run_retry's queue trigger (connection "AzureWebJobsStorage").
    "AzureWebJobsStorage__credential": "Functions host (managed identity, not a key)",
    # Functions host: which user-assigned identity the connection uses.
    "AzureWebJobsStorage__clientId": "Functions host",
}

#: Settings Flex Consumption rejects or ignores (the runtime is in functionAppConfig).
FLEX_DEPRECATED = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "AzureWebJobsStorage",
}

#: Words that make a parameter name a secret (camelCase words, or substrings for the
#: unambiguous ones).
SECRET_WORDS = {"password", "pat", "key", "secret", "webhook", "token"}
SECRET_SUBSTRINGS = ("password", "secret", "webhook")

NON_LOCAL = {s.env for s in SPECS if not s.local_only}
LOCAL_ONLY = {s.env for s in SPECS if s.local_only}
SECRET_SETTINGS = {s.env for s in SPECS if s.secret and not s.local_only}


# --- Bicep reading ------------------------------------------------------------------------


def strip_comments(text: str) -> str:
    """``text`` without ``//`` and ``/* */`` comments; strings (``'…'``) are kept intact."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "'":
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def bicep(path: Path) -> str:
    return strip_comments(path.read_text(encoding="utf-8"))


def balanced(text: str, start: int) -> str:
    """The bracketed block (``{…}``, ``[…]`` or ``(…)``) opening at or after ``start``."""
    pairs = {"{": "}", "[": "]", "(": ")"}
    i = min((text.find(o, start) for o in pairs if text.find(o, start) >= 0), default=-1)
    assert i >= 0, f"no block after offset {start}"
    depth, in_string = 0, False
    for j in range(i, len(text)):
        c = text[j]
        if in_string:
            in_string = c != "'" or text[j - 1] == "\\"
        elif c == "'":
            in_string = True
        elif c in pairs:
            depth += 1
        elif c in pairs.values():
            depth -= 1
            if depth == 0:
                return text[i : j + 1]
    raise AssertionError(f"unbalanced block at offset {i}")


def block_after(text: str, pattern: str) -> str:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found"
    return balanced(text, match.end())


def app_settings() -> dict[str, str]:
    """App setting name -> its value expression, from the Function App's appSettings."""
    block = block_after(bicep(FUNCTION_APP), r"\bappSettings:\s*")
    entries = re.findall(r"name:\s*'([^']+)'\s*value:\s*([^\n]+)", block)
    names = [name for name, _ in entries]
    assert len(names) == len(set(names)), f"duplicate app settings: {names}"
    assert len(names) == block.count("name:"), "an app setting entry was not understood"
    return {name: value.strip() for name, value in entries}


def params(path: Path) -> dict[str, list[str]]:
    """Parameter name -> its decorators (``@secure()``, ``@allowed([...])``, …)."""
    text = bicep(path)
    found: dict[str, list[str]] = {}
    pending: list[str] = []
    i = 0
    while i < len(text):
        line_end = text.find("\n", i)
        line_end = len(text) if line_end < 0 else line_end
        line = text[i:line_end].strip()
        if line.startswith("@"):
            paren = text.find("(", i)
            decorator = text[i:paren] + balanced(text, paren)
            pending.append(decorator.strip())
            i = paren + len(balanced(text, paren))
            continue
        match = re.match(r"param\s+(\w+)\s", line)
        if match:
            found[match.group(1)] = pending
        if line:
            pending = []
        i = line_end + 1
    return found


def param_default(path: Path, name: str) -> str:
    match = re.search(rf"^param\s+{name}\s+\w+\s*=\s*(.+)$", bicep(path), re.MULTILINE)
    assert match, f"{path.name}: param {name} has no default"
    return match.group(1).strip().strip("'")


def resources(text: str, resource_type: str) -> dict[str, str]:
    """Symbolic name -> body of each resource of ``resource_type`` in ``text``."""
    found = {}
    pattern = rf"resource\s+(\w+)\s+'{re.escape(resource_type)}@[^']+'\s*="
    for match in re.finditer(pattern, text):
        found[match.group(1)] = balanced(text, match.end())
    return found


def all_bicep_files() -> list[Path]:
    files = sorted(INFRA.rglob("*.bicep"))
    assert MAIN in files and FUNCTION_APP in files and BACKUP_ROLE in files
    return files


# --- (a) settings: infra sets what the app reads, and nothing else -------------------------


def test_every_non_local_setting_is_set_by_infra() -> None:
    missing = NON_LOCAL - set(app_settings())
    assert not missing, f"handlers/settings.py reads these, infra/ never sets them: {missing}"


def test_infra_sets_only_app_settings_or_listed_host_settings() -> None:
    unknown = set(app_settings()) - NON_LOCAL - set(HOST_SETTINGS)
    assert not unknown, f"set by infra/, read by nobody we know of: {unknown}"


def test_host_allow_list_is_used_and_not_read_by_the_app() -> None:
    settings = set(app_settings())
    assert set(HOST_SETTINGS) <= settings, "stale HOST_SETTINGS entries"
    assert not set(HOST_SETTINGS) & {s.env for s in SPECS}, "move it out of HOST_SETTINGS"


def test_local_only_settings_are_never_set_by_infra() -> None:
    assert LOCAL_ONLY, "SPECS marks no local-only setting any more: revisit this test"
    assert not LOCAL_ONLY & set(app_settings())


def test_no_flex_consumption_deprecated_settings() -> None:
    assert not FLEX_DEPRECATED & set(app_settings())


def main_settings() -> dict[str, str]:
    """Key -> value expression of the ``settings`` object main.bicep gives the Function App."""
    main = bicep(MAIN)
    module = block_after(main, r"module\s+functionApp\s+'modules/functionapp\.bicep'\s*=")
    block = block_after(module, r"\bsettings:\s*")
    return dict(re.findall(r"^\s*(\w+):\s*(.+?)\s*$", block, re.MULTILINE))


def test_every_settings_value_the_module_reads_is_passed_by_main() -> None:
    used = set(re.findall(r"\bsettings\.(\w+)", bicep(FUNCTION_APP)))
    passed = set(main_settings())
    assert used, "functionapp.bicep reads no settings.* value: parser out of date"
    assert used == passed, f"read but not passed: {used - passed}; unused: {passed - used}"


def test_identity_connection_settings() -> None:
    settings = app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert settings["AzureWebJobsStorage__clientId"] == settings["AZURE_CLIENT_ID"]
    storage = bicep(INFRA / "modules" / "storage.bicep")
    assert re.search(r"allowSharedKeyAccess:\s*false", storage)
    assert re.search(r"allowBlobPublicAccess:\s*false", storage)
    assert re.search(r"minimumTlsVersion:\s*'TLS1_2'", storage)


@pytest.mark.parametrize(
    ("param", "setting", "rendered"),
    [
        ("dryRun", "DRY_RUN", {"true": "true", "false": "false"}),
        ("ticketLanguage", "TICKET_LANGUAGE", None),
        ("retryQueueName", "RETRY_QUEUE", None),
        ("retryDailyCap", "RETRY_DAILY_CAP", None),
        ("retryStaggerLimit", "RETRY_STAGGER_LIMIT", None),
        ("retryStaggerMinutes", "RETRY_STAGGER_MINUTES", None),
        ("recoveryPointExpiryDays", "RECOVERY_POINT_EXPIRY_DAYS", None),
        ("followUpMinutes", "FOLLOW_UP_MINUTES", None),
        ("claimLeaseSeconds", "CLAIM_LEASE_SECONDS", None),
        ("watchSchedule", "WATCH_SCHEDULE", None),
        ("watchLookbackHours", "WATCH_LOOKBACK_HOURS", None),
        ("watchTimeBudgetSeconds", "WATCH_TIME_BUDGET_SECONDS", None),
        ("armReadsPerSecond", "ARM_READS_PER_SECOND", None),
        ("armReadBurst", "ARM_READ_BURST", None),
        ("azureDevOpsWorkItemType", "AZURE_DEVOPS_WORK_ITEM_TYPE", None),
        ("approvalRequired", "APPROVAL_REQUIRED", {"true": "true", "false": "false"}),
        ("approvalTimeoutHours", "APPROVAL_TIMEOUT_HOURS", None),
        ("sweepSchedule", "SWEEP_SCHEDULE", None),
        ("sweepMode", "SWEEP_MODE", None),
        ("sweepMaxArmCalls", "SWEEP_MAX_ARM_CALLS", None),
        ("sweepTimeBudgetSeconds", "SWEEP_TIME_BUDGET_SECONDS", None),
        ("digestSchedule", "DIGEST_SCHEDULE", None),
        ("digestEnabled", "DIGEST_ENABLED", {"true": "true", "false": "false"}),
        ("retryLearnFailedNights", "RETRY_LEARN_FAILED_NIGHTS", None),
        ("retryLearnWindowNights", "RETRY_LEARN_WINDOW_NIGHTS", None),
        ("ticketReopenDays", "TICKET_REOPEN_DAYS", None),
    ],
)
def test_bicep_defaults_match_the_app_defaults(
    param: str, setting: str, rendered: dict[str, str] | None
) -> None:
    default = param_default(MAIN, param)
    spec = next(s for s in SPECS if s.env == setting)
    assert (rendered or {}).get(default, default) == spec.default


# --- (b) role assignments are idempotent and explained -------------------------------------


def role_assignments() -> dict[tuple[str, str], str]:
    found = {}
    for path in all_bicep_files():
        text = bicep(path)
        for name, body in resources(text, "Microsoft.Authorization/roleAssignments").items():
            found[(path.name, name)] = body
    return found


def test_role_assignment_names_are_deterministic_guids() -> None:
    assignments = role_assignments()
    # storage x3, topic, vault, and the backup role on the subscription
    assert len(assignments) >= 6, sorted(assignments)
    for where, body in assignments.items():
        name = re.search(r"^\s*name:\s*(.+)$", body, re.MULTILINE)
        assert name, where
        assert name.group(1).startswith("guid("), f"{where}: {name.group(1)}"
        assert "principalId" in name.group(1), f"{where}: name must depend on the principal"


def test_every_role_assignment_says_which_action_needs_it() -> None:
    for path in all_bicep_files():
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if "'Microsoft.Authorization/roleAssignments@" in line:
                assert lines[i - 1].strip().startswith("//"), f"{path.name}:{i + 1}"


def test_built_in_role_ids_are_literal_guids_named_in_a_comment() -> None:
    text = (INFRA / "modules" / "roles.bicep").read_text(encoding="utf-8")
    ids = re.findall(r"'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'(.*)", text)
    assert len(ids) >= 5
    for role_id, rest in ids:
        assert re.search(r"//\s*\w", rest), f"{role_id}: name the role in a comment"


# --- (c) the custom role can act on backups but never delete them --------------------------


def custom_role_actions() -> list[str]:
    text = bicep(BACKUP_ROLE)
    return re.findall(r"'([^']+)'", block_after(text, r"var\s+actions\s*=\s*"))


def test_custom_role_cannot_delete_anything() -> None:
    actions = custom_role_actions()
    assert actions
    assert not [a for a in actions if "delete" in a.lower()]
    assert not [a for a in actions if "*" in a], "wildcards could grant delete"
    role = block_after(bicep(BACKUP_ROLE), r"'Microsoft.Authorization/roleDefinitions@[^']+'\s*=")
    assert re.search(r"dataActions:\s*\[\s*\]", role), "no data actions"
    assert re.search(r"name:\s*guid\(", role), "role definition name must be a GUID"


def test_custom_role_grants_what_the_app_does() -> None:
    item = "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems"
    needed = {
        f"{item}/backup/action",  # retry
        f"{item}/write",  # stop protection, retain data
        "Microsoft.RecoveryServices/Vaults/backupJobs/read",  # watcher, verify
        "Microsoft.RecoveryServices/Vaults/read",  # list vaults
        "Microsoft.Compute/virtualMachines/read",  # is the VM still there
        f"{item}/recoveryPoints/read",  # the orphan sweep counts what a stop keeps
    }
    assert needed <= set(custom_role_actions())


# --- (d) secrets are @secure() parameters and Key Vault references -------------------------


def is_secret_name(name: str) -> bool:
    words = {w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", name)}
    return bool(words & SECRET_WORDS) or any(s in name.lower() for s in SECRET_SUBSTRINGS)


def test_secret_word_detection() -> None:
    assert is_secret_name("azureDevOpsPat") and is_secret_name("ticketWebhookUrl")
    assert is_secret_name("serviceNowPassword") and is_secret_name("secrets")
    assert not is_secret_name("userRulesPath") and not is_secret_name("serviceNowUsername")


def test_secret_parameters_are_secure() -> None:
    checked = []
    for path in all_bicep_files():
        for name, decorators in params(path).items():
            if is_secret_name(name):
                checked.append(name)
                assert "@secure()" in decorators, f"{path.name}: param {name} is not @secure()"
    assert {"serviceNowPassword", "azureDevOpsPat", "slackWebhookUrl"} <= set(checked)


def test_secret_settings_reach_the_app_as_key_vault_references() -> None:
    settings, passed = app_settings(), main_settings()
    module_params, main_params = params(FUNCTION_APP), params(MAIN)
    block = block_after(bicep(MAIN), r"var\s+secretSetting\s*=\s*")
    references = dict(re.findall(r"^\s*(\w+):\s*(.+?)\s*$", block, re.MULTILINE))
    reference = re.compile(
        r"empty\((\w+)\) \? '' : '@Microsoft\.KeyVault\(SecretUri=\$\{vaultUri\}secrets/[\w-]+\)'"
    )
    for setting in sorted(SECRET_SETTINGS):
        value = settings[setting]
        if not value.startswith("settings."):  # a module parameter, e.g. App Insights
            assert "@secure()" in module_params.get(value, []), f"{setting}: {value}"
            continue
        given = passed[value.removeprefix("settings.")]
        assert given.startswith("secretSetting."), f"{setting} = {given}: not a reference"
        match = reference.fullmatch(references[given.removeprefix("secretSetting.")])
        assert match, f"{setting}: {references[given.removeprefix('secretSetting.')]}"
        assert "@secure()" in main_params[match.group(1)], f"{setting}: {match.group(1)}"


def test_parameters_file_holds_no_literal_values() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    declared = params(MAIN)
    for name, entry in parameters["parameters"].items():
        assert name in declared, f"main.parameters.json: {name} is not a main.bicep param"
        assert re.fullmatch(r"\$\{[A-Z_]+(=[^}]*)?\}", entry["value"]), f"{name}: {entry}"


# --- (e) azd ---------------------------------------------------------------------------------


def test_azure_yaml_deploys_a_python_function_from_infra() -> None:
    config = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    infra = config["infra"]
    assert infra["path"] == "infra"
    assert infra.get("provider", "bicep") == "bicep"
    assert (ROOT / infra["path"] / f"{infra.get('module', 'main')}.bicep").is_file()
    services = {
        name: svc
        for name, svc in config["services"].items()
        if svc["host"] == "function" and svc["language"] in {"python", "py"}
    }
    assert list(services) == ["api"]
    assert (ROOT / services["api"]["project"] / "function_app.py").is_file()
    # azd finds the app to deploy to by this tag.
    assert re.search(r"'azd-service-name':\s*'api'", bicep(FUNCTION_APP))


def test_main_is_subscription_scoped_with_azd_outputs() -> None:
    main = bicep(MAIN)
    assert re.search(r"^targetScope\s*=\s*'subscription'", main, re.MULTILINE)
    outputs = set(re.findall(r"^output\s+(\w+)\s", main, re.MULTILINE))
    assert {"AZURE_FUNCTION_APP_NAME", "AZURE_RESOURCE_GROUP", "AZURE_LOCATION"} <= outputs
