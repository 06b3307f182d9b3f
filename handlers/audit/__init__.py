"""The operator's view of the incidents table: queries, summaries, the HTML report, the API.

Reads only, through ``handlers.storage``; may import ``handlers.storage`` and ``handlers.core``.

- :mod:`~handlers.audit.query`: filters → OData (a partition query when a VM is given, a
  RowKey range for a time window), run whole or page by page.
- :mod:`~handlers.audit.records`: what one incident says, flattened for JSON and CSV.
- :mod:`~handlers.audit.summary`: counts, retry success (overall and per rule), time to
  resolution per rule, repeat failures, open tickets.
- :mod:`~handlers.audit.console`: the terminal rendering (rich).
- :mod:`~handlers.audit.report`: one self-contained HTML file with SVG charts.
- :mod:`~handlers.audit.api`: ``GET /api/incidents``, paged.
"""
