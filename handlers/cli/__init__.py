"""The ``backup-responder`` command line (an entry point, like ``function_app.py``).

May import any package of ``handlers``.
"""

from handlers.cli.main import main

__all__ = ["main"]
