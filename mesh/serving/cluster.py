"""The local Ray cluster of `mesh up`: started bound to loopback, joined by the orchestrator.

Ray 2.60 listens on every interface and probes an outside address to learn its IP, so the node
IP is always given (127.0.0.1 by default). Ray's token authentication (on by default in 2.60) is
kept on deliberately: its ports accept code to run, and they are not only on loopback.
The dashboard is off (it costs ~930 MB); Serve's HTTP proxy is off too, since the mesh reaches
experts through handles and serves clients over its own gRPC server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from mesh.config import RayConfig

_QUIET = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_SERVE_LOG_TO_STDERR": "0",
}


def ray_env() -> dict[str, str]:
    """Environment for Ray processes and drivers of the mesh."""
    return {**os.environ, **_QUIET}


def _ray_bin() -> str:
    local = Path(sys.executable).with_name("ray")
    return str(local) if local.exists() else (shutil.which("ray") or "ray")


def address(cfg: RayConfig) -> str:
    """The GCS address of the cluster the mesh uses."""
    return cfg.address or f"{cfg.node_ip}:{cfg.gcs_port}"


def start_local_cluster(cfg: RayConfig, temp_dir: Path) -> str:
    """Start a Ray head on this machine (``ray start --head``); returns its address."""
    temp_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        _ray_bin(), "start", "--head",
        f"--node-ip-address={cfg.node_ip}",
        f"--port={cfg.gcs_port}",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]
    if cfg.num_cpus:
        cmd.append(f"--num-cpus={cfg.num_cpus}")
    result = subprocess.run(cmd, env=ray_env(), capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        raise RuntimeError(
            f"`ray start` failed (exit {result.returncode}):\n{result.stdout[-2000:]}"
            f"\n{result.stderr[-2000:]}"
        )
    return address(cfg)


def stop_local_cluster() -> None:
    """Stop every Ray process this user started on this machine (``ray stop``)."""
    subprocess.run([_ray_bin(), "stop", "--force"], env=ray_env(), capture_output=True,
                   timeout=120, check=False)


def connect(cfg: RayConfig) -> None:
    """Join the cluster as a driver (idempotent), quietly."""
    import ray

    if ray.is_initialized():
        return
    os.environ.update(_QUIET)
    ray.init(
        address=address(cfg),
        namespace=cfg.namespace,
        logging_level="WARNING",
        log_to_driver=False,
        configure_logging=True,
    )


def start_serve() -> None:
    """Start Serve's controller without an HTTP proxy (idempotent)."""
    from ray import serve

    serve.start(proxy_location="Disabled")
