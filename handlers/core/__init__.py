"""The core: the one normalized model, the incident, the outcome, settings and ARM ids.

No I/O here; imports nothing of ``handlers`` (``rules`` only for types).
"""
