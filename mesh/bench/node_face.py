"""``python -m mesh.bench.node_face``: the node's ExpertNodeService face, as its own process.

The latency bench's "direct" path: gRPC → ``mesh.serving.node.serve_node`` over a
``ServeTransport`` → the expert's replica, with no routing. A separate process so the load
client does not share a GIL with it. Prints ``node face serving on HOST:PORT`` when ready and
stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence


async def _serve(config_path: str, experts: Sequence[str], port: int) -> None:
    from mesh.config import load_config, load_manifests
    from mesh.serving import cluster
    from mesh.serving.handle_transport import ServeTransport
    from mesh.serving.node import serve_node

    config = load_config(config_path)
    manifests = [m for m in load_manifests(config) if m.name in set(experts)]
    cluster.connect(config.ray)
    transport = ServeTransport([m.key for m in manifests])
    server, bound = await serve_node(manifests, transport, host="127.0.0.1", port=port)
    print(f"node face serving on 127.0.0.1:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)
    await transport.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mesh.bench.node_face")
    parser.add_argument("--config", required=True, help="mesh config whose ray.address to join")
    parser.add_argument("--expert", action="append", required=True, help="expert to expose")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.config, args.expert, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
