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
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mesh.config import RayConfig
from mesh.runstate import pid_alive, proc_stat, wait_gone

_QUIET = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_SERVE_LOG_TO_STDERR": "0",
}
TOKEN_FILE = "ray_auth_token"
# How often replicas and handles report load to Serve's autoscaler. Ray's default (10 s) makes a
# scale-up take ~33 s on a step of load; 0.5 s measured 6-6.6 s to 3 replicas (Ray 2.60) for a
# few extra small RPCs per replica. Defaults only: the operator's own values win.
AUTOSCALING_DEFAULTS = {
    "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5",
    "RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5",
}


def auth_env(cfg: RayConfig, state: Path) -> dict[str, str]:
    """Token authentication for a local cluster: one secret per mesh, in its state folder.

    Every process of the mesh (``ray start``, `mesh up`, the orchestrator) gets the same token
    through RAY_AUTH_TOKEN_PATH. A joined cluster (``ray.address`` set) keeps whatever auth the
    operator configured through Ray's own RAY_AUTH_* variables.
    """
    if cfg.address:
        return {}
    token = state / TOKEN_FILE
    if not token.is_file():
        state.mkdir(parents=True, exist_ok=True)
        fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


def ray_env(cfg: RayConfig, state: Path) -> dict[str, str]:
    """Environment for Ray processes and drivers of the mesh whose state is in ``state``."""
    return {**AUTOSCALING_DEFAULTS, **os.environ, **_QUIET, **auth_env(cfg, state)}


def _ray_bin() -> str:
    local = Path(sys.executable).with_name("ray")
    return str(local) if local.exists() else (shutil.which("ray") or "ray")


def address(cfg: RayConfig) -> str:
    """The GCS address of the cluster the mesh uses."""
    return cfg.address or f"{cfg.node_ip}:{cfg.gcs_port}"


def start_local_cluster(cfg: RayConfig, state: Path, temp_dir: Path) -> str:
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
    result = subprocess.run(cmd, env=ray_env(cfg, state), capture_output=True, text=True,
                            timeout=180)
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


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process."""
    out: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := proc_stat(int(entry.name))) is not None:
            out[int(entry.name)] = int(fields[1])
    return out


def _processes_using(folder: Path) -> list[int]:
    """PIDs of the cluster started with ``folder``: its daemons (they take the folder as an
    argument) and all their descendants (workers and agents rename themselves "ray::...")."""
    marker = str(folder).encode() + b"/"
    roots = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes():
                roots.add(int(entry.name))
        except OSError:
            continue
    parents = _parents()
    found = set(roots)
    grew = True
    while grew:
        children = {pid for pid, ppid in parents.items() if ppid in found} - found
        grew = bool(children)
        found |= children
    found.discard(os.getpid())
    return sorted(found)


def stop_local_cluster(temp_dir: Path, grace_s: float = 10.0) -> int:
    """Stop the Ray cluster started with ``temp_dir``, and only it; returns processes stopped.

    `ray stop` would stop every Ray cluster of this user on the machine, so instead the cluster's
    processes are found by their temp folder and their parentage (see ``_processes_using``).
    Everything found is remembered: an agent whose raylet died is reparented and no longer looks
    like part of the cluster, yet must still go. SIGTERM first, SIGKILL after ``grace_s``.
    """
    targets = set(_processes_using(temp_dir))
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        targets |= set(_processes_using(temp_dir))
        if not any(pid_alive(p) for p in targets):
            break
        time.sleep(0.2)
    for pid in targets:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    wait_gone(targets)
    return len(targets)


def cluster_reachable(cfg: RayConfig, timeout_s: float = 1.0) -> bool:
    """True when something listens on the cluster's GCS address."""
    host, port = address(cfg).rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def connect(cfg: RayConfig, state: Path | None = None) -> None:
    """Join the cluster as a driver (idempotent), quietly; with ``state``, with the token of
    the local cluster `mesh up` started for that state folder."""
    # Ray reads RAY_AUTH_* into its C++ config when first imported: set them before that,
    # and refresh the config if something imported Ray earlier in this process.
    already_imported = "ray" in sys.modules
    os.environ.update(_QUIET)
    for key, value in AUTOSCALING_DEFAULTS.items():
        os.environ.setdefault(key, value)  # this driver's handles report load too
    if state is not None:
        os.environ.update(auth_env(cfg, state))
    import ray

    logging.getLogger("ray.serve").setLevel(logging.WARNING)

    if ray.is_initialized():
        return
    if already_imported and state is not None:
        from ray._raylet import Config  # type: ignore[attr-defined]

        Config.initialize("")
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
