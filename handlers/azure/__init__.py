"""Azure management: the only place that imports ``azure.mgmt`` (clients, API calls, polling).

May import ``handlers.core`` only.
"""
