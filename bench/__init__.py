"""Benchmarks against the limits the README states: ``.venv/bin/python -m bench``.

Each measurement beside a baseline measured in the same run:

1. classification (:mod:`bench.classify`): decisions/s against a naive rule-by-rule scan;
2. pipeline (:mod:`bench.pipeline`): events/s through ``respond()`` in dry run against
   Azurite, against the same table writes done directly with the same client;
3. burst (:mod:`bench.burst`): a 10,000-job outage through the watcher and the pipeline: the
   absorption rate against the raw writes, the publication time against ARM's read floor,
   ARM calls per failed job, peak memory; retry staggering per vault and the queue messages
   each retry costs;
4. detection (:mod:`bench.detection`): the time from a job's end to its incident (p50, p95)
   on the default schedule against the old one, and the ARM reads per second it takes for
   1,000 vaults;
5. cold start (:mod:`bench.coldstart`): ``python -X importtime -c "import function_app"``.

The burst and the detection run the watcher on a skipping clock (:mod:`sandbox.clock`): real
work takes its real time, ARM pacing and the waits between timer runs are skipped.

Not part of the pass/fail test suite: the figures depend on the machine and its load.
"""
