"""Outbound: ticket sinks, chat notifications, outgoing HTTP and telemetry export.

May import ``handlers.core`` only.
"""
