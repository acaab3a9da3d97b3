"""`mesh up`, `mesh down` and `mesh orchestrator`: bringing a mesh up and down on this machine."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mesh.cli.common import DEMO_CONFIG, config_path, demo_artifacts_dir, mesh_command

if TYPE_CHECKING:
    from mesh.config import MeshConfig


def register(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser("up", help="start Ray, deploy the experts, start the orchestrator")
    up.add_argument("-c", "--config", help="mesh config YAML (default: the embedded demo mesh)")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop the orchestrator and the local Ray cluster")
    down.add_argument("-c", "--config", help="the config `mesh up` was given (default: demo)")
    down.set_defaults(func=cmd_down)

    orch = sub.add_parser("orchestrator", help="run the orchestrator in the foreground")
    orch.add_argument("-c", "--config", help="mesh config YAML (default: the embedded demo mesh)")
    orch.add_argument("--port", type=int, help="override orchestrator.port")
    orch.add_argument("--metrics-port", type=int,
                      help="override orchestrator.metrics_port (Prometheus /metrics; 0: any)")
    orch.add_argument("--local", action="store_true",
                      help="run the experts in this process instead of on Ray (tests, laptops)")
    from mesh.cli.federation import add_hub_arguments

    add_hub_arguments(orch)
    orch.set_defaults(func=cmd_orchestrator)


def _step(n: int, total: int, text: str) -> float:
    print(f"[{n}/{total}] {text}", flush=True)
    return time.monotonic()


def _done(started: float) -> None:
    print(f"      done in {time.monotonic() - started:.1f} s", flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    from mesh.client import MeshClient
    from mesh.config import check_model_files, load_config, load_manifests
    from mesh.runstate import RunState, pid_alive

    path = config_path(args.config)
    config = load_config(path)
    state = config.state_path()
    running = RunState.load(state)
    if running and running.orchestrator_pid and pid_alive(running.orchestrator_pid):
        print(f"mesh is already up (orchestrator at {running.orchestrator_address}); "
              "`mesh down` stops it")
        if path == DEMO_CONFIG:
            demo_artifacts_dir(state)
        return _apply_manifests(config)
    if path == DEMO_CONFIG:
        from mesh.demo.build import build_demo

        t = _step(1, 4, "building the bundled demo experts from public data (first run only)")
        build_demo(demo_artifacts_dir(state))
        _done(t)
    manifests = load_manifests(config)
    for manifest in manifests:
        check_model_files(manifest)

    from mesh.serving import apps, cluster

    temp_dir = cluster.temp_dir_for(state)
    started_ray = config.ray.address is None
    if config.ray.address:
        t = _step(2, 4, f"joining Ray at {config.ray.address}")
    elif cluster.cluster_reachable(config.ray):
        t = _step(2, 4, f"Ray already runs at {cluster.address(config.ray)}; reusing it")
    else:
        t = _step(2, 4, f"starting Ray on {config.ray.node_ip} (about 10 s)")
        # Recorded before anything else can fail, so `mesh down` can always clean up.
        RunState(str(path), cluster.address(config.ray), True, str(temp_dir), 0, "").save(state)
        cluster.start_local_cluster(config.ray, state, temp_dir)
    cluster.connect(config.ray, state)
    cluster.start_serve()
    _done(t)

    t = _step(3, 4, f"deploying {len(manifests)} experts on Ray Serve (one application each)")
    apps.deploy_experts(manifests, progress=lambda line: print(line, flush=True))
    _done(t)

    t = _step(4, 4, "starting the orchestrator")
    logs = state / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_file = open(logs / "orchestrator.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesh.cli", "orchestrator", "--config", str(path)],
        stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, env=cluster.ray_env(config.ray, state),
    )
    address = f"{config.orchestrator.host}:{config.orchestrator.port}"
    if running and running.started_ray:
        started_ray = True  # reused a cluster an earlier `mesh up` started: still ours to stop
    RunState(str(path), cluster.address(config.ray), started_ray, str(temp_dir), proc.pid,
             address).save(state)
    with MeshClient(address) as client:
        deadline = time.monotonic() + 120
        while not client.wait_healthy(2.0):
            if proc.poll() is not None or time.monotonic() > deadline:
                print(f"mesh: the orchestrator did not start; see {logs / 'orchestrator.log'}:",
                      file=sys.stderr)
                print(_tail(logs / "orchestrator.log"), file=sys.stderr)
                return 1
    _done(t)
    cmd = mesh_command()
    print(f"\nmesh is up: orchestrator on {address}, {len(manifests)} experts.")
    print(f'  ask it:      {cmd} ask "is this breast tumour malignant? mean radius 17.9, '
          'worst area 2019"')
    print(f'  why:         {cmd} route "..."      experts: {cmd} experts')
    print(f"  stop it:     {cmd} down")
    if config.auth_required():
        print(f"  auth:        calls need a token (`{cmd} tenants create NAME`, then "
              "--token or MESH_TOKEN) or a client certificate")
    else:
        print(f"  auth:        OPEN, no credential needed (it listens on "
              f"{config.orchestrator.host} only); tenants: `{cmd} tenants create NAME`")
    return 0


def _apply_manifests(config: MeshConfig) -> int:
    """On a running mesh, deploy the manifests again: Serve leaves unchanged experts alone and
    applies an autoscaling change to the running replicas of that expert only (apps.code_version),
    so scaling is changed by editing the manifest and re-running `mesh up`."""
    from mesh.config import check_model_files, load_manifests
    from mesh.serving import apps, cluster

    manifests = load_manifests(config)
    for manifest in manifests:
        check_model_files(manifest)
    cluster.connect(config.ray, config.state_path())
    print(f"applying {len(manifests)} manifests (unchanged experts are left as they are)",
          flush=True)
    apps.deploy_experts(manifests, progress=lambda line: print(line, flush=True))
    return 0


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def cmd_down(args: argparse.Namespace) -> int:
    from mesh.config import load_config
    from mesh.runstate import RunState, pid_alive, wait_gone
    from mesh.serving import cluster

    folder = load_config(config_path(args.config)).state_path()
    running = RunState.load(folder)
    if running is None:
        stopped = cluster.stop_local_cluster(cluster.temp_dir_for(folder))
        print(f"mesh: nothing recorded as running in {folder}"
              + (f"; stopped {stopped} leftover Ray processes" if stopped else ""))
        return 0
    if running.orchestrator_pid and pid_alive(running.orchestrator_pid):
        print(f"stopping the orchestrator (pid {running.orchestrator_pid}) ...", flush=True)
        os.kill(running.orchestrator_pid, signal.SIGTERM)
        if not wait_gone([running.orchestrator_pid], timeout_s=15):
            os.kill(running.orchestrator_pid, signal.SIGKILL)
            wait_gone([running.orchestrator_pid])
    if running.started_ray:
        print("stopping Ray ...", flush=True)
        cluster.stop_local_cluster(Path(running.ray_temp_dir))
    RunState.clear(folder)
    print("mesh is down.")
    return 0


def cmd_orchestrator(args: argparse.Namespace) -> int:
    import asyncio

    from mesh.cli.federation import client_credentials, hub_federation, make_hub
    from mesh.config import load_config, load_manifests
    from mesh.experts.transport import ExpertTransport, LocalTransport
    from mesh.observability.cost import CostLedger, prices
    from mesh.observability.logs import setup_logging
    from mesh.observability.metrics import MeshMetrics
    from mesh.orchestrator.admission import hub_admission
    from mesh.orchestrator.server import (
        run_until_signalled,
        serve_orchestrator,
        start_observability,
    )
    from mesh.orchestrator.service import Orchestrator
    from mesh.orchestrator.sessions import SessionStore
    from mesh.orchestrator.traffic import TRAFFIC_DB, TrafficStore, VersionPicker
    from mesh.serving import cluster
    from mesh.serving.handle_transport import ServeTransport

    setup_logging()
    path = config_path(args.config)
    config = load_config(path)
    if args.port is not None:
        config = config.model_copy(
            update={"orchestrator": config.orchestrator.model_copy(update={"port": args.port})}
        )
    if args.metrics_port is not None:
        config = config.model_copy(update={"orchestrator": config.orchestrator.model_copy(
            update={"metrics_port": args.metrics_port})})
    if path == DEMO_CONFIG:
        demo_artifacts_dir(config.state_path())
    manifests = load_manifests(config)
    federation = hub_federation(config, args)
    if not args.local:
        cluster.connect(config.ray, config.state_path())

    async def run() -> None:
        sessions = SessionStore(config.state_path() / config.orchestrator.session_db)
        local: ExpertTransport = (LocalTransport(manifests) if args.local
                                  else ServeTransport([m.key for m in manifests]))
        transport, hub = local, None
        if federation is not None:
            hub = make_hub(federation, config, local, manifests,
                           lambda experts: orchestrator.set_experts(experts))
            transport = hub.transport
        traffic = TrafficStore(config.state_path() / TRAFFIC_DB)
        metrics = MeshMetrics(CostLedger(prices(manifests)))
        admission, auth_line = hub_admission(config, metrics)
        orchestrator = Orchestrator(manifests, transport, sessions, config.orchestrator,
                                    config.router, metrics=metrics,
                                    versions=VersionPicker(traffic), admission=admission)
        if hub is not None:
            # Before clients are served: partner experts restored from the registry are
            # routable from the first request on.
            port = await hub.start()
            print(f"registry serving on {hub.cfg.host}:{port} (mutual TLS)", flush=True)
        running = await serve_orchestrator(orchestrator, client_credentials(config))
        print(f"orchestrator serving on {config.orchestrator.host}:{running.port}", flush=True)
        print(auth_line, flush=True)
        running.observability = await start_observability(orchestrator,
                                                          ray_metrics=not args.local)
        if running.observability.port is not None:
            print(f"metrics on http://{config.orchestrator.host}:{running.observability.port}"
                  "/metrics", flush=True)
        health_port = None
        if args.health_port is not None:
            from mesh.federation.health_port import serve_health_port

            health_port, _ = await serve_health_port(running.health, config.orchestrator.host,
                                                     args.health_port)
        await run_until_signalled(running)
        if health_port is not None:
            await health_port.stop(0)
        if hub is not None:
            await hub.stop()
        sessions.close()
        traffic.close()
        admission.close()

    asyncio.run(run())
    return 0
