"""`mesh bench ...`: benchmarks that print side-by-side figures measured in one run."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="measure the mesh against its peers")
    kinds = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    latency = kinds.add_parser(
        "latency", help="direct expert call vs mesh vs Ray Serve composition, c=1 and c=8"
    )
    latency.add_argument("--requests", type=int, default=200, help="requests per measurement")
    latency.add_argument("--json", dest="json_out", help="write the figures to this JSON file")
    latency.add_argument(
        "--serve-env", action="append", default=[], metavar="KEY=VALUE",
        help="environment for the bench's Ray cluster, e.g. RAY_SERVE_THROUGHPUT_OPTIMIZED=1",
    )
    latency.set_defaults(func=cmd_latency)


def cmd_latency(args: argparse.Namespace) -> int:
    import sys

    from mesh.bench.latency import parse_env, run_latency_bench

    try:
        env = parse_env(args.serve_env)
    except ValueError as e:
        print(f"mesh bench latency: {e}", file=sys.stderr)
        return 2
    return run_latency_bench(args.requests, args.json_out, env)
