"""Message shapes of the cluster service (RPC payloads and events)."""
