"""``python -m bench [--quick] [--only NAME ...]``: run the benchmarks, print one table.

Each part starts what it needs (Azurite, the Azure API simulator) and stops it again. The
full run takes a few minutes on two cores; ``--quick`` is a smaller run of the same.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import burst, classify, coldstart, detection, pipeline
from bench.common import Row, machine, table

PARTS = ("classify", "pipeline", "burst", "detection", "coldstart")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer repeats")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--jobs", type=int, help="failed jobs in the burst (default 10,000)")
    args = parser.parse_args(argv)
    quick = args.quick
    started = time.perf_counter()
    print(f"machine: {machine()}", flush=True)
    rows: list[Row] = []
    for part in args.only:
        print(f"running {part} ...", file=sys.stderr, flush=True)
        if part == "classify":
            rows += classify.run(repeats=3 if quick else 5, seconds=0.5 if quick else 1.0)
        elif part == "pipeline":
            rows += pipeline.run(events=300 if quick else 2_000, repeats=3 if quick else 5)
        elif part == "burst":
            rows += burst.run(jobs=args.jobs or (2_000 if quick else 10_000))
        elif part == "detection":
            rows += detection.run(vaults=200 if quick else 1_000, jobs=100 if quick else 300)
        elif part == "coldstart":
            rows += coldstart.run(repeats=3 if quick else 7)
    print()
    print(table(rows))
    print(f"\n({time.perf_counter() - started:.0f} s in all)")
    return 0 if all(row.passed is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
