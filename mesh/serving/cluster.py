"""The local Ray cluster of `mesh up`: started bound to loopback, joined by the orchestrator.

Ray 2.60 listens on every interface and probes an outside address to learn its IP, so the node
IP is always given (127.0.0.1 by default). Ray's token authentication (on by default in 2.60) is
kept on deliberately: its ports accept code to run, and they are not only on loopback.
The dashboard is off (it costs ~930 MB); Serve's HTTP proxy is off too, since the mesh reaches
experts through handles and serves clients over its own gRPC server.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
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


def temp_dir_for(state: Path) -> Path:
    """Ray's temp folder for the mesh whose state lives in ``state``.

    Short (Unix socket paths are limited to 107 bytes) and unique per state folder, so two meshes
    on one machine never share, and `mesh down` can find exactly its own processes.
    """
    digest = hashlib.sha1(str(state.resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"mesh-ray-{digest}"


def _processes_using(folder: Path) -> list[int]:
    """PIDs whose command line names ``folder`` (Ray's daemons all take it as an argument)."""
    marker = str(folder).encode() + b"/"
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def stop_local_cluster(temp_dir: Path, timeout_s: float = 20.0) -> int:
    """Stop the Ray cluster started with ``temp_dir``, and only it; returns processes signalled.

    `ray stop` would stop every Ray cluster of this user on the machine, so instead the cluster's
    daemons are found by their temp folder (workers exit when their raylet goes).
    """
    pids = _processes_using(temp_dir)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s / 2
        while time.monotonic() < deadline and _processes_using(temp_dir):
            time.sleep(0.2)
        pids = _processes_using(temp_dir)
        if not pids:
            break
    return len(pids)


def cluster_reachable(cfg: RayConfig, timeout_s: float = 1.0) -> bool:
    """True when something listens on the cluster's GCS address."""
    host, port = address(cfg).rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def connect(cfg: RayConfig) -> None:
    """Join the cluster as a driver (idempotent), quietly."""
    import ray

    if ray.is_initialized():
        return
    os.environ.update(_QUIET)
    ray.init(
        address=address(cfg),
        namespace=cfg.namespace,
        logging_level=logging.WARNING,
        log_to_driver=False,
        configure_logging=True,
    )


def start_serve() -> None:
    """Start Serve's controller without an HTTP proxy (idempotent)."""
    from ray import serve

    serve.start(proxy_location="Disabled")
