"""``python -m handlers.actions``: rewrite the action parts of ``rules/schema.json``."""

from handlers.actions import ACTIONS
from handlers.actions.registry import write_rule_schema
from rules.loader import SCHEMA_PATH

write_rule_schema(SCHEMA_PATH)
print(f"{SCHEMA_PATH}: actions {', '.join(sorted(ACTIONS))}")
