"""Benchmarks against the limits the README states: ``.venv/bin/python -m bench``.

Five measurements, each beside a baseline measured in the same run:

1. classification (:mod:`bench.classify`): decisions/s against a naive rule-by-rule scan;
2. pipeline (:mod:`bench.pipeline`): events/s through ``respond()`` in dry run against
   Azurite, against the same table writes done directly with the same client;
3. burst (:mod:`bench.burst`): 10,000 failed jobs through the watcher and the pipeline, and
   retry staggering per vault;
4. cold start (:mod:`bench.coldstart`): ``python -X importtime -c "import function_app"``;
5. memory: peak RSS over the burst.

Not part of the pass/fail test suite: the figures depend on the machine and its load.
"""
