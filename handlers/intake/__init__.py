"""Intake: every way a failure reaches us (Event Grid, alerts, VM deletions, the job watcher,
the retry queue), people's answers to approval requests, and the one edge parser. May import
``handlers.pipeline`` and below.
"""
