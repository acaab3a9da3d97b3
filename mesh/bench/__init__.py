"""Benchmarks that measure the mesh against its peers in one run, on the same machine.

``latency`` compares three paths to the same expert replica: a direct call through the node's
gRPC face, the mesh's orchestrator, and Ray Serve's own composition (gRPC proxy → router
deployment → expert deployment). Every server runs in its own process so the load client never
shares a GIL with what it measures.

``routing`` routes every row of a public data set's eval part with experts built from its
training part, next to TF-IDF + logistic regression and MiniLM + logistic regression fitted on
the same rows. ``expert`` compares batched and unbatched replicas of one expert; ``autoscale``
drives a step load through scale-up and scale-to-zero and counts replica-seconds.
"""
