"""Benchmarks that measure the mesh against its peers in one run, on the same machine.

``latency`` compares three paths to the same expert replica: a direct call through the node's
gRPC face, the mesh's orchestrator, and Ray Serve's own composition (gRPC proxy → router
deployment → expert deployment). Every server runs in its own process so the load client never
shares a GIL with what it measures.
"""
