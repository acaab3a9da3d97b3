"""Federation: partner organizations join a hub from their own machines.

Identity and trust (``keys``, ``signing``, ``trust``, ``ca``, ``tls``), the hub's registry
(``store``, ``registry``, ``registry_server``), the node's side (``publisher``) and the
orchestrator's way to reach partner experts (``breaker``, ``remote``, ``composite``, ``hub``).
Nothing here imports the orchestrator or Ray: the CLI wires them together.
"""
