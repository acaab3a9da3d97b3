"""gRPC plumbing every mesh server shares: error mapping, health, reflection, start/stop."""
