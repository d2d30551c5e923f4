"""`fleet bench <name> [--quick]`: benchmarks beside their peers, results in bench/results/."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

# name -> module under bench/ with `run(quick: bool) -> list[dict]`
BENCHMARKS = {
    "stack": "bench.stack",
    "simulator": "bench.simulator",
    "bridge": "bench.bridge",
    "hot": "bench.hot",
    "query": "bench.query",
    "cold": "bench.cold",
    "e2e": "bench.e2e",
}


def register(verbs: Any) -> None:
    """Add `fleet bench`."""
    parser = verbs.add_parser(
        "bench", help="run a benchmark beside its peer; writes bench/results/<name>.json"
    )
    parser.add_argument("name", choices=[*BENCHMARKS, "all"], help="which benchmark")
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    parser.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    """Run one benchmark (or all) and print where the results went."""
    names = list(BENCHMARKS) if args.name == "all" else [args.name]
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        path = module.main(quick=args.quick)
        print(f"bench {name}: {path}")
    return 0
