"""Intake: every way a failure reaches us (Event Grid, alerts, VM deletions, the job watcher,
the retry queue) and the one edge parser. May import ``handlers.pipeline`` and below.
"""
