"""The long schemathesis run: tests/test_schemathesis.py with many more examples and every phase.

The suite keeps to a few fuzzed examples per operation so it stays fast; this runs the same
checks (no 500, responses match the OpenAPI document) with the deterministic coverage phase
(boundaries, wrong types, unexpected methods) and as many fuzzed examples as asked, under a
seed that is printed so a finding can be replayed:

    .venv/bin/python bench/schemathesis_full.py                 # 200 examples, a random seed
    .venv/bin/python bench/schemathesis_full.py --seed 7 -k shows --examples 1000
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="fuzzed examples per operation")
    parser.add_argument("--seed", type=int, default=None, help="replay a run (default: random)")
    parser.add_argument(
        "--phases",
        default="examples,coverage,fuzzing",
        help="comma-separated schemathesis phases (the suite runs examples,fuzzing)",
    )
    parser.add_argument(
        "-k", dest="keyword", help="only operations whose label matches, as pytest -k"
    )
    parser.add_argument(
        "-x", dest="exitfirst", action="store_true", help="stop at the first failure"
    )
    args = parser.parse_args()

    seed = args.seed if args.seed is not None else random.randrange(2**31)
    env = os.environ | {
        "ONAIR_SCHEMATHESIS_EXAMPLES": str(args.examples),
        "ONAIR_SCHEMATHESIS_SEED": str(seed),
        "ONAIR_SCHEMATHESIS_PHASES": args.phases,
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE"]
    command.append(str(ROOT / "tests" / "test_schemathesis.py"))
    if args.keyword:
        command += ["-k", args.keyword]
    if args.exitfirst:
        command.append("-x")
    print(
        f"schemathesis: {args.examples} examples per operation, phases {args.phases}, seed {seed}"
    )
    started = time.perf_counter()
    code = subprocess.call(command, cwd=ROOT, env=env)
    elapsed = time.perf_counter() - started
    print(f"took {elapsed:.0f} s; replay with --seed {seed} --examples {args.examples}")
    return code


if __name__ == "__main__":
    sys.exit(main())
