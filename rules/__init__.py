"""Rules: the data that classifies backup failures, and the engine that applies it.

>>> decision = default_rule_set().classify(["CopyingVHDsFromBackUpVaultTakingLongTime"], "")
>>> decision.action
'retry'
"""

from functools import cache

from rules.engine import Decision, RuleSet, normalize_code, normalize_text
from rules.loader import RuleFileError, load_rule_set, load_rules


@cache
def default_rule_set(user_rules_path: str = "") -> RuleSet:
    """The rule set the app uses, loaded once per process (per user rule file)."""
    return load_rule_set(user_rules_path or None)


__all__ = [
    "Decision",
    "RuleFileError",
    "RuleSet",
    "default_rule_set",
    "load_rule_set",
    "load_rules",
    "normalize_code",
    "normalize_text",
]
