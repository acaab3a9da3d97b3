"""Ray Serve side of the mesh: one application per expert, the local cluster, handle transport,
and the node's gRPC face (ExpertNodeService)."""
