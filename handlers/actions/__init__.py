"""Actions: what the responder does about an incident, one module per registered action.

May import ``handlers.azure``, ``handlers.storage``, ``handlers.outbound`` and ``handlers.core``
(and ``rules``), never the pipeline or intake above it. Every module of this package is
imported here, so an action registers itself by living in its own module.

>>> sorted(ACTIONS)
['await_healing', 'record', 'retry', 'stop_protection', 'ticket']
"""

from __future__ import annotations

import importlib
import pkgutil

from handlers.actions.context import ActionContext, ItemUnresolvedError, Services
from handlers.actions.registry import ACTIONS, ActionSpec

__all__ = ["ACTIONS", "ActionContext", "ActionSpec", "Services", "act"]

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):  # not __main__
        importlib.import_module(f"{__name__}.{_module.name}")


def act(services: Services, pk: str, rk: str, action_name: str) -> None:
    """Run the registered action ``action_name`` for the incident at ``pk``/``rk``.

    An action that needs the item when the job did not name it, and the vault cannot say
    which it is, hands the incident to a person instead of guessing.
    """
    ctx = ActionContext(services, pk, rk)
    try:
        ACTIONS[action_name].run(ctx)
    except ItemUnresolvedError as error:
        ctx.log(action_name, "skipped", str(error))
        ctx.escalate(f"Nothing was changed: {error}.")
