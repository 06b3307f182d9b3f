"""The pipeline: ``respond()``, and the runtime that wires the services together.

May import ``handlers.actions`` and everything below it.
"""
