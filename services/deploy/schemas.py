"""Message shapes of the deploy service (RPC payloads and events)."""
