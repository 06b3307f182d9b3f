"""The core: the one normalized model, the incident, the outcome, settings and ARM ids; what
became of incidents (retry results, fixes, time to resolution: ``results``) and an item's
history with a rule night by night (``history``), so the audit, the digest and the retry
action count alike.

No I/O here; imports nothing of ``handlers`` (``rules`` only for types).
"""
