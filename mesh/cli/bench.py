"""`mesh bench ...`: benchmarks that print side-by-side figures measured in one run."""

from __future__ import annotations

import argparse
from pathlib import Path

from mesh.bench.routing_data import DATASETS


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
    _register_routing(kinds)
    _register_expert(kinds)
    _register_autoscale(kinds)
    _register_admission(kinds)


def _register_autoscale(kinds: argparse._SubParsersAction) -> None:
    autoscale = kinds.add_parser(
        "autoscale",
        help="step load idle -> low -> high -> idle on three experts: replica-seconds vs a "
        "fixed fleet and the ideal, scale-up, scale-to-zero and cold-start times",
        description="Deploys three demo experts with scale-to-zero autoscaling on a Ray "
        "cluster of the bench's own and loads them in four phases. Needs a loopback-only "
        "network namespace, like every command that starts Ray here.",
    )
    for phase, default in (("idle", 10), ("low", 30), ("high", 40), ("cooldown", 40)):
        autoscale.add_argument(f"--{phase}-s", type=float, default=default, metavar="S",
                               help=f"length of the {phase} phase, seconds (default {default})")
    autoscale.add_argument("--json", dest="json_out", metavar="OUT",
                           help="write the figures (and the time series) to this JSON file")
    autoscale.add_argument("--plot", dest="plot_out", metavar="PNG",
                           help="draw load and replicas over time (needs matplotlib)")
    autoscale.set_defaults(func=cmd_autoscale)


def cmd_autoscale(args: argparse.Namespace) -> int:
    from mesh.bench.autoscale import run_autoscale_bench

    phases = {"idle": args.idle_s, "low": args.low_s, "high": args.high_s,
              "cooldown": args.cooldown_s}
    if any(v <= 0 for v in phases.values()) or sum(phases.values()) > 3600:
        print("mesh bench autoscale: phases must be positive and last an hour at most")
        return 2
    return run_autoscale_bench(phases, args.json_out, args.plot_out)


def _register_routing(kinds: argparse._SubParsersAction) -> None:
    routing = kinds.add_parser(
        "routing",
        help="router accuracy, out-of-scope detection and latency vs TF-IDF and MiniLM baselines",
        description="Each class of the data set becomes an expert whose manifest examples are "
        "its training rows; every eval row is routed. Baselines (TF-IDF + logistic regression, "
        "MiniLM + logistic regression) are fitted on the same rows in the same run.",
    )
    routing.add_argument(
        "--dataset", required=True, choices=DATASETS, metavar="NAME",
        help=f"one of {', '.join(DATASETS)}",
    )
    routing.add_argument(
        "--train", required=True, type=Path, metavar="FILE",
        help="training file (for mmlu-domains a folder such as dev/); for CLINC150 the JSON "
        "whose split 'train' is used",
    )
    how = routing.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--eval", type=Path, metavar="FILE",
        help="eval file in the training file's format (CLINC150: every list is routed, or "
        "'val' + 'oos_val' when it is the training file itself)",
    )
    how.add_argument(
        "--folds", type=int, metavar="K",
        help="stratified K-fold cross-validation over the training file instead of --eval",
    )
    routing.add_argument("--domains", type=Path, metavar="PATH",
                         help="CLINC150 domains.json (default: next to the training file)")
    routing.add_argument("--max-train-per-class", type=int, metavar="N",
                         help="keep N training rows of each class, evenly spaced in file order")
    routing.add_argument("--max-eval", type=int, metavar="N",
                         help="route a fixed, class-proportional sample of N eval rows "
                         "(with --folds: N/K from each fold)")
    routing.add_argument("--seed", type=int, default=0, help="seed of sampling and folds")
    routing.add_argument("--json", dest="json_out", type=Path, metavar="OUT",
                         help="write the figures to this JSON file")
    routing.set_defaults(func=cmd_routing)


def _register_admission(kinds: argparse._SubParsersAction) -> None:
    admission = kinds.add_parser(
        "admission",
        help="what tenants and quotas cost per call, and the shared quota counters' rate with "
        "one and two processes",
    )
    admission.add_argument("--calls", type=int, default=3000, help="calls per case")
    admission.add_argument("--seconds", type=float, default=3.0,
                           help="length of each shared-counter run")
    admission.add_argument("--json", dest="json_out", help="write the figures to this JSON file")
    admission.set_defaults(func=cmd_admission)


def cmd_admission(args: argparse.Namespace) -> int:
    from mesh.bench.admission import run_admission_bench

    return run_admission_bench(args.calls, args.seconds, args.json_out)


def cmd_latency(args: argparse.Namespace) -> int:
    import sys

    from mesh.bench.latency import parse_env, run_latency_bench

    try:
        env = parse_env(args.serve_env)
    except ValueError as e:
        print(f"mesh bench latency: {e}", file=sys.stderr)
        return 2
    return run_latency_bench(args.requests, args.json_out, env)


def cmd_routing(args: argparse.Namespace) -> int:
    from mesh.bench.routing import BenchOptions, main

    return main(BenchOptions(
        dataset=args.dataset, train=args.train, eval=args.eval, folds=args.folds,
        domains=args.domains, max_train_per_class=args.max_train_per_class,
        max_eval=args.max_eval, seed=args.seed, json_out=args.json_out,
    ))


def _register_expert(kinds: argparse._SubParsersAction) -> None:
    expert = kinds.add_parser(
        "expert",
        help="one ONNX expert on Ray Serve, batched vs unbatched: req/s and p99 at c=1, 8, 32",
        description="Deploys the expert twice on a Ray cluster of the bench's own (one replica "
        "each): one model call per request, and @serve.batch gathering concurrent requests "
        "into one call. Needs a loopback-only network namespace, like every command that "
        "starts Ray here.",
    )
    expert.add_argument("--expert", default="breast-cancer", metavar="NAME",
                        help="a bundled demo expert (default: breast-cancer)")
    expert.add_argument("--manifest", type=Path, metavar="FILE",
                        help="bench this onnx manifest instead of a demo expert")
    expert.add_argument("--requests", type=int, default=400, help="requests per measurement")
    expert.add_argument("--concurrency", default="1,8,32", metavar="LIST",
                        help="comma-separated concurrency levels (default: 1,8,32)")
    expert.add_argument("--max-batch-size", type=int, default=32, help="largest batch")
    expert.add_argument("--batch-wait-ms", type=float, default=2.0,
                        help="longest a request waits for its batch to fill, ms")
    expert.add_argument("--json", dest="json_out", help="write the figures to this JSON file")
    expert.set_defaults(func=cmd_expert)


def cmd_expert(args: argparse.Namespace) -> int:
    import sys

    from pydantic import ValidationError

    from mesh.bench.expert import demo_manifest, run_expert_bench
    from mesh.config import BatchingConfig, load_manifest
    from mesh.errors import ConfigError

    try:
        levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
        batching = BatchingConfig(max_batch_size=args.max_batch_size,
                                  wait_timeout_s=args.batch_wait_ms / 1000)
        manifest = (load_manifest(args.manifest) if args.manifest
                    else demo_manifest(args.expert, print))
    except (ValueError, ValidationError, ConfigError) as e:
        print(f"mesh bench expert: {e}", file=sys.stderr)
        return 2
    return run_expert_bench(manifest, args.requests, levels, batching, args.json_out)
