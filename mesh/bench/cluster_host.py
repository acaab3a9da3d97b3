"""The process that owns the bench's Ray cluster: starts it, deploys, holds it, tears it down.

Started by ``mesh bench latency``; not meant to be run by hand. Owning Ray through ``ray.init``
in a dedicated process (instead of ``ray start`` + ``ray stop``) gives the bench a cluster of
its own: a random GCS port (never `mesh up`'s 6380), its own temp folder, and a teardown that
stops exactly this cluster — ``ray stop`` would kill every Ray process of the user, other
meshes included. If this process dies, Ray's reaper takes the cluster down with it.

Protocol on stdout: ``PROGRESS <text>`` lines, then ``READY <gcs address>``; it then holds the
cluster until stdin closes (or SIGTERM), and shuts Serve and Ray down.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from mesh.config import load_config, load_manifests


def _say(kind: str, text: str) -> None:
    print(f"{kind} {text}", flush=True)


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mesh.bench.cluster_host")
    parser.add_argument("--config", required=True, help="bench mesh config (all manifests)")
    parser.add_argument("--deploy", action="append", required=True, help="expert to deploy")
    parser.add_argument("--temp-dir", required=True, help="Ray's temp folder")
    parser.add_argument("--grpc-port", type=int, required=True, help="Serve gRPC proxy port")
    parser.add_argument("--http-port", type=int, required=True, help="Serve HTTP proxy port")
    parser.add_argument("--composition-app", default="composition")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_exit)

    import ray
    from ray import serve

    from mesh.bench.composition import SERVICER, composition_application
    from mesh.serving.apps import deploy_experts, wait_running

    config = load_config(args.config)
    manifests = load_manifests(config)
    chosen = [m for m in manifests if m.name in set(args.deploy)]
    missing = set(args.deploy) - {m.name for m in chosen}
    if missing:
        print(f"no manifest for {sorted(missing)}", file=sys.stderr)
        return 2
    try:
        ray.init(
            _node_ip_address="127.0.0.1",
            include_dashboard=False,
            _temp_dir=args.temp_dir,
            namespace=config.ray.namespace,
            object_store_memory=128 * 1024 * 1024,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
        gcs = ray.get_runtime_context().gcs_address
        _say("PROGRESS", f"Ray is up at {gcs}; starting Serve (gRPC proxy on "
                         f"127.0.0.1:{args.grpc_port})")
        serve.start(
            proxy_location="HeadOnly",
            http_options={"host": "127.0.0.1", "port": args.http_port},
            grpc_options={"port": args.grpc_port, "grpc_servicer_functions": [SERVICER]},
        )
        _say("PROGRESS", f"deploying {', '.join(m.name for m in chosen)}")
        deploy_experts(chosen, progress=lambda line: _say("PROGRESS", line.strip()))
        _say("PROGRESS", "deploying the Serve-composition router")
        app = composition_application(manifests, config.router, [m.key for m in chosen])
        # A route prefix is needed even for gRPC: Serve's proxy only routes to applications
        # that have one (None hides the app from the gRPC proxy as well, Ray 2.60).
        serve.run(app, name=args.composition_app, route_prefix=f"/{args.composition_app}")
        wait_running([args.composition_app],
                     progress=lambda line: _say("PROGRESS", line.strip()))
        _say("READY", gcs)
        sys.stdin.read()  # hold the cluster until the bench closes our stdin
        return 0
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
